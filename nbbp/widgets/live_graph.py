"""Live widgets: sliders over a live picture, step-through backprop, a training panel.

``sliders(m)`` (``m.sliders()``, ``%%bpgraph NAME --sliders``) puts a slider on every
scalar param and input — and an element picker with a slider for tensor params —
above the model's picture. Moving one recomputes the forward and backward passes and
refills every value, gradient, edge label and edge colour in place: the graph is laid
out once (:mod:`nbbp.view.live`), so nothing jumps. Below the sliders: a step-through of
the forward pass node by node and the backward pass edge by edge, a finite-difference
gradient check and the before/after view of one optimizer step (:mod:`nbbp.view.explain`).

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
>>> ex = nbbp.widgets.sliders(m)
>>> ex.slider("x").value = 1.0          # as if dragged
>>> m.value, m.grads["x"]
(5.0, 4.0)
>>> '>5<' in ex.graph.html.value
True
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np

from ..errors import NbbpError
from ..view.live import LivePicture

OPTIMIZER_NAMES = ("sgd", "momentum", "adam", "rmsprop", "adagrad")
LEARNING_RATES = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
CHUNK_SECONDS = 0.04       # compiled training between two looks at the event loop
SETTLE_SECONDS = 0.3       # redraw tensor tooltips this long after the last change
HINT = ("drag a slider: every value, gradient and edge updates in place · ▶ steps "
        "through the forward pass node by node, then the backward pass edge by edge")


def ipw():
    try:
        import ipywidgets
    except ImportError:
        raise NbbpError("the live widgets need ipywidgets: pip install 'nbbp[notebook]' "
                        "(or pip install ipywidgets)") from None
    return ipywidgets


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread (the kernel's), or None (scripts, tests)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def css_class(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", lambda m: "-" if m.group().isascii()
                  else f"-u{ord(m.group()):x}-", name)


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
    pattern = re.compile(r"\s*([^\W\d][\w/.\-]*)(?:\s*=\s*\(([^)]*)\))?\s*,?")
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
        w = ipw()
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
        loop = running_loop()
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
            loop = running_loop()
            self._settle = loop.call_later(SETTLE_SECONDS, self.draw) if loop else None

    def error(self, exc: BaseException, what: str = "") -> None:
        self.status.value = _error_html(exc, what)

    def ok(self) -> None:
        if self.status.value:
            self.status.value = ""
