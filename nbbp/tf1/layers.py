"""``tf.layers``: TensorFlow 1.15's functional layers, built from ``get_variable`` and
``tf.nn`` ops, with TF 1's signatures, defaults and names.

Each call opens a variable scope named after the layer (``dense``, ``dense_1``, …,
or ``name=``; ``reuse=True`` or an enclosing ``tf.AUTO_REUSE`` shares its
variables), creates ``kernel`` (glorot-uniform unless ``kernel_initializer=`` or the
scope's initializer says otherwise) and ``bias`` (zeros) there, and builds its ops
in the scope's name scope: ``dense/kernel:0``, ``dense/MatMul``, ``dense/BiasAdd``,
``dense/Relu``, ``conv2d/Conv2D``, ``max_pooling2d/MaxPool``, ``flatten/Reshape``.

>>> import nbbp.tf1 as tf
>>> with tf.Graph().as_default():
...     x = tf.placeholder(tf.float32, [None, 4])
...     h = tf.layers.dense(x, 8, activation=tf.nn.relu)
...     y = tf.layers.dense(h, 2)
...     print(h)
...     print(*[v.name for v in tf.trainable_variables()])
Tensor("dense/Relu:0", shape=(?, 8), dtype=float32)
dense/kernel:0 dense/bias:0 dense_1/kernel:0 dense_1/bias:0
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._core import Tensor, convert_to_tensor, graph_of
from ._names import module_getattr
from ._ops import identity, matmul, reshape, where
from ._types import shape_str
from ._variables import get_variable, variable_scope, zeros_initializer
from .errors import DTypeError, UsageError
from .nn import avg_pool, bias_add, max_pool
from .nn import conv2d as nn_conv2d
from .nn import dropout as nn_dropout

__all__ = ["average_pooling2d", "conv2d", "dense", "dropout", "flatten", "max_pooling2d"]


@contextlib.contextmanager
def _layer(inputs: Any, kind: str, name: str | None, reuse: Any) -> Iterator[Tensor]:
    """The layer's variable scope (``kind``, ``kind_1``, … or ``name``) with its name
    scope open; yields the inputs as a tensor."""
    g = graph_of([inputs], f"tf.layers.{kind}")
    with g.as_default():
        x = convert_to_tensor(inputs, name="inputs")
        with variable_scope(name, default_name=None if name else kind, reuse=reuse):
            yield x


def _float_input(x: Tensor, layer: str) -> None:
    if not x.dtype.is_floating:
        raise DTypeError(f"Unable to build `{layer}` layer with non-floating point dtype "
                         f"{x.dtype} (input {x.name}); cast it first: "
                         "tf.cast(x, tf.float32)")


def _weights(shape: list[int], units: int, x: Tensor, use_bias: bool,
             kernel_initializer: Any, bias_initializer: Any, trainable: bool
             ) -> tuple[Tensor, Tensor | None]:
    kernel = get_variable("kernel", shape, dtype=x.dtype, initializer=kernel_initializer,
                          trainable=trainable)
    bias = get_variable("bias", [units], dtype=x.dtype,
                        initializer=bias_initializer or zeros_initializer(),
                        trainable=trainable) if use_bias else None
    return kernel, bias


def _finish(out: Tensor, bias: Tensor | None, activation: Callable | None) -> Tensor:
    if bias is not None:
        out = bias_add(out, bias)
    return activation(out) if activation is not None else out


def _pair(value: Any, what: str, layer: str) -> tuple[int, int]:
    v = [int(value)] * 2 if np.ndim(value) == 0 else [int(t) for t in np.ravel(value)]
    if len(v) != 2 or min(v) < 1:
        raise UsageError(f"tf.layers.{layer}: The `{what}` argument must be a tuple of 2 "
                         f"integers (or one int). Received: {value!r}")
    return v[0], v[1]


def _padding(padding: Any, layer: str) -> str:
    p = str(padding).lower()
    if p not in ("valid", "same"):
        raise UsageError(f"tf.layers.{layer}: The `padding` argument must be one of "
                         f"\"valid\", \"same\". Received: {padding!r}")
    return p.upper()


def _channels_last(data_format: str, layer: str) -> None:
    if data_format != "channels_last":
        raise UsageError(f"tf.layers.{layer}(data_format={data_format!r}): nbbp.tf1 takes "
                         "images as (batch, height, width, channels), 'channels_last'")


def dense(inputs: Any, units: int, activation: Callable | None = None, use_bias: bool = True,
          kernel_initializer: Any = None, bias_initializer: Any = None,
          kernel_regularizer: Any = None, bias_regularizer: Any = None,
          activity_regularizer: Any = None, kernel_constraint: Any = None,
          bias_constraint: Any = None, trainable: bool = True, name: str | None = None,
          reuse: Any = None) -> Tensor:
    """``activation(inputs @ kernel + bias)``: a fully connected layer (TF 1.15's
    ``tf.layers.dense``). ``kernel`` is ``[inputs' last size, units]``, ``bias``
    ``[units]`` (zeros). Inputs of rank > 2 are multiplied along their last axis."""
    _unsupported("dense", kernel_regularizer=kernel_regularizer,
                 bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                 kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
    with _layer(inputs, "dense", name, reuse) as x:
        _float_input(x, "Dense")
        s = x._shape
        if s is None or len(s) < 2 or s[-1] is None:
            raise UsageError(f"The last dimension of the inputs to `Dense` should be defined. "
                             f"Found `None`. (input {x.name} has shape {shape_str(s)}; give "
                             "the placeholder a shape such as [None, 784])")
        kernel, bias = _weights([s[-1], int(units)], int(units), x, use_bias,
                                kernel_initializer, bias_initializer, trainable)
        if len(s) == 2:
            out = matmul(x, kernel)
        else:
            if None in s[1:]:
                raise UsageError(f"tf.layers.dense on {x.name} of shape {shape_str(s)}: "
                                 "nbbp.tf1 needs every size but the first known")
            flat = matmul(reshape(x, [-1, s[-1]]), kernel)
            out = reshape(flat, [-1, *s[1:-1], int(units)])
        return _finish(out, bias, activation)


def conv2d(inputs: Any, filters: int, kernel_size: Any, strides: Any = (1, 1),
           padding: str = "valid", data_format: str = "channels_last",
           dilation_rate: Any = (1, 1), activation: Callable | None = None,
           use_bias: bool = True, kernel_initializer: Any = None, bias_initializer: Any = None,
           kernel_regularizer: Any = None, bias_regularizer: Any = None,
           activity_regularizer: Any = None, kernel_constraint: Any = None,
           bias_constraint: Any = None, trainable: bool = True, name: str | None = None,
           reuse: Any = None) -> Tensor:
    """A 2-D convolution layer (TF 1.15's ``tf.layers.conv2d``): ``kernel``
    ``[kh, kw, in channels, filters]``, ``bias`` ``[filters]``; ``padding`` "valid"
    (the default) or "same", in either case."""
    _unsupported("conv2d", kernel_regularizer=kernel_regularizer,
                 bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                 kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
    _channels_last(data_format, "conv2d")
    kh, kw = _pair(kernel_size, "kernel_size", "conv2d")
    with _layer(inputs, "conv2d", name, reuse) as x:
        _float_input(x, "Conv2D")
        s = x._shape
        if s is None or len(s) != 4 or s[3] is None:
            raise UsageError(f"tf.layers.conv2d: Inputs should have rank 4 with a known "
                             f"channel size, got {x.name} of shape {shape_str(s)}; reshape "
                             "images to [-1, height, width, channels]")
        kernel, bias = _weights([kh, kw, s[3], int(filters)], int(filters), x, use_bias,
                                kernel_initializer, bias_initializer, trainable)
        out = nn_conv2d(x, kernel, strides=_pair(strides, "strides", "conv2d"),
                        padding=_padding(padding, "conv2d"),
                        dilations=_pair(dilation_rate, "dilation_rate", "conv2d"))
        return _finish(out, bias, activation)


def _pooling(fn: Callable, kind: str, inputs: Any, pool_size: Any, strides: Any,
             padding: str, data_format: str, name: str | None) -> Tensor:
    _channels_last(data_format, kind)
    k = _pair(pool_size, "pool_size", kind)
    s = _pair(strides, "strides", kind)
    with _layer(inputs, kind, name, None) as x:
        return fn(x, ksize=k, strides=s, padding=_padding(padding, kind))


def max_pooling2d(inputs: Any, pool_size: Any, strides: Any, padding: str = "valid",
                  data_format: str = "channels_last", name: str | None = None) -> Tensor:
    """The maximum of each ``pool_size`` window (TF 1.15's ``tf.layers.max_pooling2d``)."""
    return _pooling(max_pool, "max_pooling2d", inputs, pool_size, strides, padding,
                    data_format, name)


def average_pooling2d(inputs: Any, pool_size: Any, strides: Any, padding: str = "valid",
                      data_format: str = "channels_last", name: str | None = None) -> Tensor:
    """The mean of each window (TF 1.15's ``tf.layers.average_pooling2d``)."""
    return _pooling(avg_pool, "average_pooling2d", inputs, pool_size, strides, padding,
                    data_format, name)


def flatten(inputs: Any, name: str | None = None, data_format: str = "channels_last"
            ) -> Tensor:
    """``inputs`` as ``[batch, everything else]`` (TF 1.15's ``tf.layers.flatten``)."""
    _channels_last(data_format, "flatten")
    with _layer(inputs, "flatten", name, None) as x:
        s = x._shape
        if s is None or None in s[1:]:
            raise UsageError(f"tf.layers.flatten: nbbp.tf1 needs every size of {x.name} but "
                             f"the first known, got {shape_str(s)}")
        return reshape(x, [-1, math.prod(s[1:])])


def dropout(inputs: Any, rate: Any = 0.5, noise_shape: Any = None, seed: int | None = None,
            training: Any = False, name: str | None = None) -> Tensor:
    """TF 1.15's ``tf.layers.dropout``: ``tf.nn.dropout(inputs, rate=rate)`` when
    ``training`` is true, ``inputs`` unchanged (an ``Identity``) otherwise — the
    default. ``training`` may be a bool placeholder (fed True in training steps):
    then both are built and ``tf.where`` picks one at each run (TF 1 uses ``tf.cond``).
    """
    with _layer(inputs, "dropout", name, None) as x:
        if isinstance(training, Tensor):
            if not training.dtype.is_bool or training._shape not in ((), None):
                raise UsageError(f"tf.layers.dropout: training must be a Python bool or a "
                                 f"scalar tf.bool tensor, got {training!r}")
            dropped = nn_dropout(x, rate=rate, noise_shape=noise_shape, seed=seed)
            return where(training, dropped, x)
        if training:
            return nn_dropout(x, rate=rate, noise_shape=noise_shape, seed=seed)
        return identity(x)


def _unsupported(layer: str, **given: Any) -> None:
    for arg, value in given.items():
        if value is not None:
            raise UsageError(f"tf.layers.{layer}({arg}=...) is not supported by nbbp.tf1; "
                             "add the penalty to the loss yourself, e.g. "
                             "loss += 0.01 * tf.nn.l2_loss(kernel)")


__getattr__ = module_getattr("layers")
