"""The dtypes a node can hold, and what each one is.

Every node has a dtype, named as NumPy names it. Floating nodes carry gradients;
integer and boolean nodes carry none (a path through them has no gradient).
``float64`` is the default, so the tutorials' exact numbers stay.

>>> dtype_of("float32"), is_float("int32"), is_int("uint8")
('float32', False, True)
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import BuildError, suggest

FLOATS = ("float64", "float32")
INTS = ("int64", "int32", "int16", "int8", "uint8")
DTYPES = FLOATS + INTS + ("bool",)
DEFAULT = "float64"


def dtype_of(dtype: object) -> str:
    """The canonical name of ``dtype`` (a name, a NumPy dtype or type), or a
    :class:`BuildError` listing the dtypes nbbp has."""
    try:
        name = np.dtype(dtype).name
    except (TypeError, ValueError):       # not a dtype at all (e.g. a list)
        name = str(dtype)
    if name not in DTYPES:
        raise BuildError(f"unknown dtype {dtype!r}; " + suggest(str(dtype), DTYPES, "dtype"))
    return name


def float_dtype(dtype: object, what: str = "dtype") -> str:
    """The canonical name of a floating ``dtype`` (None: the default), or a one-line
    :class:`BuildError` naming the dtypes accepted (``what`` says where it was given).

    >>> float_dtype(np.float32), float_dtype(None)
    ('float32', 'float64')
    """
    if dtype is None:
        return DEFAULT
    accepted = ", ".join(FLOATS)
    try:
        name = np.dtype(dtype).name
    except (TypeError, ValueError):       # not a dtype at all (e.g. a list)
        name = str(dtype)
    if name not in DTYPES:
        raise BuildError(f"{what}: unknown dtype {dtype!r}; "
                         + suggest(str(dtype), FLOATS, "dtype"))
    if name not in FLOATS:
        raise BuildError(f"{what}: dtype {name!r} is not accepted; values are floating "
                         f"point, one of: {accepted}")
    return name


@functools.cache
def promote(*dtypes: str) -> str:
    """The dtype that mixing ``dtypes`` gives, as NumPy promotes them (float32 with
    float64 is float64). Cached: every op a graph builds asks, with a handful of
    distinct dtype tuples (NumPy's answer costs ~20 µs, a sixth of building a node)."""
    return np.result_type(*dtypes).name


def is_float(dtype: str) -> bool:
    return dtype in FLOATS


def is_int(dtype: str) -> bool:
    return dtype in INTS
