"""Lowering the part of a TF graph a run needs to an :class:`nbbp.Graph`.

Given the operations a run must compute and the shapes of its feeds, every
needed op becomes nbbp nodes with concrete shapes: fed tensors, variables and
random tensors become leaves the session writes before each run; constants
become const leaves; other ops call their ``lower`` function from the op table;
gradient ops call :func:`nbbp.core.autodiff.gradients` on the lowered nodes. Nodes
keep the TF names (``scope/W``, ``mul_1``), so a lowered graph reads like the
TF program it came from.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..core import ops as O
from ..core.autodiff import gradients as nbbp_gradients
from ..core.graph import Graph as NbbpGraph
from ..core.graph import Node
from ..errors import NbbpError
from ._core import Operation
from ._opdefs import ASSIGN_TYPES, OPDEFS, nbbp_name
from ._types import carrier, shape_list_str
from .errors import InvalidArgumentError, ShapeError

RANDOM_TYPES = ("RandomStandardNormal", "TruncatedNormal")    # drawn by the session


class Lowered:
    """An nbbp graph for some ops of a TF graph, and how they correspond."""

    def __init__(self, name: str) -> None:
        self.graph = NbbpGraph(name)
        self.node_of: dict[Operation, Node] = {}
        self.var_leaves: list[tuple[object, Node]] = []      # (Variable, param node)
        self.feed_leaves: list[tuple[object, Node]] = []     # (Tensor, input node)
        self.random_leaves: list[tuple[Operation, Node]] = []
        self.counters: list[tuple[Operation, Node]] = []     # (RandomUniform, its counter)
        self.checks: list[tuple[Operation, list[Node]]] = []   # (op, its input nodes)
        self._grad_memo: dict[int, list] = {}


def needed_ops(roots: list[Operation], fed: dict[Operation, tuple]) -> list[Operation]:
    """The ops ``roots`` are computed from, not looking past fed ones, in build order."""
    seen: dict[int, Operation] = {}
    stack = list(roots)
    while stack:
        op = stack.pop()
        if id(op) in seen:
            continue
        seen[id(op)] = op
        if op not in fed:
            stack.extend(t.op for t in op.inputs)
    return sorted(seen.values(), key=lambda op: op.id)


def lower(roots: list[Operation], fed: dict[Operation, tuple], name: str) -> Lowered:
    """Lower the ops ``roots`` need; ``fed`` maps fed ops to the shape of their feed."""
    low = Lowered(name)
    g = low.graph
    order = needed_ops(roots, fed)
    for op in order:
        dt = carrier(op.outputs[0].dtype) if op.outputs else "float64"
        if op in fed:
            node = _leaf(g, op, "input", fed[op], dtype=dt)
            low.feed_leaves.append((op.outputs[0], node))
        elif op.type == "Const":
            node = _leaf(g, op, "const", op.attrs["value"].shape, op.attrs["value"], dtype=dt)
        elif op.type == "Placeholder":
            raise _missing_feed(op, roots, fed)
        elif op.type == "VariableV2":
            node = _leaf(g, op, "param", op.outputs[0]._shape, trainable=True, dtype=dt)
            low.var_leaves.append((op.outputs[0], node))
        elif op.type == "RandomUniform":
            node = _uniform(low, op, dt)
        elif op.type in RANDOM_TYPES:
            node = _leaf(g, op, "input", op.outputs[0]._shape, dtype=dt)
            low.random_leaves.append((op, node))
        elif op.type in ("NoOp", "ApplyGradients"):
            continue
        elif op.type == "Assign":
            node = low.node_of[op.inputs[0].op]
        elif op.type in ASSIGN_TYPES:
            var, delta = (low.node_of[t.op] for t in op.inputs)
            fn = O.add if op.type == "AssignAdd" else O.sub
            node = _named(g, op, lambda: fn(var, delta))
        elif op.type == "SymbolicGradient":
            node = _gradient(low, op)
        elif op.type == "Hessian":
            node = _hessian(low, op)
        else:
            args = [low.node_of[t.op] for t in op.inputs]
            opdef = OPDEFS[op.type]
            try:
                node = _named(g, op, lambda: _convert(opdef.lower(*args, **op.attrs), dt))
            except NbbpError as exc:
                shapes = ", ".join(shape_list_str(a.shape) for a in args)
                raise ShapeError(f"{op.type} {op.name!r} with the fed shapes (input shapes: "
                                 f"{shapes}): {exc.message}") from None
            if opdef.check is not None:
                low.checks.append((op, args))
        low.node_of[op] = node
    return low


def _leaf(g: NbbpGraph, op: Operation, kind: str, shape: tuple, value=None,
          trainable: bool = False, dtype: str = "float64") -> Node:
    scope, _, base = nbbp_name(op.name).rpartition("/")
    if value is not None:
        value = np.asarray(value, dtype=dtype)
    with g.at_scope(scope):
        return g.add_node(kind, shape=shape, name=base, value=value, trainable=trainable,
                          dtype=dtype)


def _named(g: NbbpGraph, op: Operation, build: Callable[[], Node]) -> Node:
    """Run ``build`` with intermediate nodes under ``<op name>/``; name its result
    after the op."""
    full = nbbp_name(op.name)
    start = len(g.nodes)
    with g.at_scope(full):
        out = build()
    if out.id >= start and out.auto_named:
        scope, _, base = full.rpartition("/")
        g.rename(out, base, scope)
        g.by_name[out.name] = out
    return out


def _zeros(g: NbbpGraph, shape: tuple, dtype: str = "float64") -> Node:
    return g.add_node("const", shape=shape, value=np.zeros(shape, dtype=dtype), role="grad",
                      dtype=dtype)


def _convert(x: Node, dtype: str) -> Node:
    """``x`` as nbbp dtype ``dtype`` (nbbp's ``cast``), or itself."""
    return x if x.dtype == dtype else O.cast(x, dtype)


def _gradient(low: Lowered, op: Operation) -> Node:
    call, i = op.attrs["call"], op.attrs["index"]
    res = low._grad_memo.get(id(call))
    if res is None:
        n = low.node_of
        res = nbbp_gradients([n[y.op] for y in call.ys], [n[x.op] for x in call.xs],
                             [None if gy is None else n[gy.op] for gy in call.grad_ys],
                             [n[s.op] for s in call.stops])
        low._grad_memo[id(call)] = res
    x = low.node_of[call.xs[i].op]
    if res[i] is None:
        return _zeros(low.graph, x.shape, x.dtype)
    return _convert(res[i], x.dtype)     # TF: a gradient has its variable's dtype


def _hessian(low: Lowered, op: Operation) -> Node:
    """H = Σᵢ eᵢ ⊗ (H eᵢ): one Hessian-vector product per element of x."""
    g = low.graph
    *ys, x = (low.node_of[t.op] for t in op.inputs)
    (dx,) = nbbp_gradients(ys, [x])
    n = x.size
    if dx is None:
        return _zeros(g, x.shape + x.shape, x.dtype)
    flat = dx if dx.shape == (n,) else O.reshape(dx, (n,))
    total = None
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1.0
        seed = g.add_node("const", shape=(n,), value=e, role="grad")
        (hv,) = nbbp_gradients(flat, [x], [seed])
        if hv is None:
            continue
        col = g.add_node("const", shape=(n, 1), value=e.reshape(n, 1), role="grad")
        term = O.matmul(col, O.reshape(hv, (1, n)))
        total = term if total is None else total + term
    if total is None:
        return _zeros(g, x.shape + x.shape, x.dtype)
    return _convert(O.reshape(total, x.shape + x.shape), x.dtype)


def _uniform(low: Lowered, op: Operation, dtype: str) -> Node:
    """``minval + (maxval − minval)·u``, u the core's counter-based ``random_uniform``:
    a hash of (the op's seed, its counter, the element's index). The counter is an
    int64 input the session sets to how many times it has run this op, so every run
    draws anew and a new session repeats the draws (see Session.run)."""
    g, a = low.graph, op.attrs
    with g.at_scope(nbbp_name(op.name)):
        counter = g.add_node("input", shape=(), name="counter", dtype="int64",
                             value=np.zeros((), dtype=np.int64))
    low.counters.append((op, counter))
    like = low.node_of[op.inputs[0].op] if op.inputs else tuple(op.outputs[0]._shape)

    def build() -> Node:
        u = O.random_uniform(like, seed=a["core_seed"], dtype=dtype, counter=counter)
        if (a["minval"], a["maxval"]) == (0.0, 1.0):
            return u
        return a["minval"] + (a["maxval"] - a["minval"]) * u
    return _named(g, op, build)


def _missing_feed(op: Operation, roots: list[Operation], fed: dict) -> InvalidArgumentError:
    dtype = op.attrs["dtype"]._tf_name
    shape = op.attrs["shape"]
    msg = f"You must feed a value for placeholder tensor '{op.name}' with dtype {dtype}"
    if shape is not None:
        msg += f" and shape {shape_list_str(shape)}"
    path = _path(roots, op, fed)
    via = f" The run needs it for: {' → '.join(path)}." if len(path) > 1 else ""
    return InvalidArgumentError(
        f"{msg}.{via} Pass its value in feed_dict, e.g. "
        f"sess.run(fetches, feed_dict={{x: value}}) where x is the placeholder tensor "
        f"'{op.name}:0'.")


def _path(roots: list[Operation], target: Operation, fed: dict) -> list[str]:
    """Op names from ``target`` to the first root that needs it."""
    parent: dict[int, Operation | None] = {}
    stack = [(r, None) for r in roots]
    while stack:
        op, via = stack.pop()
        if id(op) in parent:
            continue
        parent[id(op)] = via
        if op is target:
            names, cur = [], op
            while cur is not None:
                names.append(cur.name)
                cur = parent[id(cur)]
            return names
        if op not in fed:
            stack.extend((t.op, op) for t in op.inputs)
    return [target.name]
