"""Live widgets: sliders over a live picture, step-through backprop, a training panel.

``sliders(m)`` (``m.sliders()``, ``%%bpgraph NAME --sliders``) puts a slider on every
scalar param and input above the model's live picture (:class:`Explorer`);
``trainer(m)`` adds a training panel (:class:`Trainer`). ipywidgets is imported when a
widget is first built, never at import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import NbbpError
from .explorer import Explorer
from .live_graph import CHUNK_SECONDS, LiveGraph, parse_sliders, slider_range
from .training_panel import Trainer

__all__ = ["CHUNK_SECONDS", "Explorer", "LiveGraph", "Trainer", "for_magic", "parse_sliders",
           "slider_range", "sliders", "trainer"]


def sliders(model: Any, *names: str | Mapping[str, Sequence[float]],
            opts: Mapping[str, Any] | None = None, **ranges: Sequence[float]) -> Explorer:
    """Sliders for a model's params and inputs above its live picture.

    Parameters
    ----------
    model
        The :class:`~nbbp.Model`.
    *names
        Leaves to put sliders on (default: every floating scalar param and input, and an
        element picker for tensor params; integer and boolean leaves get none); a dict
        ``{"hidden/W1": (-1, 1)}`` gives scoped names ranges.
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
    ex = sliders if isinstance(sliders, Explorer) else (
        Explorer(model, [] if sliders is True else list(sliders), opts=opts)
        if sliders else None)
    return Trainer(model, optimizer, lr, steps, every, batch_size, feed, seed, ex, opts)


def for_magic(model: Any, slider_words: Sequence[str] | None, train: bool) -> Any:
    """What ``%%bpgraph NAME --sliders … --train`` shows."""
    ex = None
    if slider_words is not None:
        names, ranges = parse_sliders(slider_words)
        ex = Explorer(model, names, ranges)
    if train:
        return Trainer(model, explorer=ex)
    return ex
