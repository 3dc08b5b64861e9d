"""``tf.nn``: activations and losses on logits, as in TensorFlow 1.

The cross-entropy functions take keyword arguments only (``labels=``,
``logits=``), as TF 1 enforces; each lowers to nbbp ops in a numerically stable
form (``log_softmax``; ``max(x, 0) − x·z + log(1 + e^−|x|)``).
"""

from __future__ import annotations

from typing import Any

from ._core import Tensor, make_op
from ._names import module_getattr
from ._ops import gather, sigmoid, tanh
from .errors import UsageError

__all__ = ["bias_add", "elu", "embedding_lookup", "l2_loss", "leaky_relu", "log_softmax",
           "relu", "relu6", "sigmoid", "sigmoid_cross_entropy_with_logits", "softmax",
           "softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits_v2",
           "softplus", "tanh"]


def relu(features: Any, name: str | None = None) -> Tensor:
    """max(x, 0)."""
    return make_op("Relu", [features], name=name or "Relu")


def relu6(features: Any, name: str | None = None) -> Tensor:
    """min(max(x, 0), 6)."""
    return make_op("Relu6", [features], name=name or "Relu6")


def elu(features: Any, name: str | None = None) -> Tensor:
    """x for x > 0, else exp(x) − 1."""
    return make_op("Elu", [features], name=name or "Elu")


def leaky_relu(features: Any, alpha: float = 0.2, name: str | None = None) -> Tensor:
    """x for x > 0, else alpha·x (TF 1's default alpha is 0.2)."""
    return make_op("LeakyRelu", [features], dict(alpha=float(alpha)), name=name or "LeakyRelu")


def softplus(features: Any, name: str | None = None) -> Tensor:
    """log(1 + eˣ)."""
    return make_op("Softplus", [features], name=name or "Softplus")


def softmax(logits: Any, axis: int = -1, name: str | None = None, dim: int | None = None
            ) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``."""
    return make_op("Softmax", [logits], dict(axis=int(axis if dim is None else dim)),
                   name=name or "Softmax")


def log_softmax(logits: Any, axis: int = -1, name: str | None = None, dim: int | None = None
                ) -> Tensor:
    """x − log(sum(exp(x))) along ``axis``."""
    return make_op("LogSoftmax", [logits], dict(axis=int(axis if dim is None else dim)),
                   name=name or "LogSoftmax")


def bias_add(value: Any, bias: Any, name: str | None = None) -> Tensor:
    """value + bias, the bias along the last axis."""
    return make_op("BiasAdd", [value, bias], name=name or "BiasAdd")


def l2_loss(t: Any, name: str | None = None) -> Tensor:
    """sum(t²) / 2."""
    return make_op("L2Loss", [t], name=name or "L2Loss")


def _named_only(fn: str, sentinel: Any, labels: Any, logits: Any) -> None:
    if sentinel is not None:
        raise UsageError(f"Only call `{fn}` with named arguments (labels=..., logits=..., "
                         "...) — TF 1 refuses positional ones, which are easy to swap")
    if labels is None or logits is None:
        raise UsageError(f"{fn} needs both labels= and logits=")


def softmax_cross_entropy_with_logits(_sentinel: Any = None, labels: Any = None,
                                      logits: Any = None, dim: int = -1,
                                      name: str | None = None, axis: int | None = None
                                      ) -> Tensor:
    """−Σ labels·log_softmax(logits) along the class axis, one value per row.

    As in TF 1, no gradient flows into ``labels`` (use the ``_v2`` function for that).
    """
    _named_only("softmax_cross_entropy_with_logits", _sentinel, labels, logits)
    return make_op("SoftmaxCrossEntropyWithLogits", [labels, logits],
                   dict(axis=int(dim if axis is None else axis)),
                   name=name or "softmax_cross_entropy_with_logits",
                   arg_names=("labels", "logits"))


def softmax_cross_entropy_with_logits_v2(_sentinel: Any = None, labels: Any = None,
                                         logits: Any = None, axis: int = -1,
                                         name: str | None = None, dim: int | None = None
                                         ) -> Tensor:
    """Like :func:`softmax_cross_entropy_with_logits`, with gradients into labels too."""
    _named_only("softmax_cross_entropy_with_logits_v2", _sentinel, labels, logits)
    return make_op("SoftmaxCrossEntropyWithLogitsV2", [labels, logits],
                   dict(axis=int(axis if dim is None else dim)),
                   name=name or "softmax_cross_entropy_with_logits",
                   arg_names=("labels", "logits"))


def sigmoid_cross_entropy_with_logits(_sentinel: Any = None, labels: Any = None,
                                      logits: Any = None, name: str | None = None) -> Tensor:
    """Elementwise −z·log σ(x) − (1 − z)·log(1 − σ(x)), computed as
    max(x, 0) − x·z + log(1 + e^−|x|) so large logits do not overflow."""
    _named_only("sigmoid_cross_entropy_with_logits", _sentinel, labels, logits)
    return make_op("SigmoidCrossEntropyWithLogits", [labels, logits],
                   name=name or "logistic_loss", arg_names=("labels", "logits"))


def embedding_lookup(params: Any, ids: Any, name: str | None = None, **unused: Any) -> Tensor:
    """The rows of ``params`` at ``ids`` (``tf.gather`` on axis 0); a one-element list
    of params is its element, as in TF 1."""
    if isinstance(params, (list, tuple)):
        if len(params) != 1:
            raise UsageError("embedding_lookup over a list of sharded params is not supported "
                             "by nbbp.tf1; pass one tensor")
        params = params[0]
    return gather(params, ids, name=name or "embedding_lookup")


__getattr__ = module_getattr("nn")
