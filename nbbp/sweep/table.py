"""The table a sweep returns: :class:`SweepResult`, one :class:`Run` per configuration.

Columns, the best run, ``to_pandas``, ``plot`` (loss curves and a heat map over two
grid axes), and the text and HTML displays. Both classes are public as
``nbbp.sweep.Run`` and ``nbbp.sweep.SweepResult``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import NbbpError, suggest


@dataclass(eq=False)
class Run:
    """One configuration's training run: a row of a :class:`SweepResult`.

    ``status`` is ``"ok"``, ``"nan"`` (the loss or a value became nan/inf),
    ``"error"`` or ``"cancelled"``; ``error`` says why. ``loss`` is the final loss
    (nan unless the run is ok); ``losses`` the loss at every completed step.
    """

    index: int
    config: dict[str, Any]
    status: str = "cancelled"
    loss: float = math.nan
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    metrics: dict[str, float] = field(default_factory=dict)
    time: float = math.nan
    error: str | None = None
    params: dict[str, Any] | None = None
    worker: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={_cell(v)}" for k, v in self.config.items())
        what = f"loss={self.loss:.6g}" if self.ok else f"{self.status}: {self.error}"
        return f"Run({cfg}: {what})"


class SweepResult:
    """The table of a sweep: one :class:`Run` per configuration, in grid order.

    ``res[i]`` is a row, ``res["loss"]`` a column (a NumPy array, or a list for the
    text columns); ``res.to_pandas()`` a DataFrame; ``res.plot()`` the loss curves
    and a heat map over two grid axes.
    """

    def __init__(self, runs: list[Run], axes: dict[str, list], wall_time: float, workers: int,
                 interrupted: bool = False) -> None:
        self.runs, self.axes = runs, axes
        self.wall_time, self.workers, self.interrupted = wall_time, workers, interrupted

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs)

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            if key not in self.columns:
                raise NbbpError(f"the sweep has no column {key!r}; "
                                + suggest(key, self.columns, "column"))
            col = [rec[key] for rec in self.to_records()]
            numeric = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                          for v in col)
            return np.asarray(col) if numeric else col
        return self.runs[key]

    @property
    def metric_names(self) -> list[str]:
        names: dict[str, None] = {}
        for r in self.runs:
            names.update(dict.fromkeys(r.metrics))
        return list(names)

    @property
    def columns(self) -> list[str]:
        return [*self.axes, "status", "loss", *self.metric_names, "time", "error"]

    @property
    def failed(self) -> list[Run]:
        """The runs that did not finish ok (nan, error or cancelled)."""
        return [r for r in self.runs if not r.ok]

    def best(self, by: str = "loss", largest: bool = False) -> Run:
        """The ok run with the lowest final loss (or the lowest/largest metric ``by``)."""
        ok = [r for r in self.runs if r.ok]
        if not ok:
            raise NbbpError("no run of the sweep finished ok; see res.failed for the reasons")
        if by != "loss" and by not in self.metric_names:
            raise NbbpError(f"best(by={by!r}): " + suggest(by, ["loss", *self.metric_names],
                                                          "column"))
        val = (lambda r: r.loss) if by == "loss" else (lambda r: r.metrics.get(by, math.nan))
        ok = [r for r in ok if not math.isnan(val(r))]
        return (max if largest else min)(ok, key=val)

    def to_records(self) -> list[dict[str, Any]]:
        """One plain dict per run: the grid values, status, loss, metrics, time, error."""
        out = []
        for r in self.runs:
            rec = {k: r.config.get(k) for k in self.axes}
            rec.update(status=r.status, loss=r.loss)
            rec.update({m: r.metrics.get(m, math.nan) for m in self.metric_names})
            rec.update(time=r.time, error=r.error)
            out.append(rec)
        return out

    def to_pandas(self):
        """A pandas DataFrame, one row per configuration (plus a ``losses`` column with
        the per-step loss arrays)."""
        try:
            import pandas as pd
        except ImportError:
            raise NbbpError("to_pandas needs pandas: pip install 'nbbp[sweep]' (or pip "
                            "install pandas); res.to_records() gives plain dicts") from None
        df = pd.DataFrame.from_records(self.to_records(), columns=self.columns)
        df["losses"] = [r.losses for r in self.runs]
        return df

    def plot(self, x: str | None = None, y: str | None = None, value: str = "loss",
             log: bool | None = None):
        """Loss curves by configuration and, over two grid axes, a heat map of ``value``
        (the final loss or a metric), averaged over the other axes. Returns the figure."""
        from ..view.plots import pyplot
        varying = [k for k, v in self.axes.items() if len(v) > 1]
        if (x is None) != (y is None):
            raise NbbpError("plot: give both x= and y= (two grid axes), or neither")
        if x is None and len(varying) >= 2:
            x, y = varying[0], varying[1]
        for k in (x, y):
            if k is not None and k not in self.axes:
                raise NbbpError(f"plot: {k!r} is not a grid axis; "
                                + suggest(k, self.axes, "grid axis"))
        plt = pyplot()
        fig, axs = plt.subplots(1, 2 if x else 1, figsize=(10 if x else 5.5, 3.6),
                                squeeze=False)
        self._plot_curves(axs[0, 0], log)
        if x:
            self._plot_heat(fig, axs[0, 1], x, y, value)
        fig.tight_layout()
        plt.close(fig)
        return fig

    def _plot_curves(self, ax, log: bool | None) -> None:
        colour_by = next((k for k, v in self.axes.items() if len(v) > 1), None)
        values = self.axes.get(colour_by, [None])
        import matplotlib
        cmap = matplotlib.colormaps["viridis"]
        seen: set = set()
        lo = math.inf
        for r in self.runs:
            if r.losses.size == 0:
                continue
            k = _index(values, r.config.get(colour_by))
            colour = cmap(k / max(len(values) - 1, 1))
            label = f"{colour_by}={_cell(values[k])}" if colour_by and k not in seen else None
            seen.add(k)
            ax.plot(np.arange(1, r.losses.size + 1), r.losses, lw=1, alpha=0.7, color=colour,
                    label=label, ls="-" if r.ok else ":")
            lo = min(lo, float(r.losses.min()))
        if log if log is not None else lo > 0:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ok = sum(r.ok for r in self.runs)
        ax.set_title(f"{len(self.runs)} runs, {ok} ok")
        ax.grid(alpha=0.3)
        if seen:
            ax.legend(fontsize=7, loc="upper right")

    def _plot_heat(self, fig, ax, x: str, y: str, value: str) -> None:
        xs, ys = self.axes[x], self.axes[y]
        total, count = np.zeros((len(ys), len(xs))), np.zeros((len(ys), len(xs)))
        for r in self.runs:
            v = r.loss if value == "loss" else r.metrics.get(value, math.nan)
            if r.ok and not math.isnan(v):
                i, j = _index(ys, r.config.get(y)), _index(xs, r.config.get(x))
                total[i, j] += v
                count[i, j] += 1
        with np.errstate(invalid="ignore"):
            grid = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis_r"
                       if value == "loss" else "viridis")
        ax.set_xticks(range(len(xs)), [_cell(v) for v in xs], fontsize=8)
        ax.set_yticks(range(len(ys)), [_cell(v) for v in ys], fontsize=8)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        others = [k for k, v in self.axes.items() if k not in (x, y) and len(v) > 1]
        ax.set_title(f"final {value}" + (f" (mean over {', '.join(others)})" if others else ""))
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, "failed" if np.isnan(v) else f"{v:.3g}", ha="center", va="center",
                    fontsize=7, color="w" if np.isnan(v) else "k")
        fig.colorbar(im, ax=ax)

    def __repr__(self) -> str:
        ok = sum(r.ok for r in self.runs)
        head = (f"<SweepResult: {len(self.runs)} runs ({ok} ok) over "
                f"{' × '.join(self.axes) or 'one configuration'}, {self.wall_time:.3g} s on "
                f"{self.workers} worker{'s' * (self.workers != 1)}"
                f"{', interrupted' if self.interrupted else ''}>")
        rows = [[_cell(v) for v in rec.values()] for rec in self.to_records()[:20]]
        cols = self.columns
        width = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
        lines = [head, "  ".join(c.ljust(w) for c, w in zip(cols, width)).rstrip()]
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, width)).rstrip() for r in rows]
        if len(self.runs) > 20:
            lines.append(f"… {len(self.runs) - 20} more rows (res.to_pandas() shows them all)")
        return "\n".join(lines)

    def _repr_html_(self) -> str | None:
        try:
            recs = self.to_records()[:200]
            head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>"
                                            for v in rec.values()) + "</tr>" for rec in recs)
            title = html.escape(repr(self).splitlines()[0])
            return f"<p><code>{title}</code></p><table><tr>{head}</tr>{body}</table>"
        except Exception:       # a _repr_ never raises: fall back to the text
            return None


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    text = str(v)
    return text if len(text) <= 60 else text[:57] + "…"


def _index(values: Sequence, v: Any) -> int:
    for i, w in enumerate(values):
        if w is v or (type(w) is type(v) and same_value(w, v)):
            return i
    return 0


def same_value(a: Any, b: Any) -> bool:
    try:
        return bool(np.all(a == b))
    except Exception:
        return False
