"""Numbers as the picture shows them: fixed formatting, so two runs give the same text."""

from __future__ import annotations

import functools
import math
import re

import numpy as np

from ..core.ops import OPS

TOOLTIP_ELEMENTS = 100      # tensors up to this size show every value in the tooltip
SMALL = 6                   # tensors up to this size show their elements in the picture


_EXP = re.compile(r"e([+-])0*(\d)")
_NEG_ZERO = re.compile(r"(?<![\w.])-0(?![\w.])")


def _tidy(s: str) -> str:
    """``1.5e+04`` → ``1.5e4``, ``-0`` → ``0``."""
    if "e" in s:
        s = _EXP.sub(lambda m: "e" + m.group(1).replace("+", "") + m.group(2), s)
    return _NEG_ZERO.sub("0", s) if "-0" in s else s


def fmt(v: float, precision: int = 4) -> str:
    """A number at ``precision`` significant digits: ``6``, ``0.8814``, ``1.235e4``."""
    return _tidy(format(float(v), f".{precision}g"))


def fmt_row(values: list[float], precision: int) -> str:
    """Numbers joined by spaces, formatted like :func:`fmt` (in one pass)."""
    spec = f".{precision}g"
    return _tidy(" ".join([format(x, spec) for x in values]))


def norm(v: float | np.ndarray) -> float:
    """|v| for a scalar, the L2 norm for a tensor."""
    if isinstance(v, float):
        return abs(v)
    a = np.asarray(v, dtype=float).ravel()
    return float(math.sqrt(float(np.dot(a, a))))


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)


def summary(v: float | np.ndarray, precision: int = 4) -> str:
    """Scalars in full at ``precision``; tensors up to :data:`SMALL` elements inline;
    others mean ± sd."""
    if isinstance(v, float) or np.ndim(v) == 0:
        return fmt(float(v), precision)
    a = np.asarray(v, dtype=float)
    if a.size <= SMALL:
        return elements(a, precision)
    return f"mean {fmt(a.mean(), precision)} ± {fmt(a.std(), precision)}"


def elements(v: np.ndarray, precision: int = 4) -> str:
    """A small tensor's elements in row-major order: ``[0.1, -2, 3]``."""
    return "[" + ", ".join(fmt(x, precision) for x in np.asarray(v, float).ravel().tolist()) + "]"


def caption_precision(precision: int) -> int:
    return min(precision, 3)


def caption(v: np.ndarray, precision: int = 4) -> str:
    """The line under a tensor's picture: its mean and range, ``mean 0.31 · -0.2 … 1``
    (at most 3 significant digits: the picture carries the detail)."""
    a = np.asarray(v, dtype=float)
    q = caption_precision(precision)
    ok = a[np.isfinite(a)]
    if ok.size == 0:
        return "no finite elements"
    return (f"mean {fmt(ok.mean(), q)} · {fmt(ok.min(), q)} … {fmt(ok.max(), q)}"
            + ("" if ok.size == a.size else f" ({a.size - ok.size} not finite)"))


def full(v: float | np.ndarray, precision: int = 4, values: bool = True) -> str:
    """Tooltip text: a scalar to the last digit; a tensor's shape, range and norm, then
    (with ``values``) its values in rows of the last axis, past
    :data:`TOOLTIP_ELEMENTS` only the first and last few."""
    if isinstance(v, float) or np.ndim(v) == 0:
        return repr(float(v))
    a = np.asarray(v, dtype=float)
    spec = f".{precision + 2}g"
    head = (f"shape {a.shape}, min {fmt(a.min(), precision)}, max {fmt(a.max(), precision)}, "
            f"norm {fmt(norm(a), precision)}")
    if not values:
        return _tidy(head)
    rows = a.reshape(-1, a.shape[-1]) if a.ndim else a.reshape(1, 1)
    small = a.size <= TOOLTIP_ELEMENTS
    picked = range(len(rows)) if small or len(rows) <= 6 else \
        [0, 1, 2, None, len(rows) - 3, len(rows) - 2, len(rows) - 1]
    lines = [head]
    for i in picked:
        if i is None:
            lines.append("…")
            continue
        r = rows[i].tolist()
        if not small and len(r) > 8:
            r = r[:6] + ["…"] + r[-2:]
        lines.append(" ".join([x if x == "…" else format(x, spec) for x in r]))
    return _tidy("\n".join(lines))


@functools.lru_cache(maxsize=1024)
def formula(op: str, pos: int) -> str:
    """The op table's display text of ∂op/∂(input ``pos``) (cached)."""
    return OPS[op].formula(pos)
