"""Reverse-mode automatic differentiation as a graph-to-graph transform.

Like ``tf.gradients``, :func:`gradients` adds the nodes that compute the
derivatives to the same graph. The backward pass is therefore an ordinary graph:
the engine runs it, the renderer draws it, and :func:`gradients` can be applied to
it again for second and third derivatives.

The transform walks the nodes between ``xs`` and ``y`` in reverse build order.
For each node it sums the contributions its consumers sent it (its total
gradient) and asks the op table's VJP rule for the contribution each input
receives. It records, for every forward edge ``u → v``, the node holding the
contribution ``∂y/∂u`` that flows through ``v``: the number drawn on the edge.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import BuildError
from . import ops
from .dtypes import is_float
from .graph import LEAF_OPS, Graph, Node

# graph -> {id(gradient node): (its id, the id of the forward node whose backward step
# built it)}: lets a nan in the backward pass be reported at the user's forward node
_ORIGIN: weakref.WeakKeyDictionary[Graph, dict[int, tuple[int, int]]] = \
    weakref.WeakKeyDictionary()


def origin(node: Node) -> Node | None:
    """The forward node whose backward step built the gradient node ``node`` (``sqrt``
    for the ``div`` in its derivative), or None."""
    entry = _ORIGIN.get(node.graph, {}).get(id(node))
    if entry is None or entry[0] != node.id:
        return None
    return node.graph.nodes[entry[1]]


@dataclass
class Gradients:
    """What one call of the transform built.

    ``total[id]`` is the node holding ∂y/∂node for every node between ``xs`` and
    ``y``; ``edge[(dst_id, pos)]`` the node holding the contribution along the edge
    into argument ``pos`` of node ``dst_id``.
    """

    y: list[Node]
    total: dict[int, Node] = field(default_factory=dict)
    edge: dict[tuple[int, int], Node] = field(default_factory=dict)

    def of(self, x: Node) -> Node | None:
        return self.total.get(x.id)


def _as_nodes(xs, what: str) -> list[Node]:
    seq = list(xs) if isinstance(xs, (list, tuple)) else [xs]
    for x in seq:
        if not isinstance(x, Node):
            raise BuildError(f"{what} must be nodes of the graph, got {type(x).__name__} "
                             f"{x!r}")
    return seq


def build_gradients(ys: Node | Sequence[Node], xs: Sequence[Node],
                    grad_ys: Sequence[Node | None] | None = None,
                    stop: Sequence[Node] = (), *,
                    ancestors: Sequence[Node] | None = None) -> Gradients:
    """Add the gradient nodes of ``sum(ys)`` with respect to every node in ``xs``
    (``ancestors``: ``graph.ancestors(ys)``, if the caller has it)."""
    ys = _as_nodes(ys, "gradients(ys, ...): ys")
    xs = _as_nodes(xs, "gradients(..., xs): xs")
    graph = ys[0].graph
    for n in ys + xs:
        if n.graph is not graph:
            raise BuildError(f"gradients: node {n.name!r} belongs to another graph "
                             f"({n.graph.name!r}) than {ys[0].name!r}")
    grad_ys = list(grad_ys) if grad_ys is not None else [None] * len(ys)
    stop_ids = {n.id for n in stop}

    # nodes on a path from some x to some y: only they get gradients
    ancestors = graph.ancestors(ys) if ancestors is None else ancestors   # build order
    anc = {n.id for n in ancestors}
    # only floating values carry gradients: a path through an integer or boolean node
    # (argmax, a comparison, a cast to int, gather's indices) carries none
    rel: set[int] = {x.id for x in xs if is_float(x.dtype)}
    for n in ancestors:
        if n.id not in rel and n.id not in stop_ids and is_float(n.dtype):
            for i in n.inputs:
                if i.id in rel:
                    rel.add(n.id)
                    break
    rel &= anc
    rel -= stop_ids - {x.id for x in xs}

    start = len(graph.nodes)
    result = Gradients(ys)
    contribs: dict[int, list[Node]] = {}
    named: set[int] = set()          # gradient nodes already named after a total
    spans: list[tuple[int, Node]] = []   # (first new node's index, the forward node it
                                         # serves): each step's nodes follow one another
    try:
        with graph.role("grad"), graph.at_line(None):
            for y, gy in zip(ys, grad_ys):
                with graph.at_scope(_grad_scope(y)):
                    if gy is None:
                        seed = graph.add_node("const", shape=y.shape, name="d" + _base(y),
                                              value=np.ones(y.shape, y.dtype), dtype=y.dtype)
                    else:
                        seed = ops.apply("broadcast_to", gy, shape=y.shape) \
                            if isinstance(gy, Node) and gy.shape != y.shape \
                            else ops._lift(gy, graph, y.dtype)
                        if seed.shape != y.shape:
                            raise BuildError(f"gradients: grad_ys for {y.name!r} has shape "
                                             f"{seed.shape}, but {y.name!r} has shape "
                                             f"{y.shape}")
                contribs.setdefault(y.id, []).append(seed)
                if seed.id >= start:
                    spans.append((seed.id, y))

            # in reverse build order, one scope entered per run of nodes sharing it
            todo = (n for n in reversed(graph.nodes[:start]) if n.id in rel)
            for scope, run in itertools.groupby(todo, key=_grad_scope):
                with graph.at_scope(scope):
                    for n in run:
                        if n.id not in contribs:
                            continue
                        spans.append((len(graph.nodes), n))
                        _backward(graph, n, contribs, rel, start, named, result)
    except BaseException:
        graph.truncate(start)
        raise

    del anc, rel, contribs, named     # a large graph's sets: free before pruning
    # the forward node each new node serves, by position among the new nodes
    serves: list[Node | None] = [None] * (len(graph.nodes) - start)
    ends = [at for at, _ in spans[1:]] + [len(graph.nodes)]
    for (at, n), end in zip(spans, ends):
        serves[at - start:end - start] = [n] * (end - at)
    del spans, ends
    keep = [n for n in result.total.values()] + list(result.edge.values())
    kept = _prune(graph, start, keep)
    table = _ORIGIN.setdefault(graph, {})
    table.update((id(m), (m.id, serves[j].id)) for j, m in kept if serves[j] is not None)
    return result


def _backward(graph, n: Node, contribs: dict[int, list[Node]], rel: set[int], start: int,
              named: set[int], result: Gradients) -> None:
    """Sum the contributions ``n`` received into its total gradient, then send each
    of its inputs its contribution through the op's VJP rule."""
    parts = contribs.pop(n.id)
    g = parts[0]
    if len(parts) > 1:
        for p in parts[1:]:
            g = g + p
    if g.id >= start and g.auto_named and g.id not in named:
        graph.rename(g, "d" + _base(n))
        g.auto_named = True       # still an automatic name: `d1 = grad(f, x)` wins
        named.add(g.id)
    result.total[n.id] = g
    op = ops.OPS[n.op]
    if op.vjp is None or n.op in LEAF_OPS:
        return
    for i in n.inputs:
        if i.id in rel:
            break
    else:
        return                     # no input needs a gradient
    vjps = op.vjp(g, n)
    for pos, (x, c) in enumerate(zip(n.inputs, vjps)):
        if c is None or x.id not in rel:
            continue
        if c.shape != x.shape:
            c = ops.sum_to(c, x.shape)
        result.edge[(n.id, pos)] = c
        contribs.setdefault(x.id, []).append(c)


def _grad_scope(n: Node) -> str:
    """Where the gradient nodes of ``n`` go: ``grad/`` + its scope."""
    return "grad/" + n.scope if n.scope else "grad"


def _base(n: Node) -> str:
    return n.name.rsplit("/", 1)[-1]


def _prune(graph, start: int, keep: list[Node]) -> list[tuple[int, Node]]:
    """Drop nodes the transform built but nothing uses (e.g. the gradient of a
    constant exponent), so the backward graph holds only what it needs; return the
    nodes kept, each with its position among the new nodes before. A new node's
    inputs come before it, so one walk back over the new nodes finds what ``keep``
    uses (the forward graph, which nothing here drops, is not walked)."""
    new = graph.nodes[start:]
    used = bytearray(len(new))
    for n in keep:
        if n.id >= start:
            used[n.id - start] = 1
    for j in range(len(new) - 1, -1, -1):
        if used[j]:
            for i in new[j].inputs:
                if i.id >= start:
                    used[i.id - start] = 1
    if used.find(0) < 0:           # nothing to drop: every node stays where it is
        return list(enumerate(new))
    kept = [(j, n) for j, n in enumerate(new) if used[j]]
    graph.truncate(start)
    for _, n in kept:
        n.id = len(graph.nodes)
        graph.nodes.append(n)
        graph.by_name[n.name] = n
    return kept


def gradients(ys: Node | Sequence[Node], xs: Node | Sequence[Node],
              grad_ys: Sequence[Node | None] | None = None,
              stop_gradients: Sequence[Node] = ()) -> list[Node | None]:
    """Add nodes computing ∂(sum of ys)/∂x for each x in ``xs``; like ``tf.gradients``.

    Returns one node per x, or ``None`` where x does not affect ``ys``. The
    result nodes are ordinary nodes, so they can be differentiated again.

    >>> import nbbp
    >>> with nbbp.Graph() as g:
    ...     x = nbbp.param(3.0, name="x")
    ...     y = x ** 3
    ...     (dx,) = nbbp.gradients(y, [x])
    ...     (ddx,) = nbbp.gradients(dx, [x])
    >>> nbbp.Model(ddx).value   # d²(x³)/dx² = 6x
    18.0
    """
    xs_list = _as_nodes(xs, "gradients(..., xs): xs")
    res = build_gradients(ys, xs_list, grad_ys, stop_gradients)
    return [res.of(x) for x in xs_list]


def grad(y: Node, x: Node) -> Node:
    """The node holding ∂y/∂x (zeros if y does not depend on x)."""
    (g,) = gradients(y, [x])
    if g is None:
        g = x.graph.add_node("const", shape=x.shape, value=np.zeros(x.shape, x.dtype),
                             role="grad", dtype=x.dtype)
    return g
