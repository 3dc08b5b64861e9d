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
from ..core.dtypes import FLOATS, promote
from ..core.graph import Graph, Node

# The dtype of a model with no float leaf to go by; a leaf keeps its own (float32 or
# float64) and ops promote as NumPy does (float32 with float64 is float64), as PyTorch
# and JAX do for tensors.
DTYPE = "float64"


class Variant(Exception):
    """An op nbbp has, called in a way it does not take (``dropout`` while training,
    a grouped convolution): the message names the variant, the walk records it."""


class Missing:
    """The result of an op nbbp could not lower (its consumers are skipped)."""

    __slots__ = ()


MISSING = Missing()


class Lowering:
    """A graph being built from a captured program, and what could not be lowered."""

    def __init__(self, framework: str, name: str, dtype: str = DTYPE) -> None:
        self.framework, self.dtype = framework, dtype
        self.graph = Graph(name, dtype=dtype)   # numbers lift to the operand's dtype
        self.unsupported: list[tuple[str, str]] = []   # (op, where)

    # -- values and leaves ---------------------------------------------------------
    def float_dtype(self, dtype: str, name: str) -> str:
        """``dtype`` if nbbp computes in it (float32, float64), else a one-line error
        naming the leaf and how to convert it."""
        if dtype not in FLOATS:
            raise errors.NbbpError(
                f"{self.framework}: {name} is {dtype}; nbbp computes in "
                f"{' or '.join(FLOATS)}: convert the model and its inputs first "
                "(.float() or .double() in PyTorch, .astype(jnp.float32) in JAX)")
        return dtype

    def array(self, value: Any, name: str) -> np.ndarray:
        """A framework float value as a NumPy array of its own dtype."""
        arr = np.array(value)
        self.float_dtype(arr.dtype.name, name)
        return arr

    def leaf(self, kind: str, name: str, value: Any) -> Node:
        """A param, input or const named exactly ``name`` (``enc/0/weight``; made unique
        with ``_1`` if taken), in the value's own float dtype."""
        arr = self.array(value, name)
        full = self.graph.unique_name(name, scope="") if name in self.graph else name
        return self.graph.add_node(kind, shape=arr.shape, value=arr, exact_name=full,
                                   trainable=kind == "param", dtype=arr.dtype.name)

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

    def fail_if_unsupported(self) -> None:
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
                               "See docs/import.md for the ops that import.")


def model_dtype(dtypes: Sequence[str]) -> str:
    """The dtype a model computes in: its float leaves' dtypes promoted (float32 if
    they are all float32), ``DTYPE`` if it has none."""
    floats = [d for d in dtypes if d in FLOATS]
    return promote(*floats) if floats else DTYPE


# -- composites written with nbbp's builders --------------------------------------------
def matmul(a: Node, b: Node) -> Node:
    """NumPy/torch ``matmul`` semantics: nbbp's matmul takes matrices and stacks of
    them (batch axes broadcast); a vector beside a stack becomes a one-row or
    one-column matrix and its axis is dropped after."""
    if a.ndim <= 2 and b.ndim <= 2:
        return ops.matmul(a, b)
    va, vb = a.ndim == 1, b.ndim == 1
    y = ops.matmul(ops.reshape(a, (1,) + a.shape) if va else a,
                   ops.reshape(b, b.shape + (1,)) if vb else b)
    if va or vb:
        y = ops.reshape(y, y.shape[:-2] + y.shape[-2:][int(va):2 - int(vb)])
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


def gelu_erf(x: Node) -> Node:
    """Exact GELU: 0.5·x·(1 + erf(x/√2))."""
    return 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))


def erfc(x: Node) -> Node:
    """1 − erf(x) (JAX's exact GELU is written with it)."""
    return 1.0 - ops.erf(x)


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
            s = ops.where(mask.astype(s.dtype), s, -np.finfo(s.dtype).max)
        else:
            s = s + mask
    return matmul(ops.softmax(s, axis=-1), v)


# -- images: nbbp's conv2d and pools are NHWC with HWIO filters (as TF1) ---------------------
NCHW_TO_NHWC, NHWC_TO_NCHW, OIHW_TO_HWIO = (0, 2, 3, 1), (0, 3, 1, 2), (2, 3, 1, 0)
Pads = Sequence[Sequence[int]]          # ((top, bottom), (left, right))


def permute(x: Node, perm: Sequence[int], name: str | None = None) -> Node:
    """``x`` with its axes in ``perm`` order; no node when ``perm`` keeps them."""
    perm = tuple(int(p) for p in perm)
    return x if perm == tuple(range(x.ndim)) else ops.transpose(x, perm, name=name)


def tf_same(n: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """The padding (before, after) TF's "SAME" adds along an axis of ``n`` elements."""
    keff = (k - 1) * d + 1
    total = max((-(-n // s) - 1) * s + keff - n, 0)
    return total // 2, total - total // 2


def _padding(x: Node, window: Sequence[int], strides: Sequence[int],
             dilation: Sequence[int], pads: Pads, fill: float) -> tuple[Node, str]:
    """``x`` (NHWC) and the ``padding`` for nbbp's conv/pool that give the explicit
    ``pads``: "VALID" if none, "SAME" where TF's SAME pads the same way (no pad node),
    else a ``pad`` node of ``fill`` and "VALID"."""
    pads = tuple((int(a), int(b)) for a, b in pads)
    if any(a < 0 or b < 0 for a, b in pads):
        raise Variant(f"negative padding {pads}")
    if all(p == (0, 0) for p in pads):
        return x, "VALID"
    if pads == tuple(tf_same(n, k, s, d) for n, k, s, d
                     in zip(x.shape[1:3], window, strides, dilation)):
        return x, "SAME"
    return ops.pad(x, [[0, 0], *pads, [0, 0]], fill), "VALID"


def conv2d(x: Node, w: Node, strides: Sequence[int], pads: Pads,
           dilation: Sequence[int] = (1, 1), name: str | None = None) -> Node:
    """A convolution of ``x`` (NHWC) by ``w`` (HWIO) with explicit ``pads``."""
    if max(strides) > 1 and max(dilation) > 1:
        raise Variant(f"a convolution with strides {tuple(strides)} and dilation "
                      f"{tuple(dilation)} (nbbp's conv2d takes one or the other, as TF1)")
    x, padding = _padding(x, w.shape[:2], strides, dilation, pads, 0.0)
    return ops.conv2d(x, w, tuple(strides), padding, tuple(dilation), name=name)


def max_pool(x: Node, window: Sequence[int], strides: Sequence[int], pads: Pads) -> Node:
    """The max of each window of ``x`` (NHWC); padding never wins (−∞)."""
    x, padding = _padding(x, window, strides, (1, 1), pads, -np.inf)
    return ops.max_pool(x, tuple(window), tuple(strides), padding)


def window_sum(x: Node, window: Sequence[int], strides: Sequence[int], pads: Pads,
               divisor: Any = 1) -> Node:
    """The sum of each window of ``x`` (NHWC, zero padding) divided by ``divisor`` (a
    number or an (out height, out width) array): ``avg_pool`` times a constant, or
    avg_pool alone when the divisor is the window's size."""
    x, padding = _padding(x, window, strides, (1, 1), pads, 0.0)
    if padding == "SAME":                  # TF's SAME avg divides by the inside count
        x, padding = ops.pad(x, [[0, 0], *pads, [0, 0]], 0.0), "VALID"
    y = ops.avg_pool(x, tuple(window), tuple(strides), padding)
    factor = math.prod(window) / np.asarray(divisor, dtype=np.float64)
    if np.all(factor == 1.0):
        return y
    return y * (factor if factor.ndim == 0 else factor[:, :, None])


def shape_of(x: Any) -> tuple[int, ...]:
    return x.shape if isinstance(x, Node) else np.shape(x)


def node_in(x: Any) -> Node:
    """``x`` as a node of the graph being built (an array becomes a const of its own
    float dtype, else of the graph's)."""
    if isinstance(x, Node):
        return x
    from ..core.graph import get_graph
    graph = get_graph()
    dtype = np.asarray(x).dtype.name
    return ops._lift(x, graph, dtype if dtype in FLOATS else graph.dtype)
