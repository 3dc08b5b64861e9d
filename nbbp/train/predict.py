"""Predictions and metrics: which node predicts, on which data, against which labels.

:func:`prediction_node` finds the node a model predicts with (``node``, or one named
like a prediction); :func:`classifier_data` adds the inputs it reads (the data) and
the inputs it does not (the labels) — the one place that rule is written, for
:func:`predict`, the pictures of a decision boundary and the sweeps' accuracy.
:func:`predict` evaluates the prediction for new data with any number of rows (on a
copy of the graph with the new shapes, compiled once per shape and kept in the
training side table, :mod:`nbbp.train.state`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from ..core.compiled import Compiled, as_array
from ..core.graph import Node, leaves
from ..core.ops import mode_flag
from ..errors import FeedError, NbbpError
from .reshape import clone
from .state import state

PREDICTION_NAMES = ("pred", "prediction", "y_hat", "yhat", "logits", "scores", "score",
                    "out", "output", "s", "o")
LABEL_NAMES = ("y", "labels", "target", "t")


def prediction_node(model, node: Any = None) -> Node:
    """The node ``predict`` evaluates: ``node``, or one named like a prediction."""
    if node is not None:
        return model.node(node)
    for name in PREDICTION_NAMES:
        for n in model.forward:
            if n.name.rsplit("/", 1)[-1] == name and not n.is_leaf:
                return n
    rows = [n.name for n in model.forward if not n.is_leaf and n.ndim >= 1
            and n is not model.output]
    raise NbbpError("predict needs to know which node is the prediction: pass node=..., e.g. "
                    + ", ".join(repr(r) for r in rows[-4:]) + " (or name it `pred`)")


class Classifier(NamedTuple):
    """A model seen as a classifier: the prediction node, the inputs it reads (the
    data) and the model's other inputs (the labels), each list in build order."""

    node: Node
    data: list[Node]
    labels: list[Node]


def classifier_data(model, node: Any = None) -> Classifier:
    """The prediction node (see :func:`prediction_node`), the inputs it reads and the
    inputs it does not read; raises :class:`NbbpError` if no node is a prediction."""
    target = prediction_node(model, node)
    data = leaves(model.graph.ancestors([target]), "input")
    labels = [n for n in leaves(model.forward, "input") if n not in data]
    return Classifier(target, data, labels)


def predict(model, x: Any, node: Any = None) -> np.ndarray:
    """Evaluate the prediction node for new data: ``x`` is an array for the model's
    data input (or a dict ``{input name: array}``); any number of rows. Always in eval
    mode (dropout off, batch norm on its running averages), whatever the model's mode."""
    target, inputs, _ = classifier_data(model, node)
    if isinstance(x, Mapping):
        feed = {model.node(k): as_array(model.node(k), v, "predict") for k, v in x.items()}
    else:
        if not inputs:
            raise NbbpError(f"node {target.name!r} depends on no input to feed")
        if len(inputs) > 1:
            raise NbbpError(f"node {target.name!r} depends on several inputs ("
                            + ", ".join(n.name for n in inputs)
                            + "); pass x as a dict {name: array}")
        feed = {inputs[0]: as_array(inputs[0], x, "predict")}
    for n, v in feed.items():
        if v.ndim != n.ndim or v.shape[1:] != n.shape[1:]:
            raise FeedError(f"predict: {n.name!r} takes rows of shape {n.shape[1:]}, got data "
                            f"of shape {v.shape}")
    shapes = {n: v.shape for n, v in feed.items() if v.shape != n.shape}
    flag = mode_flag(model.graph)
    if flag is not None and flag.id < model.layout.n_nodes:
        feed[flag] = np.asarray(False)
    if not shapes:
        return np.asarray(model.run(target, feed))
    programs = state(model).programs
    key = ("predict", target.id, tuple(sorted((n.id, s) for n, s in shapes.items())))
    cached = programs.get(key)
    if cached is None:
        mapping = clone([target], shapes)
        graph = mapping[target.id].graph
        sub = Compiled(graph, [n for n in graph.nodes if not n.is_leaf],
                       keep=[mapping[target.id]], watch=[], engine=model.engine)
        cached = programs[key] = (mapping, sub)
    mapping, sub = cached
    for n in model.graph.ancestors([target]):
        if n.is_leaf:
            sub.set(mapping[n.id], feed[n] if n in feed else model.value_of(n))
    sub.run()
    return sub.read(mapping[target.id])


def accuracy(model, node: Any = None, labels: Any = None) -> float:
    """Fraction of rows classified right: the prediction node against the label input
    (``y`` by default). One column: score > 0 (or > 0.5 for values in [0, 1]) against
    label > 0.5 (labels 0/1) or > 0 (labels ±1); several columns: argmax against argmax."""
    pred = np.asarray(model.value_of(prediction_node(model, node)))
    if labels is None:
        names = [n for n in leaves(model.forward, "input")
                 if n.name.rsplit("/", 1)[-1] in LABEL_NAMES]
        if not names:
            raise NbbpError("accuracy needs the labels: name the label input `y` or pass "
                            "labels=...")
        labels = model.value_of(names[0])
    y = np.asarray(labels, dtype=float).reshape(len(pred), -1)
    p = pred.reshape(len(pred), -1)
    if p.shape[1] > 1:
        return float(np.mean(p.argmax(axis=1) == y.argmax(axis=1)))
    cut = 0.5 if p.min() >= 0 and p.max() <= 1 else 0.0
    ycut = 0.0 if y.min() < 0 else 0.5
    return float(np.mean((p[:, 0] > cut) == (y[:, 0] > ycut)))


def metric_functions(metrics: Any) -> dict[str, Any]:
    """``fit(metrics=...)`` as ``{name: function(model) -> float}``: ``"accuracy"``, a
    list of names, or a dict of names to functions (or to ``"accuracy"``)."""
    if not metrics:
        return {}
    if isinstance(metrics, str) or not isinstance(metrics, Mapping):
        metrics = {m: m for m in ([metrics] if isinstance(metrics, str) else metrics)}
    out = {}
    for name, fn in metrics.items():
        if fn == "accuracy":
            fn = accuracy
        if not callable(fn):
            raise NbbpError(f"metric {name!r} must be 'accuracy' or a function of the "
                            f"model, got {fn!r}")
        out[name] = fn
    return out
