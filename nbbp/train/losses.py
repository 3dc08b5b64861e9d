"""Loss functions, built from the table's ops so the picture shows their parts.

Each builds its nodes inside a scope named after it (``mse/…``), so a collapsed
view shows one box per loss and an expanded one shows how it is made. All are
means over the examples (rows). The two cross-entropies take logits and are
computed stably (softplus and log_softmax never overflow).

>>> import nbbp
>>> m = nbbp.build("p = param([0.5, 2.0])\\ny = input([1.0, 1.0])\\nL = mse(p, y)")
>>> m.value, m.grads["p"].tolist()
(0.625, [-0.5, 1.0])
"""

from __future__ import annotations

from typing import Any

from ..core import ops
from ..core.graph import Node, get_graph


def _scoped(name: str, build, *args: Any) -> Node:
    args = tuple(a for a in args)
    graph = next((a.graph for a in args if isinstance(a, Node)), None) or get_graph()
    with graph.name_scope(name):
        return build(*args)


def mse(pred: Any, target: Any) -> Node:
    """Mean squared error: ``mean((pred − target)²)``."""
    return _scoped("mse", lambda p, t: ops.mean((p - t) ** 2), pred, target)


def mae(pred: Any, target: Any) -> Node:
    """Mean absolute error: ``mean(|pred − target|)``."""
    return _scoped("mae", lambda p, t: ops.mean(ops.abs(p - t)), pred, target)


def bce_with_logits(logits: Any, labels: Any) -> Node:
    """Binary cross-entropy of labels in {0, 1} given logits z, computed stably:
    ``mean(softplus(z) − y·z)`` (= −y·log σ(z) − (1−y)·log(1−σ(z)))."""
    return _scoped("bce", lambda z, y: ops.mean(ops.softplus(z) - y * z), logits, labels)


def softmax_cross_entropy(logits: Any, labels: Any, axis: int = -1) -> Node:
    """Cross-entropy of one-hot (or probability) labels given logits, via log_softmax:
    ``mean(−sum(labels · log_softmax(logits), axis))``."""
    def build(z, y):
        per_row = -ops.sum(y * ops.log_softmax(z, axis=axis), axis=axis)
        return ops.mean(per_row)
    return _scoped("cross_entropy", build, logits, labels)


def hinge(scores: Any, labels: Any) -> Node:
    """Hinge loss of labels in {−1, +1}: ``mean(relu(1 − y·s))``."""
    return _scoped("hinge", lambda s, y: ops.mean(ops.relu(1.0 - y * s)), scores, labels)


LOSSES = {"mse": mse, "mae": mae, "bce_with_logits": bce_with_logits,
          "softmax_cross_entropy": softmax_cross_entropy, "hinge": hinge}
