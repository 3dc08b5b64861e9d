"""A copy of part of a graph with new input shapes (shapes are static in nbbp).

Minibatches and ``predict`` on any number of rows run on such a copy; its nodes
keep their names, so values move between the copy and the original by name or id.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..core import ops
from ..core.graph import Graph, Node
from ..errors import BuildError, NbbpError


def clone(outputs: list[Node], shapes: Mapping[Node, tuple[int, ...]]) -> dict[int, Node]:
    """Copy the part of the graph ``outputs`` need into a new graph, giving the nodes
    in ``shapes`` new shapes (shape rules run again). Returns old id → new node."""
    old = outputs[0].graph
    g = Graph(old.name, old.dtype)
    new: dict[int, Node] = {}
    for n in old.ancestors(outputs):
        if n.is_leaf:
            value = n.value
            if n in shapes:
                value = np.zeros(shapes[n], n.dtype)
            node = g.add_node(n.op, shape=value.shape, value=value, role=n.role,
                              trainable=n.trainable, exact_name=n.name, dtype=n.dtype)
        else:
            inputs = tuple(new[x.id] for x in n.inputs)
            op = ops.OPS[n.op]
            attrs = dict(n.attrs)
            try:
                shape = ops._SHAPE_RULES[op.kind](op, inputs, attrs)
            except NbbpError as exc:
                changed = ", ".join(f"{k.name!r} to {v}" for k, v in shapes.items())
                raise BuildError(f"changing the shape of {changed} breaks node {n.name!r}: "
                                 f"{exc.message}") from None
            node = g.add_node(n.op, inputs, attrs, shape, role=n.role, exact_name=n.name,
                              dtype=n.dtype)
        node.line = n.line
        new[n.id] = node
    return new
