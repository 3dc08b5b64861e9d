"""What training remembers about a model, kept here and not on the model.

A side table (a :class:`weakref.WeakKeyDictionary` keyed by the model, like the
renderer's table of views) holds each model's :class:`History`, its last training
loop (so a second ``fit`` with the same optimizer goes on with its state) and the
programs ``predict`` compiled for new input shapes. The model's ``history``
property asks :func:`history`; nothing in training sets attributes on a model.
Nothing stored here refers back to the model, so the entry goes when the model does.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any


@dataclass
class History:
    """The loss at every training step (across ``fit`` calls) and what stopped it."""

    loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def steps(self) -> int:
        return len(self.loss)

    def __repr__(self) -> str:
        if not self.loss:
            return "History(no steps yet)"
        tail = "".join(f", {k} {v[-1][1]:.4g}" for k, v in self.metrics.items() if v)
        tail += ", interrupted" if self.interrupted else ""
        return f"History(steps={self.steps}, loss {self.loss[0]:.6g} → {self.loss[-1]:.6g}{tail})"


@dataclass
class Training:
    """One model's training state."""

    history: History = field(default_factory=History)
    loop: Any = None                  # the last TrainLoop ``fit`` ran (its optimizer state)
    programs: dict[tuple, Any] = field(default_factory=dict)   # predict's, by target and shapes


_TABLE: weakref.WeakKeyDictionary[Any, Training] = weakref.WeakKeyDictionary()


def state(model: Any) -> Training:
    """The model's training state (made empty on first use)."""
    entry = _TABLE.get(model)
    if entry is None:
        entry = _TABLE[model] = Training()
    return entry


def history(model: Any) -> History:
    """The loss at every step of every ``fit`` of ``model`` so far."""
    return state(model).history


def reset(model: Any) -> None:
    """Forget the model's history and last loop (its compiled predict programs stay)."""
    entry = state(model)
    entry.history, entry.loop = History(), None
