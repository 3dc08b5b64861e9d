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
from ._core import Tensor, _const_op, check_name, get_default_graph, make_op
from ._opdefs import defop
from ._types import DType, as_dtype, as_shape, float32, fully_known
from .errors import UsageError

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
    def lower(x, axis=None, keepdims=False):
        for a in _axes(x, axis):
            x = fn(x, axis=a, keepdims=keepdims)
        return x
    return lower


def _matmul(a, b, transpose_a=False, transpose_b=False):
    if a.ndim != 2 or b.ndim != 2:
        bad = a if a.ndim != 2 else b
        raise BuildError(f"Shape must be rank 2 but is rank {bad.ndim} for 'MatMul' with "
                         f"input shapes: {list(a.shape)}, {list(b.shape)}; tf.matmul takes "
                         "matrices: reshape a vector v to [1, n] or [n, 1]")
    a = O.transpose(a) if transpose_a else a
    b = O.transpose(b) if transpose_b else b
    return O.matmul(a, b)


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


def _scalar(like, value: float):
    """A scalar const in the graph of node ``like``."""
    return like.graph.add_node("const", shape=(), value=np.array(value))


def _add_n(*xs):
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


# ---------------------------------------------------------------------------
# the op types
# ---------------------------------------------------------------------------
for _type, _fn in [("Add", O.add), ("Sub", O.sub), ("Mul", O.mul), ("RealDiv", O.div),
                   ("Pow", O.pow), ("Maximum", O.maximum), ("Minimum", O.minimum)]:
    defop(_type, _fn)
for _type, _fn in [("Greater", O.gt), ("GreaterEqual", O.ge), ("Less", O.lt),
                   ("LessEqual", O.le), ("Equal", O.eq),
                   ("NotEqual", lambda a, b: 1.0 - O.eq(a, b))]:
    defop(_type, _fn, grad_args=())
for _type, _fn in [("Neg", O.neg), ("Abs", O.abs), ("Sqrt", O.sqrt), ("Exp", O.exp),
                   ("Log", O.log), ("Sin", O.sin), ("Cos", O.cos), ("Tanh", O.tanh),
                   ("Sigmoid", O.sigmoid), ("Relu", O.relu), ("Softplus", O.softplus)]:
    defop(_type, _fn)
defop("Sign", O.sign, grad_args=())
defop("StopGradient", O.stop_gradient, grad_args=())
defop("ZerosLike", lambda x: O.broadcast_to(_scalar(x, 0.0), x.shape), grad_args=())
defop("OnesLike", lambda x: O.broadcast_to(_scalar(x, 1.0), x.shape), grad_args=())
defop("Square", lambda x: x * x)
defop("Rsqrt", lambda x: 1.0 / O.sqrt(x))
defop("Reciprocal", lambda x: 1.0 / x)
defop("Log1p", lambda x: O.log(1.0 + x))
defop("SquaredDifference", lambda a, b: (a - b) * (a - b))
defop("Relu6", lambda x: O.minimum(O.relu(x), 6.0))
defop("Elu", lambda x: O.where(x > 0.0, x, O.exp(O.minimum(x, 0.0)) - 1.0))
defop("LeakyRelu", lambda x, alpha=0.2: O.leaky_relu(x, alpha))
defop("Identity", lambda x: x)
defop("Cast", lambda x, dtype=None: x)
defop("MatMul", _matmul)
defop("Sum", _reducer(O.sum))
defop("Mean", _reducer(O.mean))
defop("Max", _reducer(O.max))
defop("Min", _reducer(O.min))
defop("ReduceLogSumExp", _logsumexp)
defop("Transpose", lambda x, perm=None: O.transpose(x, None if perm is None else tuple(perm)))
defop("Reshape", lambda x, shape: O.reshape(x, tuple(shape)))
defop("ExpandDims", _expand_dims)
defop("Squeeze", _squeeze)
defop("Select", O.where, grad_args=(1, 2))
defop("AddN", _add_n)
defop("L2Loss", lambda x: O.sum(x * x) * 0.5)
defop("BiasAdd", lambda x, b: x + b)
defop("Softmax", lambda x, axis=-1: O.softmax(x, axis=axis))
defop("LogSoftmax", lambda x, axis=-1: O.log_softmax(x, axis=axis))
# v1 lets no gradient into the labels (TF 1's documented behaviour); v2 does
defop("SoftmaxCrossEntropyWithLogits",
      lambda labels, logits, axis=-1: _softmax_xent(O.stop_gradient(labels), logits, axis),
      grad_args=(1,))
defop("SoftmaxCrossEntropyWithLogitsV2", _softmax_xent)
defop("SigmoidCrossEntropyWithLogits", _sigmoid_xent)


# ---------------------------------------------------------------------------
# leaves: constants, placeholders, random tensors
# ---------------------------------------------------------------------------


def _full(shape: Any, fill: float, name: str, what: str) -> Tensor:
    s = as_shape(shape, what)
    if not fully_known(s):
        raise UsageError(f"{what}: the shape must be fully known, got {shape!r}")
    return _const_op(np.full(s, float(fill)), name)


def zeros(shape: Any, dtype: Any = float32, name: str | None = None) -> Tensor:
    """A constant of zeros."""
    return _full(shape, 0.0, name or "zeros", "tf.zeros")


def ones(shape: Any, dtype: Any = float32, name: str | None = None) -> Tensor:
    """A constant of ones."""
    return _full(shape, 1.0, name or "ones", "tf.ones")


def fill(dims: Any, value: float, name: str | None = None) -> Tensor:
    """A constant of ``value`` everywhere."""
    return _full(dims, value, name or "Fill", "tf.fill")


def eye(num_rows: int, num_columns: int | None = None, dtype: Any = float32,
        name: str | None = None) -> Tensor:
    return _const_op(np.eye(num_rows, num_columns), name or "eye")


def range(start: float, limit: float | None = None, delta: float = 1,
          dtype: Any = None, name: str = "range") -> Tensor:
    if limit is None:
        start, limit = 0, start
    return _const_op(np.arange(start, limit, delta, dtype=np.float64), name)


def linspace(start: float, stop: float, num: int, name: str | None = None) -> Tensor:
    return _const_op(np.linspace(start, stop, int(num)), name or "LinSpace")


def placeholder(dtype: Any, shape: Any = None, name: str | None = None) -> Tensor:
    """A tensor whose value every run must feed: ``sess.run(y, feed_dict={x: ...})``.

    ``shape=None`` accepts any shape; ``[None, 2]`` any number of rows of 2.
    """
    dt = as_dtype(dtype, "tf.placeholder(dtype)")
    s = as_shape(shape, "tf.placeholder(shape=...)")
    g = get_default_graph()
    full = g.unique_name(check_name(name or "Placeholder", "placeholder name"))
    return g._add_op("Placeholder", (), {"dtype": dt, "shape": s}, full, s).outputs[0]


def _random(type: str, shape: Any, attrs: dict, seed: int | None, name: str,
            what: str) -> Tensor:
    s = as_shape(shape, what)
    if not fully_known(s):
        raise UsageError(f"{what}: the shape must be fully known, got {shape!r}")
    g = get_default_graph()
    full = g.unique_name(check_name(name, f"{what} name"))
    attrs = dict(attrs, seed=None if seed is None else int(seed))
    return g._add_op(type, (), attrs, full, s).outputs[0]


def random_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = float32,
                  seed: int | None = None, name: str | None = None) -> Tensor:
    """Normal samples, drawn anew at every run (seeded: see :func:`set_random_seed`)."""
    return _random("RandomStandardNormal", shape, dict(mean=float(mean), stddev=float(stddev)),
                   seed, name or "random_normal", "tf.random_normal")


def truncated_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = float32,
                     seed: int | None = None, name: str | None = None) -> Tensor:
    """Normal samples redrawn until within two standard deviations of the mean."""
    return _random("TruncatedNormal", shape, dict(mean=float(mean), stddev=float(stddev)),
                   seed, name or "truncated_normal", "tf.truncated_normal")


def random_uniform(shape: Any, minval: float = 0.0, maxval: float | None = None,
                   dtype: Any = float32, seed: int | None = None,
                   name: str | None = None) -> Tensor:
    """Uniform samples in ``[minval, maxval)``, drawn anew at every run."""
    return _random("RandomUniform", shape,
                   dict(minval=float(minval), maxval=1.0 if maxval is None else float(maxval)),
                   seed, name or "random_uniform", "tf.random_uniform")


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
divide = _bin("RealDiv", "truediv", "divide")
truediv = _bin("RealDiv", "truediv", "truediv")
realdiv = _bin("RealDiv", "RealDiv", "realdiv")
div = _bin("RealDiv", "div", "div")
pow = _bin("Pow", "Pow", "pow")
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

def matmul(a: Any, b: Any, transpose_a: bool = False, transpose_b: bool = False,
           name: str | None = None) -> Tensor:
    """Matrix product of two matrices (rank 2, as in TF 1), optionally transposed."""
    return make_op("MatMul", [a, b], dict(transpose_a=bool(transpose_a),
                                         transpose_b=bool(transpose_b)),
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
        return make_op(type, [input_tensor], dict(axis=ax, keepdims=keep), name=name or type)
    fn.__doc__ = f"The {what} over ``axis`` (None: all axes; an int or a list of ints)."
    return fn


reduce_sum = _reduce_fn("Sum", "sum")
reduce_mean = _reduce_fn("Mean", "mean")
reduce_max = _reduce_fn("Max", "maximum")
reduce_min = _reduce_fn("Min", "minimum")
reduce_logsumexp = _reduce_fn("ReduceLogSumExp", "log of the sum of exponentials")
for _f, _n in [(reduce_sum, "reduce_sum"), (reduce_mean, "reduce_mean"),
               (reduce_max, "reduce_max"), (reduce_min, "reduce_min"),
               (reduce_logsumexp, "reduce_logsumexp")]:
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
    """``x`` where ``condition`` is true (nonzero), else ``y``."""
    if x is None or y is None:
        raise UsageError("tf.where(condition) without x and y (the indices of true "
                         "elements) is not supported by nbbp.tf1; pass x and y")
    return make_op("Select", [condition, x, y], name=name or "Select")


def cast(x: Any, dtype: Any, name: str | None = None) -> Tensor:
    """A copy of ``x`` (values stay float64; casting to an integer type is refused)."""
    dt: DType = as_dtype(dtype, "tf.cast(dtype)")
    if dt.is_integer:
        raise UsageError(f"tf.cast to {dt!r} is not supported: nbbp computes in float64 and "
                         "has no rounding op; cast to tf.float32/float64, or round the "
                         "fetched array with numpy")
    return make_op("Cast", [x], dict(dtype=dt), name=name or "Cast")

