"""dtypes and static shapes for :mod:`nbbp.tf1`.

Every tensor has TensorFlow 1's dtype (``tf.constant(2.0)`` is float32,
``tf.constant(2)`` int32) and is computed in it on nbbp's core: float32 in float32,
float64 in float64 (:func:`carrier`). A static shape is a tuple of sizes with
``None`` for an unknown size, or ``None`` for an unknown rank; TF prints them as
``(?, 2)`` and ``<unknown>``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..core import graph as _nbbp_graph
from ..core.isa import STORAGE_OF
from ..errors import suggest
from .errors import DTypeError, NotSupportedError, UsageError

# ---------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------


class DType:
    """A TensorFlow dtype: ``tf.float32``, ``tf.int32``, ``tf.bool``, …"""

    __slots__ = ("name", "_tf_name", "kind")

    def __init__(self, name: str, tf_name: str, kind: str) -> None:
        self.name, self._tf_name, self.kind = name, tf_name, kind

    @property
    def as_numpy_dtype(self) -> type:
        return object if self.kind == "s" else np.dtype(self.name).type

    @property
    def base_dtype(self) -> DType:
        return self

    @property
    def is_floating(self) -> bool:
        return self.kind == "f"

    @property
    def is_integer(self) -> bool:
        return self.kind == "i"

    @property
    def is_bool(self) -> bool:
        return self.kind == "b"

    def __repr__(self) -> str:
        return f"tf.{self.name}"

    def __str__(self) -> str:
        return f"<dtype: '{self.name}'>"      # print(tf.float32), as TF 1 prints it


float32 = DType("float32", "float", "f")
float64 = DType("float64", "double", "f")
int32 = DType("int32", "int32", "i")
int64 = DType("int64", "int64", "i")
bool_ = DType("bool", "bool", "b")
int16 = DType("int16", "int16", "i")
int8 = DType("int8", "int8", "i")
uint8 = DType("uint8", "uint8", "i")
string = DType("string", "string", "s")     # constants (and identity) only
_DTYPES = {d.name: d for d in (float32, float64, int32, int64, int16, int8, uint8, bool_,
                               string)}
_DTYPES.update(float=float32, double=float64)
FLOATS = (float32, float64)


def as_dtype(dtype: Any, what: str = "dtype") -> DType:
    """``tf.float32``, ``"float32"``, ``np.float32`` or ``float`` → a :class:`DType`."""
    if isinstance(dtype, DType):
        return dtype
    if dtype is float:
        return float32
    if dtype is int:
        return int32
    if dtype is bool:
        return bool_
    if dtype is bytes or dtype is str:
        return string
    if isinstance(dtype, str):
        name = dtype
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = None
    if name in _DTYPES:
        return _DTYPES[name]
    raise UsageError(f"{what}={dtype!r} is not supported; nbbp.tf1 computes in "
                     + suggest(str(name or dtype), _DTYPES, "dtype"))


def carrier(dtype: DType) -> str:
    """The nbbp dtype a TF dtype is computed in: itself — nbbp's core stores every dtype
    nbbp.tf1 has (float32, float64, the integers, bool), so no value is computed in
    another dtype than TF 1 would."""
    if dtype.kind == "s":
        raise NotSupportedError("tf.string tensors are not computed by nbbp.tf1: it has "
                                "string constants and tf.identity (fetched as bytes), no "
                                "string ops")
    if dtype.name not in STORAGE_OF:
        raise UsageError(f"{dtype.name} is not supported; nbbp.tf1 computes in "
                         f"{', '.join(sorted(STORAGE_OF))}")
    return dtype.name


def infer_dtype(value: Any) -> DType:
    """TF 1's dtype of a Python or NumPy value: Python floats float32, Python ints
    int32 (int64 if too large), bools bool, NumPy arrays and scalars their own."""
    if isinstance(value, (str, bytes)) or (isinstance(value, (np.ndarray, np.generic))
                                           and value.dtype.kind in "SU"):
        return string
    if isinstance(value, (np.ndarray, np.generic)):
        return as_dtype(value.dtype, "value")
    flat = list(np.ravel(np.array(value, dtype=object))) if not isinstance(
        value, (bool, numbers.Number)) else [value]
    if flat and all(isinstance(v, (str, bytes)) for v in flat):
        return string
    if flat and all(isinstance(v, (bool, np.bool_)) for v in flat):
        return bool_
    if any(isinstance(v, (float, np.floating)) for v in flat):
        return float32
    if flat and all(isinstance(v, (int, np.integer)) for v in flat):
        big = any(not -2**31 <= int(v) < 2**31 for v in flat)
        return int64 if big else int32
    return float32


def check_convertible(value: Any, dtype: DType) -> None:
    """TF's ``_AssertCompatible``: a Python value given for ``dtype`` must be of its
    kind (ints for integer dtypes, numbers for floating ones, bools for bool).
    NumPy arrays are cast, as TF casts them."""
    if isinstance(value, (np.ndarray, np.generic)):
        return
    flat = [value] if isinstance(value, (bool, numbers.Number)) else list(
        np.ravel(np.array(value, dtype=object)))
    for v in flat:
        if dtype.kind == "s":
            ok = isinstance(v, (str, bytes))
        elif dtype.is_bool:
            ok = isinstance(v, (bool, np.bool_))
        elif dtype.is_integer:
            ok = isinstance(v, (int, np.integer))
        else:
            ok = isinstance(v, (int, float, np.integer, np.floating))
        if not ok:
            raise DTypeError(f"Expected {dtype.name}, got {v!r} of type "
                             f"'{type(v).__name__}' instead.")


def np_value(value: Any, dtype: DType) -> np.ndarray:
    """``value`` as a NumPy array of ``dtype``; strings as an object array of bytes
    (``str`` encoded as UTF-8), as TF 1 holds them."""
    if dtype.kind == "s":
        arr = np.array(value, dtype=object)
        return np.vectorize(_as_bytes, otypes=[object])(arr) if arr.size else arr
    return np.array(value, dtype=dtype.name)


def _as_bytes(v: Any) -> bytes:
    return v.encode("utf-8") if isinstance(v, str) else bytes(v)


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
