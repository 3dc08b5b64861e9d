"""``tf.nn``: activations and losses on logits, as in TensorFlow 1.

The cross-entropy functions take keyword arguments only (``labels=``,
``logits=``), as TF 1 enforces; each lowers to nbbp ops in a numerically stable
form (``log_softmax``; ``max(x, 0) − x·z + log(1 + e^−|x|)``).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from ._core import Tensor, convert_to_tensor, graph_of, make_op
from ._names import module_getattr
from ._ops import cast, gather, random_uniform, sigmoid, tanh
from ._ops import shape as shape_op
from .errors import UsageError

__all__ = ["avg_pool", "bias_add", "conv2d", "dropout", "elu", "embedding_lookup", "l2_loss",
           "leaky_relu", "log_softmax", "max_pool", "relu", "relu6", "sigmoid",
           "sigmoid_cross_entropy_with_logits", "softmax", "softmax_cross_entropy_with_logits",
           "softmax_cross_entropy_with_logits_v2", "softplus",
           "sparse_softmax_cross_entropy_with_logits", "tanh"]


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


def _seq(value: Any, what: str, fn: str) -> tuple[int, int]:
    """TF's ``_get_sequence``: an int, ``[k]``, ``[h, w]`` or ``[1, h, w, 1]`` → (h, w)."""
    if isinstance(value, Tensor):
        raise UsageError(f"tf.nn.{fn}: {what} must be a list of ints, not a tensor")
    try:
        v = [int(value)] if np.ndim(value) == 0 else [int(t) for t in np.ravel(value)]
    except (TypeError, ValueError):
        raise UsageError(f"tf.nn.{fn}: {what} must be an int or a list of ints, got "
                         f"{value!r}") from None
    if len(v) == 4:
        if v[0] != 1 or v[3] != 1:
            raise UsageError(f"tf.nn.{fn}: Current implementation does not yet support "
                             f"{what} in the batch and depth dimensions ({what}={v}); write "
                             f"[1, h, w, 1]")
        v = v[1:3]
    if len(v) not in (1, 2):
        raise UsageError(f"tf.nn.{fn}: {what} should be of length 1, 2 or 4 but was "
                         f"{len(v)} ({what}={value!r})")
    if min(v) < 1:
        raise UsageError(f"tf.nn.{fn}: {what} must be positive, got {value!r}")
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def _image_args(fn: str, padding: Any, data_format: str) -> str:
    if data_format not in ("NHWC", "channels_last"):
        raise UsageError(f"tf.nn.{fn}(data_format={data_format!r}): The {fn} op currently "
                         "only supports the NHWC tensor format on the CPU (nbbp.tf1 too); "
                         "transpose the input to (batch, height, width, channels)")
    if padding not in ("SAME", "VALID"):
        hint = (f"; TF 1 spells it {padding.upper()!r}" if isinstance(padding, str)
                and padding.upper() in ("SAME", "VALID") else "")
        raise UsageError(f"tf.nn.{fn}: padding must be 'SAME' or 'VALID', got {padding!r}"
                         f"{hint} (explicit paddings are not supported by nbbp.tf1)")
    return padding


def conv2d(input: Any, filter: Any = None, strides: Any = None, padding: Any = None,
           use_cudnn_on_gpu: bool = True, data_format: str = "NHWC",
           dilations: Any = (1, 1, 1, 1), name: str | None = None,
           filters: Any = None) -> Tensor:
    """2-D cross-correlation of an NHWC ``input`` (batch, height, width, channels) with
    an HWIO ``filter`` (height, width, in channels, out channels), as TF 1's
    ``tf.nn.conv2d``: ``strides`` ``[1, s, s, 1]`` (or ``s``, ``[sh, sw]``),
    ``padding`` ``'SAME'`` (output ⌈n / s⌉) or ``'VALID'``, ``dilations`` likewise.

    >>> import nbbp.tf1 as tf, numpy as np
    >>> with tf.Graph().as_default():
    ...     x = tf.constant(np.ones((1, 3, 3, 1), np.float32))
    ...     y = tf.nn.conv2d(x, tf.ones([2, 2, 1, 1]), strides=[1, 1, 1, 1], padding="VALID")
    ...     print(y.shape, tf.Session().run(y)[0, :, :, 0].tolist())
    (1, 2, 2, 1) [[4.0, 4.0], [4.0, 4.0]]
    """
    if filters is not None:
        filter = filters
    if filter is None or strides is None or padding is None:
        raise UsageError("tf.nn.conv2d needs input, filter, strides and padding, e.g. "
                         "tf.nn.conv2d(x, W, strides=[1, 1, 1, 1], padding='SAME')")
    attrs = dict(strides=_seq(strides, "strides", "conv2d"),
                 padding=_image_args("conv2d", padding, data_format),
                 dilations=_seq(dilations, "dilations", "conv2d"))
    return make_op("Conv2D", [input, filter], attrs, name=name or "Conv2D",
                   arg_names=("input", "filter"))


def _pool(type: str, fn: str, value: Any, ksize: Any, strides: Any, padding: Any,
          data_format: str, name: str | None) -> Tensor:
    if ksize is None or strides is None or padding is None:
        raise UsageError(f"tf.nn.{fn} needs value, ksize, strides and padding, e.g. "
                         f"tf.nn.{fn}(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], "
                         "padding='SAME')")
    attrs = dict(ksize=_seq(ksize, "ksize", fn), strides=_seq(strides, "strides", fn),
                 padding=_image_args(fn, padding, data_format))
    return make_op(type, [value], attrs, name=name or type, arg_names=("input",))


def max_pool(value: Any, ksize: Any = None, strides: Any = None, padding: Any = None,
             data_format: str = "NHWC", name: str | None = None, input: Any = None) -> Tensor:
    """The largest value of each ``ksize`` window of an NHWC image (TF 1's
    ``tf.nn.max_pool``); the gradient goes to the first maximum of each window, as
    TF 1's CPU kernel sends it."""
    return _pool("MaxPool", "max_pool", value if input is None else input, ksize, strides,
                 padding, data_format, name)


def avg_pool(value: Any, ksize: Any = None, strides: Any = None, padding: Any = None,
             data_format: str = "NHWC", name: str | None = None, input: Any = None) -> Tensor:
    """The mean of each ``ksize`` window (TF 1's ``tf.nn.avg_pool``); with ``'SAME'``
    padding a window is divided by the number of input values it covers."""
    return _pool("AvgPool", "avg_pool", value if input is None else input, ksize, strides,
                 padding, data_format, name)


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


def sparse_softmax_cross_entropy_with_logits(_sentinel: Any = None, labels: Any = None,
                                             logits: Any = None, name: str | None = None
                                             ) -> Tensor:
    """−log softmax(logits)[label] per row: ``labels`` are integer class indices (int32 or
    int64, shape ``logits.shape[:-1]``), ``logits`` floats; keyword arguments only, as in
    TF 1. No gradient flows into the labels. A label outside ``[0, classes)`` raises
    TF 1's ``InvalidArgumentError`` when the op runs.

    >>> import nbbp.tf1 as tf
    >>> with tf.Graph().as_default():
    ...     xent = tf.nn.sparse_softmax_cross_entropy_with_logits(
    ...         labels=[0, 1], logits=[[0.0, 0.0], [0.0, 0.0]])
    ...     print(tf.Session().run(xent))        # log 2 each
    [0.6931472 0.6931472]
    """
    fn = "sparse_softmax_cross_entropy_with_logits"
    _named_only(fn, _sentinel, labels, logits)
    return make_op("SparseSoftmaxCrossEntropyWithLogits", [labels, logits],
                   name=name or "SparseSoftmaxCrossEntropyWithLogits",
                   arg_names=("labels", "logits"))


def dropout(x: Any, keep_prob: Any = None, noise_shape: Any = None, seed: int | None = None,
            name: str | None = None, rate: Any = None) -> Tensor:
    """Inverted dropout as TF 1.15 computes it: each element of ``x`` is kept with
    probability ``keep_prob = 1 − rate`` and scaled by ``1 / keep_prob``, else 0 —
    ``x · (1 / keep_prob) · cast(u ≥ rate)`` with ``u`` uniform in [0, 1), drawn anew
    at every ``sess.run`` (seeded as ``tf.random_uniform``). ``keep_prob`` (TF 1's
    argument, with its deprecation warning) or ``rate`` may be a number or a scalar
    tensor such as a placeholder fed 0.5 in training and 1.0 in tests; a number 0 rate
    (``keep_prob=1``) returns ``x`` itself.
    """
    if keep_prob is not None:
        _warn_keep_prob()
        if rate is not None:
            raise UsageError("tf.nn.dropout: give keep_prob or rate, not both "
                             "(rate = 1 - keep_prob)")
        try:
            rate = 1. - keep_prob
        except TypeError:
            raise UsageError(f"keep_prob must be a floating point number or Tensor (got "
                             f"{keep_prob!r})") from None
    if rate is None:
        raise UsageError("You must provide a rate to dropout: tf.nn.dropout(x, rate=0.5) "
                         "(or TF 1's keep_prob=0.5)")
    g = graph_of([x, rate], "tf.nn.dropout")
    with g.as_default(), g.name_scope(name or "dropout"):
        x = convert_to_tensor(x, name="x")
        if not x.dtype.is_floating:
            raise UsageError(f"x has to be a floating point tensor since it's going to be "
                             f"scaled. Got a {x.dtype} tensor instead.")
        if not isinstance(rate, Tensor):
            r = float(rate)
            if not 0.0 <= r < 1.0:
                raise UsageError(f"rate must be a scalar tensor or a float in the range "
                                 f"[0, 1), got {r:g} (keep_prob = 1 - rate must be in "
                                 "(0, 1])")
            if r > 0.5:
                _warn_large_rate(r)
            if r == 0.0:
                return x
        rate = convert_to_tensor(rate, dtype=x.dtype, name="rate")
        if rate._shape not in ((), None):      # as TF 1: rank 0, or not known
            raise UsageError(f"tf.nn.dropout: rate (or keep_prob) must be a scalar, got "
                             f"{rate!r}")
        shape = shape_op(x) if noise_shape is None else noise_shape
        random_tensor = random_uniform(shape, seed=seed, dtype=x.dtype)
        keep_prob = 1 - rate
        scale = 1 / keep_prob
        keep_mask = random_tensor >= rate
        ret = x * scale * cast(keep_mask, x.dtype)
        if ret._shape is None:          # TF 1: ret.set_shape(x.get_shape())
            ret._shape = x._shape
        return ret


_warned: set[str] = set()


def _warn_once(key: str, text: str) -> None:
    """TF 1's ``WARNING:tensorflow:`` line on stderr, once per process (as TF logs)."""
    if key not in _warned:
        _warned.add(key)
        f = sys._getframe(3)
        print(text.format(where=f"{f.f_code.co_filename}:{f.f_lineno}"), file=sys.stderr)


def _warn_keep_prob() -> None:
    _warn_once("keep_prob", "WARNING:tensorflow:From {where}: calling dropout (from "
               "tensorflow.python.ops.nn_ops) with keep_prob is deprecated and will be "
               "removed in a future version.\nInstructions for updating:\nPlease use `rate` "
               "instead of `keep_prob`. Rate should be set to `rate = 1 - keep_prob`.")


def _warn_large_rate(rate: float) -> None:
    _warn_once("rate", f"WARNING:tensorflow:Large dropout rate: {rate:g} (>0.5). In "
               "TensorFlow 2.x, dropout() uses dropout rate instead of keep_prob. Please "
               "ensure that this is intended.")


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
