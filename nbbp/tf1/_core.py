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
import itertools
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import suggest
from ._opdefs import NAME_PART, OPDEFS, infer_shape
from ._types import (
    DType,
    TensorShape,
    as_dtype,
    as_shape,
    check_convertible,
    float32,
    fully_known,
    infer_dtype,
    np_value,
    shape_str,
)
from .errors import DTypeError, GraphMismatchError, NotSupportedError, UsageError

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

    Its ``dtype`` is TensorFlow 1's (``tf.constant(2.0)`` is float32) and nbbp
    computes it in that dtype.
    """

    __slots__ = ("op", "_shape", "dtype")
    __array_ufunc__ = None     # numpy defers to our reflected operators (2 * x, X @ W)
    __array_priority__ = 100

    def __init__(self, op: Operation, shape: tuple | None, dtype: DType = float32) -> None:
        self.op, self._shape, self.dtype = op, shape, dtype

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
    def __truediv__(self, o): return _truediv(self, o)
    def __rtruediv__(self, o): return _truediv(o, self)
    def __floordiv__(self, o): return _binop("FloorDiv", self, o, "floordiv")
    def __rfloordiv__(self, o): return _binop("FloorDiv", o, self, "floordiv")
    def __mod__(self, o): return _binop("FloorMod", self, o, "mod")
    def __rmod__(self, o): return _binop("FloorMod", o, self, "mod")
    def __pow__(self, o): return _binop("Pow", self, o, "pow")
    def __rpow__(self, o): return _binop("Pow", o, self, "pow")
    def __matmul__(self, o): return _binop("MatMul", self, o, "matmul")
    def __rmatmul__(self, o): return _binop("MatMul", o, self, "matmul")
    def __gt__(self, o): return _binop("Greater", self, o, "Greater")
    def __ge__(self, o): return _binop("GreaterEqual", self, o, "GreaterEqual")
    def __lt__(self, o): return _binop("Less", self, o, "Less")
    def __le__(self, o): return _binop("LessEqual", self, o, "LessEqual")
    def __and__(self, o): return _binop("LogicalAnd", self, o, "LogicalAnd")
    def __rand__(self, o): return _binop("LogicalAnd", o, self, "LogicalAnd")
    def __or__(self, o): return _binop("LogicalOr", self, o, "LogicalOr")
    def __ror__(self, o): return _binop("LogicalOr", o, self, "LogicalOr")
    def __invert__(self): return make_op("LogicalNot", [self], name="LogicalNot")
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

    def __getitem__(self, index: Any) -> Tensor:
        """``t[0]``, ``t[:, 1:3]``, ``t[::-1]``, ``t[..., None]`` (TF's strided slice)."""
        return _getitem[0](self, index)


# set by ._ops: [strided slice, truediv] (they are built from op functions)
_getitem: list[Callable[..., Tensor]] = []


def _binop(type: str, a: Any, b: Any, name: str) -> Tensor:
    """A Python operator: the number on either side is converted to the tensor's
    dtype first (TF 1's ``binary_op_wrapper``), so ``x32 * 2`` is float32 and
    ``int32_tensor * 2.5`` fails."""
    return make_op(type, [a, b], name=name, arg_names=("x", "y"), operator=True)


def _truediv(a: Any, b: Any) -> Tensor:
    """``/``: TF 1's ``truediv`` (integers are cast to float first), see ._ops."""
    return _getitem[1](a, b)


# ---------------------------------------------------------------------------
# graphs, the default graph and name scopes
# ---------------------------------------------------------------------------

_graph_numbers = itertools.count()     # next() is atomic: threads get distinct numbers


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
        self.number = next(_graph_numbers)

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
                shape: tuple | None | bool, control_inputs: tuple[Operation, ...] = (),
                dtype: DType = float32) -> Operation:
        """Append an operation named exactly ``name`` (already unique); ``shape`` False
        means it has no output tensor."""
        if self._finalized:
            raise UsageError("Graph is finalized and cannot be modified "
                             f"(adding {type} {name!r}); build ops before finalize()")
        op = Operation(self, len(self._ops), name, type, inputs, attrs, control_inputs)
        if shape is not False:
            op.outputs.append(Tensor(op, shape, dtype))
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


class ThreadStack(threading.local):
    """A stack that each thread has its own of (TF 1's default graphs and default
    sessions are per thread): ``items``, innermost last."""

    def __init__(self) -> None:
        self.items: list[Any] = []


class _State:
    """The process-wide default graph, shared by every thread, and each thread's own
    stack of ``as_default()`` graphs (TF 1's rule: a graph made default in one thread is
    not the default in another)."""

    def __init__(self) -> None:
        self.global_graph = Graph()
        self._local = ThreadStack()

    @property
    def graph_stack(self) -> list[Graph]:
        return self._local.items


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


def _const_op(arr: np.ndarray, name: str, dtype: DType) -> Tensor:
    g = get_default_graph()
    full = g.unique_name(check_name(name, "constant name"))
    return g._add_op("Const", (), {"value": arr, "dtype": dtype}, full, arr.shape,
                     dtype=dtype).outputs[0]


def constant(value: Any, dtype: Any = None, shape: Any = None, name: str = "Const",
             verify_shape: bool = False) -> Tensor:
    """A constant tensor, of TF 1's dtype for the value (``2.0`` float32, ``2`` int32,
    a NumPy array its own dtype) unless ``dtype`` is given.

    >>> import nbbp.tf1 as tf
    >>> with tf.Graph().as_default():
    ...     c, i = tf.constant(2.0), tf.constant([1, 2])
    >>> c, i
    (<tf.Tensor 'Const:0' shape=() dtype=float32>, <tf.Tensor 'Const_1:0' shape=(2,) dtype=int32>)
    """
    if isinstance(value, Tensor):
        raise UsageError(f"tf.constant needs a number, list or array, got the tensor "
                         f"{value!r}; use tf.identity to copy a tensor")
    try:
        dt = as_dtype(dtype, "tf.constant(dtype)") if dtype is not None else infer_dtype(value)
        if dtype is not None:
            check_convertible(value, dt)
        arr = np_value(value, dt)
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, (DTypeError, UsageError)):
            raise
        if isinstance(exc, OverflowError):
            info = np.iinfo(dt.name)
            raise DTypeError(f"tf.constant: {value!r} does not fit in {dt.name} "
                             f"({info.min}..{info.max}); TF 1 (on NumPy 1.x) wraps it "
                             "without a word, nbbp.tf1 refuses: give values in range, or "
                             f"write tf.cast(tf.constant(...), tf.{dt.name}) to wrap") from None
        raise UsageError(f"tf.constant needs a number, list or array of numbers, got "
                         f"{type(value).__name__} {value!r}") from None
    if shape is not None:
        target = as_shape(shape, "tf.constant(shape=...)")
        if not fully_known(target):
            raise UsageError(f"tf.constant(shape={list(shape)}): the shape must be fully known")
        if arr.size == 1:
            arr = np.full(target, arr.reshape(()).item(), dtype=arr.dtype)
        elif arr.size == int(np.prod(target)) and not verify_shape:
            arr = arr.reshape(target)
        else:
            raise UsageError(f"tf.constant: a value of shape {arr.shape} cannot be laid out "
                             f"as shape {tuple(target)}")
    if arr.ndim > 4:
        raise UsageError(f"tf.constant: nbbp supports up to 4 dimensions, got {arr.shape}")
    return _const_op(arr, name, dt)


def convert_to_tensor(value: Any, dtype: Any = None, name: str | None = None,
                      graph: Graph | None = None) -> Tensor:
    """A tensor as is (its dtype must be ``dtype`` if given); a number, list or array
    as a ``Const`` op of ``dtype`` (default: TF 1's dtype for the value)."""
    if isinstance(value, Tensor):
        if dtype is not None and as_dtype(dtype) is not value.dtype:
            raise UsageError(f"Tensor conversion requested dtype {as_dtype(dtype).name} for "
                             f"Tensor with dtype {value.dtype.name}: {value!r}")
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


_KIND_WORDS = {"f": ("float16", "float32", "float64", "bfloat16"),
               "i": ("int32", "int64", "uint8", "int16", "int8"),
               "b": ("bool",)}


def _mismatch(arg: str, type: str, got: DType, want: DType, first: str) -> str:
    """TF 1's text for two inputs of one op with different dtypes."""
    return (f"Input '{arg}' of '{type}' Op has type {got.name} that does not match type "
            f"{want.name} of argument '{first}'.")


def _convert_operand(value: Any, dtype: DType | None, arg: str, type: str, operator: bool,
                     graph: Graph) -> Tensor:
    """A Python value as a ``Const`` of ``dtype`` (None: TF's dtype for the value),
    with TF 1's error when it does not fit (an operator's bare ``Expected int32, got
    2.5 …``; an op function's ``… passed to parameter 'y' of op 'Mul' …``)."""
    if isinstance(value, Tensor):
        return value
    if dtype is not None and not isinstance(value, Operation):
        try:
            check_convertible(value, dtype)
        except DTypeError:
            if operator:
                raise
            raise DTypeError(f"Expected {dtype.name} passed to parameter '{arg}' of op "
                             f"'{type}', got {value!r} of type '{builtins_type(value)}' "
                             "instead.") from None
    return convert_to_tensor(value, dtype=dtype, name=arg, graph=graph)


def builtins_type(value: Any) -> str:
    return type(value).__name__


def make_op(type: str, args: list[Any], attrs: dict[str, Any] | None = None,
            name: str | None = None, arg_names: tuple[str, ...] | None = None,
            operator: bool = False, exact_name: str | None = None) -> Tensor:
    """Build an op of ``type`` on ``args`` (numbers become consts) in their graph.

    dtypes follow TF 1's op registry (see :class:`._opdefs.OpDef`): the inputs that
    share the type ``T`` must have one dtype (TF's ``TypeError`` otherwise); a number
    takes the dtype of the tensor before it (for an operator, of the tensor on either
    side). The new tensor's static shape comes from running the op's ``lower`` on
    shape-only leaves, so a wrong shape fails here, with both shapes in the message.
    """
    opdef = OPDEFS[type]
    attrs = dict(attrs or {})
    graph = graph_of(args, f"tf op {type}")
    names = arg_names or tuple(f"x{i}" if i else "x" for i in range(len(args)))
    same = tuple(range(len(args))) if opdef.same is None else opdef.same
    full = exact_name or graph.unique_name(check_name(name or type, f"{type} name"))
    start = len(graph._ops)
    inputs: list[Tensor] = []
    try:
        with graph._absolute_scope(full):
            T: DType | None = None
            first = None
            if operator:
                t = next((a for a in args if isinstance(a, Tensor)), None)
                T = None if t is None else t.dtype
            for i, a in enumerate(args):
                if i in same:
                    x = _convert_operand(a, T, names[i], type, operator, graph)
                    if T is None or first is None:
                        T, first = x.dtype, names[i]
                    elif x.dtype is not T:
                        raise DTypeError(_mismatch(names[i], type, x.dtype, T, first))
                else:
                    want = opdef.other[i - len([j for j in same if j < i])] \
                        if opdef.other else None
                    kinds = want if isinstance(want, str) else None
                    want = None if kinds else want
                    x = _convert_operand(a, want, names[i], type, False, graph)
                    if kinds and x.dtype.kind not in kinds:
                        allowed = ", ".join(w for k in kinds for w in _KIND_WORDS[k][:2])
                        raise DTypeError(f"Value passed to parameter '{names[i]}' has "
                                         f"DataType {x.dtype.name} not in list of allowed "
                                         f"values: {allowed}")
                    if want is not None and x.dtype is not want:
                        raise DTypeError(f"Input '{names[i]}' of '{type}' Op has type "
                                         f"{x.dtype.name} that does not match expected type "
                                         f"of {want.name}.")
                inputs.append(x)
            if any(x.dtype.kind == "s" for x in inputs):
                if type != "Identity":
                    raise NotSupportedError(
                        f"{type} on tf.string tensors is not supported by nbbp.tf1 (op "
                        f"{full!r}): it has string constants and tf.identity, fetched as "
                        "bytes, and no string ops; work on the bytes sess.run returns")
                return graph._add_op(type, tuple(inputs), attrs, full, inputs[0]._shape,
                                     dtype=inputs[0].dtype).outputs[0]
            if T is not None and T.kind not in opdef.allowed:
                allowed = ", ".join(w for k in opdef.allowed for w in _KIND_WORDS[k])
                pos = next(i for i in same)
                raise DTypeError(f"Value passed to parameter '{names[pos]}' has DataType "
                                 f"{T.name} not in list of allowed values: {allowed}")
            out = opdef.out(T, attrs) if callable(opdef.out) else (opdef.out or T or float32)
        shape = infer_shape(opdef, full, inputs, attrs)
    except BaseException:
        graph._truncate(start)      # no half-built consts left behind
        raise
    return graph._add_op(type, tuple(inputs), attrs, full, shape, dtype=out).outputs[0]
