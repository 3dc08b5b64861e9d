"""The dtypes a node can hold, and what each one is.

Every node has a dtype, named as NumPy names it. Floating nodes carry gradients;
integer and boolean nodes carry none (a path through them has no gradient).
``float64`` is the default, so the tutorials' exact numbers stay.

>>> dtype_of("float32"), is_float("int32"), is_int("uint8")
('float32', False, True)
"""

from __future__ import annotations

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
    except TypeError:
        name = str(dtype)
    if name not in DTYPES:
        raise BuildError(f"unknown dtype {dtype!r}; " + suggest(str(dtype), DTYPES, "dtype"))
    return name


def is_float(dtype: str) -> bool:
    return dtype in FLOATS


def is_int(dtype: str) -> bool:
    return dtype in INTS
