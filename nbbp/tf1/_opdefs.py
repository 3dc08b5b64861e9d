"""TensorFlow 1's op types: what each computes, as nbbp builder calls, and the static
shapes that follow from it.

An op type's meaning is its ``lower`` function in :data:`OPDEFS` (registered with
:func:`defop` by :mod:`._ops`), written with nbbp's op builders; the same function
gives the static shape of a new tensor (run on shape-only leaves, see
:func:`infer_shape`), so shape rules live in one place, nbbp's op table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core import graph as _nbbp_graph
from ..errors import NbbpError
from ._types import carrier, fully_known
from .errors import ShapeError

NAME_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")     # one part of a TF op name

# ---------------------------------------------------------------------------
# op definitions: the meaning of each op type, as nbbp builder calls
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OpDef:
    """One TensorFlow op type.

    ``lower(*nodes, **attrs)`` builds its value from nbbp nodes (None for the
    leaves and the stateful ops the session handles itself); ``grad_args`` lists
    the input positions gradients flow through (None: all of them).

    dtypes, as TF 1's op registry states them: the inputs at ``same`` (None: all)
    share one dtype ``T``, which must be of a kind in ``allowed`` (``f`` floating,
    ``i`` integer, ``b`` bool); ``other`` gives the dtype required of each other
    input (None: any); the output's dtype is ``out(T, attrs)`` (None: ``T``).

    ``check(op, *input_values)``, if given, runs after each run that computes the op,
    before its results are returned or any variable changes: a value TF 1's kernel
    refuses (a label out of range) raises there, rather than giving another number.
    """

    type: str
    lower: Callable[..., Any] | None
    grad_args: tuple[int, ...] | None = None
    same: tuple[int, ...] | None = None
    allowed: str = "fib"
    other: tuple[Any, ...] = ()
    out: Any = None
    check: Callable[..., None] | None = None


OPDEFS: dict[str, OpDef] = {}


def defop(type: str, lower: Callable[..., Any] | None, grad_args: tuple[int, ...] | None = None,
          same: tuple[int, ...] | None = None, allowed: str = "fib", other: tuple = (),
          out: Any = None, check: Callable[..., None] | None = None) -> OpDef:
    if type in OPDEFS:
        raise ValueError(f"op type {type!r} defined twice")
    OPDEFS[type] = d = OpDef(type, lower, grad_args, same, allowed, other, out, check)
    return d


# Op types the session runs itself rather than through a ``lower`` function.
LEAF_TYPES = ("Const", "Placeholder", "VariableV2", "RandomStandardNormal", "TruncatedNormal")
ASSIGN_TYPES = ("Assign", "AssignAdd", "AssignSub")
for _t in LEAF_TYPES + ASSIGN_TYPES + ("NoOp", "SymbolicGradient", "Hessian",
                                       "ApplyGradients"):
    defop(_t, None)
OPDEFS["Const"] = OpDef("Const", None, ())
defop("RandomUniform", None, grad_args=())       # the core's counter-based random_uniform
OPDEFS["Placeholder"] = OpDef("Placeholder", None, ())


_SENTINELS = (1_000_003, 1_000_033)   # stand-ins for unknown sizes (two primes)


def infer_shape(opdef: OpDef, name: str, inputs: Sequence[Any], attrs: dict) -> tuple | None:
    """The static shape of ``opdef`` applied to ``inputs``: its ``lower`` run on
    shape-only nbbp leaves. Unknown sizes are tried as two large primes: sizes that
    come out the same both times are known. An error that some unknown size could
    avoid (a reshape needing an even batch) is left to the run, where the feed
    decides; one that no size avoids (a filter for 2 channels on a 3-channel image,
    whatever the batch) is raised now, as TF 1 raises it, with ``?`` for the size."""
    shapes = [t._shape for t in inputs]
    if any(s is None for s in shapes):
        return None
    if all(fully_known(s) for s in shapes):
        try:
            return _lower_shape(opdef, inputs, shapes, attrs)
        except NbbpError as exc:
            raise ShapeError(f"{opdef.type} {name!r}: {exc.message}") from None
    outs, errs = [], []
    for s in _SENTINELS:
        try:
            outs.append(_lower_shape(opdef, inputs, _filled(shapes, s), attrs))
        except NbbpError as exc:
            errs.append(exc.message.replace(str(s), "?"))
    if errs:
        # other sizes the feed may have: divisible ones, 1, and the sizes in sight
        known = sorted({d for sh in shapes for d in sh if d is not None})
        for s in [720_720, 1, *known]:
            try:
                _lower_shape(opdef, inputs, _filled(shapes, s), attrs)
                return None
            except NbbpError:
                pass
        raise ShapeError(f"{opdef.type} {name!r}: {errs[0]}")
    a, b = outs
    if len(a) != len(b):
        return None
    return tuple(x if x == y and x not in _SENTINELS else None for x, y in zip(a, b))


def _filled(shapes: list[tuple], size: int) -> list[tuple]:
    return [tuple(size if d is None else d for d in sh) for sh in shapes]


def _lower_shape(opdef: OpDef, inputs: Sequence[Any], shapes: list[tuple], attrs: dict) -> tuple:
    g = _nbbp_graph.Graph("shape")
    leaves: dict[int, Any] = {}
    for t, s in zip(inputs, shapes):
        if id(t) not in leaves:
            const = t.op.type == "Const" and t.op.attrs["value"].shape == s
            leaves[id(t)] = g.add_node("const" if const else "input", shape=s,
                                       name=nbbp_name(t.op.name), dtype=carrier(t.dtype),
                                       value=t.op.attrs["value"] if const else None)
    out = opdef.lower(*(leaves[id(t)] for t in inputs), **attrs)
    return out.shape


def nbbp_name(tf_name: str) -> str:
    """A TF op name as an nbbp node name (they allow the same characters)."""
    return tf_name if all(NAME_PART.match(p) for p in tf_name.split("/")) else "op"
