"""TensorFlow 1's programming model on nbbp's core: ``import nbbp.tf1 as tf``.

Graphs of named operations, ``tf.Session().run(fetches, feed_dict)``,
placeholders, variables with initializers and ``assign``, variable scopes with
``get_variable``, ``tf.gradients``, ``tf.hessians`` and the ``tf.train``
optimizers behave as in TensorFlow 1 — including its errors, which name the
variable, graph or placeholder and say how to fix the program. A session lowers
what a run needs to an :class:`nbbp.Graph` and runs it on nbbp's compiled engine.

Every tensor has TF 1's dtype and is computed in it (``tf.constant(2.0)`` is
float32, and runs in float32). Differences from TensorFlow 1 (see
``docs/tf1.md``): random ops are seeded even without ``set_random_seed`` (runs
repeat exactly); only the ops listed here exist.

>>> import nbbp.tf1 as tf
>>> with tf.Graph().as_default():
...     x = tf.placeholder(tf.float32)
...     y = tf.multiply(x, 2)
...     with tf.Session() as sess:
...         print(sess.run(y, feed_dict={x: [1, 2, 3]}))
[2. 4. 6.]
"""

from __future__ import annotations

from typing import Any

from . import app, errors, flags, layers, losses, nn, summary, train
from ._core import (
    Graph,
    Operation,
    Tensor,
    constant,
    convert_to_tensor,
    get_default_graph,
    graph_of,
    reset_default_graph,
    session_for,
)
from ._grad import gradients, hessians
from ._names import DEPRECATED, missing
from ._ops import (
    abs,
    add,
    add_n,
    argmax,
    argmin,
    cast,
    clip_by_value,
    concat,
    cos,
    div,
    divide,
    equal,
    exp,
    expand_dims,
    eye,
    fill,
    floordiv,
    floormod,
    gather,
    greater,
    greater_equal,
    identity,
    less,
    less_equal,
    linspace,
    log,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    matmul,
    maximum,
    minimum,
    mod,
    multiply,
    negative,
    not_equal,
    one_hot,
    ones,
    ones_like,
    pad,
    placeholder,
    pow,
    random_normal,
    random_uniform,
    range,
    realdiv,
    reciprocal,
    reduce_all,
    reduce_any,
    reduce_logsumexp,
    reduce_max,
    reduce_mean,
    reduce_min,
    reduce_prod,
    reduce_sum,
    reshape,
    rsqrt,
    set_random_seed,
    shape,
    sigmoid,
    sign,
    sin,
    size,
    split,
    sqrt,
    square,
    squared_difference,
    squeeze,
    stack,
    stop_gradient,
    strided_slice,
    subtract,
    tanh,
    tile,
    to_double,
    to_float,
    to_int32,
    to_int64,
    transpose,
    truediv,
    truncated_normal,
    unstack,
    where,
    zeros,
    zeros_like,
)
from ._session import InteractiveSession, Session, get_default_session
from ._types import (
    DType,
    TensorShape,
    as_dtype,
    bool_,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    string,
    uint8,
)
from ._variables import (
    AUTO_REUSE,
    GraphKeys,
    Variable,
    VariableScope,
    assign,
    assign_add,
    assign_sub,
    constant_initializer,
    get_variable,
    get_variable_scope,
    global_variables,
    global_variables_initializer,
    glorot_normal_initializer,
    glorot_uniform_initializer,
    group,
    no_op,
    ones_initializer,
    random_normal_initializer,
    random_uniform_initializer,
    trainable_variables,
    truncated_normal_initializer,
    variable_scope,
    variables_initializer,
    variance_scaling_initializer,
    zeros_initializer,
)

float_ = float32
double = float64
newaxis = None
globals()["bool"] = bool_          # tf.bool (set so the builtin stays usable here)


def name_scope(name: str | None, default_name: str | None = None, values: list | None = None):
    """Prefix the names of ops built inside with ``name/`` (made unique)."""
    g = graph_of(values or [], "tf.name_scope")
    return g.name_scope(name if name is not None else default_name)


def get_collection(key: str, scope: str | None = None) -> list:
    """The default graph's collection ``key`` (items whose name starts with ``scope``)."""
    return get_default_graph().get_collection(key, scope)


def add_to_collection(name: str, value: Any) -> None:
    """Add ``value`` to the default graph's collection ``name``."""
    get_default_graph().add_to_collection(name, value)


def norm(tensor: Any, ord: str = "euclidean", axis: Any = None, keepdims: bool = False,
         name: str | None = None) -> Tensor:
    """The Euclidean norm sqrt(sum(t²)) over ``axis`` (None: all elements)."""
    if ord not in ("euclidean", "fro", 2):
        raise errors.UsageError(f"tf.norm(ord={ord!r}): nbbp.tf1 supports the Euclidean norm")
    with get_default_graph().name_scope(name or "norm"):
        return sqrt(reduce_sum(square(tensor), axis=axis, keepdims=keepdims))


def to_model(fetch: Tensor, feed_dict: dict | None = None, session: Session | None = None):
    """The :class:`nbbp.Model` of ``fetch`` at ``session``'s variable values (default:
    the default session): draw it with nbbp, read the gradient on every edge.

    See :meth:`Session.to_model`.
    """
    return session_for(fetch, session, "to_model()").to_model(fetch, feed_dict)


_NOT_SUPPORTED = {
    "cond": "use tf.where(cond, x, y), which computes both branches",
    "while_loop": "write the loop in Python around sess.run",
    "control_dependencies": "fetch the ops you need together: sess.run([train_op, loss])",
    "py_func": "nbbp.tf1 never runs Python code inside a graph",
    "keras": "nbbp.tf1 covers TF 1's graph API, not Keras",
    "data": "feed numpy batches through placeholders",
    "Print": "print what sess.run returns",
    "float16": "nbbp computes in float32, float64, int32, int64 and bool; use tf.float32",
    "enable_eager_execution": "nbbp.tf1 is TF 1's graph mode; for eager-style code use "
                              "nbbp's own API (nbbp.param, nbbp.Model)",
}

__all__ = [
    "abs", "add", "add_n", "argmax", "argmin", "as_dtype", "assign", "assign_add", "assign_sub",
    "AUTO_REUSE", "bool", "bool_", "cast", "clip_by_value", "concat", "constant",
    "constant_initializer", "convert_to_tensor", "cos", "div", "divide", "double", "DType",
    "equal", "errors", "exp", "expand_dims", "eye", "fill", "float32", "float64", "float_",
    "floordiv", "floormod", "gather", "get_default_graph", "get_default_session", "get_variable",
    "get_variable_scope", "global_variables", "global_variables_initializer",
    "glorot_normal_initializer", "glorot_uniform_initializer", "gradients", "Graph", "GraphKeys",
    "greater", "greater_equal", "group", "hessians", "identity", "int32", "int64",
    "InteractiveSession", "less", "less_equal", "linspace", "log", "log1p", "logical_and",
    "logical_not", "logical_or", "losses", "matmul", "maximum", "minimum", "mod", "multiply",
    "name_scope", "negative", "newaxis", "nn", "no_op", "norm", "not_equal", "one_hot", "ones",
    "ones_initializer", "ones_like", "Operation", "pad", "placeholder", "pow", "random_normal",
    "random_normal_initializer", "random_uniform", "random_uniform_initializer", "range",
    "realdiv", "reciprocal", "reduce_all", "reduce_any", "reduce_logsumexp", "reduce_max",
    "reduce_mean", "reduce_min", "reduce_prod", "reduce_sum", "reset_default_graph", "reshape",
    "rsqrt", "Session", "set_random_seed", "shape", "sigmoid", "sign", "sin", "size", "split",
    "sqrt", "square", "squared_difference", "squeeze", "stack", "stop_gradient", "strided_slice",
    "subtract", "tanh", "Tensor", "TensorShape", "tile", "to_double", "to_float", "to_int32",
    "to_int64", "to_model", "train", "trainable_variables", "transpose", "truediv",
    "truncated_normal", "truncated_normal_initializer", "unstack", "Variable", "variable_scope",
    "variables_initializer", "VariableScope", "variance_scaling_initializer", "where", "zeros",
    "zeros_initializer", "zeros_like",
]


__all__ += ["add_to_collection", "app", "flags", "get_collection", "int8", "int16", "layers",
            "string", "summary", "uint8"]


def __getattr__(name: str) -> Any:
    if name in DEPRECATED:          # names TF 1.15 still has, with its warning
        return DEPRECATED[name]
    if name == "Summary":           # the Summary protocol buffer (needs tensorboard)
        return summary._summary_proto()
    raise missing("", name, _NOT_SUPPORTED)
