"""``tf.train.exponential_decay``: a learning rate that decays with ``global_step``.

The result is a scalar tensor of ``global_step``; pass it as an optimizer's
``learning_rate`` and ``minimize(loss, global_step=step)``: each training run
computes the rate in the compiled program from the step before it, then adds 1 to
the step — as in TF 1.
"""

from __future__ import annotations

from typing import Any

from ._core import Tensor, convert_to_tensor, get_default_graph
from ._ops import cast, floordiv, pow
from .errors import UsageError


def exponential_decay(learning_rate: Any, global_step: Any, decay_steps: Any, decay_rate: Any,
                      staircase: bool = False, name: str | None = None) -> Tensor:
    """``learning_rate · decay_rate ** (global_step / decay_steps)``; with ``staircase``
    the exponent is ``floor(global_step / decay_steps)`` (the rate drops every
    ``decay_steps`` steps). As in TF 1.15, the step and the constants are cast to the
    learning rate's dtype first (float32 for a Python number)."""
    if global_step is None:
        raise UsageError("global_step is required for exponential_decay.")
    if isinstance(decay_steps, Tensor) or float(decay_steps) <= 0:
        raise UsageError(f"exponential_decay: decay_steps must be a positive number, got "
                         f"{decay_steps!r}")
    with get_default_graph().name_scope(name or "ExponentialDecay"):
        lr = convert_to_tensor(learning_rate)
        step = cast(global_step, lr.dtype)
        steps = cast(float(decay_steps), lr.dtype)
        p = floordiv(step, steps) if staircase else step / steps
        return lr * pow(cast(float(decay_rate), lr.dtype), p)


__all__ = ["exponential_decay"]
