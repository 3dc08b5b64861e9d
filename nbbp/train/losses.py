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

import numpy as np

from ..core import ops
from ..core.dtypes import is_float
from ..core.graph import Node, get_graph
from ..errors import BuildError, ShapeError


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


def sparse_softmax_cross_entropy(logits: Any, labels: Any) -> Node:
    """Cross-entropy of integer class labels given logits (batch, classes), as TF1's
    ``tf.losses.sparse_softmax_cross_entropy``: ``mean(−log_softmax(logits)[i, labels[i]])``.

    ``labels`` holds class indices 0..C−1: an integer NumPy array (a constant), or a
    node — an integer ``input`` (``input(y, dtype="int64")``, a TF1 ``placeholder(tf.int32)``;
    minibatches slice it), or a floating one holding whole numbers. Its values are checked
    when the graph is built. The picked log-probabilities are selected with a one-hot
    mask ``labels == [0, 1, …, C−1]`` built in the graph (in the labels' own dtype).

    >>> import nbbp, numpy as np
    >>> with nbbp.Graph():
    ...     L = nbbp.sparse_softmax_cross_entropy(nbbp.param(np.zeros((2, 4))), np.array([1, 3]))
    >>> round(nbbp.Model(L).value, 6)    # log 4
    1.386294
    """
    what = "sparse_softmax_cross_entropy"
    z = logits if isinstance(logits, Node) else ops._lift(logits, get_graph())
    if z.ndim != 2:
        raise ShapeError(f"{what}: logits {z.shape} must be (batch, classes)")
    n, classes = z.shape
    value = labels.value if isinstance(labels, Node) else np.asarray(labels)
    if value is None or np.shape(value) != (n,):
        shape = labels.shape if isinstance(labels, Node) else np.shape(value)
        raise ShapeError(f"{what}: labels {shape} must be one class index per row of "
                         f"logits {z.shape}, shape ({n},)")
    value = np.asarray(value)
    if value.dtype.kind == "b":
        name = labels.name if isinstance(labels, Node) else "labels"
        raise BuildError(f"{what}: {name} is boolean, not integer class indices; labels "
                         f"are 0..{classes - 1} for logits {z.shape}: cast({name}, \"int64\")")
    if value.dtype.kind not in "iu":
        bad = value[(value != np.round(value)) | ~np.isfinite(value)]
        if bad.size:
            raise BuildError(f"{what}: label {bad[0].item()!r} is not an integer class index; "
                             f"labels are 0..{classes - 1} for logits {z.shape}")
    out = value[(value < 0) | (value >= classes)]
    if out.size:
        raise ShapeError(f"{what}: label {out[0].item()!r} is out of range; labels are "
                         f"0..{classes - 1} for logits {z.shape}")

    def build(z, y):
        if not isinstance(y, Node):
            y = ops._lift(np.asarray(y, dtype=np.int64), z.graph, "int64")
        if is_float(y.dtype):       # whole numbers held as floats: a 0/1 float mask
            hot = ops.eq(ops.expand_dims(y, 1), np.arange(classes, dtype=y.dtype))
        else:                       # integers compared as integers, the mask cast once
            hot = ops.cast(ops.equal(ops.expand_dims(y, 1), np.arange(classes, dtype=y.dtype)),
                           z.dtype)
        return -ops.mean(ops.sum(hot * ops.log_softmax(z, axis=1), axis=1))
    return _scoped("sparse_cross_entropy", build, z, labels)


def hinge(scores: Any, labels: Any) -> Node:
    """Hinge loss of labels in {−1, +1}: ``mean(relu(1 − y·s))``."""
    return _scoped("hinge", lambda s, y: ops.mean(ops.relu(1.0 - y * s)), scores, labels)


LOSSES = {"mse": mse, "mae": mae, "bce_with_logits": bce_with_logits,
          "softmax_cross_entropy": softmax_cross_entropy, "hinge": hinge,
          "sparse_softmax_cross_entropy": sparse_softmax_cross_entropy}
