"""``tf.losses``: a few of TensorFlow 1's reduced losses (mean over all elements)."""

from __future__ import annotations

from typing import Any

from ._core import Tensor, get_default_graph
from ._names import module_getattr
from ._ops import reduce_mean, squared_difference, stop_gradient
from .nn import (
    sigmoid_cross_entropy_with_logits,
    softmax_cross_entropy_with_logits_v2,
    sparse_softmax_cross_entropy_with_logits,
)

__all__ = ["mean_squared_error", "sigmoid_cross_entropy", "softmax_cross_entropy",
           "sparse_softmax_cross_entropy"]


def mean_squared_error(labels: Any, predictions: Any, scope: str | None = None) -> Tensor:
    """mean((predictions − labels)²)."""
    with get_default_graph().name_scope(scope or "mean_squared_error"):
        return reduce_mean(squared_difference(predictions, labels), name="value")


def sigmoid_cross_entropy(multi_class_labels: Any, logits: Any, scope: str | None = None
                          ) -> Tensor:
    """mean of :func:`tf.nn.sigmoid_cross_entropy_with_logits`."""
    with get_default_graph().name_scope(scope or "sigmoid_cross_entropy_loss"):
        return reduce_mean(sigmoid_cross_entropy_with_logits(
            labels=multi_class_labels, logits=logits), name="value")


def softmax_cross_entropy(onehot_labels: Any, logits: Any, scope: str | None = None) -> Tensor:
    """mean over rows of the softmax cross-entropy (no gradient into the labels)."""
    with get_default_graph().name_scope(scope or "softmax_cross_entropy_loss"):
        return reduce_mean(softmax_cross_entropy_with_logits_v2(
            labels=stop_gradient(onehot_labels), logits=logits), name="value")

def sparse_softmax_cross_entropy(labels: Any, logits: Any, scope: str | None = None
                                 ) -> Tensor:
    """mean over rows of :func:`tf.nn.sparse_softmax_cross_entropy_with_logits`
    (integer labels)."""
    with get_default_graph().name_scope(scope or "sparse_softmax_cross_entropy_loss"):
        return reduce_mean(sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits), name="value")


__getattr__ = module_getattr("losses")
