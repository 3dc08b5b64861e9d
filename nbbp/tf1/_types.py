"""dtypes and static shapes for :mod:`nbbp.tf1`.

dtypes are accepted and shown in messages; every value is computed in float64.
A static shape is a tuple of sizes with ``None`` for an unknown size, or ``None``
for an unknown rank; TF prints them as ``(?, 2)`` and ``<unknown>``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import graph as _nbbp_graph
from ..errors import suggest
from .errors import UsageError

# ---------------------------------------------------------------------------
# dtypes: accepted, recorded for messages; every value is computed in float64
# ---------------------------------------------------------------------------


class DType:
    """A TensorFlow dtype. nbbp computes every tensor in float64 whatever the dtype."""

    __slots__ = ("name", "_tf_name", "is_integer")

    def __init__(self, name: str, tf_name: str, is_integer: bool = False) -> None:
        self.name, self._tf_name, self.is_integer = name, tf_name, is_integer

    @property
    def as_numpy_dtype(self) -> type:
        return np.float64

    @property
    def base_dtype(self) -> DType:
        return self

    def __repr__(self) -> str:
        return f"tf.{self.name}"


float16 = DType("float16", "half")
float32 = DType("float32", "float")
float64 = DType("float64", "double")
int32 = DType("int32", "int32", True)
int64 = DType("int64", "int64", True)
bool_ = DType("bool", "bool")
_DTYPES = {d.name: d for d in (float16, float32, float64, int32, int64, bool_)}
_DTYPES.update(half=float16, float=float32, double=float64)


def as_dtype(dtype: Any, what: str = "dtype") -> DType:
    """``tf.float32``, ``"float32"``, ``np.float32`` or ``float`` → a :class:`DType`."""
    if dtype is None:
        return float64
    if isinstance(dtype, DType):
        return dtype
    if dtype is float:
        return float32
    if dtype is int:
        return int32
    if dtype is bool:
        return bool_
    if isinstance(dtype, str):
        name = dtype
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = None
    if name in _DTYPES:
        return _DTYPES[name]
    raise UsageError(f"{what}={dtype!r} is not supported; nbbp.tf1 accepts "
                     + suggest(str(name or dtype), _DTYPES, "dtype")
                     + " (values are computed in float64 whatever the dtype)")


# ---------------------------------------------------------------------------
# static shapes: tuples of ints and None (unknown size), or None (unknown rank)
# ---------------------------------------------------------------------------


class TensorShape(tuple):
    """A static shape: a tuple whose unknown sizes are ``None``; ``TensorShape(None)``
    has unknown rank. Compares equal to the plain tuple."""

    def __new__(cls, dims: Any) -> TensorShape:
        self = super().__new__(cls, () if dims is None else tuple(dims))
        self.rank_known = dims is not None
        return self

    @property
    def ndims(self) -> int | None:
        return len(self) if self.rank_known else None

    def as_list(self) -> list[int | None]:
        if not self.rank_known:
            raise UsageError("as_list() is not defined on an unknown TensorShape")
        return list(self)

    def is_fully_defined(self) -> bool:
        return self.rank_known and None not in self

    def __repr__(self) -> str:
        return shape_str(self.dims)

    @property
    def dims(self) -> tuple | None:
        return tuple(self) if self.rank_known else None


def shape_str(shape: tuple | None) -> str:
    """TF's way of showing a shape: ``(?, 2)``, ``()``, ``<unknown>``."""
    if shape is None:
        return "<unknown>"
    dims = ["?" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def shape_list_str(shape: tuple | None) -> str:
    """TF's other way, used in op error messages: ``[?,2]``."""
    return "<unknown>" if shape is None else "[" + ",".join(
        "?" if d is None else str(d) for d in shape) + "]"


def as_shape(shape: Any, what: str) -> tuple | None:
    """A user's shape argument (list, tuple, int, None, TensorShape) → static shape."""
    if shape is None:
        return None
    if isinstance(shape, TensorShape):
        return shape.dims
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        dims = tuple(None if d is None or d == -1 else int(d) for d in shape)
    except (TypeError, ValueError):
        raise UsageError(f"{what}: a shape is a list of sizes (ints, or None for unknown), "
                         f"got {shape!r}") from None
    if any(d is not None and d < 0 for d in dims):
        raise UsageError(f"{what}: sizes cannot be negative, got {list(shape)}")
    if len(dims) > _nbbp_graph.MAX_NDIM:
        raise UsageError(f"{what}: nbbp supports up to {_nbbp_graph.MAX_NDIM} dimensions, "
                         f"got shape {list(shape)}")
    return dims


def compatible(static: tuple | None, concrete: tuple[int, ...]) -> bool:
    """Whether a concrete shape fits a static one (``None`` fits anything)."""
    if static is None:
        return True
    return len(static) == len(concrete) and all(
        s is None or s == c for s, c in zip(static, concrete))


def fully_known(shape: tuple | None) -> bool:
    return shape is not None and None not in shape
