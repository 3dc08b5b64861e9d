"""Sweeps: many training runs at once — over seeds, learning rates, architectures — on Dask.

``nbbp.sweep(model_or_source, grid, steps=..., optimizer=..., feed=...)`` trains one
model per configuration of ``grid`` (every combination of its axes) and returns a
:class:`SweepResult`, a table with one row per configuration: the final and per-step
loss, the metrics asked for, the time, and the trained parameters if asked.

A grid key is a training setting (``seed``, ``steps``, ``batch_size``,
``optimizer``), a setting of the optimizer (``lr``, ``momentum``, ``betas``,
``weight_decay``, …), or a name the model source reads (``hidden`` in
``randn(2, hidden)``), so the architecture can vary too. ``seed`` seeds both the
initialisers (``randn``, ``uniform``) and the minibatch order.

How it runs:

* Every task rebuilds its model from plain data — the source text, the arrays and
  numbers the source reads, the settings — never from pickled notebook state. A
  model without source text (built with the Python API) travels as an
  :mod:`nbbp.io` file; its initial values are then fixed, and only training
  settings can vary.
* ``client=None`` starts a local ``dask.distributed`` cluster of worker
  *processes*, one per core, on 127.0.0.1, and closes it afterwards; a
  ``distributed.Client`` you pass (to a cluster on other machines, say) is used as
  it is and left open; ``client="serial"`` runs everything here, one run after the
  other, without Dask (for debugging, and the baseline).
* Bad input (an unknown grid key, an empty grid, a model that does not build with
  the first configuration, unknown feed names or metrics) fails before any task is
  sent. A configuration that fails later (an error, a nan loss) is reported in its
  own row with the reason, and the sweep goes on. A worker that dies has its tasks
  re-run elsewhere by Dask; a task is a pure function of its configuration, so the
  results are the same as those of an undisturbed run. Interrupting the kernel
  cancels the remaining tasks and returns the rows finished so far.
* Workers load the compiled kernels from the on-disk Numba cache that the notebook
  uses (the parent warms it before a local cluster starts); where no cache exists
  yet, a per-machine file lock lets one worker compile while the others wait, so
  the first-compile cost is paid once per machine, never per task.
* Cheap configurations are grouped into chunks, so that each task has at least a
  few tenths of a second of work and Dask's per-task overhead (a few milliseconds)
  stays small; ``chunk=1`` sends one configuration per task.

>>> from nbbp.sweep import sweep
>>> res = sweep("w = param(0.0)\\nloss = (w - 3.0)**2", grid={"lr": [0.01, 0.1]},
...             steps=50, optimizer="sgd", client="serial", progress=False)
>>> [round(r.loss, 4) for r in res]
[1.2428, 0.0]
>>> res.best().config
{'lr': 0.1}
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import hashlib
import html
import itertools
import logging
import math
import os
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import optim
from .errors import BuildError, FeedError, NbbpError, NumericError, suggest

SETTINGS = ("seed", "steps", "batch_size", "optimizer")   # grid keys beside the others
METRICS = ("accuracy",)                                     # metrics known by name
TASK_SECONDS = 0.25     # aim for at least this much work per task when chunking


# ---------------------------------------------------------------------------- the table
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
        from .plots import _pyplot
        varying = [k for k, v in self.axes.items() if len(v) > 1]
        if (x is None) != (y is None):
            raise NbbpError("plot: give both x= and y= (two grid axes), or neither")
        if x is None and len(varying) >= 2:
            x, y = varying[0], varying[1]
        for k in (x, y):
            if k is not None and k not in self.axes:
                raise NbbpError(f"plot: {k!r} is not a grid axis; "
                                + suggest(k, self.axes, "grid axis"))
        plt = _pyplot()
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
        if w is v or (type(w) is type(v) and _same(w, v)):
            return i
    return 0


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(np.all(a == b))
    except Exception:
        return False


# ---------------------------------------------------------------------------- the call
def sweep(model_or_source: Any, grid: Mapping[str, Sequence] | Sequence[Mapping[str, Any]],
          steps: int = 100, optimizer: optim.Optimizer | str | None = "sgd",
          lr: float | None = None, batch_size: int | None = None,
          feed: Mapping[Any, Any] | None = None, seed: int | None = 0, *,
          namespace: Mapping[str, Any] | None = None, output: str | None = None,
          metrics: Any = None, params: bool = False, client: Any = None,
          workers: int | None = None, chunk: int | None = None, progress: bool = True,
          engine: str | None = None) -> SweepResult:
    """Train one model per configuration of ``grid``, on Dask; return the table.

    Parameters
    ----------
    model_or_source
        Model source text (as for :func:`nbbp.build`) or a :class:`nbbp.Model`. A model
        is rebuilt from its source for every run (fresh initial values, seeded by
        ``seed``); one without source is shipped as an :mod:`nbbp.io` file.
    grid
        ``{key: [values]}`` — every combination is one run — or a list of
        ``{key: value}`` configurations. Keys: ``seed``, ``steps``, ``batch_size``,
        ``optimizer`` (a name or an optimizer), an optimizer setting (``lr``,
        ``momentum``, ``betas``, …), or a name the source reads.
    steps, optimizer, lr, batch_size, feed, seed
        As for :meth:`nbbp.Model.fit`, for every run; a grid key of the same name
        overrides them. ``seed`` also seeds the initialisers.
    namespace
        Values of the names the source reads (data arrays, sizes). In IPython the
        notebook's variables are looked up too. Only plain data travels to workers:
        numbers, strings, arrays, and lists/tuples/dicts of them.
    output
        The output (loss) node's name, when it is not the source's last assignment.
    metrics
        ``"accuracy"`` (on the training data), a callable ``f(model) -> float``, or a
        list or dict of these; evaluated after training.
    params
        Return each run's trained parameters (``run.params``).
    client
        ``None``: a local cluster of worker processes (``workers`` of them, one per
        core by default), closed afterwards. A ``distributed.Client``: used as it is.
        ``"serial"``: run here, one after the other, without Dask.
    chunk
        Configurations per task; by default cheap runs are grouped so a task has a
        quarter of a second of work or so, with at least four tasks per worker.
    progress
        Show a progress bar over the runs.

    Returns
    -------
    SweepResult
        One :class:`Run` per configuration, in grid order.

    Examples
    --------
    >>> from nbbp.sweep import sweep
    >>> src = "w = param(randn() * 0.1)\\nloss = (w - target)**2"
    >>> res = sweep(src, {"seed": [0, 1], "target": [1.0, 2.0]}, steps=200, lr=0.1,
    ...             client="serial", progress=False)
    >>> res.columns
    ['seed', 'target', 'status', 'loss', 'time', 'error']
    >>> [r.status for r in res], bool(res["loss"].max() < 1e-12)
    (['ok', 'ok', 'ok', 'ok'], True)
    """
    start = time.perf_counter()
    plan = _Plan(model_or_source, grid, steps, optimizer, lr, batch_size, feed, seed,
                 namespace, output, metrics, params, engine)
    if isinstance(client, str) and client != "serial":
        raise NbbpError(f"sweep(client={client!r}): use None (a local cluster), a "
                        "distributed.Client, or 'serial' (this process, without Dask)")
    if client == "serial":
        runs, interrupted = _collect_serial(plan, progress)
        n_workers = 1
    else:
        runs, interrupted, n_workers = _collect_dask(plan, client, workers, chunk, progress)
    return SweepResult(runs, plan.axes, time.perf_counter() - start, n_workers, interrupted)


class _Plan:
    """Everything checked and turned into plain data before any task is sent."""

    def __init__(self, model_or_source, grid, steps, optimizer, lr, batch_size, feed, seed,
                 namespace, output, metrics, params, engine) -> None:
        from .model import Model
        self.configs, self.axes = _configs(grid)
        if isinstance(model_or_source, Model):
            model = model_or_source
            source = model.source
            engine = engine or model.engine
            output = output or model.output.name
        elif isinstance(model_or_source, str):
            model, source = None, model_or_source
        else:
            raise NbbpError(f"sweep needs model source text or an nbbp.Model, got "
                            f"{type(model_or_source).__name__}")
        engine = engine or "numba"
        # which keys are settings, optimizer settings, names the source reads
        free, bound = _names(source) if source is not None else (set(), set())
        fields = {}         # each configuration's optimizer class -> its settings
        for o in _distinct([c.get("optimizer", optimizer) for c in self.configs]):
            cls = type(_base_optimizer(o, None))
            fields[cls] = {f.name for f in dataclasses.fields(cls)}
        every = {f.name for cls in set(optim.OPTIMIZERS.values())
                 for f in dataclasses.fields(cls)}
        classes = [type(_base_optimizer(c.get("optimizer", optimizer), None))
                   for c in self.configs] if every & set(self.axes) else []
        for i, c in enumerate(self.configs):
            for key in c:
                own = bool(classes) and key in fields[classes[i]]
                if key in SETTINGS or (key in free and not own) or (own and key not in free):
                    continue
                if own:
                    raise NbbpError(f"sweep: grid key {key!r} is both a setting of "
                                    f"{classes[i].__name__} and a name the model source "
                                    "reads; rename it in the source")
                if key in every:
                    raise NbbpError(f"sweep: grid key {key!r} is not a setting of "
                                    f"{classes[i].__name__}; vary it only with an optimizer "
                                    "that has it (e.g. momentum with 'sgd')")
                raise NbbpError(_unknown_key(key, free, bound, fields, source))
        for c in self.configs:
            for k, v in c.items():
                if k in free:
                    _check_plain(v, f"grid value {k}={v!r}")
        for s in _distinct([c.get("steps", steps) for c in self.configs]):
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
                raise NbbpError(f"sweep: steps must be a whole number ≥ 1, got {s!r}")

        # the model as plain data
        names = _lookup(free - set(self.axes), namespace)
        self.missing = sorted(free - set(self.axes) - set(names))
        for k, v in names.items():
            _check_plain(v, f"the name {k!r} that the model source reads")
        self.feed = {_feed_name(k): np.asarray(v, dtype=np.float64)
                     for k, v in (feed or {}).items()}
        self.metrics = _metrics(metrics)
        if source is None:
            self.shared = dict(kind="file", file=_model_bytes(model), engine=engine)
        else:
            self.shared = dict(kind="source", source=source, output=output, namespace=names,
                               engine=engine)
        self.shared.update(feed=self.feed, metrics=self.metrics, params=bool(params))
        self.jobs = [dict(seed=c.get("seed", seed), steps=int(c.get("steps", steps)),
                          batch_size=c.get("batch_size", batch_size),
                          optimizer=_optimizer_spec(c.get("optimizer", optimizer), lr,
                                                    {k: v for k, v in c.items()
                                                     if k not in SETTINGS and k not in free}),
                          names={k: v for k, v in c.items() if k in free})
                     for c in self.configs]
        self.engine = engine
        self.estimate = self._trial(model)

    def _trial(self, model) -> float | None:
        """Build the first configuration here (a model that does not build fails now,
        with the usual message), check the feed, and time a few training steps to
        estimate a run's cost. Returns seconds per run, or None if unknown."""
        job = self.jobs[0]
        if self.engine == "numba":
            from .engine import kernels
            kernels()
        t0 = time.perf_counter()
        try:
            trial = _rebuild(self.shared, job)
        except NbbpError as exc:
            hint = ""
            if self.missing:
                hint = (f" The source reads {', '.join(map(repr, self.missing))}, found "
                        "neither in namespace= nor in the grid: pass namespace={"
                        + ", ".join(f"{m!r}: ..." for m in self.missing) + "}.")
            msg = exc.message if not hint or exc.message.endswith(".") else exc.message + "."
            raise BuildError(f"sweep: the model does not build with the first configuration "
                             f"{self.configs[0]}: {msg}{hint}", line=exc.line,
                             col=exc.col, source_line=exc.source_line) from None
        for name in self.feed:
            node = trial._node(name)
            if node.op != "input":
                raise FeedError(f"sweep: feed {name!r}: only inputs are fed in training; "
                                f"{name!r} is a {node.op} node")
        try:
            few = min(job["steps"], 16)
            loop = trial.train_loop(_make_optimizer(job["optimizer"]), None,
                                    job["batch_size"], self.feed, job["seed"] or 0)
            t1 = time.perf_counter()
            loop.run(few)
            t2 = time.perf_counter()
        except FeedError as exc:
            raise FeedError(f"sweep: {exc.message}") from None
        except NbbpError:       # a setting of this configuration: its row will say so
            return None
        return (t1 - t0) + (t2 - t1) * job["steps"] / few


def _configs(grid) -> tuple[list[dict], dict[str, list]]:
    """The configurations of a grid, in order, and the values along each axis."""
    if isinstance(grid, Mapping):
        if not grid:
            raise NbbpError("sweep: the grid is empty; give at least one key with values, "
                            "e.g. grid={'lr': [0.01, 0.1], 'seed': [0, 1, 2]}")
        axes: dict[str, list] = {}
        for key, values in grid.items():
            if not isinstance(key, str):
                raise NbbpError(f"sweep: grid keys are names (strings), got {key!r}")
            if isinstance(values, (str, bytes, Mapping)) or not isinstance(
                    values, (Sequence, np.ndarray, range)):
                raise NbbpError(f"sweep: grid[{key!r}] must be a list of values, got "
                                f"{type(values).__name__} {values!r}; write "
                                f"{{{key!r}: [{values!r}]}} for a single value")
            values = list(values)
            if not values:
                raise NbbpError(f"sweep: grid[{key!r}] is empty; give it at least one value")
            axes[key] = [v.item() if isinstance(v, np.generic) else v for v in values]
        return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())], axes
    if isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)):
        configs = [dict(c) if isinstance(c, Mapping) else None for c in grid]
        if not configs:
            raise NbbpError("sweep: the list of configurations is empty")
        if any(c is None for c in configs):
            raise NbbpError("sweep: a list grid holds configurations, dicts like "
                            "{'lr': 0.1, 'seed': 0}")
        axes = {}
        for c in configs:
            for k, v in c.items():
                if not isinstance(k, str):
                    raise NbbpError(f"sweep: grid keys are names (strings), got {k!r}")
                vals = axes.setdefault(k, [])
                if not any(_same(v, w) and type(v) is type(w) for w in vals):
                    vals.append(v)
        return configs, axes
    raise NbbpError(f"sweep: grid must be a dict {{key: [values]}} or a list of "
                    f"configurations, got {type(grid).__name__}")


def _names(source: str) -> tuple[set[str], set[str]]:
    """The names the source reads from outside (free) and the names it binds."""
    from .build import dsl_namespace
    try:
        tree = ast.parse(source)
    except SyntaxError:
        from .build import build_graph
        build_graph(source)     # raises the located BuildError
        raise
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    free = loaded - bound - set(dsl_namespace(0)) - set(dir(builtins))
    return free, bound


def _unknown_key(key, free, bound, fields, source) -> str:
    choices = [*SETTINGS, *set().union(*fields.values()), *free]
    msg = f"sweep: unknown grid key {key!r}; " + suggest(key, choices, "grid key")
    if key in bound:
        msg += (f" The source assigns {key!r} itself, so a grid cannot set it: read it "
                f"from outside instead (delete the assignment `{key} = …`).")
    elif source is None:
        msg += (" This model has no source text (it was built with the Python API), so "
                "only training settings can vary; build it from source to vary its shape.")
    else:
        opts = ", ".join(sorted(c.__name__ for c in fields))
        msg += (f" A grid key is a training setting, a setting of the optimizer ({opts}) "
                "or a name the model source reads.")
    return msg


def _lookup(names: set[str], namespace: Mapping[str, Any] | None) -> dict[str, Any]:
    """Values of ``names`` from ``namespace``, then from the IPython user namespace."""
    found: dict[str, Any] = {}
    shell = None
    if "IPython" in sys.modules:
        shell = sys.modules["IPython"].get_ipython()
    sources = [namespace or {}, getattr(shell, "user_ns", None) or {}]
    for name in sorted(names):
        for src in sources:
            if name in src:
                found[name] = src[name]
                break
    return found


def _check_plain(value: Any, what: str, depth: int = 0) -> None:
    """Only plain data goes to workers: numbers, strings, arrays and containers of them."""
    ok = (value is None or isinstance(value, (bool, int, float, complex, str, np.generic))
          or (isinstance(value, np.ndarray) and value.dtype.kind in "biufcU"))
    if ok:
        return
    if isinstance(value, (list, tuple)) and depth < 8:
        for v in value:
            _check_plain(v, what, depth + 1)
        return
    if isinstance(value, dict) and depth < 8:
        for k, v in value.items():
            _check_plain(k, what, depth + 1)
            _check_plain(v, what, depth + 1)
        return
    raise NbbpError(f"sweep: {what} is a {type(value).__name__}; only plain data (numbers, "
                    "strings, arrays, and lists/tuples/dicts of them) is sent to the workers. "
                    "Compute it inside the model source, or pass the numbers it holds")


def _feed_name(key: Any) -> str:
    node = getattr(key, "node", key)
    name = getattr(node, "name", key)
    if not isinstance(name, str):
        raise FeedError(f"sweep: feed keys are input names, got {key!r}")
    return name


def _metrics(metrics: Any) -> dict[str, Any]:
    if metrics is None:
        return {}
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    if not isinstance(metrics, Mapping):
        metrics = {m if isinstance(m, str) else getattr(m, "__name__", f"metric{i}"): m
                   for i, m in enumerate(metrics)}
    out = {}
    for name, m in metrics.items():
        if isinstance(m, str) and m not in METRICS:
            raise NbbpError(f"sweep: unknown metric {m!r}; " + suggest(m, METRICS, "metric")
                            + " Or pass a function f(model) -> float.")
        if not isinstance(m, str) and not callable(m):
            raise NbbpError(f"sweep: metric {name!r} must be a name or a function "
                            f"f(model) -> float, got {type(m).__name__}")
        out[str(name)] = m
    return out


def _distinct(values: list) -> list:
    out: list = []
    for v in values:
        if not any(v is w or (type(v) is type(w) and _same(v, w)) for w in out):
            out.append(v)
    return out


def _base_optimizer(opt: Any, lr: float | None) -> optim.Optimizer:
    try:
        base = optim.get(opt, lr)
    except NbbpError as exc:
        raise NbbpError(f"sweep: {exc.message}") from None
    if lr is not None and isinstance(opt, optim.Optimizer):
        base = dataclasses.replace(base, lr=lr)
    return base


def _optimizer_spec(opt: Any, lr: float | None, settings: dict) -> tuple[str, dict]:
    """An optimizer as plain data: its class name and every field."""
    base = _base_optimizer(opt, lr)
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    fields.update(settings)
    decay = fields.get("decay")
    if isinstance(decay, optim.Decay):
        fields["decay"] = dataclasses.asdict(decay)
    return type(base).__name__, fields


def _model_bytes(model) -> bytes:
    from . import io
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.nbbp")
        io.save(model, path)
        with open(path, "rb") as f:
            return f.read()


# ---------------------------------------------------------------------------- running
def _collect_serial(plan: _Plan, progress: bool) -> tuple[list[Run], bool]:
    runs = [Run(i, c) for i, c in enumerate(plan.configs)]
    bar = _Progress(len(runs), progress)
    interrupted = False
    try:
        for i, job in enumerate(plan.jobs):
            _fill(runs[i], _run_one(plan.shared, i, job))
            bar.update(1, runs[i].ok)
    except KeyboardInterrupt:
        interrupted = True
        _say_interrupted(runs)
    finally:
        bar.close()
    return runs, interrupted


def _collect_dask(plan: _Plan, client: Any, workers: int | None, chunk: int | None,
                  progress: bool) -> tuple[list[Run], bool, int]:
    try:
        import distributed
    except ImportError:
        raise NbbpError("sweeps run on Dask: pip install 'nbbp[sweep]' (or pip install "
                        "'dask[distributed]'); client='serial' runs here without it") from None
    if client is not None and not isinstance(client, distributed.Client):
        raise NbbpError(f"sweep(client=...): expected a distributed.Client, None or "
                        f"'serial', got {type(client).__name__}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise NbbpError(f"sweep(workers=...): a whole number ≥ 1, got {workers!r}")
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int)
                              or chunk < 1):
        raise NbbpError(f"sweep(chunk=...): a whole number ≥ 1, got {chunk!r}")
    runs = [Run(i, c) for i, c in enumerate(plan.configs)]
    cluster = None
    interrupted = False
    bar = None
    try:
        if client is None:
            n = workers or _cores()
            cluster = local_cluster(n, plan.engine)
            client = distributed.Client(cluster, set_as_default=False)
        else:
            n = sum(w.get("nthreads", 1) for w in
                    client.scheduler_info().get("workers", {}).values()) or 1
        size = chunk or _chunk_size(len(runs), n, plan.estimate)
        bar = _Progress(len(runs), progress)
        interrupted = _submit_and_gather(client, plan, runs, size, bar)
    finally:
        if bar is not None:
            bar.close()
        if cluster is not None:
            _close(client, cluster)
    return runs, interrupted, n


def _submit_and_gather(client, plan: _Plan, runs: list[Run], size: int, bar) -> bool:
    from distributed import as_completed
    token = uuid.uuid4().hex[:10]
    jobs = list(enumerate(plan.jobs))
    chunks = [jobs[k:k + size] for k in range(0, len(jobs), size)]
    # the shared data (source, arrays, settings) goes once to every worker: no task
    # waits for a transfer, none is drawn to one worker by its data, and a worker that
    # dies leaves copies on the others
    [data] = client.scatter([plan.shared], broadcast=True, hash=False)
    futures = client.map(_run_chunk, [data] * len(chunks), chunks, pure=False,
                         key=[f"nbbp-sweep-{token}-{k}" for k in range(len(chunks))])
    members = {f.key: c for f, c in zip(futures, chunks)}
    pending = set(members)
    try:
        for fut in as_completed(futures, loop=client.loop):
            pending.discard(fut.key)
            if fut.status == "finished":
                results = fut.result()
            else:
                results = [_task_failed(i, fut) for i, _ in members[fut.key]]
            for res in results:
                _fill(runs[res["index"]], res)
            bar.update(len(results), *[runs[r["index"]].ok for r in results])
            fut.release()
    except KeyboardInterrupt:
        _say_interrupted(runs)
        return True
    finally:
        # interrupted, or the connection failed: cancel what is left, then the data
        left = [f for f in futures if f.key in pending] + [data]
        try:
            client.cancel(left)
        except Exception:
            pass
    return False


def _task_failed(index: int, fut) -> dict:
    if fut.status == "cancelled":
        return dict(index=index, status="cancelled", error="the task was cancelled")
    try:
        exc = fut.exception()
    except BaseException as err:    # a CancelledError, for instance
        exc = err
    why = f"{type(exc).__name__}: {exc}"
    if type(exc).__name__ == "KilledWorker":
        why += " (workers running this task kept dying: it may need more memory than a "
        why += "worker has)"
    return dict(index=index, status="error", error=why)


def _fill(run: Run, res: dict) -> None:
    for k, v in res.items():
        if k != "index":
            setattr(run, k, v)


def _say_interrupted(runs: list[Run]) -> None:
    done = sum(r.status != "cancelled" for r in runs)
    for r in runs:
        if r.status == "cancelled" and r.error is None:
            r.error = "interrupted"
    print(f"nbbp: sweep interrupted after {done} of {len(runs)} runs; the remaining tasks "
          "were cancelled.", file=sys.stderr)


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _chunk_size(n_runs: int, n_workers: int, estimate: float | None) -> int:
    """Configurations per task: enough work per task to hide Dask's overhead, and at
    least four tasks per worker so the load stays balanced."""
    by_balance = max(1, n_runs // (4 * n_workers))
    by_time = max(1, int(TASK_SECONDS / estimate)) if estimate else 1
    return min(by_balance, by_time)


def local_cluster(workers: int | None = None, engine: str = "numba"):
    """A local Dask cluster for sweeps: ``workers`` single-threaded worker processes
    (one per core by default) on 127.0.0.1, with the compiled kernels loaded in each.

    ``sweep(client=None)`` starts one per call and closes it; to run many sweeps, start
    one yourself and pass a client — ``Client(cluster)`` — then ``cluster.close()``.
    """
    from distributed import Client, LocalCluster
    if engine == "numba":
        from .engine import kernels
        kernels()           # fill the on-disk cache before the workers look for it
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cache = _numba_cache_dir()
    if cache:
        env["NUMBA_CACHE_DIR"] = cache
    cluster = LocalCluster(n_workers=workers or _cores(), threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None, env=env,
                           silence_logs=logging.ERROR,
                           scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    try:
        with Client(cluster, set_as_default=False) as client:
            client.run(_ensure_kernels, engine)         # every worker at once
    except BaseException:
        cluster.close()
        raise
    return cluster


def _close(client, cluster) -> None:
    try:
        client.close()
    finally:
        cluster.close()


def _numba_cache_dir() -> str:
    if "numba" in sys.modules:
        return sys.modules["numba"].config.CACHE_DIR or ""
    return os.environ.get("NUMBA_CACHE_DIR", "")


class _Progress:
    """A tqdm bar over the runs (when tqdm is installed), counting failures."""

    def __init__(self, total: int, show: bool) -> None:
        self.bar, self.failed = None, 0
        if show:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, desc="sweep", unit="run", leave=True)
            except ImportError:
                pass

    def update(self, n: int, *ok: bool) -> None:
        self.failed += sum(not k for k in ok)
        if self.bar is not None:
            self.bar.update(n)
            if self.failed:
                self.bar.set_postfix(failed=self.failed, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------- on a worker
_WARM: set[str] = set()


def _run_chunk(shared: dict, jobs: list[tuple[int, dict]]) -> list[dict]:
    """A task: some configurations, one after the other."""
    return [_run_one(shared, i, job) for i, job in jobs]


def _run_one(shared: dict, index: int, job: dict) -> dict:
    """Build, train and measure one configuration; never raises for the run's faults."""
    out: dict[str, Any] = dict(index=index, status="ok", error=None, worker=_worker_name())
    model = t0 = None
    try:
        _ensure_kernels(shared["engine"])     # once per process, not part of the run's time
        t0 = time.perf_counter()
        model = _rebuild(shared, job)
        model.fit(job["steps"], _make_optimizer(job["optimizer"]), None, job["batch_size"],
                  shared["feed"] or None, job["seed"] or 0, progress=False)
        if model.history.interrupted:       # fit stops quietly on Ctrl-C; a sweep stops too
            raise KeyboardInterrupt
    except NumericError as exc:
        out.update(status="nan", error=str(exc))
    except NbbpError as exc:
        out.update(status="error", error=str(exc))
    except Exception as exc:
        out.update(status="error", error=f"{type(exc).__name__}: {exc}")
    losses = np.asarray(model.history.loss if model is not None else [], dtype=float)
    out.update(losses=losses, loss=float(losses[-1]) if losses.size and
               out["status"] == "ok" else math.nan)
    if out["status"] == "ok":
        out["metrics"] = metrics = {}
        for name, m in shared["metrics"].items():
            try:
                metrics[name] = float(_accuracy(model, shared["feed"]) if m == "accuracy"
                                      else m(model))
            except Exception as exc:
                metrics[name] = math.nan
                out.update(status="error", error=f"metric {name!r}: {type(exc).__name__}: "
                                                 f"{exc}")
        if shared["params"]:
            out["params"] = {k: np.asarray(v) for k, v in model.params.items()}
    out["time"] = time.perf_counter() - t0 if t0 is not None else 0.0
    return out


def _rebuild(shared: dict, job: dict):
    """The configuration's model, from plain data."""
    if shared["kind"] == "file":
        from . import io
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.nbbp")
            with open(path, "wb") as f:
                f.write(shared["file"])
            return io.load(path, engine=shared["engine"])
    from .build import build
    return build(shared["source"], shared["output"], {**shared["namespace"], **job["names"]},
                 engine=shared["engine"], seed=job["seed"])


def _make_optimizer(spec: tuple[str, dict]) -> optim.Optimizer:
    name, fields = spec
    fields = dict(fields)
    if isinstance(fields.get("decay"), Mapping):
        fields["decay"] = optim.Decay(**fields["decay"])
    return getattr(optim, name)(**fields)


def _accuracy(model, feed: Mapping[str, np.ndarray]) -> float:
    """Share of training rows classified right: the prediction node (``pred``, ``s``,
    ``logits``, …) against the one input it does not read (the labels)."""
    from .train import predict, prediction_node
    target = prediction_node(model)
    reads = [n for n in model.graph.ancestors([target]) if n.op == "input"]
    labels = [n for n in model.forward if n.op == "input" and n not in reads]
    if len(reads) != 1 or len(labels) != 1:
        raise NbbpError("metric 'accuracy' needs one data input and one label input; pass "
                        "a function f(model) -> float instead")
    X = feed.get(reads[0].name, None)
    X = model.value_of(reads[0]) if X is None else X
    y = feed.get(labels[0].name, None)
    y = np.asarray(model.value_of(labels[0]) if y is None else y).reshape(len(X), -1)
    z = np.asarray(predict(model, X, target)).reshape(len(X), -1)
    if y.shape[1] > 1:
        return float(np.mean(z.argmax(axis=1) == y.argmax(axis=1)))
    if y.min() < 0:             # labels -1 / +1: the sign of a score
        return float(np.mean((z[:, 0] > 0) == (y[:, 0] > 0)))
    threshold = 0.5 if z.min() >= 0 and z.max() <= 1 else 0.0     # probability or logit
    return float(np.mean((z[:, 0] > threshold) == (y[:, 0] > 0.5)))


def _worker_name() -> str:
    if "distributed" in sys.modules:
        try:
            return sys.modules["distributed"].get_worker().address
        except ValueError:
            pass
    return "local"


def _ensure_kernels(engine: str) -> None:
    """Load the compiled kernels once per process; one process per machine compiles
    them when the on-disk cache is empty, the others wait for it and load it."""
    if engine != "numba" or engine in _WARM:
        return
    from . import engine as _engine
    where = os.path.dirname(os.path.abspath(__file__)) + "|" + _numba_cache_dir()
    tag = hashlib.sha1(where.encode()).hexdigest()[:12]
    lock = os.path.join(tempfile.gettempdir(), f"nbbp-kernels-{tag}.lock")
    try:
        import fcntl
        f = open(lock, "a")
    except (ImportError, OSError):      # Windows, or a lock of another user: no lock
        _engine.kernels()
    else:
        with f:
            fcntl.flock(f, fcntl.LOCK_EX)       # released when the file closes
            _engine.kernels()
    _WARM.add(engine)


# ``nbbp.sweep(...)`` calls :func:`sweep`: the module itself is callable, so the name
# works whether or not ``import nbbp.sweep`` has replaced the package attribute.
class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> SweepResult:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
__signature__ = __import__("inspect").signature(sweep)
