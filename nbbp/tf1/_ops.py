"""TensorFlow 1's op functions, each defined by how it lowers to nbbp's op table.

``defop("Square", lambda x: x * x)`` says what a ``Square`` op computes, in nbbp
builder calls on nbbp nodes; :func:`tf.square <square>` builds such an op in a
TF graph. Composite ops (``SoftmaxCrossEntropyWithLogits``, ``L2Loss``, …) lower
to several nbbp nodes, so their gradients come from nbbp's autodiff for free.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from ..core import ops as O
from ..errors import BuildError
from ._core import (
    Tensor,
    _const_op,
    _getitem,
    check_name,
    convert_to_tensor,
    get_default_graph,
    graph_of,
    make_op,
)
from ._opdefs import defop
from ._types import (
    DType,
    as_dtype,
    as_shape,
    bool_,
    carrier,
    check_convertible,
    float32,
    float64,
    fully_known,
    infer_dtype,
    int32,
    int64,
    shape_str,
)
from .errors import (
    DTypeError,
    InvalidArgumentError,
    NotSupportedError,
    ShapeError,
    UsageError,
)

# ---------------------------------------------------------------------------
# lowering helpers (nbbp nodes in, nbbp node out)
# ---------------------------------------------------------------------------


def _axes(x, axis) -> list[int | None]:
    """TF's axis argument (None, int or list) → nbbp's one-axis-at-a-time form,
    highest axis first so the lower ones keep their numbers."""
    if axis is None:
        return [None]
    seq = [axis] if np.ndim(axis) == 0 else list(np.ravel(axis))
    for a in seq:
        if not -x.ndim <= int(a) < builtins.max(x.ndim, 1):
            raise BuildError(f"axis {int(a)} is out of range for a tensor of shape {x.shape}")
    return sorted({int(a) % x.ndim for a in seq}, reverse=True)


def _reducer(fn):
    """TF's reduction over ``axis`` (None, an int or a list). Several axes are merged
    into one first, so ``reduce_max`` splits its gradient among all tied elements of
    the reduced block, as TF 1 does (not among the ties of one axis at a time)."""
    def lower(x, axis=None, keepdims=False):
        axes = _axes(x, axis)
        if len(axes) == 1:
            return fn(x, axis=axes[0], keepdims=keepdims)
        red = sorted(axes)
        keep = [i for i in builtins.range(x.ndim) if i not in red]
        perm = tuple(keep + red)
        xt = O.transpose(x, perm) if perm != tuple(builtins.range(x.ndim)) else x
        n = int(np.prod([x.shape[i] for i in red]))
        merged = O.reshape(xt, tuple(x.shape[i] for i in keep) + (n,))
        out = fn(merged, axis=len(keep), keepdims=False)
        if keepdims:
            out = O.reshape(out, tuple(1 if i in red else d for i, d in enumerate(x.shape)))
        return out
    return lower


def _maximum(a, b):
    """TF's Maximum: ``a < b ? b : a`` (Eigen's), whose gradient goes to a where
    a ≥ b — all of it at a tie, as TF 1's gradient does (nbbp's own maximum splits
    it in half)."""
    return O.where(O.lt(a, b), b, a)


def _minimum(a, b):
    """TF's Minimum: ``b < a ? b : a``; the gradient goes to a where a ≤ b."""
    return O.where(O.lt(b, a), b, a)


def _log1p(x):
    """log(1 + x), accurate for tiny x: log(u)·x/(u − 1) with u = 1 + x (Goldberg's
    correction), x itself where 1 + x rounds to 1."""
    u = 1.0 + x
    d = u - 1.0
    tiny = O.eq(d, 0.0)
    safe = O.where(tiny, _scalar(x, 1.0), d)
    return O.where(tiny, x, O.log(u) * (x / safe))


def _elu(x):
    """TF's Elu: exp(x) − 1 below 0, x from 0 up (gradient 1 at 0, as TF's EluGrad)."""
    neg = O.lt(x, 0.0)
    return O.where(neg, O.exp(O.where(neg, x, _scalar(x, 0.0))) - 1.0, x)


def _relu6(x):
    """min(max(x, 0), 6) with TF's gradient: 1 where 0 < x < 6, else 0."""
    return O.where(O.gt(x, 0.0), O.where(O.lt(x, 6.0), x, _scalar(x, 6.0)), _scalar(x, 0.0))


def _matmul(a, b, transpose_a=False, transpose_b=False, batch=False):
    """TF 1.15's MatMul (matrices) and BatchMatMulV2 (stacks of matrices, the leading
    axes broadcast as NumPy's): nbbp's matmul, which takes both."""
    if a.ndim < 2 or b.ndim < 2 or (not batch and (a.ndim != 2 or b.ndim != 2)):
        bad = a if a.ndim < 2 or (not batch and a.ndim != 2) else b
        rank = "at least rank 2" if batch else "rank 2"
        raise BuildError(f"Shape must be {rank} but is rank {bad.ndim} for "
                         f"'{'BatchMatMulV2' if batch else 'MatMul'}' with input shapes: "
                         f"{list(a.shape)}, {list(b.shape)}; tf.matmul takes matrices (or "
                         "stacks of them): reshape a vector v to [1, n] or [n, 1]")
    a = _swap_last(a) if transpose_a else a
    b = _swap_last(b) if transpose_b else b
    return O.matmul(a, b)


def _swap_last(x):
    """``x`` with its last two axes swapped (a matrix transposed, or each of a stack)."""
    perm = tuple(builtins.range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return O.transpose(x, perm)


def _logsumexp(x, axis=None, keepdims=False):
    m = x
    for a in _axes(x, axis):
        m = O.max(m, axis=a, keepdims=True)
    m = O.stop_gradient(m)
    s = O.exp(x - m)
    for a in _axes(x, axis):
        s = O.sum(s, axis=a, keepdims=True)
    out = O.log(s) + m
    if not keepdims:
        shape = tuple(d for i, d in enumerate(x.shape) if axis is not None
                      and i not in _axes(x, axis))
        out = O.reshape(out, shape)
    return out


def _expand_dims(x, axis):
    axis = int(axis)
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise BuildError(f"expand_dims: axis {axis} is out of range for shape {x.shape}")
    axis %= x.ndim + 1
    return O.reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def _squeeze(x, axis=None):
    if axis is None:
        keep = [d for d in x.shape if d != 1]
    else:
        drop = {int(a) % builtins.max(x.ndim, 1) for a in np.ravel(axis)}
        for a in drop:
            if x.shape[a] != 1:
                raise BuildError(f"Can not squeeze dim[{a}], expected a dimension of 1, got "
                                 f"{x.shape[a]} (shape {x.shape})")
        keep = [d for i, d in enumerate(x.shape) if i not in drop]
    return O.reshape(x, tuple(keep))


def _softmax_xent(labels, logits, axis=-1):
    return -O.sum(labels * O.log_softmax(logits, axis=axis), axis=axis)


def _sigmoid_xent(labels, logits):
    # TF's stable form max(x, 0) - x*z + log(1 + exp(-|x|)), with max and |x| written
    # as where(x >= 0, …) as TF does, so the gradient at x = 0 is sigmoid(0) - z
    pos = logits >= 0.0
    relu_logits = O.where(pos, logits, 0.0)
    neg_abs_logits = O.where(pos, -logits, logits)
    return relu_logits - logits * labels + O.softplus(neg_abs_logits)


def _bias_add(x, b):
    """TF's BiasAdd: ``b`` (a vector) added along the last axis of ``x`` (rank ≥ 2)."""
    if x.ndim < 2:
        raise BuildError(f"Shape must be at least rank 2 but is rank {x.ndim} (value "
                         f"{list(x.shape)}); tf.nn.bias_add adds a bias to each row of a "
                         "matrix or each pixel of an image")
    if b.ndim != 1:
        raise BuildError(f"Shape must be rank 1 but is rank {b.ndim} (bias {list(b.shape)}); "
                         "the bias is a vector, one value per channel")
    if b.shape[0] != x.shape[-1]:
        raise BuildError(f"Dimensions must be equal, but are {x.shape[-1]} and {b.shape[0]} "
                         f"(input shapes: {list(x.shape)}, {list(b.shape)}); the bias needs "
                         "one value per entry of the last axis")
    return x + b


def _sparse_xent(labels, logits):
    """−log_softmax(logits)[…, labels]: the log-probability each row gives its integer
    label, picked with the mask ``labels == [0, 1, …, C−1]``."""
    lead, classes = logits.shape[:-1], logits.shape[-1] if logits.ndim else 0
    if labels.ndim != logits.ndim - 1:
        raise BuildError(f"Rank mismatch: Rank of labels (received {labels.ndim}) should "
                         f"equal rank of logits minus 1 (received {logits.ndim}); labels are "
                         "class indices, one per row of logits (not one-hot rows)")
    if labels.shape != lead:
        raise BuildError(f"Shape mismatch: The shape of labels (received {labels.shape}) "
                         "should equal the shape of logits except for the last dimension "
                         f"(received {logits.shape}).")
    ref = labels.graph.add_node("const", shape=(classes,),
                                value=np.arange(classes, dtype=labels.dtype), dtype=labels.dtype)
    hot = O.eq(O.reshape(labels, lead + (1,)), ref)
    picked = O.where(hot, O.log_softmax(logits, axis=-1), _scalar(logits, 0.0))
    return -O.sum(picked, axis=-1)


def _check_labels(op, labels, logits) -> None:
    """TF 1's CPU kernel refuses a label outside ``[0, classes)`` (a GPU gives NaN)."""
    classes = logits.shape[-1]
    bad = labels[(labels < 0) | (labels >= classes)]
    if bad.size:
        shown = " ".join(str(int(v)) for v in labels.ravel()[:10])
        raise InvalidArgumentError(
            f"Received a label value of {int(bad[0])} which is outside the valid range of "
            f"[0, {classes}).  Label values: {shown} (in {op.name!r}); labels are class "
            f"indices 0..{classes - 1}")


def _scalar(like, value: float):
    """A scalar const of the dtype of node ``like``, in its graph."""
    return like.graph.add_node("const", shape=(), value=np.array(value, dtype=like.dtype),
                               dtype=like.dtype)


def _add_n(*xs):
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


# ---------------------------------------------------------------------------
# the op types, with TF 1's dtype rules (see _opdefs.OpDef)
# ---------------------------------------------------------------------------
def _convert(x, dtype: str):
    """Node ``x`` as nbbp dtype ``dtype`` (nbbp's ``cast``), or ``x`` if it is one."""
    return x if x.dtype == dtype else O.cast(x, dtype)


def _cast(x, DstT):
    """TF's Cast is nbbp's: floats round to nearest, float → integer truncates toward
    zero, anything → bool is x != 0, bool → number 0 or 1."""
    return _convert(x, carrier(DstT))


def _arg(fn, x, axis=0, output_type=None):
    """TF's ArgMax/ArgMin: the first index of the largest (smallest) value along
    ``axis``, of ``output_type``."""
    a = int(axis) % builtins.max(x.ndim, 1)
    return _convert(fn(x, axis=a), carrier(output_type))


def _one_hot(indices, depth, on_value=1.0, off_value=0.0, axis=-1, dtype=float32):
    a = indices.ndim if axis == -1 else int(axis)
    idx = O.reshape(indices, indices.shape[:a] + (1,) + indices.shape[a:])
    ref = idx.graph.add_node("const", shape=(depth,), value=np.arange(depth),
                             dtype=idx.dtype)
    shape = tuple(depth if i == a else 1 for i in builtins.range(idx.ndim))
    hit = O.eq(idx, O.reshape(ref, shape))
    on = idx.graph.add_node("const", value=np.array(on_value), dtype=carrier(dtype))
    off = idx.graph.add_node("const", value=np.array(off_value), dtype=carrier(dtype))
    return _convert(O.where(hit, on, off), carrier(dtype))


def _shape_of(x, out_type=None):
    return x.graph.add_node("const", shape=(x.ndim,), value=np.array(x.shape),
                            dtype=carrier(out_type))


def _size_of(x, out_type=None):
    return x.graph.add_node("const", value=np.array(x.size), dtype=carrier(out_type))


def _select(c, a, b):
    return O.where(c, a, b)


def _gather(params, indices, axis=0):
    if indices.op != "const":        # run-time indices (a placeholder, an argmax): take
        return O.gather(params, indices, axis=int(axis))
    return O.gather(params, indices.value.astype(np.int64), axis=int(axis))


def _floor_op(name: str):
    def lower(a, b):
        return O.FUNCTIONS[name](a, b)
    return lower


_F, _FI, _FIB, _B, _I = "f", "fi", "fib", "b", "i"
_BOOL = lambda T, attrs: bool_                                        # noqa: E731
for _type, _fn in [("Add", O.add), ("Sub", O.sub), ("Mul", O.mul), ("Pow", O.pow),
                   ("Maximum", _maximum), ("Minimum", _minimum)]:
    defop(_type, _fn, allowed=_FI)
defop("RealDiv", O.div, allowed=_F)
defop("FloorDiv", _floor_op("floordiv"), allowed=_FI, grad_args=())
defop("FloorMod", _floor_op("mod"), allowed=_FI, grad_args=())
for _type, _fn in [("Greater", O.gt), ("GreaterEqual", O.ge), ("Less", O.lt),
                   ("LessEqual", O.le)]:
    defop(_type, _fn, grad_args=(), allowed=_FI, out=_BOOL)
defop("Equal", O.eq, grad_args=(), out=_BOOL)
defop("NotEqual", O.not_equal, grad_args=(), out=_BOOL)
defop("LogicalAnd", O.logical_and, grad_args=(), allowed=_B)
defop("LogicalOr", O.logical_or, grad_args=(), allowed=_B)
defop("LogicalNot", O.logical_not, grad_args=(), allowed=_B)
for _type, _fn in [("Neg", O.neg), ("Abs", O.abs), ("Relu", O.relu)]:
    defop(_type, _fn, allowed=_FI)
for _type, _fn in [("Sqrt", O.sqrt), ("Exp", O.exp), ("Log", O.log), ("Sin", O.sin),
                   ("Cos", O.cos), ("Tanh", O.tanh), ("Sigmoid", O.sigmoid),
                   ("Softplus", O.softplus)]:
    defop(_type, _fn, allowed=_F)
defop("Sign", O.sign, grad_args=(), allowed=_FI)
defop("StopGradient", O.stop_gradient, grad_args=())
defop("ZerosLike", lambda x: O.broadcast_to(_scalar(x, 0.0), x.shape), grad_args=())
defop("OnesLike", lambda x: O.broadcast_to(_scalar(x, 1.0), x.shape), grad_args=())
defop("Square", lambda x: x * x, allowed=_FI)
defop("Rsqrt", lambda x: 1.0 / O.sqrt(x), allowed=_F)
defop("Reciprocal", lambda x: 1.0 / x, allowed=_F)
defop("Log1p", _log1p, allowed=_F)
defop("SquaredDifference", lambda a, b: (a - b) * (a - b), allowed=_FI)
defop("Relu6", _relu6, allowed=_FI)
defop("Elu", _elu, allowed=_F)
defop("LeakyRelu", lambda x, alpha=0.2: O.leaky_relu(x, alpha), allowed=_F)
defop("Identity", lambda x: x)
defop("Cast", _cast, out=lambda T, attrs: attrs["DstT"],
      grad_args=None)
defop("MatMul", _matmul, allowed=_FI)
defop("BatchMatMulV2", lambda a, b, transpose_a=False, transpose_b=False: _matmul(
    a, b, transpose_a, transpose_b, batch=True), allowed=_FI)
defop("Sum", _reducer(O.sum), allowed=_FI)
defop("Prod", _reducer(O.prod), allowed=_FI)
defop("Mean", _reducer(O.mean), allowed=_FI)
defop("Max", _reducer(O.max), allowed=_FI)
defop("Min", _reducer(O.min), allowed=_FI)
defop("Any", _reducer(O.any), allowed=_B, grad_args=())
defop("All", _reducer(O.all), allowed=_B, grad_args=())
defop("ReduceLogSumExp", _logsumexp, allowed=_F)
defop("ArgMax", lambda x, axis=0, output_type=None: _arg(O.argmax, x, axis, output_type),
      allowed=_FI, out=lambda T, attrs: attrs["output_type"], grad_args=())
defop("ArgMin", lambda x, axis=0, output_type=None: _arg(O.argmin, x, axis, output_type),
      allowed=_FI, out=lambda T, attrs: attrs["output_type"], grad_args=())
defop("OneHot", _one_hot, allowed=_I, out=lambda T, attrs: attrs["dtype"], grad_args=())
defop("Shape", _shape_of, out=lambda T, attrs: attrs["out_type"], grad_args=())
defop("Size", _size_of, out=lambda T, attrs: attrs["out_type"], grad_args=())
defop("Transpose", lambda x, perm=None: O.transpose(x, None if perm is None else tuple(perm)))
defop("Reshape", lambda x, shape: O.reshape(x, tuple(shape)))
defop("ExpandDims", _expand_dims)
defop("Squeeze", _squeeze)
defop("StridedSlice", lambda x, index: O.getitem(x, index))
defop("ConcatV2", lambda *xs, axis=0: O.concat(list(xs), axis=axis))
defop("Pack", lambda *xs, axis=0: O.stack(list(xs), axis=axis))
defop("Tile", lambda x, multiples: O.tile(x, tuple(multiples)))
defop("Pad", lambda x, paddings, constant_values=0: O.pad(
    x, paddings, O.stop_gradient(_scalar(x, constant_values))))
defop("GatherV2", _gather, same=(0,), other=(_I,), grad_args=(0,))
defop("Select", _select, grad_args=(1, 2), same=(1, 2), other=(bool_,))
defop("AddN", _add_n, allowed=_FI)
defop("L2Loss", lambda x: O.sum(x * x) * 0.5, allowed=_F)
defop("BiasAdd", lambda x, b: _bias_add(x, b), allowed=_FI)
defop("Softmax", lambda x, axis=-1: O.softmax(x, axis=axis), allowed=_F)
defop("LogSoftmax", lambda x, axis=-1: O.log_softmax(x, axis=axis), allowed=_F)
# v1 lets no gradient into the labels (TF 1's documented behaviour); v2 does
defop("SoftmaxCrossEntropyWithLogits",
      lambda labels, logits, axis=-1: _softmax_xent(O.stop_gradient(labels), logits, axis),
      grad_args=(1,), allowed=_F)
defop("SoftmaxCrossEntropyWithLogitsV2", _softmax_xent, allowed=_F)
defop("SigmoidCrossEntropyWithLogits", _sigmoid_xent, allowed=_F)
defop("SparseSoftmaxCrossEntropyWithLogits", lambda labels, logits: _sparse_xent(labels, logits),
      grad_args=(1,), same=(1,), other=(_I,), allowed=_F,
      check=lambda op, labels, logits: _check_labels(op, labels, logits))
defop("Conv2D", lambda x, w, strides, padding, dilations: O.conv2d(
    x, w, strides=strides, padding=padding, dilation=dilations), allowed=_F)
defop("MaxPool", lambda x, ksize, strides, padding: O.max_pool(
    x, ksize=ksize, strides=strides, padding=padding), allowed=_F)
defop("AvgPool", lambda x, ksize, strides, padding: O.avg_pool(
    x, ksize=ksize, strides=strides, padding=padding), allowed=_F)


# ---------------------------------------------------------------------------
# leaves: constants, placeholders, random tensors
# ---------------------------------------------------------------------------


def _full(shape: Any, fill: Any, name: str, what: str, dtype: Any) -> Tensor:
    s = as_shape(shape, what)
    if not fully_known(s):
        raise UsageError(f"{what}: the shape must be fully known, got {shape!r}")
    dt = as_dtype(dtype, f"{what}(dtype)")
    return _const_op(np.full(s, fill, dtype=dt.name), name, dt)


def zeros(shape: Any, dtype: Any = float32, name: str | None = None) -> Tensor:
    """A constant of zeros (float32 unless ``dtype`` says otherwise)."""
    return _full(shape, 0, name or "zeros", "tf.zeros", dtype)


def ones(shape: Any, dtype: Any = float32, name: str | None = None) -> Tensor:
    """A constant of ones (float32 unless ``dtype`` says otherwise)."""
    return _full(shape, 1, name or "ones", "tf.ones", dtype)


def fill(dims: Any, value: Any, name: str | None = None) -> Tensor:
    """A constant of ``value`` everywhere, of ``value``'s dtype (``2.0`` float32)."""
    dt = value.dtype if isinstance(value, Tensor) else infer_dtype(value)
    if isinstance(value, Tensor):
        raise UsageError("tf.fill: nbbp.tf1 needs the value as a number, not a tensor")
    return _full(dims, value, name or "Fill", "tf.fill", dt)


def eye(num_rows: int, num_columns: int | None = None, dtype: Any = float32,
        name: str | None = None) -> Tensor:
    dt = as_dtype(dtype, "tf.eye(dtype)")
    return _const_op(np.eye(num_rows, num_columns, dtype=dt.name), name or "eye", dt)


def range(start: Any, limit: Any = None, delta: Any = 1, dtype: Any = None,
          name: str = "range") -> Tensor:
    """``start, start + delta, …`` below ``limit``: int32 for whole numbers, float32
    if any is a float (TF 1's inference), or ``dtype``."""
    if limit is None:
        start, limit = 0, start
    dt = as_dtype(dtype, "tf.range(dtype)") if dtype is not None else \
        infer_dtype([start, limit, delta])
    return _const_op(np.arange(start, limit, delta).astype(dt.name), name, dt)


def linspace(start: float, stop: float, num: int, name: str | None = None) -> Tensor:
    dt = infer_dtype([start, stop])
    if not dt.is_floating:
        raise DTypeError(f"Value passed to parameter 'start' has DataType {dt.name} not in "
                         "list of allowed values: bfloat16, float32, float64")
    return _const_op(np.linspace(start, stop, int(num)).astype(dt.name), name or "LinSpace",
                     dt)


def placeholder(dtype: Any, shape: Any = None, name: str | None = None) -> Tensor:
    """A tensor whose value every run must feed: ``sess.run(y, feed_dict={x: ...})``.

    ``shape=None`` accepts any shape; ``[None, 2]`` any number of rows of 2.
    """
    dt = as_dtype(dtype, "tf.placeholder(dtype)")
    if dt.kind == "s":
        raise NotSupportedError("tf.placeholder(tf.string) is not supported by nbbp.tf1: it "
                                "has string constants (tf.constant(b'...')) and "
                                "tf.identity, no string inputs or ops; feed numbers")
    s = as_shape(shape, "tf.placeholder(shape=...)")
    g = get_default_graph()
    full = g.unique_name(check_name(name or "Placeholder", "placeholder name"))
    return g._add_op("Placeholder", (), {"dtype": dt, "shape": s}, full, s,
                     dtype=dt).outputs[0]


def _random(type: str, shape: Any, attrs: dict, seed: int | None, name: str,
            what: str, dtype: Any) -> Tensor:
    s = as_shape(shape, what)
    if not fully_known(s):
        raise UsageError(f"{what}: the shape must be fully known, got {shape!r}")
    dt = as_dtype(dtype, f"{what}(dtype)")
    if not dt.is_floating:
        raise DTypeError(f"Value passed to parameter 'dtype' has DataType {dt.name} not in "
                         "list of allowed values: half, bfloat16, float32, float64")
    g = get_default_graph()
    full = g.unique_name(check_name(name, f"{what} name"))
    attrs = dict(attrs, seed=None if seed is None else int(seed), dtype=dt)
    return g._add_op(type, (), attrs, full, s, dtype=dt).outputs[0]


def random_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = float32,
                  seed: int | None = None, name: str | None = None) -> Tensor:
    """Normal samples, drawn anew at every run (seeded: see :func:`set_random_seed`)."""
    return _random("RandomStandardNormal", shape, dict(mean=float(mean), stddev=float(stddev)),
                   seed, name or "random_normal", "tf.random_normal", dtype)


def truncated_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = float32,
                     seed: int | None = None, name: str | None = None) -> Tensor:
    """Normal samples redrawn until within two standard deviations of the mean."""
    return _random("TruncatedNormal", shape, dict(mean=float(mean), stddev=float(stddev)),
                   seed, name or "truncated_normal", "tf.truncated_normal", dtype)


DEFAULT_GRAPH_SEED = 87654321     # TF 1's graph seed when only an op seed is set


def random_uniform(shape: Any, minval: float = 0.0, maxval: float | None = None,
                   dtype: Any = float32, seed: int | None = None,
                   name: str | None = None) -> Tensor:
    """Uniform samples in ``[minval, maxval)``, drawn anew at every run of the op.

    ``shape`` is a list of sizes, or ``tf.shape(x)`` (the draw then has x's shape at
    each run, so a fed batch of any size works). The numbers are the core's
    counter-based ``random_uniform``: a hash of (seed, how many times this session has
    run the op, the element's index), the seed made from the graph seed
    (:func:`set_random_seed`) and ``seed`` by TF 1's rules.
    """
    what = "tf.random_uniform"
    dt = as_dtype(dtype, f"{what}(dtype)")
    if not dt.is_floating:
        raise DTypeError(f"{what}: dtype {dt.name} is not supported by nbbp.tf1 (integer "
                         "uniform numbers are not); use tf.float32 or tf.float64")
    g = graph_of([shape], what)
    if isinstance(shape, Tensor):
        if shape.op.type != "Shape":
            raise UsageError(f"{what}: a shape computed in the graph ({shape.name}) is not "
                             "supported by nbbp.tf1, except tf.shape(x); pass a list of "
                             "sizes or tf.shape(x)")
        inputs, s = (shape.op.inputs[0],), shape.op.inputs[0]._shape
    else:
        inputs, s = (), as_shape(shape, what)
        if not fully_known(s):
            raise UsageError(f"{what}: the shape must be fully known, got {shape!r}; for "
                             "a shape known at run time pass tf.shape(x)")
    hi = 1.0 if maxval is None else float(maxval)
    full = g.unique_name(check_name(name or "random_uniform", f"{what} name"))
    seeds = _seeds(g, seed)
    attrs = dict(minval=float(minval), maxval=hi, seed=None if seed is None else int(seed),
                 seeds=seeds, core_seed=_core_seed(seeds), dtype=dt)
    return g._add_op("RandomUniform", inputs, attrs, full, s, dtype=dt).outputs[0]


def _seeds(g: Any, seed: int | None) -> tuple[int, int]:
    """TF 1's ``random_seed.get_seed``: (graph seed, op seed). With a graph seed and no
    op seed the op seed is the number of ops so far; with only an op seed the graph seed
    is 87654321. With neither TF 1 draws at random; nbbp.tf1 uses (87654321, ops so
    far), so runs repeat."""
    gs = DEFAULT_GRAPH_SEED if g.seed is None else int(g.seed)
    return gs, len(g._ops) if seed is None else int(seed)


def _core_seed(seeds: tuple[int, int]) -> int:
    """One seed for the core's ``random_uniform`` (0..2⁶³−1) from TF's two."""
    hi, lo = np.random.SeedSequence([s % 2**64 for s in seeds]).generate_state(2)
    return (int(hi) << 31 | int(lo) >> 1) & (2**63 - 1)


def set_random_seed(seed: int | None) -> None:
    """Set the default graph's seed: random ops without their own seed derive one
    from it and their position in the graph, so runs repeat exactly."""
    get_default_graph().seed = None if seed is None else int(seed)


# ---------------------------------------------------------------------------
# math
# ---------------------------------------------------------------------------


def _bin(type: str, default: str, public: str):
    def fn(x: Any, y: Any, name: str | None = None) -> Tensor:
        return make_op(type, [x, y], name=name or default, arg_names=("x", "y"))
    fn.__name__ = fn.__qualname__ = public
    fn.__doc__ = f"Elementwise ``{type}`` with broadcasting."
    return fn


def _un(type: str, public: str, default: str | None = None):
    def fn(x: Any, name: str | None = None) -> Tensor:
        return make_op(type, [x], name=name or default or type)
    fn.__name__ = fn.__qualname__ = public
    fn.__doc__ = f"Elementwise ``{type}``."
    return fn


add = _bin("Add", "Add", "add")
subtract = _bin("Sub", "Sub", "subtract")
multiply = _bin("Mul", "Mul", "multiply")
realdiv = _bin("RealDiv", "RealDiv", "realdiv")
floordiv = _bin("FloorDiv", "floordiv", "floordiv")
floormod = _bin("FloorMod", "FloorMod", "floormod")
mod = floormod
pow = _bin("Pow", "Pow", "pow")
logical_and = _bin("LogicalAnd", "LogicalAnd", "logical_and")
logical_or = _bin("LogicalOr", "LogicalOr", "logical_or")
maximum = _bin("Maximum", "Maximum", "maximum")
minimum = _bin("Minimum", "Minimum", "minimum")
squared_difference = _bin("SquaredDifference", "SquaredDifference", "squared_difference")
greater = _bin("Greater", "Greater", "greater")
greater_equal = _bin("GreaterEqual", "GreaterEqual", "greater_equal")
less = _bin("Less", "Less", "less")
less_equal = _bin("LessEqual", "LessEqual", "less_equal")
equal = _bin("Equal", "Equal", "equal")
not_equal = _bin("NotEqual", "NotEqual", "not_equal")
negative = _un("Neg", "negative")
logical_not = _un("LogicalNot", "logical_not")
abs = _un("Abs", "abs")
sign = _un("Sign", "sign")
square = _un("Square", "square")
sqrt = _un("Sqrt", "sqrt")
rsqrt = _un("Rsqrt", "rsqrt")
reciprocal = _un("Reciprocal", "reciprocal")
exp = _un("Exp", "exp")
log = _un("Log", "log")
log1p = _un("Log1p", "log1p")
sin = _un("Sin", "sin")
cos = _un("Cos", "cos")
tanh = _un("Tanh", "tanh")
sigmoid = _un("Sigmoid", "sigmoid")
identity = _un("Identity", "identity")
stop_gradient = _un("StopGradient", "stop_gradient")
zeros_like = _un("ZerosLike", "zeros_like", "zeros_like")
ones_like = _un("OnesLike", "ones_like", "ones_like")

def _div_operands(x: Any, y: Any, operator: bool) -> tuple[Tensor, Tensor]:
    """TF 1's ``truediv``/``div`` operands: x converted on its own (for an operator,
    to the tensor's dtype), y to x's dtype; both must have one dtype."""
    if operator and not isinstance(x, Tensor) and isinstance(y, Tensor):
        check_convertible(x, y.dtype)
        x = convert_to_tensor(x, dtype=y.dtype, name="x")
    x = convert_to_tensor(x, name="x")
    if not isinstance(y, Tensor):
        check_convertible(y, x.dtype)
        y = convert_to_tensor(y, dtype=x.dtype, name="y")
    if x.dtype is not y.dtype:
        raise DTypeError(f"x and y must have the same dtype, got {x.dtype!r} != {y.dtype!r}")
    return x, y


def _division(x: Any, y: Any, name: str, operator: bool, integers: str) -> Tensor:
    """``RealDiv`` of x and y, named ``name`` (its operands' consts and casts under
    ``name/``); integers are cast to float64 first (``integers="cast"``, TF 1's
    truediv) or floor-divided (``"floor"``, TF 1's div)."""
    g = graph_of([x, y], f"tf.{name}")
    full = g.unique_name(check_name(name, "division name"))
    start = len(g._ops)
    try:
        with g.as_default(), g._absolute_scope(full):
            x, y = _div_operands(x, y, operator)
            if x.dtype.is_integer and integers == "cast":
                x, y = cast(x, float64, name="Cast"), cast(y, float64, name="Cast_1")
        if x.dtype.is_integer:
            return make_op("FloorDiv", [x, y], exact_name=full)
        return make_op("RealDiv", [x, y], exact_name=full)
    except BaseException:
        g._truncate(start)
        raise


def _truediv(x: Any, y: Any, name: str | None = None, operator: bool = False) -> Tensor:
    return _division(x, y, name or "truediv", operator, "cast")


def truediv(x: Any, y: Any, name: str | None = None) -> Tensor:
    """x / y in floating point: integers are cast to float64 first (TF 1's rule), so
    ``truediv(7, 2)`` of int32 tensors is the float64 3.5."""
    return _truediv(x, y, name)


def divide(x: Any, y: Any, name: str | None = None) -> Tensor:
    """``x / y`` (TF 1's ``tf.divide`` is the ``/`` operator)."""
    return _truediv(x, y, name, operator=True)


def div(x: Any, y: Any, name: str | None = None) -> Tensor:
    """TF 1's Python-2 division: floating x / y for floats, ``floordiv`` for integers
    (``div(-7, 2)`` of int32 is -4)."""
    return _division(x, y, name or "div", False, "floor")


def matmul(a: Any, b: Any, transpose_a: bool = False, transpose_b: bool = False,
           name: str | None = None) -> Tensor:
    """Matrix product of two matrices, optionally transposed; of stacks of matrices
    (rank 3 or 4, the leading axes broadcast) as TF 1.15's ``BatchMatMulV2``.

    >>> import nbbp.tf1 as tf, numpy as np
    >>> with tf.Graph().as_default():
    ...     y = tf.matmul(tf.ones([2, 3, 4]), tf.ones([4, 5]))
    ...     print(y, tf.Session().run(y)[1, 2, 3])
    Tensor("MatMul:0", shape=(2, 3, 5), dtype=float32) 4.0
    """
    ranks = [t._shape for t in (a, b) if isinstance(t, Tensor)] + [
        np.shape(t) for t in (a, b) if not isinstance(t, Tensor)]
    batch = any(r is None or len(r) > 2 for r in ranks)
    return make_op("BatchMatMulV2" if batch else "MatMul", [a, b],
                   dict(transpose_a=bool(transpose_a), transpose_b=bool(transpose_b)),
                   name=name or "MatMul", arg_names=("a", "b"))


def _reduce_fn(type: str, what: str):
    def fn(input_tensor: Any, axis: Any = None, keepdims: bool | None = None,
           name: str | None = None, reduction_indices: Any = None,
           keep_dims: bool | None = None) -> Tensor:
        if axis is None:
            axis = reduction_indices
        keep = bool(keepdims if keepdims is not None else keep_dims)
        if isinstance(axis, Tensor):
            raise UsageError(f"tf.{fn.__name__}: axis must be an int or a list of ints, not "
                             "a tensor")
        ax = None if axis is None else (int(axis) if np.ndim(axis) == 0
                                        else tuple(int(a) for a in np.ravel(axis)))
        return make_op(type, [input_tensor], dict(axis=ax, keepdims=keep), name=name or type,
                       arg_names=("input",))
    fn.__doc__ = f"The {what} over ``axis`` (None: all axes; an int or a list of ints)."
    return fn


reduce_sum = _reduce_fn("Sum", "sum")
reduce_mean = _reduce_fn("Mean", "mean")
reduce_max = _reduce_fn("Max", "maximum")
reduce_min = _reduce_fn("Min", "minimum")
reduce_logsumexp = _reduce_fn("ReduceLogSumExp", "log of the sum of exponentials")
reduce_prod = _reduce_fn("Prod", "product")
reduce_any = _reduce_fn("Any", "logical or")
reduce_all = _reduce_fn("All", "logical and")
for _f, _n in [(reduce_sum, "reduce_sum"), (reduce_mean, "reduce_mean"),
               (reduce_max, "reduce_max"), (reduce_min, "reduce_min"),
               (reduce_logsumexp, "reduce_logsumexp"), (reduce_prod, "reduce_prod"),
               (reduce_any, "reduce_any"), (reduce_all, "reduce_all")]:
    _f.__name__ = _f.__qualname__ = _n


def add_n(inputs: list, name: str | None = None) -> Tensor:
    """The sum of a list of tensors of the same shape."""
    if not inputs:
        raise UsageError("tf.add_n needs a non-empty list of tensors")
    return make_op("AddN", list(inputs), name=name or "AddN")


def transpose(a: Any, perm: Any = None, name: str = "transpose") -> Tensor:
    return make_op("Transpose", [a], dict(perm=None if perm is None else
                                          tuple(int(p) for p in perm)), name=name)


def reshape(tensor: Any, shape: Any, name: str | None = None) -> Tensor:
    """Lay the values out in a new shape; one size may be -1 (inferred)."""
    if isinstance(shape, Tensor):
        raise UsageError("tf.reshape: nbbp.tf1 needs the shape as a list of ints, not a "
                         "tensor")
    dims = tuple(int(d) for d in np.ravel(shape))
    return make_op("Reshape", [tensor], dict(shape=dims), name=name or "Reshape")


def expand_dims(input: Any, axis: int, name: str | None = None) -> Tensor:
    return make_op("ExpandDims", [input], dict(axis=int(axis)), name=name or "ExpandDims")


def squeeze(input: Any, axis: Any = None, name: str | None = None) -> Tensor:
    return make_op("Squeeze", [input], dict(axis=axis), name=name or "Squeeze")


def where(condition: Any, x: Any = None, y: Any = None, name: str | None = None) -> Tensor:
    """``x`` where the bool ``condition`` is true, else ``y``."""
    if x is None or y is None:
        raise UsageError("tf.where(condition) without x and y (the indices of true "
                         "elements) is not supported by nbbp.tf1; pass x and y")
    return make_op("Select", [condition, x, y], name=name or "Select",
                   arg_names=("condition", "x", "y"))


def cast(x: Any, dtype: Any, name: str | None = None) -> Tensor:
    """``x`` as ``dtype``: float32 ↔ float64 rounds to the nearest, bool → number is
    0 or 1, a number → bool is ``x != 0``; float → integer truncates toward zero."""
    dt: DType = as_dtype(dtype, "tf.cast(dtype)")
    g = graph_of([x], "tf.cast")
    with g.as_default():
        x = convert_to_tensor(x, name="x")
    if x.dtype is dt:
        return x                   # TF 1's cast returns its input for the same dtype
    if dt.is_integer and x.dtype.is_floating and "cast" not in O.FUNCTIONS:
        raise NotSupportedError(
            f"tf.cast from {x.dtype.name} to {dt.name} is not supported by nbbp.tf1 yet: "
            "truncating toward zero needs the integer cast of nbbp's core (it comes with "
            "the core's integer dtypes); round the fetched array with numpy")
    return make_op("Cast", [x], dict(DstT=dt), name=name or "Cast")


def to_float(x: Any, name: str = "ToFloat") -> Tensor:
    """``cast(x, tf.float32)``."""
    return cast(x, float32, name=name)


def to_double(x: Any, name: str = "ToDouble") -> Tensor:
    return cast(x, float64, name=name)


def to_int32(x: Any, name: str = "ToInt32") -> Tensor:
    return cast(x, int32, name=name)


def to_int64(x: Any, name: str = "ToInt64") -> Tensor:
    return cast(x, int64, name=name)


def _argfn(type: str, public: str):
    def fn(input: Any, axis: Any = None, name: str | None = None, dimension: Any = None,
           output_type: Any = int64) -> Tensor:
        if axis is None:
            axis = 0 if dimension is None else dimension
        out = as_dtype(output_type, f"tf.{public}(output_type)")
        if not out.is_integer:
            raise DTypeError(f"Value passed to parameter 'output_type' has DataType "
                             f"{out.name} not in list of allowed values: int32, int64")
        return make_op(type, [input], dict(axis=int(axis), output_type=out),
                       name=name or type, arg_names=("input",))
    fn.__name__ = fn.__qualname__ = public
    fn.__doc__ = (f"The index of the {'largest' if type == 'ArgMax' else 'smallest'} value "
                  "along ``axis`` (int64 unless ``output_type``); the first one on ties.")
    return fn


argmax = _argfn("ArgMax", "argmax")
argmin = _argfn("ArgMin", "argmin")


def one_hot(indices: Any, depth: int, on_value: Any = None, off_value: Any = None,
            axis: int | None = None, dtype: Any = None, name: str | None = None) -> Tensor:
    """``on_value`` (1) at each index along a new axis of size ``depth``, ``off_value``
    (0) elsewhere; float32 unless ``dtype`` or the values say otherwise; an index
    outside ``[0, depth)`` gives a row of ``off_value``, as in TF 1."""
    dt = as_dtype(dtype, "tf.one_hot(dtype)") if dtype is not None else (
        infer_dtype(on_value) if on_value is not None else
        infer_dtype(off_value) if off_value is not None else float32)
    on = 1 if on_value is None else on_value
    off = 0 if off_value is None else off_value
    for v in (on, off):
        check_convertible(v, dt)
    return make_op("OneHot", [indices], dict(depth=int(depth), on_value=on, off_value=off,
                                             axis=-1 if axis is None else int(axis),
                                             dtype=dt),
                   name=name or "one_hot", arg_names=("indices",))


def gather(params: Any, indices: Any, validate_indices: Any = None, name: str | None = None,
           axis: int = 0) -> Tensor:
    """The slices of ``params`` at ``indices`` (ints) along ``axis``."""
    g = graph_of([params, indices], "tf.gather")
    with g.as_default():
        ind = convert_to_tensor(indices, name="indices")
    bad = ind.op.attrs["value"] if ind.op.type == "Const" else None
    if ind.dtype.is_integer and bad is not None:
        p = params if isinstance(params, Tensor) else None
        if p is not None and p._shape is not None and p._shape[axis] is not None:
            n = p._shape[axis]
            if bad.size and (bad.min() < 0 or bad.max() >= n):
                i = next(int(v) for v in bad.ravel() if not 0 <= v < n)
                raise InvalidArgumentError(f"indices = {i} is not in [0, {n})")
    return make_op("GatherV2", [params, ind], dict(axis=int(axis)), name=name or "GatherV2",
                   arg_names=("params", "indices"))


def shape(input: Any, name: str | None = None, out_type: Any = int32) -> Tensor:
    """The shape of ``input`` as an int32 vector (known when the run's feeds are)."""
    return make_op("Shape", [input], dict(out_type=as_dtype(out_type)), name=name or "Shape",
                   arg_names=("input",))


def size(input: Any, name: str | None = None, out_type: Any = int32) -> Tensor:
    """The number of elements of ``input`` (int32)."""
    return make_op("Size", [input], dict(out_type=as_dtype(out_type)), name=name or "Size",
                   arg_names=("input",))


def _tensor_list(values: Any, what: str) -> list:
    if isinstance(values, Tensor) or not isinstance(values, (list, tuple)) or not values:
        raise UsageError(f"{what} takes a non-empty list of tensors, got {values!r}")
    return list(values)


def concat(values: Any, axis: int, name: str = "concat") -> Tensor:
    """Join tensors along an existing ``axis``."""
    vs = _tensor_list(values, "tf.concat")
    if len(vs) == 1:
        return identity(vs[0], name=name)
    return make_op("ConcatV2", vs, dict(axis=int(axis)), name=name,
                   arg_names=tuple("values" for _ in vs))


def stack(values: Any, axis: int = 0, name: str = "stack") -> Tensor:
    """Join tensors of one shape along a new ``axis``."""
    vs = _tensor_list(values, "tf.stack")
    return make_op("Pack", vs, dict(axis=int(axis)), name=name,
                   arg_names=tuple("values" for _ in vs))


def unstack(value: Tensor, num: int | None = None, axis: int = 0,
            name: str = "unstack") -> list[Tensor]:
    """The slices of ``value`` along ``axis``, as a list of tensors."""
    s = value._shape
    if s is None or s[axis] is None:
        raise UsageError(f"Cannot infer num from shape {shape_str(s)}; nbbp.tf1 needs the "
                         "size of the axis known when the graph is built")
    lead = (slice(None),) * (axis % len(s))
    g = value.graph
    with g.as_default(), g.name_scope(name):
        return [strided_slice(value, lead + (i,)) for i in builtins.range(s[axis])]


def split(value: Tensor, num_or_size_splits: Any, axis: int = 0,
          name: str = "split") -> list[Tensor]:
    """``value`` cut along ``axis`` into equal parts or parts of the given sizes."""
    s = value._shape
    if s is None or s[axis] is None:
        raise UsageError("tf.split: nbbp.tf1 needs the size of the axis known when the graph "
                         "is built")
    n = s[axis]
    if np.ndim(num_or_size_splits) == 0:
        k = int(num_or_size_splits)
        if k < 1 or n % k:
            raise ShapeError(f"Dimension size must be evenly divisible by {k} but is {n} for "
                             f"'split' (input shape {shape_str(s)})")
        sizes = [n // k] * k
    else:
        sizes = [int(v) for v in num_or_size_splits]
        if builtins.sum(sizes) != n:
            raise ShapeError(f"Determined shape must either match input shape along "
                             f"split_dim exactly if fully specified, or be less than the size "
                             f"of the input along split_dim if not fully specified.  Got: "
                             f"{builtins.sum(sizes)} vs {n}")
    lead = (slice(None),) * (axis % len(s))
    g, out, start = value.graph, [], 0
    with g.as_default(), g.name_scope(name):
        for k in sizes:
            out.append(strided_slice(value, lead + (slice(start, start + k),)))
            start += k
    return out


def tile(input: Any, multiples: Any, name: str | None = None) -> Tensor:
    """``input`` repeated ``multiples[i]`` times along axis ``i``."""
    return make_op("Tile", [input], dict(multiples=tuple(int(m) for m in multiples)),
                   name=name or "Tile", arg_names=("input",))


def pad(tensor: Any, paddings: Any, mode: str = "CONSTANT", name: str | None = None,
        constant_values: Any = 0) -> Tensor:
    """``tensor`` with ``paddings[i] = [before, after]`` values around axis ``i``."""
    if str(mode).upper() != "CONSTANT":
        raise UsageError(f"tf.pad(mode={mode!r}): nbbp.tf1 supports mode='CONSTANT'")
    pads = tuple(tuple(int(v) for v in p) for p in paddings)
    return make_op("Pad", [tensor], dict(paddings=pads, constant_values=constant_values),
                   name=name or "Pad", arg_names=("tensor",))


def strided_slice(x: Tensor, index: Any, name: str = "strided_slice") -> Tensor:
    """``x[index]``: ints, slices (negative and strided), ``None`` (tf.newaxis), ``...``."""
    key = index if isinstance(index, tuple) else (index,)
    for k in key:
        if isinstance(k, Tensor):
            raise UsageError("indexing with a tensor is not supported by nbbp.tf1; index "
                             "with Python ints and slices, or use tf.gather")
        if isinstance(k, slice) and any(isinstance(v, Tensor) for v in
                                        (k.start, k.stop, k.step)):
            raise UsageError("slice bounds must be Python ints in nbbp.tf1")
    return make_op("StridedSlice", [x], dict(index=key), name=name, arg_names=("input",))


def clip_by_value(t: Any, clip_value_min: Any, clip_value_max: Any,
                  name: str | None = None) -> Tensor:
    """min(max(t, clip_value_min), clip_value_max), as TF 1 builds it."""
    g = graph_of([t, clip_value_min, clip_value_max], "tf.clip_by_value")
    with g.as_default(), g.name_scope(name or "clip_by_value"):
        t = convert_to_tensor(t, name="t")
        return maximum(minimum(t, clip_value_max), clip_value_min)


_getitem[:] = [strided_slice, lambda a, b: _truediv(a, b, operator=True)]
