"""``tf.train.exponential_decay``: a learning rate that decays with ``global_step``.

The result is a scalar tensor of ``global_step``; pass it as an optimizer's
``learning_rate`` and ``minimize(loss, global_step=step)``: each training run
computes the rate in the compiled program from the step before it, then adds 1 to
the step — as in TF 1.
"""

from __future__ import annotations

from typing import Any

from ._core import Tensor, convert_to_tensor, get_default_graph
from ._ops import pow
from .errors import UsageError

_SHIFT = 1.5 * 2.0 ** 52    # x + _SHIFT lies in [2⁵², 2⁵³), where float64s are the integers


def _floor_of_ratio(step: Tensor, decay_steps: float) -> Tensor:
    """floor(step / decay_steps) for a whole-number ``step`` ≥ 0 (a step counter).

    nbbp's core has no floor op; with step = q·d + r (0 ≤ r < d),
    step/d − ½ + ½/d lies strictly inside (q − ½, q + ½), and float64's
    round-to-nearest (adding and removing 1.5·2⁵²) gives q exactly.
    """
    x = step / decay_steps - 0.5 + 0.5 / decay_steps
    return (x + _SHIFT) - _SHIFT


def exponential_decay(learning_rate: Any, global_step: Any, decay_steps: Any, decay_rate: Any,
                      staircase: bool = False, name: str | None = None) -> Tensor:
    """``learning_rate · decay_rate ** (global_step / decay_steps)``; with ``staircase``
    the exponent is ``floor(global_step / decay_steps)`` (the rate drops every
    ``decay_steps`` steps)."""
    if global_step is None:
        raise UsageError("global_step is required for exponential_decay.")
    if isinstance(decay_steps, Tensor) or float(decay_steps) <= 0:
        raise UsageError(f"exponential_decay: decay_steps must be a positive number, got "
                         f"{decay_steps!r}")
    with get_default_graph().name_scope(name or "ExponentialDecay"):
        step = convert_to_tensor(global_step)
        p = _floor_of_ratio(step, float(decay_steps)) if staircase else \
            step / float(decay_steps)
        return convert_to_tensor(learning_rate) * pow(decay_rate, p)


__all__ = ["exponential_decay"]
