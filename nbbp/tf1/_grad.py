"""``tf.gradients`` and ``tf.hessians``: symbolic, lowered to nbbp's autodiff.

A gradient tensor is an op of type ``SymbolicGradient`` that remembers its call
(``ys``, ``xs``, ``grad_ys``, ``stop_gradients``). When a session runs it, the
call is lowered once per run plan with :func:`nbbp.core.autodiff.gradients` on the
lowered nodes — so gradients of gradients (and Hessians) are nbbp's graph
transform applied again. As in TF 1, an ``x`` that ``ys`` does not depend on
gets ``None``.
"""

from __future__ import annotations

from typing import Any

from ._core import Operation, Tensor, convert_to_tensor, graph_of
from ._opdefs import OPDEFS
from ._ops import zeros_like
from ._types import fully_known
from .errors import UsageError


class GradCall:
    """One ``tf.gradients`` call: what its gradient tensors are gradients of."""

    __slots__ = ("ys", "xs", "grad_ys", "stops")

    def __init__(self, ys: list[Tensor], xs: list[Tensor], grad_ys: list[Tensor | None],
                 stops: list[Tensor]) -> None:
        self.ys, self.xs, self.grad_ys, self.stops = ys, xs, grad_ys, stops

    def __repr__(self) -> str:
        return f"<gradients of {[y.name for y in self.ys]}>"


def _tensors(x: Any, what: str) -> list[Tensor]:
    seq = list(x) if isinstance(x, (list, tuple)) else [x]
    for t in seq:
        if not isinstance(t, Tensor):
            hint = " (an Operation has no value; pass a tensor)" if isinstance(t, Operation) \
                else ""
            raise UsageError(f"tf.gradients: {what} must be tensors, got "
                             f"{type(t).__name__} {t!r}{hint}")
    return seq


def grad_args(op: Operation) -> tuple[int, ...]:
    """The input positions of ``op`` that gradients flow through."""
    own = op.attrs.get("_grad_args")
    if own is not None:
        return own
    spec = OPDEFS[op.type].grad_args
    if op.type in ("Assign", "AssignAdd", "AssignSub"):
        return ()
    return tuple(range(len(op.inputs))) if spec is None else spec


def connected(ys: list[Tensor], x: Tensor, stops: list[Tensor]) -> bool:
    """Whether some y depends on x through ops that pass gradients (not through a
    stop tensor). As in TF 1, only floating tensors carry gradients: a path through
    an integer or bool tensor (``argmax``, ``equal``, a cast to int32) carries none."""
    graph = x.graph
    stop_ids = {id(t) for t in stops if t is not x}
    if not x.dtype.is_floating:
        return False
    reached = {id(x.op)}
    last = max(y.op.id for y in ys)
    for op in graph._ops[x.op.id + 1:last + 1]:
        if op.outputs and not op.outputs[0].dtype.is_floating:
            continue
        for pos in grad_args(op):
            t = op.inputs[pos]
            if id(t.op) in reached and id(t) not in stop_ids and t.dtype.is_floating:
                reached.add(id(op))
                break
    return any(id(y.op) in reached for y in ys)


def ancestors(ts: list[Tensor]) -> set[int]:
    """ids of the ops the tensors ``ts`` are computed from (their own included)."""
    seen: set[int] = set()
    stack = [t.op for t in ts]
    while stack:
        op = stack.pop()
        if id(op) in seen:
            continue
        seen.add(id(op))
        stack.extend(t.op for t in op.inputs)
    return seen


def gradients(ys: Any, xs: Any, grad_ys: Any = None, name: str = "gradients",
              colocate_gradients_with_ops: bool = False, gate_gradients: bool = False,
              aggregation_method: Any = None, stop_gradients: Any = None,
              unconnected_gradients: str = "none") -> list[Tensor | None]:
    """Symbolic ∂(sum of ys)/∂x for each x in ``xs``: one tensor per x, or ``None``
    where ``ys`` does not depend on x (``unconnected_gradients="zero"``: zeros).

    >>> import nbbp.tf1 as tf
    >>> with tf.Graph().as_default():
    ...     x = tf.Variable(3.0, name="x"); y = tf.Variable(2.0, name="y")
    ...     f = x * x * y + y + 1
    ...     gx, gy = tf.gradients(f, [x, y])
    ...     with tf.Session() as sess:
    ...         _ = sess.run(tf.global_variables_initializer())
    ...         print(*sess.run([gx, gy]))
    12.0 10.0
    """
    ys_l, xs_l = _tensors(ys, "ys"), _tensors(xs, "xs")
    if not ys_l or not xs_l:
        raise UsageError("tf.gradients needs at least one y and one x")
    gys = list(grad_ys) if isinstance(grad_ys, (list, tuple)) else \
        [grad_ys] * len(ys_l) if grad_ys is None or len(ys_l) == 1 else None
    if gys is None or len(gys) != len(ys_l):
        raise UsageError(f"tf.gradients: grad_ys must be a list with one entry per y "
                         f"({len(ys_l)}), got {grad_ys!r}")
    stops = _tensors(stop_gradients, "stop_gradients") if stop_gradients is not None else []
    graph = graph_of(ys_l + xs_l + [g for g in gys if isinstance(g, Tensor)] + stops,
                     "tf.gradients")
    if unconnected_gradients not in ("none", "zero"):
        raise UsageError("unconnected_gradients must be 'none' or 'zero'")
    with graph.as_default(), graph.name_scope(name):
        gys = [None if g is None else convert_to_tensor(g, name="grad_ys", graph=graph)
               for g in gys]
        for y, g in zip(ys_l, gys):
            if g is not None and fully_known(g._shape) and fully_known(y._shape) \
                    and g._shape != y._shape:
                raise UsageError(f"tf.gradients: grad_ys for {y.name} has shape {g._shape}, "
                                 f"but {y.name} has shape {y._shape}")
        anc = ancestors(ys_l)
        stops = [t for t in stops if id(t.op) in anc]
        call = GradCall(ys_l, xs_l, gys, stops)
        given = [g for g in gys if g is not None]
        inputs = tuple(ys_l + xs_l + given + stops)
        diff = tuple(range(len(ys_l) + len(xs_l) + len(given)))
        out: list[Tensor | None] = []
        for i, x in enumerate(xs_l):
            if not connected(ys_l, x, stops):
                out.append(None if unconnected_gradients == "none" else zeros_like(x))
                continue
            full = graph.unique_name(f"{x.op.name}_grad")
            op = graph._add_op("SymbolicGradient", inputs,
                               {"call": call, "index": i, "_grad_args": diff}, full, x._shape,
                               dtype=x.dtype)
            out.append(op.outputs[0])
    return out


def hessians(ys: Any, xs: Any, name: str = "hessians", **unused: Any) -> list[Tensor | None]:
    """For each x, the matrix of second derivatives of sum(ys): shape ``x.shape + x.shape``.

    Built with one Hessian-vector product per element of x, so meant for small x.
    """
    ys_l, xs_l = _tensors(ys, "ys"), _tensors(xs, "xs")
    graph = graph_of(ys_l + xs_l, "tf.hessians")
    out: list[Tensor | None] = []
    with graph.as_default(), graph.name_scope(name):
        for x in xs_l:
            if not fully_known(x._shape) or len(x._shape) > 2:
                raise UsageError(f"tf.hessians: {x.name} has shape {x.shape!r}; nbbp.tf1 "
                                 "needs a fully known shape of rank 0, 1 or 2")
            if not connected(ys_l, x, []):
                out.append(None)
                continue
            full = graph.unique_name(f"{x.op.name}_hessian")
            op = graph._add_op("Hessian", tuple(ys_l + [x]), {}, full, x._shape + x._shape,
                               dtype=x.dtype)
            out.append(op.outputs[0])
    return out
