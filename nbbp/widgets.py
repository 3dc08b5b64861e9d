"""Live widgets: sliders over a live picture, step-through backprop, a training panel.

``sliders(m)`` (``m.sliders()``, ``%%bpgraph NAME --sliders``) puts a slider on every
scalar param and input — and an element picker with a slider for tensor params —
above the model's picture. Moving one recomputes the forward and backward passes and
refills every value, gradient, edge label and edge colour in place: the graph is laid
out once (:mod:`nbbp._live`), so nothing jumps. Below the sliders: a step-through of
the forward pass node by node and the backward pass edge by edge, a finite-difference
gradient check and the before/after view of one optimizer step (:mod:`nbbp._explain`).

``trainer(m)`` (``m.trainer()``, ``%%bpgraph NAME --train``) is a training panel in the
spirit of TensorFlow Playground, for any model: optimizer and learning-rate pickers,
Step / Train N / Pause / Reset, a progress bar, a live loss curve, the graph refreshed
every k steps and, for a classifier on 2-D data, its decision regions.

Widgets hold no maths: they call the model (``set``, ``run``, ``train_loop``), the live
picture and the explanations. ipywidgets is imported when a widget is built, so
``import nbbp`` stays light.

How it stays responsive in a notebook:

* Slider updates set the model at once (cheap) and draw the picture on the kernel's
  event loop (``loop.call_soon``): however many slider messages arrive before the
  drawing runs, one frame is drawn, with the last values — stale frames never queue.
  Without a running event loop (scripts, tests) every change draws at once.
* Train N runs as an asyncio task on the kernel's event loop, in compiled chunks of
  about 40 ms, awaiting between chunks so the kernel handles the Pause click (and
  anything else) in between; Pause takes effect at the next chunk boundary.
* An exception in a callback is shown in the widget's status line, never raised, and
  the widgets keep working (``interact``'s rule).

>>> import nbbp
>>> m = nbbp.build("x = param(3.0)\\ny = param(2.0)\\nf = x*x*y + y + 1")
>>> ex = sliders(m)
>>> ex.slider("x").value = 1.0          # as if dragged
>>> m.value, m.grads["x"]
(5.0, 4.0)
>>> '>5<' in ex.graph.html.value
True
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np

from ._live import LivePicture
from .errors import NbbpError

if TYPE_CHECKING:
    from ._explorer import Explorer
    from ._trainer import Trainer

__all__ = ["Explorer", "LiveGraph", "Trainer", "parse_sliders", "slider_range", "sliders",
           "trainer"]

OPTIMIZER_NAMES = ("sgd", "momentum", "adam", "rmsprop", "adagrad")
LEARNING_RATES = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
CHUNK_SECONDS = 0.04       # compiled training between two looks at the event loop
SETTLE_SECONDS = 0.3       # redraw tensor tooltips this long after the last change
HINT = ("drag a slider: every value, gradient and edge updates in place · ▶ steps "
        "through the forward pass node by node, then the backward pass edge by edge")


def _ipw():
    try:
        import ipywidgets
    except ImportError:
        raise NbbpError("the live widgets need ipywidgets: pip install 'nbbp[notebook]' "
                        "(or pip install ipywidgets)") from None
    return ipywidgets


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread (the kernel's), or None (scripts, tests)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _css(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _error_html(exc: BaseException, what: str = "") -> str:
    text = str(exc) if isinstance(exc, NbbpError) else f"{type(exc).__name__}: {exc}"
    return ('<div style="color:#b30000;white-space:pre-wrap;font-family:monospace;'
            f'font-size:12px">⚠ {escape(what)}{escape(text)}</div>')


# -- slider ranges ---------------------------------------------------------------------
def _nice(x: float) -> float:
    """The 1-2-5 number at or below ``x``."""
    e = 10 ** np.floor(np.log10(x))
    return float(next(m * e for m in (5, 2, 1) if m * e <= x * (1 + 1e-9)))


def slider_range(value: float, spec: Sequence[float] | None = None) -> tuple[float, float, float]:
    """``(min, max, step)`` of a slider: ``spec`` (``(lo, hi)`` or ``(lo, hi, step)``,
    widened to contain ``value``), or a range around the value with ``value`` on the grid.

    >>> slider_range(-3.0)
    (-9.0, 3.0, 0.1)
    >>> slider_range(0.5, (-1, 1, 0.25))
    (-1.0, 1.0, 0.25)
    """
    if spec is not None:
        spec = tuple(float(s) for s in spec)
        if len(spec) not in (2, 3) or not spec[0] < spec[1] or (len(spec) == 3 and spec[2] <= 0):
            raise NbbpError(f"a slider range is (min, max) or (min, max, step) with min < max "
                            f"and step > 0, got {spec!r}")
        lo, hi = spec[:2]
        step = spec[2] if len(spec) == 3 else _nice((hi - lo) / 100)
        return min(lo, value), max(hi, value), step
    span = max(1.0, 2 * abs(value))
    step = _nice(span / 50)
    span = float(np.ceil(span / step - 1e-9) * step)
    return (float(round(value - span, 12)), float(round(value + span, 12)), step)


def parse_sliders(tokens: Sequence[str]) -> tuple[list[str], dict[str, tuple]]:
    """The ``--sliders`` words of ``%%bpgraph``: names and ``name=(min,max[,step])``.

    >>> parse_sliders(["w1", "b=(-3,3,0.1)"])
    (['w1', 'b'], {'b': (-3.0, 3.0, 0.1)})
    """
    text = " ".join(tokens)
    names: list[str] = []
    ranges: dict[str, tuple] = {}
    pos = 0
    pattern = re.compile(r"\s*([A-Za-z_][\w/]*)(?:\s*=\s*\(([^)]*)\))?\s*,?")
    while pos < len(text):
        m = pattern.match(text, pos)
        if not m or m.end() == pos:
            raise NbbpError(f"--sliders: cannot read {text[pos:]!r}; write names and ranges "
                            "like: --sliders w1 b=(-3,3,0.1)")
        name, spec = m.group(1), m.group(2)
        names.append(name)
        if spec is not None:
            try:
                ranges[name] = tuple(float(s) for s in spec.split(",") if s.strip())
            except ValueError:
                raise NbbpError(f"--sliders {name}=({spec}): the range needs numbers, "
                                "e.g. (-3,3) or (-3,3,0.1)") from None
        pos = m.end()
    return names, ranges


# -- the live picture in a widget ----------------------------------------------------------
class LiveGraph:
    """The picture in an ipywidgets ``HTML`` (its ``<text>`` elements live in the page),
    with a status line for errors. :meth:`refresh` draws coalesced on the event loop."""

    def __init__(self, model: Any, overlay: Any = None, draw: bool = True,
                 **opts: Any) -> None:
        w = _ipw()
        self.model = model
        self.picture = LivePicture(model, **opts)
        self.overlay = overlay            # a callable returning an Overlay (or None)
        self.html = w.HTML()
        self.html.add_class("nbbp-graph")
        self.status = w.HTML()
        self.status.add_class("nbbp-status")
        self.frames = 0
        self._scheduled = False
        self._settle: asyncio.TimerHandle | None = None
        self._cheap_tips = all(n.size <= 4 for n in self.picture.scene.nodes)
        if draw:
            self.draw()

    def draw(self, tips: bool = True) -> None:
        """Draw a frame now (never raises: a failure goes to the status line)."""
        try:
            ov = self.overlay() if self.overlay is not None else None
            self.html.value = self.picture.svg(ov, tips=tips or self._cheap_tips)
            self.frames += 1
        except Exception as exc:     # a widget callback must not raise
            self.error(exc, "the picture could not be drawn: ")

    def refresh(self) -> None:
        """Draw soon: once per turn of the event loop, with the newest values."""
        loop = _running_loop()
        if loop is None:
            self.draw()
            return
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        self.draw(tips=False)
        if not self._cheap_tips:
            if self._settle is not None:
                self._settle.cancel()
            loop = _running_loop()
            self._settle = loop.call_later(SETTLE_SECONDS, self.draw) if loop else None

    def error(self, exc: BaseException, what: str = "") -> None:
        self.status.value = _error_html(exc, what)

    def ok(self) -> None:
        if self.status.value:
            self.status.value = ""


def sliders(model: Any, *names: str | Mapping[str, Sequence[float]],
            opts: Mapping[str, Any] | None = None, **ranges: Sequence[float]) -> Explorer:
    """Sliders for a model's params and inputs above its live picture.

    Parameters
    ----------
    model
        The :class:`~nbbp.Model`.
    *names
        Leaves to put sliders on (default: every scalar param and input, and an element
        picker for tensor params); a dict ``{"hidden/W1": (-1, 1)}`` gives scoped names
        ranges.
    opts
        Picture options (docs/bpgraph.md); default: those ``%%bpgraph`` used.
    **ranges
        ``x=(-3, 3, 0.1)``: a slider's (min, max[, step]); default: around the value.

    Returns
    -------
    Explorer
        Displays as the widgets; ``.slider(name).value = v`` moves a slider from code.

    Examples
    --------
    >>> import nbbp
    >>> m = nbbp.build("x = input(2.0)\\nw = param(-3.0)\\nf = tanh(x * w)")
    >>> ex = sliders(m, w=(-4, 4, 0.5))
    >>> list(ex.sliders), ex.slider("w").step
    (['w'], 0.5)
    """
    from ._explorer import Explorer
    plain = [n for n in names if isinstance(n, str)]
    for n in names:
        if isinstance(n, Mapping):
            ranges = {**n, **ranges}
        elif not isinstance(n, str):
            raise NbbpError(f"sliders(...): names are strings, got {type(n).__name__} {n!r}")
    return Explorer(model, plain, ranges, opts)


def trainer(model: Any, optimizer: Any = "sgd", lr: float | None = None, steps: int = 100,
            every: int = 10, batch_size: int | None = None,
            feed: Mapping[Any, Any] | None = None, seed: int = 0,
            sliders: Explorer | bool | Sequence[str] | None = None,
            opts: Mapping[str, Any] | None = None) -> Trainer:
    """A training panel: optimizer and learning-rate pickers, Step / Train N / Pause /
    Reset, a progress bar, the loss curve, the graph redrawn every ``every`` steps and,
    for a classifier on 2-D inputs, its decision regions.

    Parameters
    ----------
    model
        A :class:`~nbbp.Model` whose output is a scalar loss.
    optimizer, lr
        The starting choice: a name (``"sgd"``, ``"momentum"``, ``"adam"``,
        ``"rmsprop"``, ``"adagrad"``) and a learning rate, or an :mod:`nbbp.optim`
        optimizer.
    steps
        N, the steps of one Train N.
    every
        Redraw the graph (and the decision regions) every this many steps.
    batch_size, feed, seed
        As in :meth:`~nbbp.Model.fit`.
    sliders
        Also show sliders: True for the defaults, names, or an :class:`Explorer`.

    Examples
    --------
    >>> import nbbp
    >>> m = nbbp.build("w = param(0.0)\\nloss = (w - 3.0)**2")
    >>> t = trainer(m, "sgd", lr=0.1)
    >>> t.train(50); round(m["w"].value, 4), len(t.losses)
    (3.0, 50)
    """
    from ._explorer import Explorer
    from ._trainer import Trainer
    ex = sliders if isinstance(sliders, Explorer) else (
        Explorer(model, [] if sliders is True else list(sliders), opts=opts)
        if sliders else None)
    return Trainer(model, optimizer, lr, steps, every, batch_size, feed, seed, ex, opts)


def for_magic(model: Any, slider_words: Sequence[str] | None, train: bool) -> Any:
    """What ``%%bpgraph NAME --sliders … --train`` shows."""
    from ._explorer import Explorer
    from ._trainer import Trainer
    ex = None
    if slider_words is not None:
        names, ranges = parse_sliders(slider_words)
        ex = Explorer(model, names, ranges)
    if train:
        return Trainer(model, explorer=ex)
    return ex


def __getattr__(name: str) -> Any:
    """``nbbp.widgets.Explorer`` and ``nbbp.widgets.Trainer``, imported when asked for."""
    if name == "Explorer":
        from ._explorer import Explorer
        return Explorer
    if name == "Trainer":
        from ._trainer import Trainer
        return Trainer
    raise AttributeError(f"module 'nbbp.widgets' has no attribute {name!r}")
