"""TensorFlow 1's graph model: graphs, operations, tensors, names and scopes.

A :class:`Graph` here is TensorFlow's: a list of :class:`Operation` objects in
build order, each with TF's name (``mul``, ``mul_1``, ``scope/W``), a type
(``Mul``), input tensors and attributes, and at most one output :class:`Tensor`
whose shape may be partly unknown (``placeholder(tf.float32)`` has no shape
until it is fed). Nothing here computes: a :class:`~nbbp.tf1.Session` lowers the
operations a run needs to an :class:`nbbp.Graph` with the shapes of the feeds,
and runs that on nbbp's engine.

An op type's meaning and static shape come from :mod:`._opdefs`. Numbers used as
tensors become ``Const`` ops here (:func:`constant`); running is a session's job,
which :mod:`._session` registers (:func:`register_session_finder`), so imports
flow one way: ``_session`` → ``_lower`` → ``_core`` → ``_opdefs``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import suggest
from ._opdefs import NAME_PART, OPDEFS, infer_shape
from ._types import TensorShape, as_dtype, as_shape, float64, fully_known, shape_str
from .errors import GraphMismatchError, UsageError

# ---------------------------------------------------------------------------
# operations and tensors
# ---------------------------------------------------------------------------


class Operation:
    """A node of a TensorFlow graph: name, type, inputs, attributes, outputs."""

    __slots__ = ("graph", "id", "name", "type", "inputs", "control_inputs", "attrs", "outputs")

    def __init__(self, graph: Graph, id: int, name: str, type: str, inputs: tuple[Tensor, ...],
                 attrs: dict[str, Any], control_inputs: tuple[Operation, ...] = ()) -> None:
        self.graph, self.id, self.name, self.type = graph, id, name, type
        self.inputs, self.attrs, self.control_inputs = inputs, attrs, control_inputs
        self.outputs: list[Tensor] = []

    def __repr__(self) -> str:
        return f"<tf.Operation '{self.name}' type={self.type}>"

    def run(self, feed_dict: dict | None = None, session: Any = None) -> None:
        """Run this operation in ``session`` (default: the default session)."""
        session_for(self, session, "run()").run(self, feed_dict)


class Tensor:
    """The output of an operation. Arithmetic builds new operations in its graph.

    nbbp computes every tensor in float64, so every tensor reports ``float64``.
    """

    __slots__ = ("op", "_shape", "dtype")
    __array_ufunc__ = None     # numpy defers to our reflected operators (2 * x, X @ W)
    __array_priority__ = 100

    def __init__(self, op: Operation, shape: tuple | None) -> None:
        self.op, self._shape, self.dtype = op, shape, float64

    @property
    def name(self) -> str:
        return f"{self.op.name}:0"

    @property
    def graph(self) -> Graph:
        return self.op.graph

    @property
    def shape(self) -> TensorShape:
        return TensorShape(self._shape)

    def get_shape(self) -> TensorShape:
        return self.shape

    @property
    def value_index(self) -> int:
        return 0

    def _type_word(self) -> str:
        return "tf.Tensor"

    def _dtype_word(self) -> str:
        return self.dtype.name

    def __repr__(self) -> str:
        return (f"<{self._type_word()} '{self.name}' shape={shape_str(self._shape)} "
                f"dtype={self._dtype_word()}>")

    def __str__(self) -> str:
        return f'Tensor("{self.name}", shape={shape_str(self._shape)}, dtype={self.dtype.name})'

    def eval(self, feed_dict: dict | None = None, session: Any = None) -> Any:
        """The tensor's value in ``session`` (default: the default session)."""
        return session_for(self, session, "eval()").run(self, feed_dict)

    def consumers(self) -> list[Operation]:
        return [op for op in self.graph._ops if any(t is self for t in op.inputs)]

    # Python operators build ops with TensorFlow's names: mul, add, truediv, …
    def __add__(self, o): return _binop("Add", self, o, "add")
    def __radd__(self, o): return _binop("Add", o, self, "add")
    def __sub__(self, o): return _binop("Sub", self, o, "sub")
    def __rsub__(self, o): return _binop("Sub", o, self, "sub")
    def __mul__(self, o): return _binop("Mul", self, o, "mul")
    def __rmul__(self, o): return _binop("Mul", o, self, "mul")
    def __truediv__(self, o): return _binop("RealDiv", self, o, "truediv")
    def __rtruediv__(self, o): return _binop("RealDiv", o, self, "truediv")
    def __pow__(self, o): return _binop("Pow", self, o, "pow")
    def __rpow__(self, o): return _binop("Pow", o, self, "pow")
    def __matmul__(self, o): return _binop("MatMul", self, o, "matmul")
    def __rmatmul__(self, o): return _binop("MatMul", o, self, "matmul")
    def __gt__(self, o): return _binop("Greater", self, o, "Greater")
    def __ge__(self, o): return _binop("GreaterEqual", self, o, "GreaterEqual")
    def __lt__(self, o): return _binop("Less", self, o, "Less")
    def __le__(self, o): return _binop("LessEqual", self, o, "LessEqual")
    def __neg__(self): return make_op("Neg", [self], name="Neg")
    def __abs__(self): return make_op("Abs", [self], name="Abs")
    def __pos__(self): return self
    __hash__ = object.__hash__      # == stays identity, as in TF1: tensors are dict keys

    def __bool__(self) -> bool:
        raise UsageError(f"using the tf.Tensor {self.name!r} as a Python bool is not allowed "
                         "(its value exists only when a session runs it); use "
                         "tf.where(cond, x, y) in the graph, or test the value sess.run returns")

    def __iter__(self):
        raise UsageError(f"tf.Tensor {self.name!r} is not iterable; fetch it with sess.run "
                         "and iterate over the array")

    def __getitem__(self, index: Any):
        raise UsageError(f"slicing tf.Tensor {self.name!r} is not supported by nbbp.tf1; "
                         "use tf.reshape, tf.reduce_sum(x, axis=...) or slice the fetched "
                         "array")


def _binop(type: str, a: Any, b: Any, name: str) -> Tensor:
    return make_op(type, [a, b], name=name, arg_names=("x", "y"))


# ---------------------------------------------------------------------------
# graphs, the default graph and name scopes
# ---------------------------------------------------------------------------

_graph_counter = [0]


class Graph:
    """A TensorFlow graph. ``with g.as_default():`` makes ops build into it.

    >>> import nbbp.tf1 as tf
    >>> g = tf.Graph()
    >>> with g.as_default():
    ...     c = tf.constant(2.0) * tf.constant(3.0)
    >>> [op.name for op in g.get_operations()]
    ['Const', 'Const_1', 'mul']
    """

    def __init__(self) -> None:
        self._ops: list[Operation] = []
        self._by_name: dict[str, Operation] = {}
        self._names_in_use: dict[str, int] = {}
        self._name_stack = ""
        self.seed: int | None = None
        self._finalized = False
        self._collections: dict[str, list] = {}
        self._var_store: dict[str, Any] = {}          # get_variable's variables by name
        self._var_scope_stack: list[Any] = []         # see _variables.VariableScope
        self._var_scope_root: Any = None
        self._var_scope_counts: dict[str, int] = {}
        self.number = _graph_counter[0]
        _graph_counter[0] += 1

    def __repr__(self) -> str:
        return f"<nbbp.tf1.Graph #{self.number}: {len(self._ops)} operations>"

    def describe(self) -> str:
        """``graph #3`` (plus ``, the default graph`` if it is the process-wide one)."""
        extra = ", the process-wide default graph" if self is _state.global_graph else ""
        return f"graph #{self.number}{extra}"

    @contextlib.contextmanager
    def as_default(self) -> Iterator[Graph]:
        """Make this the default graph inside the ``with`` block."""
        stack = _state.graph_stack
        stack.append(self)
        try:
            yield self
        finally:
            for i in range(len(stack) - 1, -1, -1):   # the innermost entry of this graph
                if stack[i] is self:
                    del stack[i]
                    break

    # -- queries -------------------------------------------------------------
    def get_operations(self) -> list[Operation]:
        """The operations in build order."""
        return list(self._ops)

    def get_operation_by_name(self, name: str) -> Operation:
        if name not in self._by_name:
            raise UsageError(f"the name {name!r} refers to an Operation not in the graph; "
                             + suggest(name, self._by_name, "operation name"))
        return self._by_name[name]

    def get_tensor_by_name(self, name: str) -> Tensor:
        op_name, _, index = name.partition(":")
        if index != "0":
            raise UsageError(f"the name {name!r} looks like an Operation name, not a Tensor; "
                             f"tensor names end in ':0', e.g. {op_name + ':0'!r}")
        op = self.get_operation_by_name(op_name)
        if not op.outputs:
            raise UsageError(f"operation {op_name!r} ({op.type}) has no output tensor")
        return op.outputs[0]

    def as_graph_element(self, obj: Any) -> Tensor | Operation:
        """A tensor, operation or name of this graph → the tensor or operation."""
        if isinstance(obj, str):
            return self.get_tensor_by_name(obj) if ":" in obj \
                else self.get_operation_by_name(obj)
        if isinstance(obj, (Tensor, Operation)):
            if obj.graph is not self:
                raise GraphMismatchError(not_in_graph(obj, self))
            return obj
        raise UsageError(f"cannot convert {type(obj).__name__} {obj!r} to a tensor or "
                         "operation")

    def get_collection(self, key: str, scope: str | None = None) -> list:
        items = list(self._collections.get(key, []))
        if scope is not None:
            items = [v for v in items if re.match(scope, getattr(v, "name", ""))]
        return items

    def add_to_collection(self, key: str, value: Any) -> None:
        self._collections.setdefault(key, []).append(value)

    def finalize(self) -> None:
        """Make the graph read-only: building an op afterwards raises."""
        self._finalized = True

    @property
    def finalized(self) -> bool:
        return self._finalized

    # -- names ---------------------------------------------------------------
    def get_name_scope(self) -> str:
        return self._name_stack

    def unique_name(self, name: str, mark_as_used: bool = True) -> str:
        """TF's rule: ``scope/name``, or ``…_1``, ``…_2`` if taken (case-insensitively)."""
        if self._name_stack:
            name = f"{self._name_stack}/{name}"
        key = name.lower()
        i = self._names_in_use.get(key, 0)
        if mark_as_used:
            self._names_in_use[key] = i + 1
        if i > 0:
            base = key
            while key in self._names_in_use:
                key = f"{base}_{i}"
                i += 1
            if mark_as_used:
                self._names_in_use[key] = 1
            name = f"{name}_{i - 1}"
        return name

    @contextlib.contextmanager
    def name_scope(self, name: str | None) -> Iterator[str]:
        """Prefix new op names with ``name/`` (made unique: a second ``foo`` is ``foo_1``;
        ``"foo/"`` re-enters ``foo`` exactly; ``None`` or ``""`` goes to the top)."""
        old = self._name_stack
        if not name:
            new = ""
        elif name.endswith("/"):
            new = name[:-1]
        else:
            check_name(name, "name_scope")
            new = self.unique_name(name)
        self._name_stack = new
        try:
            yield new + "/" if new else ""
        finally:
            self._name_stack = old

    @contextlib.contextmanager
    def _absolute_scope(self, stack: str) -> Iterator[None]:
        old, self._name_stack = self._name_stack, stack
        try:
            yield
        finally:
            self._name_stack = old

    # -- building ------------------------------------------------------------
    def _add_op(self, type: str, inputs: tuple[Tensor, ...], attrs: dict[str, Any], name: str,
                shape: tuple | None | bool, control_inputs: tuple[Operation, ...] = ()
                ) -> Operation:
        """Append an operation named exactly ``name`` (already unique); ``shape`` False
        means it has no output tensor."""
        if self._finalized:
            raise UsageError("Graph is finalized and cannot be modified "
                             f"(adding {type} {name!r}); build ops before finalize()")
        op = Operation(self, len(self._ops), name, type, inputs, attrs, control_inputs)
        if shape is not False:
            op.outputs.append(Tensor(op, shape))
        self._ops.append(op)
        self._by_name[name] = op
        return op


    def _truncate(self, n: int) -> None:
        for op in self._ops[n:]:
            self._by_name.pop(op.name, None)
        del self._ops[n:]


def check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not all(NAME_PART.match(p) for p in name.split("/")):
        raise UsageError(f"{what}: {name!r} is not a valid name; TensorFlow 1 names use "
                         "ASCII letters, digits and _ . - (starting with a letter or _), "
                         "parts separated by / (nbbp's own cells accept any identifier)")
    return name


class _State:
    def __init__(self) -> None:
        self.global_graph = Graph()
        self.graph_stack: list[Graph] = []


_state = _State()


def get_default_graph() -> Graph:
    """The graph new operations go into: the innermost ``as_default()``, else the
    process-wide default graph."""
    return _state.graph_stack[-1] if _state.graph_stack else _state.global_graph


def reset_default_graph() -> None:
    """Replace the process-wide default graph by a new, empty one."""
    if _state.graph_stack:
        raise UsageError("Do not use tf.reset_default_graph() to clear nested graphs. If you "
                         "need a cleared graph, exit the nesting (the `with g.as_default():` "
                         "or `with tf.Session():` block) and create a new graph.")
    _state.global_graph = Graph()


def not_in_graph(obj: Tensor | Operation, graph: Graph) -> str:
    """TF's message for a tensor of one graph used with another, plus how to fix it."""
    what = f'Tensor {obj}' if isinstance(obj, Tensor) else f"Operation {obj!r}"
    return (f"{what} is not an element of this graph. It was built in "
            f"{obj.graph.describe()}, but this is {graph.describe()}. Build it inside "
            "`with graph.as_default():` for the graph you run, or run it in a session of "
            "its own graph: tf.Session(graph=t.graph)")


# ---------------------------------------------------------------------------
# sessions: this module runs nothing; ._session registers how a session is found
# ---------------------------------------------------------------------------

_session_finder: list[Callable[[Any, Any, str], Any]] = []


def register_session_finder(find: Callable[[Any, Any, str], Any]) -> None:
    """Set the function that gives the session running an op or tensor:
    ``find(obj, session or None, "eval()")`` (:mod:`._session` registers its own)."""
    _session_finder[:] = [find]


def session_for(obj: Tensor | Operation, session: Any, what: str) -> Any:
    """The session to run ``obj`` in: ``session``, else the default session."""
    return _session_finder[0](obj, session, what)


# ---------------------------------------------------------------------------
# building ops
# ---------------------------------------------------------------------------


def _const_op(arr: np.ndarray, name: str) -> Tensor:
    g = get_default_graph()
    full = g.unique_name(check_name(name, "constant name"))
    return g._add_op("Const", (), {"value": arr}, full, arr.shape).outputs[0]


def constant(value: Any, dtype: Any = None, shape: Any = None, name: str = "Const",
             verify_shape: bool = False) -> Tensor:
    """A constant tensor (computed in float64 whatever ``dtype`` says).

    >>> import nbbp.tf1 as tf
    >>> with tf.Graph().as_default():
    ...     c = tf.constant(2.0)
    >>> c
    <tf.Tensor 'Const:0' shape=() dtype=float64>
    """
    dt = as_dtype(dtype)
    if isinstance(value, Tensor):
        raise UsageError(f"tf.constant needs a number, list or array, got the tensor "
                         f"{value!r}; use tf.identity to copy a tensor")
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise UsageError(f"tf.constant needs a number, list or array of numbers, got "
                         f"{type(value).__name__} {value!r}") from None
    if dt.is_integer and not np.array_equal(arr, np.round(arr)):
        raise UsageError(f"tf.constant: Expected {dt.name}, got {value!r} (not whole numbers)")
    if shape is not None:
        target = as_shape(shape, "tf.constant(shape=...)")
        if not fully_known(target):
            raise UsageError(f"tf.constant(shape={list(shape)}): the shape must be fully known")
        if arr.size == 1:
            arr = np.full(target, arr.reshape(()).item())
        elif arr.size == int(np.prod(target)) and not verify_shape:
            arr = arr.reshape(target)
        else:
            raise UsageError(f"tf.constant: a value of shape {arr.shape} cannot be laid out "
                             f"as shape {tuple(target)}")
    if arr.ndim > 4:
        raise UsageError(f"tf.constant: nbbp supports up to 4 dimensions, got {arr.shape}")
    return _const_op(arr, name)


def convert_to_tensor(value: Any, dtype: Any = None, name: str | None = None,
                      graph: Graph | None = None) -> Tensor:
    """A tensor as is; a number, list or array as a ``Const`` op."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, Operation):
        raise UsageError(f"operation {value.name!r} ({value.type}) has no value to use as "
                         "a tensor; pass one of the tensors an op function returned")
    with (graph or get_default_graph()).as_default():
        return constant(value, dtype=dtype, name=name or "Const")


def graph_of(args: list[Any], what: str) -> Graph:
    """The graph the tensors in ``args`` belong to (all the same), else the default."""
    graph = None
    first = None
    for a in args:
        if isinstance(a, (Tensor, Operation)):
            if graph is None:
                graph, first = a.graph, a
            elif a.graph is not graph:
                raise GraphMismatchError(
                    f"{what}: {a!r} must be from the same graph as {first!r} "
                    f"({a.graph.describe()} vs {graph.describe()}); build all the ops you "
                    "combine inside one `with graph.as_default():` block")
    return graph or get_default_graph()


def make_op(type: str, args: list[Any], attrs: dict[str, Any] | None = None,
            name: str | None = None, arg_names: tuple[str, ...] | None = None) -> Tensor:
    """Build an op of ``type`` on ``args`` (numbers become consts) in their graph.

    The new tensor's static shape comes from running the op's ``lower`` on
    shape-only leaves, so a wrong shape fails here, with both shapes in the message.
    """
    opdef = OPDEFS[type]
    attrs = dict(attrs or {})
    graph = graph_of(args, f"tf op {type}")
    full = graph.unique_name(check_name(name or type, f"{type} name"))
    start = len(graph._ops)
    inputs = []
    try:
        with graph._absolute_scope(full):
            for i, a in enumerate(args):
                inputs.append(a if isinstance(a, Tensor) else convert_to_tensor(
                    a, name=arg_names[i] if arg_names else "Const", graph=graph))
        shape = infer_shape(opdef, full, inputs, attrs)
    except BaseException:
        graph._truncate(start)      # no half-built consts left behind
        raise
    return graph._add_op(type, tuple(inputs), attrs, full, shape).outputs[0]
