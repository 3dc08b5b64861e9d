"""What both importers share: leaves named after the framework's names, composites
written with nbbp's builders, and the one error that lists every unsupported op.

A captured program is lowered op by op into a fresh :class:`~nbbp.core.graph.Graph`.
An op nbbp lacks does not stop the walk: it is recorded with where it occurs in the
user's code, its result is marked missing, and at the end every missing op is named
in one :class:`~nbbp.errors.NbbpError` — the graph is dropped, nothing half-built
reaches the user. Values that depend on no float leaf (integer labels, ``arange``,
one-hot masks) are constants: the framework itself evaluates them, so the picture
shows the differentiable part.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .. import errors
from ..core import ops
from ..core.graph import Graph, Node

# The dtype imported models compute in. float64 until the core's float32 lands;
# every value the importers read passes through ``Lowering.array``.
DTYPE = "float64"


class Missing:
    """The result of an op nbbp could not lower (its consumers are skipped)."""

    __slots__ = ()


MISSING = Missing()


class Lowering:
    """A graph being built from a captured program, and what could not be lowered."""

    def __init__(self, framework: str, name: str, dtype: str = DTYPE) -> None:
        if dtype != "float64":
            raise errors.NbbpError(f"{framework}: dtype {dtype!r} is not available yet; "
                                   "imported models compute in float64")
        self.framework, self.dtype = framework, dtype
        self.graph = Graph(name)
        self.unsupported: list[tuple[str, str]] = []   # (op, where)

    # -- values and leaves ---------------------------------------------------------
    def array(self, value: Any) -> np.ndarray:
        """A framework value as a NumPy array in the import dtype."""
        return np.array(value, dtype=self.dtype)

    def leaf(self, kind: str, name: str, value: Any) -> Node:
        """A param, input or const named exactly ``name`` (``enc/0/weight``; made unique
        with ``_1`` if taken)."""
        arr = self.array(value)
        full = self.graph.unique_name(name, scope="") if name in self.graph else name
        return self.graph.add_node(kind, shape=arr.shape, value=arr, exact_name=full,
                                   trainable=kind == "param", dtype=self.dtype)

    def miss(self, op: str, where: str, shape: Any = None) -> Node | Missing:
        """Record an op that cannot be lowered. With its result's ``shape`` known, a
        stand-in takes its place so the walk finds the unsupported ops after it too
        (the graph is dropped at the end either way)."""
        self.unsupported.append((op, where))
        if shape is None:
            return MISSING
        with self.graph.at_scope(""):
            return self.graph.add_node("const", shape=tuple(shape),
                                       value=np.zeros(tuple(shape)), name="unsupported")

    @contextlib.contextmanager
    def scope(self, path: str) -> Iterator[None]:
        with self.graph, self.graph.at_scope(path):
            yield

    def fail_if_unsupported(self, hint: str = "") -> None:
        if not self.unsupported:
            return
        seen: dict[str, list[str]] = {}
        for op, where in self.unsupported:
            places = seen.setdefault(op, [])
            if where and where not in places:
                places.append(where)
        listed = "; ".join(f"{op} at {', '.join(w) if w else 'an unknown place'}"
                           for op, w in seen.items())
        raise errors.NbbpError(f"{self.framework}: nbbp has no op for {listed}. "
                               f"{hint}See docs/import.md for the ops that import.")


# -- composites written with nbbp's builders --------------------------------------------
def matmul(a: Node, b: Node) -> Node:
    """NumPy/torch ``matmul`` semantics (vectors, batches) from 2-D ``matmul`` nodes:
    batched products become one matmul per batch element, stacked."""
    if a.ndim <= 2 and b.ndim <= 2:
        return ops.matmul(a, b)
    va, vb = a.ndim == 1, b.ndim == 1
    if va:
        a = ops.reshape(a, (1,) + a.shape)
    if vb:
        b = ops.reshape(b, b.shape + (1,))
    batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    if a.shape[:-2] != batch:
        a = ops.broadcast_to(a, batch + a.shape[-2:])
    if b.shape[:-2] != batch:
        b = ops.broadcast_to(b, batch + b.shape[-2:])
    n = math.prod(batch)
    a3 = ops.reshape(a, (n,) + a.shape[-2:]) if len(batch) != 1 else a
    b3 = ops.reshape(b, (n,) + b.shape[-2:]) if len(batch) != 1 else b
    y = ops.stack([ops.matmul(a3[i], b3[i]) for i in range(n)], axis=0)
    shape = batch + (a.shape[-2], b.shape[-1])
    if len(batch) != 1:
        y = ops.reshape(y, shape)
    if va or vb:
        shape = batch + ((a.shape[-2],) if not va else ()) + ((b.shape[-1],) if not vb else ())
        y = ops.reshape(y, shape)
    return y


def reduce(op: str, x: Node, axes: Sequence[int] | None, keepdims: bool = False) -> Node:
    """``sum``/``mean``/``max``/``min``/``prod`` over several axes: one node per axis."""
    fn = ops.FUNCTIONS[op]
    if axes is None or len(axes) == 0 or x.ndim == 0:
        return fn(x, None, keepdims)
    axes = sorted({int(a) % x.ndim for a in axes}, reverse=True)
    if len(axes) == x.ndim and not keepdims:
        return fn(x, None, False)
    for a in axes:
        x = fn(x, a, keepdims)
    return x


def layer_norm(x: Node, n_axes: int, weight: Any, bias: Any, eps: float) -> Node:
    """(x − mean) / sqrt(var + eps) · weight + bias over the last ``n_axes`` axes."""
    axes = list(range(x.ndim - n_axes, x.ndim))
    mu = reduce("mean", x, axes, keepdims=True)
    d = x - mu
    var = reduce("mean", d * d, axes, keepdims=True)
    y = d / ops.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def gelu_tanh(x: Node) -> Node:
    """0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""
    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))
    return 0.5 * x * (1.0 + ops.tanh(inner))


def onehot(labels: np.ndarray, classes: int, axis: int = 1) -> np.ndarray:
    eye = np.eye(classes)[np.asarray(labels, dtype=np.int64)]
    return np.moveaxis(eye, -1, axis)


def swap_last(x: Node) -> Node:
    perm = list(range(x.ndim))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return ops.transpose(x, tuple(perm))


def attention(q: Node, k: Node, v: Node, mask: Any = None, causal: bool = False,
              scale: float | None = None) -> Node:
    """softmax(q·kᵀ·scale + mask)·v, drawn as its matmuls and softmax."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = matmul(q, swap_last(k)) * scale
    L, S = q.shape[-2], k.shape[-2]
    if causal:
        mask = np.tril(np.ones((L, S), dtype=bool))
    if mask is not None:
        if isinstance(mask, np.ndarray) and mask.dtype == bool:
            s = ops.where(mask.astype(np.float64), s, -1e300)
        else:
            s = s + mask
    return matmul(ops.softmax(s, axis=-1), v)


def shape_of(x: Any) -> tuple[int, ...]:
    return x.shape if isinstance(x, Node) else np.shape(x)


def node_in(x: Any) -> Node:
    """``x`` as a node of the graph being built (an array becomes a const)."""
    if isinstance(x, Node):
        return x
    from ..core.graph import get_graph
    return ops._lift(np.asarray(x, dtype=DTYPE), get_graph())
