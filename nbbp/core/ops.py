"""The op table: the single source of truth for every primitive.

Each entry holds the op's name, arity, kernel opcode, shape rule, vector-Jacobian
product (VJP) rule, NumPy reference implementation, display text and the domain
its tests sample from. The builder functions (``tanh``, ``matmul``, …), the
autodiff, the kernels' opcodes, the renderer's formulas, the docs' op list and the
tests' parametrisation all read this table; adding an op is adding one entry here
plus its kernel in :mod:`nbbp.core.kernels`.

VJP rules build graph nodes with the same builder functions, so the backward
pass is itself a graph that can be run, drawn and differentiated again.

>>> import nbbp
>>> OPS["mul"].formula(0)
'∂(a·b)/∂a = b'
"""

from __future__ import annotations

import builtins
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import BuildError, ShapeError
from .dtypes import FLOATS, INTS, dtype_of, is_float, is_int, promote
from .graph import LEAF_OPS, MAX_NDIM, Node, as_value, get_graph

# Kinds decide the shape rule and how the engine lowers the op (and, as ids in each
# instruction, which kernel runs it); they are named once, in the instruction set.
from .isa import (
    BINARY,
    CONV,
    INTERNAL_KIND,
    LAYOUT,
    LEAF,
    MATMUL,
    RANDOM,
    REDUCE,
    SELECT,
    SOFTMAX,
    TAKE,
    UNARY,
    WHERE,
)


@dataclass(frozen=True)
class Op:
    """One primitive. ``d`` holds, per input, the local derivative ∂y/∂input as a
    NumPy expression in ``a, b, c`` (inputs) and ``y`` (output) for elementwise ops,
    or a text description of the VJP in ``g`` (upstream gradient) for the others;
    ``None`` means no gradient flows to that input."""

    name: str
    code: int
    arity: int
    kind: str
    impl: Callable[..., np.ndarray] | None
    vjp: Callable[[Node, Node], tuple[Node | None, ...]] | None
    expr: str
    d: tuple[str | None, ...]
    domain: tuple[tuple[float, float], ...] = ()
    avoid: tuple[float, ...] = ()       # points where the derivative jumps
    attrs: tuple[str, ...] = ()
    doc: str = ""
    symbol: str = field(default="")     # infix symbol for display, if any
    args: str = "abc"                   # the names of the inputs in expr and d
    dtypes: str = "float"               # the dtype rule: a key of DTYPE_RULES
    variadic: bool = False              # takes any number ≥ 1 of inputs like its last one

    def takes(self, n: int) -> bool:
        """Whether the op accepts ``n`` inputs (``arity`` of them, or with ``variadic``
        any number from one up: ``concat(a, b, c, …)``)."""
        return n >= 1 if self.variadic else n == self.arity

    @property
    def elementwise(self) -> bool:
        return self.kind in (UNARY, BINARY, WHERE)

    @property
    def differentiable(self) -> bool:
        return self.vjp is not None

    def arg(self, i: int) -> str:
        """The display name of input ``i`` (``a``, ``b``, …; ``x1``, ``x2``, … for a
        variadic op, whose inputs beyond its ``arity`` are like its last one)."""
        return f"x{i + 1}" if self.variadic else self.args[i]

    def formula(self, i: int) -> str:
        """Display text of the derivative with respect to input ``i``."""
        arg = self.arg(i)
        if self.variadic:
            i = builtins.min(i, self.arity - 1)
        d = self.d[i] if i < len(self.d) else None
        if d is None:
            return f"∂{_paren(pretty(self.expr))}/∂{arg} = 0 (no gradient)"
        if self.elementwise:
            return f"∂{_paren(pretty(self.expr))}/∂{arg} = {pretty(d)}"
        return f"∂L/∂{arg} = {d}"


def _paren(expr: str) -> str:
    return expr if "(" in expr and expr.endswith(")") and expr[0].isalpha() else f"({expr})"


_PRETTY = (("**2", "²"), ("**", "^"), (" * ", "·"), ("*", "·"), ("-", "−"),
           (" >= ", " ≥ "), (" <= ", " ≤ "), (" != ", " ≠ "))


def pretty(expr: str) -> str:
    """NumPy expression → display text: ``1 - y**2`` → ``1 − y²``."""
    for a, b in _PRETTY:
        expr = expr.replace(a, b)
    return expr


def _sigmoid(x):
    return 0.5 * (np.tanh(0.5 * np.asarray(x, dtype=float)) + 1.0)


def _step(x):
    return (np.asarray(x) > 0).astype(float)


_erf = np.frompyfunc(math.erf, 1, 1)


def _np_erf(x):
    """The error function elementwise (NumPy has none; ``math.erf`` per element), in the
    input's floating dtype."""
    x = np.asarray(x)
    return np.asarray(_erf(x), dtype=x.dtype if x.dtype.kind == "f" else float)


# Names the derivative expressions in ``Op.d`` may use (tests evaluate them).
FORMULA_NS: dict[str, Any] = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos,
    "tanh": np.tanh, "sigmoid": _sigmoid, "sign": np.sign, "step": _step,
    "where": np.where, "minimum": np.minimum, "maximum": np.maximum,
    "pi": np.pi, "floor": np.floor,
}

OPS: dict[str, Op] = {}

# What dtypes an op takes and gives (``Op.dtypes``). Only floating values carry
# gradients; a path through an integer or boolean node carries none.
DTYPE_RULES = {
    "float": "floating inputs of one dtype (float32 or float64); output of that dtype",
    "numeric": "floating or integer inputs of one dtype; output of that dtype",
    "any": "inputs of any one dtype, booleans too; output of that dtype",
    "compare": "floating or integer inputs of one dtype; boolean output",
    "logical": "boolean inputs; boolean output",
    "index": "floating or integer input; int64 output (a position)",
    "cast": "any input; output of the dtype the op names",
    "where": "a boolean condition and two branches of one dtype; output of that dtype",
    "gather": "values of any dtype and integer indices; output of the values' dtype",
    "leaf": "the dtype the leaf was made with",
}


def defop(name: str, code: int, arity: int, kind: str, impl, vjp, expr: str,
          d: tuple[str | None, ...], domain: tuple = (), **kw: Any) -> Op:
    """Register an op in the table and return it."""
    if name in OPS or builtins.any(o.code == code for o in OPS.values()) or code in INTERNAL_KIND:
        raise ValueError(f"op {name!r} or opcode {code} defined twice (the engine's "
                         "internal opcodes are in nbbp.core.isa)")
    op = Op(name, code, arity, kind, impl, vjp, expr, d, domain, **kw)
    if op.dtypes not in DTYPE_RULES:
        raise ValueError(f"op {name!r}: unknown dtype rule {op.dtypes!r}")
    OPS[name] = op
    return op


# ---------------------------------------------------------------------------
# Building nodes
# ---------------------------------------------------------------------------
def _lift(x: Any, graph, dtype: str | None = None) -> Node:
    """``x`` as a node: numbers and arrays become constants of ``dtype`` (default:
    the graph's), so ``x32 * 2.0`` stays float32 and ``i32 + 1`` int32."""
    if isinstance(x, Node):
        return x
    dtype = graph.dtype if dtype is None else dtype
    if dtype in INTS or dtype == "bool":
        value = np.asarray(x)
        if value.dtype.kind not in "iub":
            raise BuildError(f"the number {_short(x)} is not an integer, but the other operand "
                             f"is {dtype}; write an integer, or cast(x, \"float64\") the "
                             "tensor")
        value = value.astype(dtype)
    else:
        value = as_value(x, "a constant operand", dtype)
    return graph.add_node("const", shape=value.shape, value=value, dtype=dtype)


def _short(x: Any) -> str:
    shown = repr(x)
    return shown if len(shown) < 30 else shown[:27] + "..."


def _kind(dtype: str) -> str:
    return "float" if dtype in FLOATS else "int" if dtype in INTS else "bool"


def _mix_error(op: Op, nodes: list[Node], why: str = "") -> BuildError:
    a = next(n for n in nodes if _kind(n.dtype) == "int")
    b = next(n for n in nodes if _kind(n.dtype) == "float")
    return BuildError(f"{op.name}({', '.join(n.name for n in nodes)}): {a.name} is {a.dtype} "
                      f"and {b.name} is {b.dtype}; nbbp does not mix integers and floats "
                      f"silently: write cast({a.name}, \"{b.dtype}\"){why}")


def _dtype(op: Op, args: tuple, attrs: dict | None = None) -> tuple[str | None, str | None]:
    """The dtype constants lifted from numbers take, and the output dtype, of ``op`` on
    ``args`` by its dtype rule (``Op.dtypes``), or a one-line BuildError naming the op and
    both dtypes. Integers promote to the wider (NumPy), float32 with float64 to float64,
    bool to the other operand's dtype; integers never mix with floats without cast."""
    rule = op.dtypes
    if rule == "gather":
        return _gather_dtype(op, args)
    nodes = [a for a in args if isinstance(a, Node)]
    if rule == "where" and len(args) == 3:
        cond = args[0]
        # a float 0/1 mask condition promotes with the branches (as before booleans);
        # a boolean or integer one does not
        nodes = [a for a in args[int(not (isinstance(cond, Node) and is_float(cond.dtype))):]
                 if isinstance(a, Node)]
    if not nodes:
        return None, None
    names = nodes[0].name if len(nodes) == 1 else _LazyNames(nodes)  # for errors only
    kinds = {_kind(n.dtype) for n in nodes}
    if rule == "cast":
        attrs.setdefault("dtype", nodes[0].dtype)
        return nodes[0].dtype, dtype_of(attrs["dtype"])
    if rule == "logical":
        bad = next((n for n in nodes if n.dtype != "bool"), None)
        if bad is not None:
            raise BuildError(f"{op.name}({names}): {bad.name} is {bad.dtype}; {op.name} takes "
                             f"booleans (comparisons give them), or cast({bad.name}, \"bool\")")
        return "bool", "bool"
    if "int" in kinds and "float" in kinds:
        raise _mix_error(op, nodes)
    numeric = [n.dtype for n in nodes if n.dtype != "bool"]
    dtype = promote(*numeric) if numeric else "bool"
    if rule == "where" and len(args) == 3 and isinstance(cond, Node):
        if not is_float(dtype) and is_float(cond.dtype):
            raise BuildError(f"where({cond.name}, ...): the condition is {cond.dtype} and the "
                             f"branches {dtype}; give a boolean condition (a comparison such "
                             "as greater(a, b))")
    if rule == "float" and not is_float(dtype):
        hint = ("use floordiv(a, b) for integer division, or " if op.name == "div"
                else "")
        raise BuildError(f"{op.name}({names}): {op.name} takes floating values, got {dtype}; "
                         f"{hint}cast({nodes[0].name}, \"float64\") first")
    if rule in ("numeric", "index") and dtype == "bool":
        raise BuildError(f"{op.name}({names}): {op.name} takes numbers, got bool; "
                         f"cast({nodes[0].name}, \"int32\") or cast(..., \"float64\") first")
    if rule == "compare":
        return dtype, "bool"
    if rule == "index":
        return dtype, "int64"
    return dtype, dtype


class _LazyNames:
    """``a, b``: the input names an error message shows, joined only if one is raised
    (a graph builds many nodes and raises few errors)."""

    __slots__ = ("nodes",)

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes

    def __str__(self) -> str:
        return ", ".join(n.name for n in self.nodes)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _gather_dtype(op: Op, args: tuple) -> tuple[str | None, str | None]:
    """take / take_grad: the values keep their dtype; the indices must be an integer
    node (float indices are a one-line error naming both dtypes)."""
    values, idx = args
    shown = "gather" if op.name == "take" else op.name
    vname = values.name if isinstance(values, Node) else _short(values)
    vdtype = values.dtype if isinstance(values, Node) else None
    if not isinstance(idx, Node):
        raise BuildError(f"{op.name}({vname}, {_short(idx)}): the indices must be an integer "
                         "node; for indices known when the graph is built, use gather")
    if not is_int(idx.dtype):
        also = f" and {vname} is {vdtype}" if vdtype else ""
        raise BuildError(f"{shown}({vname}, {idx.name}): the indices {idx.name} are "
                         f"{idx.dtype}{also}; indices must be integers: "
                         f"cast({idx.name}, \"int32\")")
    return vdtype, vdtype


def apply(name: str, *args: Any, name_: str | None = None, **attrs: Any) -> Node:
    """Add a node applying op ``name`` to ``args`` (numbers and arrays become consts
    of the nodes' dtype)."""
    op = OPS[name]
    for a in args:              # the graph of the first node among the arguments
        if isinstance(a, Node):
            graph = a.graph
            break
    else:
        graph = get_graph()
    start = len(graph.nodes)
    try:
        fast = None if attrs else _elementwise_fast(op, args, graph)
        if fast is not None:
            inputs, shape, dtype = fast
        else:
            lift, dtype = _dtype(op, args, attrs)
            lift = lift or graph.dtype
            dtype = dtype or lift
            if op.dtypes == "where" and len(args) == 3:
                inputs = (_lift(args[0], graph, "bool" if not is_float(lift) else lift),
                          *(_lift(a, graph, lift) for a in args[1:]))
            else:
                try:
                    inputs = tuple(_lift(a, graph, lift) for a in args)
                except BuildError as e:
                    raise BuildError(f"{name}: {e}") from None
            shape = _SHAPE_RULES[op.kind](op, inputs, attrs)
            if (graph.current_role == "grad" and op.elementwise
                    and builtins.all(i.op == "const" for i in inputs)):
                # fold constants the gradient rules create (e.g. the exponent b − 1 of
                # pow's VJP), so the engine can see through them
                graph.truncate(start)
                with np.errstate(all="ignore"):   # an inf or nan here is the run's to report
                    value = np.asarray(op.impl(*(i.value for i in inputs)), dtype=dtype)
                return graph.add_node("const", shape=shape, value=value, dtype=dtype)
        return graph.add_node(name, inputs, attrs, shape, name=name_, dtype=dtype)
    except BaseException:
        graph.truncate(start)   # no half-built consts left behind
        raise


_FAST_KINDS = (UNARY, BINARY)
_FAST_RULES = ("float", "numeric", "any")
_NUMBERS = (float, int)


def _elementwise_fast(op: Op, args: tuple, graph) -> tuple[tuple[Node, ...],
                                                          tuple[int, ...], str] | None:
    """The inputs, shape and dtype of the commonest node — a unary or binary op on
    nodes of one floating dtype and one shape, or on such a node and a Python number —
    without the general rules' work (the dtype rule's sets and promotion, NumPy's
    broadcasting), which would give the same answer; None for anything else, which
    the general path decides (tests/test_scale.py checks that both agree)."""
    if op.kind not in _FAST_KINDS or op.dtypes not in _FAST_RULES or len(args) > 2:
        return None
    dtype = shape = None
    fold = graph._role == "grad"       # all-constant inputs in the backward pass: fold
    lifts = False                      # a number among them, made a const
    for a in args:
        if a.__class__ is Node:
            if dtype is None:
                dtype, shape = a.dtype, a.shape
            elif a.dtype != dtype or a.shape != shape:
                return None
            if a.op != "const":
                fold = False
        elif a.__class__ in _NUMBERS:
            lifts = True
        else:
            return None
    if fold or dtype not in FLOATS:
        return None
    if lifts:
        args = tuple(a if a.__class__ is Node else _lift(a, graph, dtype) for a in args)
    return args, shape, dtype


def _show(op: Op, inputs: tuple[Node, ...]) -> str:
    names = [i.name for i in inputs]
    if op.symbol and len(names) == 2:
        return f"{names[0]} {op.symbol} {names[1]}"
    return f"{op.name}({', '.join(names)})"


def _broadcast(op: Op, shapes: list[tuple[int, ...]], inputs) -> tuple[int, ...]:
    # shapes that are all equal, or scalars beside one shape, broadcast to that shape
    # (NumPy's broadcast_shapes would say the same, ~5 µs later)
    full = [s for s in shapes if s]
    if not full or full.count(full[0]) == len(full):
        return tuple(map(int, full[0])) if full else ()
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        shown = " and ".join(str(s) for s in shapes)
        raise ShapeError(
            f"{_show(op, inputs)}: shapes {shown} do not broadcast; make them equal, or "
            "give one of them size 1 in the dimensions that differ (reshape)") from None


def _shape_elementwise(op, inputs, attrs):
    return _broadcast(op, [i.shape for i in inputs], inputs)


def _norm_axis(op, x: Node, axis) -> int | None:
    if axis is None:
        return None
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise BuildError(f"{op.name}({x.name}, axis={axis!r}): axis must be an int or None")
    if not -x.ndim <= axis < builtins.max(x.ndim, 1) or x.ndim == 0:
        raise ShapeError(f"{op.name}({x.name}, axis={axis}): {x.name} has shape {x.shape} "
                         f"and so axes 0..{x.ndim - 1}" if x.ndim else
                         f"{op.name}({x.name}, axis={axis}): {x.name} is a scalar; "
                         "leave out axis")
    return int(axis) % x.ndim


def _shape_reduce(op, inputs, attrs):
    (x,) = inputs
    axis = attrs["axis"] = _norm_axis(op, x, attrs.get("axis"))
    keep = attrs["keepdims"] = bool(attrs.get("keepdims", False))
    if axis is None:
        return (1,) * x.ndim if keep else ()
    return tuple(1 if i == axis else d for i, d in enumerate(x.shape) if keep or i != axis)


def _shape_softmax(op, inputs, attrs):
    (x,) = inputs
    if x.ndim == 0:
        raise ShapeError(f"{op.name}({x.name}): needs a vector or matrix, got a scalar")
    attrs["axis"] = _norm_axis(op, x, attrs.get("axis", -1))
    return x.shape


def _shape_matmul(op, inputs, attrs):
    a, b = inputs
    what = f"{a.name} @ {b.name}: {a.shape} @ {b.shape}"
    for x in inputs:
        if x.dtype == "bool":
            raise BuildError(f"{a.name} @ {b.name}: {x.name} is bool; matmul multiplies "
                             f"numbers: cast({x.name}, \"float64\") (or \"int32\") first")
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"{what} — matmul takes vectors, matrices and stacks of matrices; "
                         "use * to multiply by a scalar")
    if builtins.max(a.ndim, b.ndim) > 2 and builtins.min(a.ndim, b.ndim) < 2:
        raise ShapeError(f"{what} — a stack of matrices multiplies matrices, not a vector; "
                         "make the vector a matrix with expand_dims (a row or a column)")
    k1, k2 = a.shape[-1], b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k1 != k2:
        raise ShapeError(
            f"{what} — the inner dimensions {k1} and {k2} differ; {b.name} needs {k1} rows "
            "(or transpose one of them)")
    if builtins.max(a.ndim, b.ndim) <= 2:
        return a.shape[:-1] + b.shape[1:]
    try:        # the leading (batch) axes broadcast as NumPy's matmul does
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ShapeError(f"{what} — the batch axes {a.shape[:-2]} and {b.shape[:-2]} do not "
                         "broadcast (each pair must be equal or 1)") from None
    return tuple(batch) + (a.shape[-2], b.shape[-1])


def _shape_layout(op, inputs, attrs):
    (x,) = inputs
    if op.name == "transpose":
        perm = attrs.get("perm")
        perm = tuple(range(x.ndim))[::-1] if perm is None else tuple(int(p) for p in perm)
        if sorted(perm) != list(range(x.ndim)):
            raise ShapeError(f"transpose({x.name}, perm={perm}): perm must order the axes "
                             f"0..{x.ndim - 1} of shape {x.shape}")
        attrs["perm"] = perm
        return tuple(x.shape[p] for p in perm)
    shape = attrs.get("shape")
    try:
        shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise BuildError(f"{op.name}({x.name}, {shape!r}): the shape must be a tuple of "
                         "ints") from None
    if len(shape) > MAX_NDIM:
        raise ShapeError(f"{op.name}({x.name}, {shape}): at most {MAX_NDIM} dimensions")
    if op.name == "reshape":
        if shape.count(-1) == 1:
            rest = int(np.prod([s for s in shape if s != -1]))
            if rest and x.size % rest == 0:
                shape = tuple(x.size // rest if s == -1 else s for s in shape)
        if int(np.prod(shape)) != x.size or builtins.min(shape, default=1) < 0:
            raise ShapeError(f"reshape({x.name}, {shape}): {x.name} has shape {x.shape} "
                             f"({x.size} elements), which cannot be laid out as {shape}")
    elif op.name == "broadcast_to":
        try:
            np.broadcast_shapes(x.shape, shape)
            ok = np.broadcast_shapes(x.shape, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise ShapeError(f"broadcast_to({x.name}, {shape}): shape {x.shape} does not "
                             f"broadcast to {shape}")
    elif op.name == "sum_to":
        try:
            ok = np.broadcast_shapes(shape, x.shape) == x.shape
        except ValueError:
            ok = False
        if not ok:
            raise ShapeError(f"sum_to({x.name}, {shape}): shape {shape} does not broadcast "
                             f"to {x.name}'s shape {x.shape}")
    attrs["shape"] = shape
    return shape


_SHAPE_RULES = {UNARY: _shape_elementwise, BINARY: _shape_elementwise,
                WHERE: _shape_elementwise, REDUCE: _shape_reduce, MATMUL: _shape_matmul,
                LAYOUT: _shape_layout, SOFTMAX: _shape_softmax}


# ---------------------------------------------------------------------------
# Public builder functions (each reads its entry in the table)
# ---------------------------------------------------------------------------
def _unary(name: str) -> Callable[..., Node]:
    def fn(x: Any, name: str | None = None) -> Node:
        return apply(fn.__name__, x, name_=name)
    fn.__name__ = fn.__qualname__ = name
    return fn


def _binary(name: str) -> Callable[..., Node]:
    def fn(a: Any, b: Any, name: str | None = None) -> Node:
        return apply(fn.__name__, a, b, name_=name)
    fn.__name__ = fn.__qualname__ = name
    return fn


def _reduce(name: str) -> Callable[..., Node]:
    def fn(x: Any, axis: int | None = None, keepdims: bool = False,
           name: str | None = None) -> Node:
        return apply(fn.__name__, x, name_=name, axis=axis, keepdims=keepdims)
    fn.__name__ = fn.__qualname__ = name
    return fn


def _softmax(name: str) -> Callable[..., Node]:
    def fn(x: Any, axis: int = -1, name: str | None = None) -> Node:
        return apply(fn.__name__, x, name_=name, axis=axis)
    fn.__name__ = fn.__qualname__ = name
    return fn


def _layout(name: str) -> Callable[..., Node]:
    if name == "transpose":
        def fn(x: Any, perm: tuple[int, ...] | None = None, name: str | None = None) -> Node:
            return apply("transpose", x, name_=name, perm=perm)
    else:
        def fn(x: Any, shape: tuple[int, ...], name: str | None = None) -> Node:
            return apply(fn.__name__, x, name_=name, shape=shape)
    fn.__name__ = fn.__qualname__ = name
    return fn


def where(cond: Any, a: Any, b: Any, name: str | None = None) -> Node:
    """``a`` where ``cond`` is nonzero, else ``b`` (elementwise, broadcasting)."""
    return apply("where", cond, a, b, name_=name)


def leaky_relu(x: Any, alpha: Any = 0.01, name: str | None = None) -> Node:
    """``x`` for x > 0, ``alpha·x`` otherwise; ``alpha`` may be a param (PReLU)."""
    return apply("leaky_relu", x, alpha, name_=name)


def _expand(g: Node, x: Node, axis: int | None, keepdims: bool) -> Node:
    """Broadcast the gradient of a reduction back to the shape of its input."""
    if not keepdims and g.shape != ():
        kshape = tuple(1 if i == axis else d for i, d in enumerate(x.shape))
        g = reshape(g, kshape)
    return broadcast_to(g, x.shape) if g.shape != x.shape else g


def _matmul_vjp(g: Node, y: Node):
    a, b = y.inputs
    if y.ndim > 2:                  # a stack: each matrix's rule, summed over broadcasting
        ga, gb = matmul(g, _swap_last(b)), matmul(_swap_last(a), g)
        return (ga if ga.shape == a.shape else sum_to(ga, a.shape),
                gb if gb.shape == b.shape else sum_to(gb, b.shape))
    a2 = a if a.ndim == 2 else reshape(a, (1, a.shape[0]))
    b2 = b if b.ndim == 2 else reshape(b, (b.shape[0], 1))
    g2 = g if g.shape == (a2.shape[0], b2.shape[1]) else reshape(g, (a2.shape[0], b2.shape[1]))
    ga = matmul(g2, transpose(b2))
    gb = matmul(transpose(a2), g2)
    return (ga if ga.shape == a.shape else reshape(ga, a.shape),
            gb if gb.shape == b.shape else reshape(gb, b.shape))


def _swap_last(x: Node) -> Node:
    """``x`` with its last two axes swapped (each matrix of a stack transposed)."""
    return transpose(x, tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2))


def _int_mean_ref(a, axis, keepdims):
    return _int_mean(a, axis, keepdims)


def _share(a: Node, b: Node) -> Node:
    """1 where a wins, ½ at a tie, 0 where b wins: how maximum splits its gradient (as
    max does, and as PyTorch, JAX and HIPS autograd do)."""
    return gt(a, b) + 0.5 * eq(a, b)


def _pow_vjp(g: Node, y: Node):
    a, b = y.inputs
    if b.op == "const" and b.size == 1 and float(b.value) == 2.0:
        da = g * (2.0 * a)                   # the common square: no pow(a, 1) node
    else:
        da = g * b * a ** (b - 1.0)
    return da, g * log(a) * y


def _max_vjp(g: Node, y: Node):
    (x,) = y.inputs
    axis, keep = y.attrs["axis"], y.attrs["keepdims"]
    mask = eq(x, _expand(y, x, axis, keep))
    count = sum(mask, axis=axis, keepdims=True)
    return (_expand(g, x, axis, keep) * mask / count,)


def _softmax_vjp(g: Node, y: Node):
    axis = y.attrs["axis"]
    return (y * (g - sum(g * y, axis=axis, keepdims=True)),)


def _log_softmax_vjp(g: Node, y: Node):
    axis = y.attrs["axis"]
    return (g - exp(y) * sum(g, axis=axis, keepdims=True),)


# -- the table -----------------------------------------------------------------
NOGRAD = None
_U, _B = (-2.0, 2.0), (0.5, 2.0)

for _name in LEAF_OPS:
    defop(_name, 0 - LEAF_OPS.index(_name), 0, LEAF, None, None, _name, (), doc="leaf",
          dtypes="leaf")

defop("neg", 1, 1, UNARY, np.negative, lambda g, y: (-g,), "−a", ("-1",), (_U,), doc="−x",
      dtypes="numeric")
defop("exp", 2, 1, UNARY, np.exp, lambda g, y: (g * y,), "exp(a)", ("y",), (_U,),
      doc="eˣ")
defop("log", 3, 1, UNARY, np.log, lambda g, y: (g / y.inputs[0],), "log(a)", ("1/a",),
      (_B,), doc="natural logarithm; needs x > 0")
defop("sqrt", 4, 1, UNARY, np.sqrt, lambda g, y: (g * 0.5 / y,), "sqrt(a)", ("0.5/y",),
      (_B,), doc="square root; needs x ≥ 0")
defop("abs", 5, 1, UNARY, np.abs, lambda g, y: (g * sign(y.inputs[0]),), "abs(a)",
      ("sign(a)",), (_U,), avoid=(0.0,), doc="|x|", dtypes="numeric")
defop("sin", 6, 1, UNARY, np.sin, lambda g, y: (g * cos(y.inputs[0]),), "sin(a)",
      ("cos(a)",), (_U,))
defop("cos", 7, 1, UNARY, np.cos, lambda g, y: (g * -sin(y.inputs[0]),), "cos(a)",
      ("-sin(a)",), (_U,))
defop("tanh", 8, 1, UNARY, np.tanh, lambda g, y: (g * (1.0 - y * y),), "tanh(a)",
      ("1 - y**2",), (_U,))
defop("sigmoid", 9, 1, UNARY, _sigmoid, lambda g, y: (g * (y * (1.0 - y)),), "sigmoid(a)",
      ("y*(1 - y)",), (_U,), doc="1 / (1 + e⁻ˣ)")
defop("relu", 10, 1, UNARY, lambda a: np.maximum(a, 0.0),
      lambda g, y: (g * step(y),), "relu(a)", ("step(a)",), (_U,), avoid=(0.0,),
      doc="max(x, 0)", dtypes="numeric")
defop("softplus", 11, 1, UNARY, lambda a: np.logaddexp(a, 0.0),
      lambda g, y: (g * sigmoid(y.inputs[0]),), "softplus(a)", ("sigmoid(a)",), (_U,),
      doc="log(1 + eˣ), computed stably")
defop("sign", 12, 1, UNARY, np.sign, NOGRAD, "sign(a)", (None,), (_U,),
      doc="−1, 0 or 1; no gradient", dtypes="numeric")
defop("step", 13, 1, UNARY, _step, NOGRAD, "step(a)", (None,), (_U,),
      doc="1 where x > 0, else 0; no gradient")
defop("stop_gradient", 14, 1, UNARY, lambda a: np.array(a, dtype=float), NOGRAD,
      "stop_gradient(a)", (None,), (_U,), doc="passes the value, blocks the gradient", dtypes="any")
defop("erf", 17, 1, UNARY, _np_erf,
      lambda g, y: (g * (2.0 / math.sqrt(math.pi) * exp(-(y.inputs[0] * y.inputs[0]))),),
      "erf(a)", ("2/sqrt(pi)*exp(-a**2)",), (_U,),
      doc="the error function (2/√π) ∫₀ˣ e^(−t²) dt; exact GELU is x·(1 + erf(x/√2))/2")

defop("add", 20, 2, BINARY, np.add, lambda g, y: (g, g), "a + b", ("1", "1"), (_U, _U),
      symbol="+", dtypes="numeric")
defop("sub", 21, 2, BINARY, np.subtract, lambda g, y: (g, -g), "a - b", ("1", "-1"),
      (_U, _U), symbol="-", dtypes="numeric")
defop("mul", 22, 2, BINARY, np.multiply,
      lambda g, y: (g * y.inputs[1], g * y.inputs[0]), "a*b", ("b", "a"), (_U, _U),
      symbol="*", dtypes="numeric")
defop("div", 23, 2, BINARY, np.divide,
      lambda g, y: (g / y.inputs[1], -g * y.inputs[0] / (y.inputs[1] * y.inputs[1])),
      "a/b", ("1/b", "-a/b**2"), (_U, _B), symbol="/")
defop("pow", 24, 2, BINARY, np.power, lambda g, y: _pow_vjp(g, y),
      "a**b", ("b*a**(b - 1)", "log(a)*y"), (_B, _U), symbol="**")
defop("maximum", 25, 2, BINARY, np.maximum,
      lambda g, y: (g * _share(*y.inputs), g * _share(*y.inputs[::-1])), "maximum(a, b)",
      ("(a > b) + 0.5*(a == b)", "(b > a) + 0.5*(a == b)"), (_U, _U),
      doc="the larger; at a tie each side gets half the gradient", dtypes="numeric")
defop("minimum", 26, 2, BINARY, np.minimum,
      lambda g, y: (g * _share(*y.inputs[::-1]), g * _share(*y.inputs)), "minimum(a, b)",
      ("(a < b) + 0.5*(a == b)", "(b < a) + 0.5*(a == b)"), (_U, _U),
      doc="the smaller; at a tie each side gets half the gradient", dtypes="numeric")
defop("leaky_relu", 27, 2, BINARY, lambda a, b: np.where(a > 0, a, b * a),
      lambda g, y: (g * where(y.inputs[0] > 0.0, 1.0, y.inputs[1]),
                    g * minimum(y.inputs[0], 0.0)),
      "leaky_relu(a, b)", ("where(a > 0, 1, b)", "minimum(a, 0)"), (_U, (0.01, 0.3)),
      avoid=(0.0,), doc="x for x > 0, else αx (b = α)")
defop("gt", 28, 2, BINARY, lambda a, b: np.greater(a, b).astype(float), NOGRAD, "a > b",
      (None, None), (_U, _U), symbol=">", dtypes="numeric")
defop("ge", 29, 2, BINARY, lambda a, b: np.greater_equal(a, b).astype(float), NOGRAD,
      "a >= b", (None, None), (_U, _U), symbol=">=", dtypes="numeric")
defop("lt", 30, 2, BINARY, lambda a, b: np.less(a, b).astype(float), NOGRAD, "a < b",
      (None, None), (_U, _U), symbol="<", dtypes="numeric")
defop("le", 31, 2, BINARY, lambda a, b: np.less_equal(a, b).astype(float), NOGRAD,
      "a <= b", (None, None), (_U, _U), symbol="<=", dtypes="numeric")
defop("eq", 32, 2, BINARY, lambda a, b: np.equal(a, b).astype(float), NOGRAD, "a == b",
      (None, None), (_U, _U), symbol="==", dtypes="numeric")

defop("where", 40, 3, WHERE, lambda c, a, b: np.where(c != 0, a, b),
      lambda g, y: (None, where(y.inputs[0], g, 0.0), where(y.inputs[0], 0.0, g)),
      "where(c, a, b)", (None, "c != 0", "c == 0"), ((0.0, 1.0), _U, _U),
      doc="a where c ≠ 0, else b", args="cab", dtypes="where")

defop("sum", 50, 1, REDUCE, lambda a, axis, keepdims: np.sum(a, axis, keepdims=keepdims),
      lambda g, y: (_expand(g, y.inputs[0], y.attrs["axis"], y.attrs["keepdims"]),),
      "sum(a)", ("g copied to every summed element",), (_U,), attrs=("axis", "keepdims"),
      dtypes="numeric")
defop("mean", 51, 1, REDUCE, _int_mean_ref,
      lambda g, y: (_expand(g, y.inputs[0], y.attrs["axis"], y.attrs["keepdims"])
                    * (y.size / y.inputs[0].size),),
      "mean(a)", ("g / n to every averaged element",), (_U,), attrs=("axis", "keepdims"),
      dtypes="numeric")
defop("max", 52, 1, REDUCE, lambda a, axis, keepdims: np.max(a, axis, keepdims=keepdims),
      _max_vjp, "max(a)", ("g to the maximum (ties share it), 0 elsewhere",), (_U,),
      attrs=("axis", "keepdims"), dtypes="numeric")
defop("min", 53, 1, REDUCE, lambda a, axis, keepdims: np.min(a, axis, keepdims=keepdims),
      _max_vjp, "min(a)", ("g to the minimum (ties share it), 0 elsewhere",), (_U,),
      attrs=("axis", "keepdims"), dtypes="numeric")

defop("matmul", 60, 2, MATMUL, np.matmul, _matmul_vjp, "a @ b", ("g @ bᵀ", "aᵀ @ g"),
      (_U, _U), symbol="@", dtypes="numeric",
      doc="matrix product; on stacks of matrices (3-D, 4-D) one product per matrix, the "
          "leading axes broadcasting as NumPy's matmul; of integers in integers (TF1's "
          "matmul on int32, wrapping as NumPy's), no gradient there")

defop("transpose", 70, 1, LAYOUT, lambda a, perm: np.transpose(a, perm),
      lambda g, y: (transpose(g, tuple(np.argsort(y.attrs["perm"]))),), "transpose(a)",
      ("g transposed back",), (_U,), attrs=("perm",), dtypes="any")
defop("reshape", 71, 1, LAYOUT, lambda a, shape: np.reshape(a, shape),
      lambda g, y: (reshape(g, y.inputs[0].shape),), "reshape(a)",
      ("g reshaped back",), (_U,), attrs=("shape",), dtypes="any")
defop("broadcast_to", 72, 1, LAYOUT, lambda a, shape: np.broadcast_to(a, shape).copy(),
      lambda g, y: (sum_to(g, y.inputs[0].shape),), "broadcast_to(a)",
      ("g summed over the broadcast axes",), (_U,), attrs=("shape",), dtypes="any")
defop("sum_to", 73, 1, LAYOUT, lambda a, shape: _sum_to(a, shape),
      lambda g, y: (broadcast_to(g, y.inputs[0].shape),), "sum_to(a)",
      ("g broadcast back",), (_U,), attrs=("shape",),
      doc="sum over the axes that broadcasting added (the VJP of broadcasting)")

defop("softmax", 80, 1, SOFTMAX, lambda a, axis: _np_softmax(a, axis), _softmax_vjp,
      "softmax(a)", ("y·(g − Σ g·y)",), (_U,), attrs=("axis",))
defop("log_softmax", 81, 1, SOFTMAX, lambda a, axis: _np_log_softmax(a, axis),
      _log_softmax_vjp, "log_softmax(a)", ("g − softmax(a)·Σ g",), (_U,), attrs=("axis",))


def _sum_to(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape)
                                      if d == 1 and a.shape[lead + i] != 1)
    return np.sum(a, axis=axes, keepdims=True).reshape(shape)


def _np_softmax(a, axis):
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _np_log_softmax(a, axis):
    s = a - np.max(a, axis=axis, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


# ---------------------------------------------------------------------------
# Tensor ops: selections (slicing, concat, stack, tile, pad, squeeze, expand_dims,
# gather), their adjoint scatter, and clip, prod, logsumexp
# ---------------------------------------------------------------------------
# A selection only moves elements: each output element is one element of one input.
# Its NumPy impl, run on element *numbers* instead of values, gives its index map
# (`select_table`); the engine lowers that map to block copies, and one adjoint op,
# `scatter`, adds a gradient back along the same map. So every selection has the same
# VJP rule, and scatter's own VJP is the selection again: gradients of gradients work.

OPEN = 1 << 62                   # an open slice end (x[2:]): stays open for new batch sizes
_SLICE, _INT, _NEW = 0, 1, 2     # getitem's index: four ints per item (kind, a, b, c)
_SEL_ATTRS = ("index", "axis", "multiples", "paddings", "indices", "indices_shape")


def _is_int(k: Any) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def _index_spec(x: Node, key: Any) -> tuple[int, ...]:
    """A Python index (ints, slices, None, ...) → flat ints, four per item:
    ``(0, start, stop, step)`` a slice, ``(1, i, 0, 0)`` an int, ``(2, 0, 0, 0)`` a new
    axis; ``...`` is expanded, open slice ends stay open (``OPEN``)."""
    key = key if isinstance(key, tuple) else (key,)
    shown = f"getitem {x.name}[{', '.join(_show_item(k) for k in key)}]"
    if builtins.sum(k is Ellipsis for k in key) > 1:
        raise BuildError(f"{shown}: an index can have only one ellipsis (...)")
    used = builtins.sum(k is not None and k is not Ellipsis for k in key)
    if used > x.ndim:
        raise ShapeError(f"{shown}: too many indices for {x.name} of shape {x.shape} "
                         f"({x.ndim} axes)")
    if not builtins.any(k is Ellipsis for k in key):
        key = key + (Ellipsis,)
    spec: list[int] = []
    for k in key:
        if k is Ellipsis:
            spec += [_SLICE, 0, OPEN, 1] * (x.ndim - used)
        elif k is None:
            spec += [_NEW, 0, 0, 0]
        elif isinstance(k, slice):
            if not builtins.all(b is None or _is_int(b) for b in (k.start, k.stop, k.step)):
                raise BuildError(f"{shown}: slice bounds must be ints, got {_show_item(k)}")
            step = 1 if k.step is None else int(k.step)
            if step == 0:
                raise BuildError(f"{shown}: a slice step cannot be zero")
            start = (-OPEN if step > 0 else OPEN) if k.start is None else int(k.start)
            stop = (OPEN if step > 0 else -OPEN) if k.stop is None else int(k.stop)
            spec += [_SLICE, start, stop, step]
        elif _is_int(k):
            spec += [_INT, int(k), 0, 0]
        else:
            raise BuildError(f"{shown}: an index must be an int, a slice, None or ...; got "
                             f"{type(k).__name__} {_show_item(k)} (to pick positions from a "
                             "list, use gather)")
    return tuple(spec)


def _show_item(k: Any) -> str:
    if k is Ellipsis:
        return "..."
    if isinstance(k, slice):
        parts = ["" if v is None or builtins.abs(v) == OPEN else str(v)
                 for v in (k.start, k.stop, k.step)]
        return ":".join(parts[:2]) + (f":{parts[2]}" if parts[2] not in ("", "1") else "")
    shown = repr(k)
    return shown if len(shown) < 30 else shown[:27] + "..."


def index_text(spec: tuple[int, ...]) -> str:
    """getitem's index attribute as the cell wrote it: ``(0, -OPEN, OPEN, 1, 1, 2, 0, 0)``
    → ``":, 2"``."""
    items = []
    for i in range(0, len(spec), 4):
        kind, a, b, c = spec[i:i + 4]
        items.append("None" if kind == _NEW else str(a) if kind == _INT
                     else _show_item(slice(a, b, c)))
    return ", ".join(items)


def _resolve_index(name: str, shape: tuple[int, ...], spec: tuple[int, ...]):
    """The NumPy key and output shape of getitem's index ``spec`` on ``shape``."""
    def shown() -> str:
        return f"getitem {name}[{index_text(spec)}]"
    key: list[Any] = []
    out: list[int] = []
    axis = 0
    for i in range(0, len(spec), 4):
        kind, a, b, c = (int(v) for v in spec[i:i + 4])
        if kind == _NEW:
            key.append(None)
            out.append(1)
            continue
        if axis >= len(shape):
            raise ShapeError(f"{shown()}: too many indices for shape {shape}")
        size = shape[axis]
        if kind == _INT:
            if not -size <= a < size:
                raise ShapeError(f"{shown()}: index {a} is out of range for axis {axis} of size "
                                 f"{size} (valid: {-size}..{size - 1}); the shape is {shape}")
            key.append(a % size)
        else:
            start, stop, step = slice(a, b, c).indices(size)
            count = len(range(start, stop, step))
            if count == 0:
                raise ShapeError(f"{shown()}: the slice {_show_item(slice(a, b, c))} selects "
                                 f"nothing from axis {axis} of size {size} (shape {shape})")
            key.append(slice(start, stop if stop >= 0 else None, step))
            out.append(count)
        axis += 1
    if axis != len(shape):
        raise ShapeError(f"{shown()}: the index covers {axis} axes, the shape {shape} has "
                         f"{len(shape)}")
    if len(out) > MAX_NDIM:
        raise ShapeError(f"{shown()}: the result would have {len(out)} axes; at most {MAX_NDIM}")
    return tuple(key), tuple(out)


def _axis_in(what: str, axis: Any, n: int) -> int:
    if not _is_int(axis):
        raise BuildError(f"{what}: axis must be an int, got {axis!r}")
    if not -n <= axis < n:
        raise ShapeError(f"{what}: axis {axis} is out of range (valid: {-n}..{n - 1})")
    return int(axis) % n


def _names(inputs) -> str:
    return "[" + ", ".join(x.name for x in inputs) + "]"


def _shape_getitem(op, inputs, attrs):
    (x,) = inputs
    return _resolve_index(x.name, x.shape, tuple(attrs["index"]))[1]


def _shape_concat(op, inputs, attrs):
    first = inputs[0]
    what = f"{op.name}({_names(inputs)}, axis={attrs.get('axis', 0)})"
    if op.name == "stack":
        if first.ndim + 1 > MAX_NDIM:
            raise ShapeError(f"{what}: stacking shape {first.shape} gives {first.ndim + 1} "
                             f"axes; at most {MAX_NDIM}")
        axis = attrs["axis"] = _axis_in(what, attrs.get("axis", 0), first.ndim + 1)
        for x in inputs[1:]:
            if x.shape != first.shape:
                raise ShapeError(f"{what}: shapes {first.shape} ({first.name}) and {x.shape} "
                                 f"({x.name}) differ; stack needs equal shapes")
        return first.shape[:axis] + (len(inputs),) + first.shape[axis:]
    if first.ndim == 0:
        raise ShapeError(f"{what}: {first.name} is a scalar; concat joins tensors along an "
                         "axis (use stack to make a vector of scalars)")
    axis = attrs["axis"] = _axis_in(what, attrs.get("axis", 0), first.ndim)
    for x in inputs[1:]:
        if x.ndim != first.ndim:
            raise ShapeError(f"{what}: shapes {first.shape} ({first.name}) and {x.shape} "
                             f"({x.name}) have different numbers of axes")
        for d in range(first.ndim):
            if d != axis and x.shape[d] != first.shape[d]:
                raise ShapeError(f"{what}: shapes {first.shape} ({first.name}) and {x.shape} "
                                 f"({x.name}) differ on axis {d}; only axis {axis}, the one "
                                 "joined along, may differ")
    total = builtins.sum(x.shape[axis] for x in inputs)
    return first.shape[:axis] + (total,) + first.shape[axis + 1:]


def _int_tuple(what: str, value: Any, label: str) -> tuple[int, ...]:
    arr = np.asarray(value)
    if arr.size and arr.dtype.kind not in "iu":
        raise BuildError(f"{what}: {label} must be whole numbers, got {value!r}")
    return tuple(int(v) for v in arr.ravel())


def _shape_tile(op, inputs, attrs):
    (x,) = inputs
    what = f"tile({x.name}, {attrs.get('multiples')!r})"
    mult = attrs["multiples"] = _int_tuple(what, attrs.get("multiples"), "multiples")
    if len(mult) != x.ndim or builtins.any(m < 1 for m in mult):
        raise ShapeError(f"{what}: multiples needs one count ≥ 1 per axis of shape {x.shape}")
    return tuple(d * m for d, m in zip(x.shape, mult))


def _shape_pad(op, inputs, attrs):
    x, value = inputs
    raw = attrs.get("paddings")
    what = f"pad({x.name}, {raw!r})"
    flat = attrs["paddings"] = _int_tuple(what, raw, "paddings")
    if len(flat) != 2 * x.ndim:
        raise ShapeError(f"{what}: paddings needs a [before, after] pair per axis of shape "
                         f"{x.shape}, e.g. {[[1, 1]] * x.ndim}")
    for ax in range(x.ndim):
        if flat[2 * ax] < 0 or flat[2 * ax + 1] < 0:
            raise ShapeError(f"{what}: widths {list(flat[2 * ax:2 * ax + 2])} on axis {ax} "
                             "are negative; padding widths must be ≥ 0")
    if value.size != 1 or value.ndim:
        raise ShapeError(f"{what}: the value must be a scalar, got shape {value.shape}")
    return tuple(d + flat[2 * i] + flat[2 * i + 1] for i, d in enumerate(x.shape))


def _shape_squeeze(op, inputs, attrs):
    (x,) = inputs
    axis = attrs.get("axis")
    what = f"squeeze({x.name}, axis={axis!r})"
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = tuple(sorted({_axis_in(what, a, builtins.max(x.ndim, 1))
                             for a in (axis if isinstance(axis, (tuple, list)) else (axis,))}))
        for a in axes:
            if x.shape[a] != 1:
                raise ShapeError(f"{what}: axis {a} of shape {x.shape} has size {x.shape[a]}, "
                                 "not 1; only axes of size 1 can be squeezed")
    attrs["axis"] = axes
    return tuple(d for i, d in enumerate(x.shape) if i not in axes)


def _shape_expand_dims(op, inputs, attrs):
    (x,) = inputs
    what = f"expand_dims({x.name}, axis={attrs.get('axis')!r})"
    if x.ndim + 1 > MAX_NDIM:
        raise ShapeError(f"{what}: shape {x.shape} already has {MAX_NDIM} axes")
    axis = attrs["axis"] = _axis_in(what, attrs.get("axis"), x.ndim + 1)
    return x.shape[:axis] + (1,) + x.shape[axis:]


def _shape_gather(op, inputs, attrs):
    (p,) = inputs
    raw, ishape = attrs.get("indices"), attrs.get("indices_shape")
    what = f"gather({p.name}, indices, axis={attrs.get('axis', 0)!r})"
    if isinstance(raw, Node):
        raise BuildError(f"{what}: indices must be numbers known when the graph is built "
                         f"(an int, a list or an integer array), got the node {raw.name!r}")
    if p.ndim == 0:
        raise ShapeError(f"{what}: {p.name} is a scalar; gather picks along an axis")
    axis = attrs["axis"] = _axis_in(what, attrs.get("axis", 0), p.ndim)
    arr = np.asarray(raw) if ishape is None else np.reshape(np.asarray(raw), ishape)
    n = p.shape[axis]
    if arr.size == 0:
        raise ShapeError(f"{what}: no indices given")
    if arr.dtype.kind not in "iu":
        vals = arr.ravel().tolist()
        bad = next((v for v in vals if not (isinstance(v, float) and v.is_integer())), vals[0])
        raise BuildError(f"{what}: index {bad!r} is not an integer ({arr.dtype}); indices are "
                         f"positions along axis {axis} of shape {p.shape}: 0..{n - 1}")
    out_of = arr[(arr < 0) | (arr >= n)]
    if out_of.size:
        raise ShapeError(f"{what}: index {int(out_of[0])} is out of range for axis {axis} of "
                         f"{p.name} (shape {p.shape}): valid 0..{n - 1}")
    shape = p.shape[:axis] + arr.shape + p.shape[axis + 1:]
    if len(shape) > MAX_NDIM:
        raise ShapeError(f"{what}: the result would have shape {shape}; at most {MAX_NDIM} axes")
    attrs["indices"], attrs["indices_shape"] = tuple(int(v) for v in arr.ravel()), arr.shape
    return shape


def _enc_shapes(shapes) -> tuple[int, ...]:
    return tuple(v for s in shapes for v in (len(s), *s))


def _dec_shapes(flat) -> tuple[tuple[int, ...], ...]:
    out, i = [], 0
    while i < len(flat):
        k = int(flat[i])
        out.append(tuple(int(d) for d in flat[i + 1:i + 1 + k]))
        i += 1 + k
    return tuple(out)


def _fwd_items(of: str, attrs: dict) -> tuple:
    return tuple((k, attrs[k]) for k in OPS[of].attrs)


@functools.lru_cache(maxsize=32)
def select_table(name: str, shapes: tuple[tuple[int, ...], ...], items: tuple) -> np.ndarray:
    """The index map of selection op ``name`` on inputs of ``shapes``: for each output
    element (C order), the number of the input element it is, the inputs' elements
    numbered one input after another. It is the op's own impl, run on the numbers.

    >>> select_table("concat", ((2,), (1,)), (("axis", 0),)).tolist()
    [0, 1, 2]
    """
    ids, start = [], 0
    for s in shapes:
        n = math.prod(s)
        ids.append(np.arange(start, start + n, dtype=np.int64).reshape(s))
        start += n
    table = np.ascontiguousarray(np.asarray(OPS[name].impl(*ids, **dict(items))).ravel(),
                                 dtype=np.int64)
    table.flags.writeable = False
    return table


def _reads(name: str, shapes, items) -> list[bool]:
    """Which inputs the selection reads at all (pad without padding never reads its
    value, so that input gets no gradient node)."""
    table = select_table(name, shapes, items)
    ends = np.cumsum([math.prod(s) for s in shapes])
    counts = np.bincount(np.searchsorted(ends, table, side="right"), minlength=len(shapes))
    return [bool(c) for c in counts[:len(shapes)]]


def _shape_scatter(op, inputs, attrs):
    (g,) = inputs
    of = attrs.get("of")
    if of not in OPS or OPS[of].kind != SELECT or of == "scatter":
        raise BuildError(f"scatter({g.name}, of={of!r}): 'of' must name a selection op")
    shapes = _dec_shapes(attrs["shapes"])
    arg = attrs["arg"]
    if not _is_int(arg) or not 0 <= arg < len(shapes):
        raise BuildError(f"scatter({g.name}, arg={arg!r}): arg must be 0..{len(shapes) - 1}")
    for k in _SEL_ATTRS:
        attrs.setdefault(k, None)
    items = _fwd_items(of, attrs)
    table = select_table(of, shapes, items)
    if table.size != g.size or not _reads(of, shapes, items)[arg]:
        raise ShapeError(f"scatter({g.name}, of={of!r}): {g.name} of shape {g.shape} is not "
                         f"the output of {of} on shapes {shapes} reading input {arg}")
    return shapes[arg]


def _shape_select(op, inputs, attrs):
    if not op.takes(len(inputs)):
        raise BuildError(f"{op.name}: takes {op.arity} inputs, got {len(inputs)}")
    return _SELECT_SHAPES[op.name](op, inputs, attrs)


_SELECT_SHAPES = {"getitem": _shape_getitem, "concat": _shape_concat, "stack": _shape_concat,
                  "tile": _shape_tile, "pad": _shape_pad, "squeeze": _shape_squeeze,
                  "expand_dims": _shape_expand_dims, "gather": _shape_gather,
                  "scatter": _shape_scatter}
_SHAPE_RULES[SELECT] = _shape_select


# -- NumPy implementations (they work on values and, for the index map, on numbers)
def _np_getitem(a, index):
    return np.asarray(a)[_resolve_index("a", np.shape(a), tuple(index))[0]]


def _np_pad(a, value, paddings):
    a = np.asarray(a)
    if a.ndim == 0:
        return a.copy()
    return np.pad(a, np.reshape(paddings, (-1, 2)), constant_values=np.asarray(value)[()])


def _np_scatter(g, of, arg, shapes, **fwd):
    shapes = _dec_shapes(shapes)
    table = select_table(of, shapes, _fwd_items(of, fwd))
    lo = builtins.sum(math.prod(s) for s in shapes[:arg])
    n = math.prod(shapes[arg])
    inside = (table >= lo) & (table < lo + n)
    g = np.asarray(g)
    out = np.zeros(n, dtype=g.dtype)
    np.add.at(out, table[inside] - lo, g.ravel()[inside])
    return out.reshape(shapes[arg])


def _np_prod(a, axis, keepdims):
    return np.prod(a, axis, keepdims=keepdims)


def _np_logsumexp(a, axis, keepdims):
    a = np.asarray(a)
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    if keepdims:
        return out
    return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)


def _np_clip(x, lo, hi):
    return np.maximum(np.minimum(x, hi), lo)    # TF1's order: lo wins if lo > hi


# -- VJP rules -------------------------------------------------------------------
def _select_vjp(g: Node, y: Node):
    shapes = tuple(x.shape for x in y.inputs)
    fwd = {k: y.attrs[k] for k in OPS[y.op].attrs}
    reads = _reads(y.op, shapes, _fwd_items(y.op, fwd))
    return tuple(scatter(g, y.op, j, shapes, **fwd) if reads[j] else None
                 for j in range(len(shapes)))


def _scatter_vjp(g: Node, y: Node):
    of, arg = y.attrs["of"], y.attrs["arg"]
    shapes = _dec_shapes(y.attrs["shapes"])
    args = [g if j == arg else np.zeros(s) for j, s in enumerate(shapes)]
    return (apply(of, *args, **{k: y.attrs[k] for k in OPS[of].attrs}),)


def _prod_vjp(g: Node, y: Node):
    """∂∏x/∂xᵢ = the product of the others, also where x has zeros: with no zero in a
    slice it is ∏/xᵢ; with one, the product of the nonzeros at the zero and 0 elsewhere;
    with more, 0 (as TF1, PyTorch and JAX give)."""
    (x,) = y.inputs
    axis, keep = y.attrs["axis"], y.attrs["keepdims"]
    zero = eq(x, 0.0)
    nonzero = where(zero, 1.0, x)
    count = _expand(sum(zero, axis=axis, keepdims=keep), x, axis, keep)
    others = _expand(prod(nonzero, axis=axis, keepdims=keep), x, axis, keep)
    local = where(eq(count, 0.0), others / nonzero, where(eq(count, 1.0) * zero, others, 0.0))
    return (_expand(g, x, axis, keep) * local,)


def _logsumexp_vjp(g: Node, y: Node):
    (x,) = y.inputs
    axis, keep = y.attrs["axis"], y.attrs["keepdims"]
    return (_expand(g, x, axis, keep) * exp(x - _expand(y, x, axis, keep)),)


def _clip_vjp(g: Node, y: Node):
    x, lo, hi = y.inputs             # TF1's rule: 1 inside [lo, hi], 0 outside
    below, above = lt(x, lo), gt(x, hi)
    return (where(below + above, 0.0, g), where(below, g, 0.0), where(above, g, 0.0))


_SEL = "any"    # selections move elements of any dtype
defop("getitem", 110, 1, SELECT, _np_getitem, _select_vjp, "a[index]",
      ("g scattered back into zeros at the selected positions",), (_U,), attrs=("index",),
      doc="indexing and slicing: x[0], x[:, 1:3], x[::-1], x[..., None]", dtypes=_SEL)
defop("concat", 111, 2, SELECT, lambda *xs, axis: np.concatenate(xs, axis), _select_vjp,
      "concat(x1, x2, …)", ("g's part at its place",) * 2, (_U, _U),
      attrs=("axis",), doc="joins tensors along an existing axis", dtypes=_SEL,
      variadic=True)
defop("stack", 112, 2, SELECT, lambda *xs, axis: np.stack(xs, axis), _select_vjp,
      "stack(x1, x2, …)", ("g's slice at its place",) * 2, (_U, _U),
      attrs=("axis",), doc="joins tensors of one shape along a new axis", dtypes=_SEL,
      variadic=True)
defop("tile", 113, 1, SELECT, lambda a, multiples: np.tile(a, multiples), _select_vjp,
      "tile(a)", ("g summed over the copies",), (_U,), attrs=("multiples",),
      doc="repeats the tensor along each axis", dtypes=_SEL)
defop("pad", 114, 2, SELECT, _np_pad, _select_vjp, "pad(a, v)",
      ("g without the padding", "g summed over the padding"), (_U, _U), attrs=("paddings",),
      doc="constant padding (TF1's pad): [before, after] per axis, filled with v",
      args="av", dtypes=_SEL)
defop("squeeze", 115, 1, SELECT, lambda a, axis: np.squeeze(a, axis), _select_vjp,
      "squeeze(a)", ("g reshaped back",), (_U,), attrs=("axis",),
      doc="drops axes of size 1 (all, or those given)", dtypes=_SEL)
defop("expand_dims", 116, 1, SELECT, lambda a, axis: np.expand_dims(a, axis), _select_vjp,
      "expand_dims(a)", ("g reshaped back",), (_U,), attrs=("axis",),
      doc="inserts an axis of size 1", dtypes=_SEL)
defop("gather", 117, 1, SELECT,
      lambda a, indices, indices_shape, axis: np.take(
          a, np.reshape(np.asarray(indices, dtype=np.int64), indices_shape), axis=axis),
      _select_vjp, "gather(a, indices)", ("g added back at each index (repeats add up)",),
      (_U,), attrs=("indices", "indices_shape", "axis"),
      doc="picks slices at constant integer positions along an axis (embedding_lookup)",
      dtypes=_SEL)
defop("scatter", 118, 1, SELECT, _np_scatter, _scatter_vjp, "scatter(g)",
      ("the selection of g",), (_U,), attrs=("of", "arg", "shapes") + _SEL_ATTRS,
      doc="the VJP of a selection: adds g into zeros where input `arg` was read from",
      args="g")
defop("clip", 41, 3, WHERE, _np_clip, _clip_vjp, "clip(a, lo, hi)",
      ("(a >= lo)*(a <= hi)", "a < lo", "a > hi"), (_U, (-1.2, -0.2), (0.2, 1.2)),
      doc="x limited to [lo, hi] (TF1's clip_by_value; gradient 1 inside, 0 outside)",
      args=("a", "lo", "hi"), dtypes="numeric")
defop("prod", 54, 1, REDUCE, _np_prod, _prod_vjp, "prod(a)",
      ("g times the product of the other elements (exact with zeros)",), (_U,),
      attrs=("axis", "keepdims"), dtypes="numeric")
defop("logsumexp", 55, 1, REDUCE, _np_logsumexp, _logsumexp_vjp, "logsumexp(a)",
      ("g·softmax(a) along the axis",), (_U,), attrs=("axis", "keepdims"),
      doc="log Σ eˣ, computed stably (no overflow for large x)")


# -- gather at run-time indices --------------------------------------------------------
# gather(params, ids) with an integer *node* as its indices is `take`: the positions are
# read when the program runs (an argmax, a fed batch of word ids), so there is no index
# map to lower; the kernel reads them from the integer storage and checks each against
# the axis. Its VJP `take_grad` adds g back at the same positions (repeats add up), and
# take_grad's VJP is take again, so second derivatives work.
def _shape_take(op, inputs, attrs):
    x, idx = inputs
    if op.name == "take":
        what = f"gather({x.name}, {idx.name}, axis={attrs.get('axis', 0)!r})"
        if x.ndim == 0:
            raise ShapeError(f"{what}: {x.name} is a scalar; gather picks along an axis")
        axis = attrs["axis"] = _axis_in(what, attrs.get("axis", 0), x.ndim)
        shape = x.shape[:axis] + idx.shape + x.shape[axis + 1:]
        if len(shape) > MAX_NDIM:
            raise ShapeError(f"{what}: the result would have shape {shape} ({x.name} "
                             f"{x.shape}, indices {idx.shape}); at most {MAX_NDIM} axes")
        return shape
    shape = attrs["shape"] = _int_tuple(f"take_grad({x.name}, {idx.name})",
                                        attrs.get("shape"), "shape")
    what = f"take_grad({x.name}, {idx.name}, shape={shape}, axis={attrs.get('axis', 0)!r})"
    axis = attrs["axis"] = _axis_in(what, attrs.get("axis", 0), builtins.max(len(shape), 1))
    if not shape:
        raise ShapeError(f"{what}: the shape is a scalar's; gather picks along an axis")
    want = shape[:axis] + idx.shape + shape[axis + 1:]
    if x.shape != want:
        raise ShapeError(f"{what}: {x.name} has shape {x.shape}, but gather's output on "
                         f"shape {shape} with indices {idx.shape} has shape {want}")
    return shape


_SHAPE_RULES[TAKE] = _shape_take


def _np_take(a, indices, axis):
    """np.take; the engine checks the indices first (0 ≤ i < size of the axis)."""
    return np.take(np.asarray(a), np.asarray(indices).astype(np.int64), axis=axis)


def _np_take_grad(g, indices, shape, axis):
    """Zeros of ``shape`` with ``g`` added back at ``indices`` along ``axis``."""
    g, idx = np.asarray(g), np.asarray(indices).astype(np.int64)
    out = np.zeros(shape, dtype=g.dtype)
    k = idx.ndim
    np.add.at(np.moveaxis(out, axis, 0), idx,
              np.moveaxis(g, list(range(axis, axis + k)), list(range(k))))
    return out


defop("take", 140, 2, TAKE, _np_take,
      lambda g, y: (take_grad(g, y.inputs[1], y.inputs[0].shape, y.attrs["axis"]), None),
      "gather(a, i)", ("g added back at each index (repeats add up)", None),
      ((-2.0, 2.0), (0.0, 3.99)), attrs=("axis",), args="ai", dtypes="gather",
      doc="gather at run-time indices: the slices of a at the integer node i along axis "
      "(`gather(a, i)` with i a node); an index outside 0..n−1 stops the run with an "
      "error naming it")
defop("take_grad", 141, 2, TAKE, _np_take_grad,
      lambda g, y: (take(g, y.inputs[1], y.attrs["axis"]), None),
      "take_grad(g, i)", ("g read at the indices (a gather)", None),
      ((-2.0, 2.0), (0.0, 3.99)), attrs=("shape", "axis"), args="gi", dtypes="gather",
      doc="the VJP of gather at run-time indices: zeros with g added at the indices")


# -- integers and booleans -----------------------------------------------------------
# The comparisons below give booleans; the older gt ge lt le eq (and the operators
# > >= < <= on nodes) keep giving 0/1 masks of their inputs' dtype, which models
# multiply with floats. A boolean in arithmetic with a float becomes that float's
# dtype (0 or 1), as in NumPy.
def _np_floordiv(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.floor_divide(a, b)
    return out


def _np_mod(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.mod(a, b)


def _int_mean(a, axis, keepdims):
    """mean of integers as TF1's reduce_mean: the sum divided by the count, truncated
    toward zero (C++ integer division); floats as NumPy's mean."""
    a = np.asarray(a)
    if a.dtype.kind not in "iub":
        return np.mean(a, axis, keepdims=keepdims)
    s = np.sum(a, axis, keepdims=keepdims, dtype=np.int64)
    n = a.size if axis is None else a.shape[axis]
    return np.sign(s) * (np.abs(s) // builtins.max(n, 1))


def _np_cast(a, dtype):
    a = np.asarray(a)
    if dtype == "bool":
        return a != 0
    if dtype in INTS and a.dtype.kind == "f":
        # truncate toward zero into int64, then wrap to the width (NumPy's astype on
        # this machine, for values that fit in an int64; nan and inf give int64's minimum)
        with np.errstate(invalid="ignore"):
            big = ~(np.abs(a) < 2.0**63)
            a = np.where(big, -2.0**63, a).astype(np.int64)
    return a.astype(dtype)


def _cast_vjp(g: Node, y: Node):
    (x,) = y.inputs
    return (cast(g, x.dtype) if g.dtype != x.dtype else g,)


for _i, (_name, _fn, _sym) in enumerate((
        ("equal", np.equal, "=="), ("not_equal", np.not_equal, "!="), ("less", np.less, "<"),
        ("less_equal", np.less_equal, "<="), ("greater", np.greater, ">"),
        ("greater_equal", np.greater_equal, ">="))):
    defop(_name, 33 + _i, 2, BINARY, _fn, NOGRAD, f"a {_sym} b", (None, None), (_U, _U),
          doc=f"a {pretty(_sym)} b, elementwise (boolean)", dtypes="compare")
defop("logical_and", 39, 2, BINARY, np.logical_and, NOGRAD, "a and b", (None, None),
      ((0.0, 1.0), (0.0, 1.0)), doc="both true (booleans)", dtypes="logical")
defop("logical_or", 42, 2, BINARY, np.logical_or, NOGRAD, "a or b", (None, None),
      ((0.0, 1.0), (0.0, 1.0)), doc="either true (booleans)", dtypes="logical")
defop("logical_not", 15, 1, UNARY, np.logical_not, NOGRAD, "not a", (None,), ((0.0, 1.0),),
      doc="negation (booleans)", dtypes="logical")
defop("floordiv", 43, 2, BINARY, _np_floordiv, NOGRAD, "a // b", (None, None), (_U, _B),
      symbol="//", doc="⌊a / b⌋ (floor, as NumPy and TF1's floordiv: −7 // 2 = −4); no "
      "gradient", dtypes="numeric")
# mod's derivative jumps where a / b is a whole number; its tests sample a and b where
# ⌊a / b⌋ = 2 throughout, so the finite differences never straddle a jump
defop("mod", 44, 2, BINARY, _np_mod,
      lambda g, y: (g, -g * FUNCTIONS["floordiv"](*y.inputs)), "a % b",
      ("1", "-floor(a/b)"), ((5.2, 5.8), (2.1, 2.3)), symbol="%",
      doc="a − b·⌊a / b⌋ (the sign of b, as NumPy and TF1: −7 % 2 = 1); of floats, "
      "∂/∂a = 1 and ∂/∂b = −⌊a / b⌋ (as TF1's FloorMod gradient), away from the jumps",
      dtypes="numeric")
defop("cast", 16, 1, UNARY, _np_cast, _cast_vjp, "cast(a)", ("1",), (_U,), attrs=("dtype",),
      doc="a in another dtype: float→int truncates toward zero, anything→bool is ≠ 0; "
      "a gradient only between floating dtypes", dtypes="cast")
defop("argmax", 56, 1, REDUCE, lambda a, axis, keepdims: np.argmax(a, axis, keepdims=keepdims),
      NOGRAD, "argmax(a)", (None,), (_U,), attrs=("axis", "keepdims"),
      doc="position of the largest element (the first at a tie), int64", dtypes="index")
defop("argmin", 57, 1, REDUCE, lambda a, axis, keepdims: np.argmin(a, axis, keepdims=keepdims),
      NOGRAD, "argmin(a)", (None,), (_U,), attrs=("axis", "keepdims"),
      doc="position of the smallest element (the first at a tie), int64", dtypes="index")
defop("any", 58, 1, REDUCE, lambda a, axis, keepdims: np.any(a, axis, keepdims=keepdims),
      NOGRAD, "any(a)", (None,), ((0.0, 1.0),), attrs=("axis", "keepdims"),
      doc="whether any element is true (booleans)", dtypes="logical")
defop("all", 59, 1, REDUCE, lambda a, axis, keepdims: np.all(a, axis, keepdims=keepdims),
      NOGRAD, "all(a)", (None,), ((0.0, 1.0),), attrs=("axis", "keepdims"),
      doc="whether every element is true (booleans)", dtypes="logical")


# -- builder functions -------------------------------------------------------------
def getitem(x: Any, index: Any, name: str | None = None) -> Node:
    """``x[index]``: ints, slices (negative and strided), ``None`` and ``...``.

    >>> import nbbp
    >>> with nbbp.Graph():
    ...     v = nbbp.param([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], name="v")
    ...     y = v[:, ::-2]
    >>> nbbp.Model(y).value.tolist()
    [[3.0, 1.0], [6.0, 4.0]]
    """
    x = _lift(x, get_graph()) if not isinstance(x, Node) else x
    return apply("getitem", x, name_=name, index=_index_spec(x, index))


def _node_list(fn: str, xs: Any) -> list:
    if isinstance(xs, Node) or not isinstance(xs, (list, tuple)) or not xs:
        raise BuildError(f"{fn}(xs, axis): xs must be a non-empty list of tensors, e.g. "
                         f"{fn}([a, b], axis=0); got {type(xs).__name__}")
    return list(xs)


def concat(xs: Any, axis: int = 0, name: str | None = None) -> Node:
    """Join tensors along an existing axis (TF1's ``tf.concat``).

    >>> import nbbp
    >>> with nbbp.Graph():
    ...     y = nbbp.concat([nbbp.param([[1.0], [2.0]]), nbbp.param([[3.0], [4.0]])], axis=1)
    >>> y.shape
    (2, 2)
    """
    return apply("concat", *_node_list("concat", xs), name_=name, axis=axis)


def stack(xs: Any, axis: int = 0, name: str | None = None) -> Node:
    """Join tensors of one shape along a new axis (``tf.stack``)."""
    return apply("stack", *_node_list("stack", xs), name_=name, axis=axis)


def unstack(x: Node, axis: int = 0) -> list[Node]:
    """The slices of ``x`` along ``axis``, as a list of nodes (``tf.unstack``)."""
    axis = _axis_in(f"unstack({x.name}, axis={axis!r})", axis, builtins.max(x.ndim, 1))
    if x.ndim == 0:
        raise ShapeError(f"unstack({x.name}): {x.name} is a scalar")
    lead = (slice(None),) * axis
    return [x[lead + (i,)] for i in range(x.shape[axis])]


def split(x: Node, num_or_sizes: Any, axis: int = 0) -> list[Node]:
    """``x`` cut along ``axis`` into equal parts or parts of given sizes (``tf.split``).

    Returns a list of nodes: ``split(x, 3)`` three equal parts, ``split(x, [1, 2])``
    parts of sizes 1 and 2."""
    what = f"split({x.name}, {num_or_sizes!r}, axis={axis!r})"
    if x.ndim == 0:
        raise ShapeError(f"{what}: {x.name} is a scalar")
    axis = _axis_in(what, axis, x.ndim)
    n = x.shape[axis]
    if _is_int(num_or_sizes):
        k = int(num_or_sizes)
        if k < 1 or n % k:
            raise ShapeError(f"{what}: axis {axis} of shape {x.shape} has {n} elements, "
                             f"which do not split into {k} equal parts")
        sizes = [n // k] * k
    else:
        sizes = list(_int_tuple(what, num_or_sizes, "sizes"))
        if builtins.sum(sizes) != n or builtins.min(sizes, default=0) < 1:
            raise ShapeError(f"{what}: the sizes {sizes} must be ≥ 1 and add up to {n}, the "
                             f"size of axis {axis} of shape {x.shape}")
    lead, out, start = (slice(None),) * axis, [], 0
    for s in sizes:
        out.append(x[lead + (slice(start, start + s),)])
        start += s
    return out


def tile(x: Any, multiples: Any, name: str | None = None) -> Node:
    """``x`` repeated ``multiples[i]`` times along each axis ``i`` (``tf.tile``)."""
    return apply("tile", x, name_=name, multiples=multiples)


def pad(x: Any, paddings: Any, value: Any = 0, name: str | None = None) -> Node:
    """``x`` with ``paddings[i] = [before, after]`` elements of ``value`` around each axis
    (TF1's ``tf.pad``, constant mode); ``value`` may be a node."""
    return apply("pad", x, value, name_=name, paddings=paddings)


def squeeze(x: Any, axis: Any = None, name: str | None = None) -> Node:
    """``x`` without its axes of size 1 (all of them, or those in ``axis``)."""
    return apply("squeeze", x, name_=name, axis=axis)


def expand_dims(x: Any, axis: int, name: str | None = None) -> Node:
    """``x`` with a new axis of size 1 at ``axis``."""
    return apply("expand_dims", x, name_=name, axis=axis)


def gather(params: Any, indices: Any, axis: int = 0, name: str | None = None) -> Node:
    """The slices of ``params`` at integer ``indices`` along ``axis`` (``tf.gather``).

    ``indices`` are numbers known when built (an int, a list or an integer array: a
    ``gather`` node, lowered to block copies), or an integer node (an ``input`` of
    dtype int32/int64, an ``argmax``, …: a ``take`` node, whose positions are read and
    checked each run). Either way the gradient adds back at each index (repeats add up).

    >>> import nbbp
    >>> with nbbp.Graph():
    ...     y = nbbp.gather(nbbp.param([10.0, 20.0, 30.0]), [2, 0, 2])
    ...     ids = nbbp.input([1, 1], dtype="int32")
    ...     z = nbbp.gather(nbbp.param([10.0, 20.0, 30.0]), ids)
    >>> nbbp.Model(y).value.tolist(), nbbp.Model(z).value.tolist()
    ([30.0, 10.0, 30.0], [20.0, 20.0])
    """
    if isinstance(indices, Node):
        return take(params, indices, axis=axis, name=name)
    return apply("gather", params, name_=name, indices=indices, indices_shape=None, axis=axis)


def take(params: Any, indices: Node, axis: int = 0, name: str | None = None) -> Node:
    """``gather(params, indices, axis)`` with ``indices`` an integer node, read when the
    program runs (``np.take``; an index outside ``0..n-1`` is an error naming it)."""
    return apply("take", params, indices, name_=name, axis=axis)


def take_grad(g: Any, indices: Node, shape: Any, axis: int = 0, name: str | None = None
              ) -> Node:
    """The VJP of :func:`take`: zeros of ``shape`` with ``g`` added at ``indices``."""
    return apply("take_grad", g, indices, name_=name, shape=shape, axis=axis)


def embedding_lookup(params: Any, ids: Any, name: str | None = None) -> Node:
    """Rows of ``params`` at ``ids`` (TF1's ``tf.nn.embedding_lookup``: gather on axis 0)."""
    if isinstance(params, (list, tuple)) and len(params) == 1:
        params = params[0]
    return gather(params, ids, axis=0, name=name)


def scatter(g: Any, of: str, arg: int, shapes: Any, name: str | None = None,
            **attrs: Any) -> Node:
    """The VJP of selection op ``of`` (on inputs of ``shapes``, with its ``attrs``) for
    input ``arg``: ``g`` added into zeros at the positions that input was read from."""
    kw = {k: attrs.get(k) for k in _SEL_ATTRS}
    return apply("scatter", g, name_=name, of=of, arg=arg, shapes=_enc_shapes(shapes), **kw)


def clip(x: Any, lo: Any, hi: Any, name: str | None = None) -> Node:
    """``x`` limited to ``[lo, hi]`` (TF1's ``clip_by_value``): the gradient is 1 inside,
    0 outside, and flows to ``lo`` / ``hi`` where they bind."""
    return apply("clip", x, lo, hi, name_=name)


def cast(x: Any, dtype: Any, name: str | None = None) -> Node:
    """``x`` in ``dtype`` (any of nbbp's dtypes): float→int truncates toward zero as
    NumPy's ``astype`` does, narrower integers wrap, anything→bool is ``x != 0``, int→float
    is exact. Only a cast between floating dtypes passes a gradient.

    >>> import nbbp
    >>> with nbbp.Graph():
    ...     y = nbbp.cast(nbbp.const([-1.7, 2.9]), "int32")
    >>> nbbp.Model(y).value.tolist()
    [-1, 2]
    """
    x = _lift(x, get_graph()) if not isinstance(x, Node) else x
    try:
        dtype = dtype_of(dtype)
    except BuildError as e:
        raise BuildError(f"cast({x.name}, {dtype!r}): {e}") from None
    return apply("cast", x, name_=name, dtype=dtype)


def one_hot(indices: Any, depth: int, on: Any = 1, off: Any = 0, dtype: Any = "float64",
            axis: int = -1, name: str | None = None) -> Node:
    """``on`` where the last axis's position equals ``indices``, else ``off`` (TF1's
    ``tf.one_hot``; out-of-range indices give a row of ``off``); no gradient to the
    indices.

    >>> import nbbp
    >>> with nbbp.Graph():
    ...     y = nbbp.one_hot(nbbp.const([2, 0], dtype="int32"), 3)
    >>> nbbp.Model(y).value.tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    g = get_graph() if not isinstance(indices, Node) else indices.graph
    idx = indices if isinstance(indices, Node) else _lift(np.asarray(indices), g, "int64")
    if not is_int(idx.dtype):
        raise BuildError(f"one_hot({idx.name}, {depth}): the indices are {idx.dtype}; they "
                         f"must be integers (cast({idx.name}, \"int64\"))")
    if not _is_int(depth) or depth < 1:
        raise BuildError(f"one_hot({idx.name}, {depth!r}): depth must be an int ≥ 1")
    if axis != -1:
        raise BuildError(f"one_hot({idx.name}, {depth}, axis={axis!r}): only axis=-1")
    dtype = dtype_of(dtype)
    positions = _lift(np.arange(depth, dtype=idx.dtype), idx.graph, idx.dtype)
    hit = cast(equal(expand_dims(idx, -1), positions), dtype)
    if (on, off) == (1, 0):
        out = hit
    else:
        out = where(cast(hit, "bool"), _lift(on, idx.graph, dtype), _lift(off, idx.graph, dtype))
    if name is not None:
        idx.graph.rename(out, name)
    return out


def arange(start: Any, limit: Any = None, delta: Any = 1, dtype: Any = None,
           name: str | None = None) -> Node:
    """The constant ``[start, start + delta, …)`` below ``limit`` (TF1's ``tf.range``):
    int32 when all three are ints, else the graph's float dtype; ``arange(5)`` is
    ``0..4``."""
    if limit is None:
        start, limit = 0, start
    ints = builtins.all(_is_int(v) for v in (start, limit, delta))
    g = get_graph()
    dt = dtype_of(dtype) if dtype is not None else "int32" if ints else g.dtype
    if delta == 0:
        raise BuildError(f"arange({start}, {limit}, {delta}): delta cannot be zero")
    value = np.arange(start, limit, delta).astype(dt)
    if value.size == 0:
        raise ShapeError(f"arange({start}, {limit}, {delta}): empty")
    return g.add_node("const", shape=value.shape, name=name, value=value, dtype=dt)


def shape(x: Node, name: str | None = None) -> Node:
    """``x``'s shape as an int32 constant (TF1's ``tf.shape``; shapes are known when built)."""
    value = np.asarray(x.shape, dtype=np.int32)
    return x.graph.add_node("const", shape=value.shape, name=name, value=value, dtype="int32")


def size(x: Node, name: str | None = None) -> Node:
    """``x``'s number of elements as an int32 scalar constant (TF1's ``tf.size``)."""
    value = np.asarray(x.size, dtype=np.int32)
    return x.graph.add_node("const", shape=(), name=name, value=value, dtype="int32")


# ---------------------------------------------------------------------------
# Convolutional networks: conv2d and its two VJPs, max_pool / avg_pool and theirs
# (NHWC images, HWIO filters, TF1's strides and SAME / VALID padding), and flatten
# ---------------------------------------------------------------------------
# Each VJP is an op of its own (as TF1's conv2d_backprop_input / _filter, MaxPoolGrad,
# AvgPoolGrad), so the drawn backward graph names them, and their VJPs are the ops
# again: conv2d, its input VJP and its filter VJP are one trilinear form
# T(x, w, g) = Σ x·w·g read three ways, so gradients of gradients stay in this family.

_PADDINGS = ("SAME", "VALID")


def _hw(what: str, value: Any, label: str) -> tuple[int, int]:
    """An int, a pair ``(h, w)`` or TF1's four-element form ``[1, h, w, 1]`` → ``(h, w)``."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu" or arr.ndim > 1 or arr.size not in (1, 2, 4):
        raise BuildError(f"{what}: {label} must be an int, a pair (h, w) or TF1's "
                         f"[1, h, w, 1]; got {value!r}")
    v = [int(t) for t in arr.ravel()]
    if len(v) == 4:
        if v[0] != 1 or v[3] != 1:
            raise BuildError(f"{what}: {label} {v} moves along the batch or channel axis; "
                             "only [1, h, w, 1] is supported (as TF1's CPU kernels)")
        v = v[1:3]
    h, w = (v[0], v[0]) if len(v) == 1 else v
    if h < 1 or w < 1:
        raise BuildError(f"{what}: {label} must be ≥ 1, got {value!r}")
    return h, w


def _padding(what: str, padding: Any) -> str:
    p = str(padding).upper() if isinstance(padding, str) else padding
    if p not in _PADDINGS:
        raise BuildError(f"{what}: padding must be 'SAME' or 'VALID', got {padding!r}")
    return p


def _out_size(n: int, k: int, s: int, d: int, padding: str) -> tuple[int, int]:
    """Output size and padding before, along one axis, as TF1 computes them."""
    keff = (k - 1) * d + 1
    if padding == "VALID":
        return (n - keff) // s + 1 if n >= keff else 0, 0
    out = -(-n // s)
    return out, builtins.max((out - 1) * s + keff - n, 0) // 2


def conv_geometry(xshape, kshape, cout: int, strides, dilation, padding) -> tuple[int, ...]:
    """The ``isa.CONV_GEOM`` ints of a conv or pool on input ``xshape`` (NHWC) with a
    ``kshape`` (h, w) window: N, H, W, C, OH, OW, CO, KH, KW, sh, sw, dh, dw, pt, pl."""
    n, h, w, c = xshape
    (kh, kw), (sh, sw), (dh, dw) = kshape, strides, dilation
    oh, pt = _out_size(h, kh, sh, dh, padding)
    ow, pl = _out_size(w, kw, sw, dw, padding)
    return (n, h, w, c, oh, ow, cout, kh, kw, sh, sw, dh, dw, pt, pl)


def _image(what: str, x: Node, label: str = "input") -> None:
    if x.ndim != 4:
        raise ShapeError(f"{what}: {label} {x.shape} must be 4-D (batch, height, width, "
                         "channels): NHWC, as TF1")


def _conv_attrs(what: str, attrs: dict) -> None:
    attrs["strides"] = _hw(what, attrs.get("strides", 1), "strides")
    attrs["dilation"] = _hw(what, attrs.get("dilation", 1), "dilation")
    attrs["padding"] = _padding(what, attrs.get("padding", "SAME"))
    if attrs["dilation"] != (1, 1) and attrs["strides"] != (1, 1):
        raise BuildError(f"{what}: strides {attrs['strides']} with dilation "
                         f"{attrs['dilation']}: TF1 takes one or the other, not both")


def _check_out(what: str, geom, xshape, window, padding: str) -> None:
    if geom[4] < 1 or geom[5] < 1:
        raise ShapeError(f"{what}: the window {window} is larger than the input {xshape} "
                         f"(height × width {xshape[1]} × {xshape[2]}) with padding "
                         f"{padding}; use a smaller window or padding='SAME'")


def _shape_conv2d(op, inputs, attrs):
    x, w = inputs
    what = op.name
    _image(what, x)
    if w.ndim != 4:
        raise ShapeError(f"{what}: filter {w.shape} must be 4-D (height, width, in channels, "
                         "out channels): HWIO, as TF1")
    if x.shape[3] != w.shape[2]:
        s = "" if x.shape[3] == 1 else "s"
        raise ShapeError(f"{what}: input {x.shape} has {x.shape[3]} channel{s}, filter "
                         f"{w.shape} expects {w.shape[2]}")
    _conv_attrs(what, attrs)
    g = conv_geometry(x.shape, w.shape[:2], w.shape[3], attrs["strides"], attrs["dilation"],
                      attrs["padding"])
    _check_out(what, g, x.shape, w.shape[:2], attrs["padding"])
    return (g[0], g[4], g[5], g[6])


def _shape_conv2d_bpi(op, inputs, attrs):
    dy, w = inputs
    what = op.name
    _image(what, dy, "gradient")
    _conv_attrs(what, attrs)
    h, wd = _hw(what, attrs.get("input_sizes"), "input_sizes")
    attrs["input_sizes"] = (h, wd)
    xshape = (dy.shape[0], h, wd, w.shape[2] if w.ndim == 4 else 0)
    g = conv_geometry(xshape, w.shape[:2], w.shape[3] if w.ndim == 4 else 0,
                      attrs["strides"], attrs["dilation"], attrs["padding"])
    if w.ndim != 4 or dy.shape != (g[0], g[4], g[5], g[6]):
        raise ShapeError(f"{what}: gradient {dy.shape} is not the output of conv2d on an "
                         f"input {xshape[:3]} with filter {w.shape}")
    return xshape


def _shape_conv2d_bpf(op, inputs, attrs):
    x, dy = inputs
    what = op.name
    _image(what, x)
    _image(what, dy, "gradient")
    _conv_attrs(what, attrs)
    kh, kw = attrs["filter_sizes"] = _hw(what, attrs.get("filter_sizes"), "filter_sizes")
    g = conv_geometry(x.shape, (kh, kw), dy.shape[3], attrs["strides"], attrs["dilation"],
                      attrs["padding"])
    if dy.shape != (g[0], g[4], g[5], g[6]):
        raise ShapeError(f"{what}: gradient {dy.shape} is not the output of conv2d on "
                         f"input {x.shape} with a {kh}×{kw} filter")
    return (kh, kw, x.shape[3], dy.shape[3])


def _pool_attrs(what: str, attrs: dict) -> None:
    attrs["ksize"] = _hw(what, attrs.get("ksize"), "ksize")
    attrs["strides"] = _hw(what, attrs.get("strides", attrs["ksize"]), "strides")
    attrs["padding"] = _padding(what, attrs.get("padding", "VALID"))


def _pool_geometry(xshape, attrs):
    return conv_geometry(xshape, attrs["ksize"], xshape[3], attrs["strides"], (1, 1),
                         attrs["padding"])


def _shape_pool(op, inputs, attrs):
    x = inputs[0]
    what = op.name
    _image(what, x)
    _pool_attrs(what, attrs)
    g = _pool_geometry(x.shape, attrs)
    _check_out(what, g, x.shape, attrs["ksize"], attrs["padding"])
    yshape = (g[0], g[4], g[5], g[6])
    if op.name in ("max_pool", "avg_pool"):
        return yshape
    if op.name == "max_pool_grad":          # (x, g) → x's shape
        if inputs[1].shape != yshape:
            raise ShapeError(f"{what}: gradient {inputs[1].shape} is not the output "
                             f"{yshape} of max_pool on {x.shape}")
        return x.shape
    if inputs[1].shape != x.shape:           # max_pool_gradgrad (x, G) → y's shape
        raise ShapeError(f"{what}: {inputs[1].shape} is not the shape {x.shape} of the input")
    return yshape


def _shape_avg_pool_grad(op, inputs, attrs):
    (dy,) = inputs
    what = op.name
    _image(what, dy, "gradient")
    _pool_attrs(what, attrs)
    h, w = attrs["input_sizes"] = _hw(what, attrs.get("input_sizes"), "input_sizes")
    xshape = (dy.shape[0], h, w, dy.shape[3])
    g = _pool_geometry(xshape, attrs)
    if dy.shape != (g[0], g[4], g[5], g[6]):
        raise ShapeError(f"{what}: gradient {dy.shape} is not the output of avg_pool on "
                         f"an input {xshape}")
    return xshape


def _shape_conv(op, inputs, attrs):
    return _CONV_SHAPES[op.name](op, inputs, attrs)


_CONV_SHAPES = {"conv2d": _shape_conv2d, "conv2d_backprop_input": _shape_conv2d_bpi,
                "conv2d_backprop_filter": _shape_conv2d_bpf, "max_pool": _shape_pool,
                "max_pool_grad": _shape_pool, "max_pool_gradgrad": _shape_pool,
                "avg_pool": _shape_pool, "avg_pool_grad": _shape_avg_pool_grad}
_SHAPE_RULES[CONV] = _shape_conv


def _shape_flatten(op, inputs, attrs):
    (x,) = inputs
    if x.ndim < 1:
        raise ShapeError(f"flatten({x.name}): {x.name} is a scalar; flatten keeps the batch "
                         "axis (axis 0) and joins the others")
    return (x.shape[0], math.prod(x.shape[1:]))


_SELECT_SHAPES["flatten"] = _shape_flatten


# -- NumPy implementations (vectorised over the window offsets; the loops in the
# kernels are the compiled versions; the tests check both against plain loops)
def _windows(xp: np.ndarray, geom, kh: int, kw: int):
    """The (N, OH, OW, C) slice of the padded input ``xp`` under window offset
    (kh, kw) for every output position."""
    _, _, _, _, oh, ow, _, _, _, sh, sw, dh, dw, _, _ = geom
    return xp[:, kh * dh:kh * dh + (oh - 1) * sh + 1:sh,
              kw * dw:kw * dw + (ow - 1) * sw + 1:sw, :]


def _padded(x: np.ndarray, geom, fill: float = 0.0) -> np.ndarray:
    _, h, w, _, oh, ow, _, kh, kw, sh, sw, dh, dw, pt, pl = geom
    pb = builtins.max((oh - 1) * sh + (kh - 1) * dh + 1 - h - pt, 0)
    pr = builtins.max((ow - 1) * sw + (kw - 1) * dw + 1 - w - pl, 0)
    return np.pad(np.asarray(x), ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)


def _crop(xp: np.ndarray, geom) -> np.ndarray:
    _, h, w, _, _, _, _, _, _, _, _, _, _, pt, pl = geom
    return xp[:, pt:pt + h, pl:pl + w, :]


def _np_conv2d(x, w, strides, padding, dilation):
    x, w = np.asarray(x), np.asarray(w)
    geom = conv_geometry(x.shape, w.shape[:2], w.shape[3], strides, dilation, padding)
    xp = _padded(x, geom)
    out = np.zeros((geom[0], geom[4], geom[5], geom[6]), dtype=np.result_type(x, w))
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            out += _windows(xp, geom, i, j) @ w[i, j]
    return out


def _np_conv2d_bpi(dy, w, strides, padding, dilation, input_sizes):
    dy, w = np.asarray(dy), np.asarray(w)
    xshape = (dy.shape[0], *input_sizes, w.shape[2])
    geom = conv_geometry(xshape, w.shape[:2], w.shape[3], strides, dilation, padding)
    dxp = _padded(np.zeros(xshape, dtype=np.result_type(dy, w)), geom)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            _windows(dxp, geom, i, j)[...] += dy @ w[i, j].T
    return _crop(dxp, geom).copy()


def _np_conv2d_bpf(x, dy, strides, padding, dilation, filter_sizes):
    x, dy = np.asarray(x), np.asarray(dy)
    geom = conv_geometry(x.shape, filter_sizes, dy.shape[3], strides, dilation, padding)
    xp = _padded(x, geom)
    out = np.zeros((*filter_sizes, x.shape[3], dy.shape[3]), dtype=np.result_type(x, dy))
    for i in range(filter_sizes[0]):
        for j in range(filter_sizes[1]):
            out[i, j] = np.tensordot(_windows(xp, geom, i, j), dy, axes=([0, 1, 2], [0, 1, 2]))
    return out


def _pool_stack(x, ksize, strides, padding, fill):
    x = np.asarray(x)
    geom = conv_geometry(x.shape, ksize, x.shape[3], strides, (1, 1), padding)
    xp = _padded(x, geom, fill)
    return geom, np.stack([_windows(xp, geom, i, j) for i in range(ksize[0])
                           for j in range(ksize[1])])


def _argmax(x, ksize, strides, padding):
    """For every output element, which window offset holds the first maximum (TF1's
    MaxPoolGrad: the first in row-major window order; padding never wins)."""
    geom, stack = _pool_stack(x, ksize, strides, padding, -np.inf)
    return geom, np.argmax(stack, axis=0)


def _np_max_pool(x, ksize, strides, padding):
    return _pool_stack(x, ksize, strides, padding, -np.inf)[1].max(axis=0)


def _np_max_pool_grad(x, g, ksize, strides, padding):
    x, g = np.asarray(x), np.asarray(g)
    geom, arg = _argmax(x, ksize, strides, padding)
    dxp = _padded(np.zeros(x.shape, dtype=np.result_type(x, g)), geom)
    for t in range(ksize[0] * ksize[1]):
        _windows(dxp, geom, t // ksize[1], t % ksize[1])[...] += np.where(arg == t, g, 0)
    return _crop(dxp, geom).copy()


def _np_max_pool_gradgrad(x, gg, ksize, strides, padding):
    geom, arg = _argmax(x, ksize, strides, padding)
    stack = _pool_stack(gg, ksize, strides, padding, 0.0)[1]
    return np.take_along_axis(stack, arg[None], axis=0)[0]


def _pool_counts(shape, ksize, strides, padding):
    return _pool_stack(np.ones((1, *shape[1:3], 1)), ksize, strides, padding, 0.0)[1].sum(0)


def _np_avg_pool(x, ksize, strides, padding):
    x = np.asarray(x)
    total = _pool_stack(x, ksize, strides, padding, 0.0)[1].sum(axis=0)
    return total / _pool_counts(x.shape, ksize, strides, padding)


def _np_avg_pool_grad(dy, ksize, strides, padding, input_sizes):
    dy = np.asarray(dy)
    xshape = (dy.shape[0], *input_sizes, dy.shape[3])
    geom = conv_geometry(xshape, ksize, xshape[3], strides, (1, 1), padding)
    share = dy / _pool_counts(xshape, ksize, strides, padding)
    dxp = _padded(np.zeros(xshape, dtype=dy.dtype), geom)
    for i in range(ksize[0]):
        for j in range(ksize[1]):
            _windows(dxp, geom, i, j)[...] += share
    return _crop(dxp, geom).copy()


# -- VJP rules: each the next op of the family --------------------------------------
def _conv_kw(y: Node) -> dict:
    return {k: y.attrs[k] for k in ("strides", "padding", "dilation")}


def _conv2d_vjp(g: Node, y: Node):
    x, w = y.inputs
    return (conv2d_backprop_input(g, w, x.shape[1:3], **_conv_kw(y)),
            conv2d_backprop_filter(x, g, w.shape[:2], **_conv_kw(y)))


def _conv2d_bpi_vjp(gg: Node, y: Node):
    dy, w = y.inputs                        # y = T(·, w, dy) read as a function of x
    return (conv2d(gg, w, **_conv_kw(y)),
            conv2d_backprop_filter(gg, dy, w.shape[:2], **_conv_kw(y)))


def _conv2d_bpf_vjp(gg: Node, y: Node):
    x, dy = y.inputs
    return (conv2d_backprop_input(dy, gg, x.shape[1:3], **_conv_kw(y)),
            conv2d(x, gg, **_conv_kw(y)))


def _pool_kw(y: Node) -> dict:
    return {k: y.attrs[k] for k in ("ksize", "strides", "padding")}


defop("conv2d", 130, 2, CONV, _np_conv2d, _conv2d_vjp, "conv2d(x, w)",
      ("conv2d_backprop_input(g, w): g correlated with the flipped filter",
       "conv2d_backprop_filter(x, g): the input correlated with g"), (_U, _U),
      attrs=("strides", "padding", "dilation"), args="xw",
      doc="2-D convolution (TF1's tf.nn.conv2d): NHWC input, HWIO filter, strides, "
          "SAME or VALID padding, dilation")
defop("conv2d_backprop_input", 131, 2, CONV, _np_conv2d_bpi, _conv2d_bpi_vjp,
      "conv2d_backprop_input(g, w)",
      ("conv2d(G, w)", "conv2d_backprop_filter(G, g)"), (_U, _U),
      attrs=("strides", "padding", "dilation", "input_sizes"), args="gw",
      doc="conv2d's VJP for its input: g spread back through the filter")
defop("conv2d_backprop_filter", 132, 2, CONV, _np_conv2d_bpf, _conv2d_bpf_vjp,
      "conv2d_backprop_filter(x, g)",
      ("conv2d_backprop_input(g, G)", "conv2d(x, G)"), (_U, _U),
      attrs=("strides", "padding", "dilation", "filter_sizes"), args="xg",
      doc="conv2d's VJP for its filter: the input correlated with g")
defop("max_pool", 133, 1, CONV, _np_max_pool,
      lambda g, y: (max_pool_grad(y.inputs[0], g, **_pool_kw(y)),), "max_pool(x)",
      ("max_pool_grad(x, g): g to the first maximum of each window (TF1), 0 elsewhere",),
      (_U,), attrs=("ksize", "strides", "padding"), args="x",
      doc="the largest value of each window (TF1's tf.nn.max_pool; padding never wins)")
defop("max_pool_grad", 134, 2, CONV, _np_max_pool_grad,
      lambda gg, y: (None, max_pool_gradgrad(y.inputs[0], gg, **_pool_kw(y))),
      "max_pool_grad(x, g)", (None, "max_pool_gradgrad(x, G): G at each window's maximum"),
      (_U, _U), attrs=("ksize", "strides", "padding"), args="xg",
      doc="max_pool's VJP: g added at the first maximum of each window")
defop("max_pool_gradgrad", 135, 2, CONV, _np_max_pool_gradgrad,
      lambda g, y: (None, max_pool_grad(y.inputs[0], g, **_pool_kw(y))),
      "max_pool_gradgrad(x, G)", (None, "max_pool_grad(x, g)"), (_U, _U),
      attrs=("ksize", "strides", "padding"), args="xG",
      doc="max_pool_grad's VJP: G read at the first maximum of each window")
defop("avg_pool", 136, 1, CONV, _np_avg_pool,
      lambda g, y: (avg_pool_grad(g, y.inputs[0].shape[1:3], **_pool_kw(y)),), "avg_pool(x)",
      ("avg_pool_grad(g): g / count to every element of each window",), (_U,),
      attrs=("ksize", "strides", "padding"), args="x",
      doc="the mean of each window (TF1's tf.nn.avg_pool: over SAME padding, divides by "
          "the number of input elements in the window)")
defop("avg_pool_grad", 137, 1, CONV, _np_avg_pool_grad,
      lambda gg, y: (avg_pool(gg, **_pool_kw(y)),), "avg_pool_grad(g)",
      ("avg_pool(G)",), (_U,), attrs=("ksize", "strides", "padding", "input_sizes"),
      args="g", doc="avg_pool's VJP: g / count spread over each window")
defop("flatten", 138, 1, SELECT, lambda a: np.reshape(a, (np.shape(a)[0], -1)),
      lambda g, y: (reshape(g, y.inputs[0].shape),), "flatten(a)", ("g reshaped back",),
      (_U,), doc="keeps the batch axis (axis 0) and joins the others: (N, H, W, C) → "
      "(N, H·W·C)", dtypes=_SEL)


# -- random numbers, training mode and state ------------------------------------------
# random_uniform is counter-based: element i of a draw is a hash of (seed, the value of
# its counter input, i) — splitmix64's i-th output from a state mixed from the seed and
# the counter — so a draw is a pure function of the graph and the counter: the same in
# the compiled and the NumPy paths, and independent of how a loop is chunked. Training
# advances the graph's counter (the int64 leaf ``rng_counter``) once a step, through
# the state update ``assign_state`` (which ``fit`` applies after each step).
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
MAX_SEED = 2**63 - 1


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on an array of uint64 (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def random_bits(seed: int, counter: int, n: int) -> np.ndarray:
    """The ``n`` uint64 hashes of draw ``counter`` of the stream ``seed`` (the
    reference that ``kernels._random`` follows bit for bit)."""
    key = _mix(_mix(np.array([seed], dtype=np.uint64) + _GOLDEN)
               + np.array([counter], dtype=np.int64).astype(np.uint64) * _GOLDEN)
    return _mix(key + np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN)


def _np_random_uniform(c, *like, shape, seed, dtype):
    counter = int(np.asarray(c).reshape(-1)[:1].astype(np.int64)[0])   # floats truncate
    shape = np.shape(like[0]) if like else shape
    bits = random_bits(seed, counter, math.prod(shape))
    if dtype == "float32":          # 24 random bits: every value exact in float32
        u = (bits >> np.uint64(40)).astype(np.float64) * 2.0**-24
    else:
        u = (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return u.reshape(shape).astype(dtype or "float64")


def _shape_random(op, inputs, attrs):
    c, *like = inputs
    if c.size != 1 or len(like) > 1:
        raise ShapeError(f"random_uniform({_names(inputs)}): takes a counter (a single "
                         "number) and optionally a tensor whose shape it takes")
    shape = like[0].shape if like else attrs.get("shape")
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if (not isinstance(shape, (tuple, list)) or len(shape) > MAX_NDIM
            or not builtins.all(isinstance(d, (int, np.integer)) and d >= 1 for d in shape)):
        raise ShapeError(f"random_uniform: shape {shape!r} must be a tuple of up to "
                         f"{MAX_NDIM} whole numbers ≥ 1, e.g. (64, 10)")
    seed = attrs.get("seed")
    if (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
            or not 0 <= seed <= MAX_SEED):
        raise BuildError(f"random_uniform: seed {seed!r} must be a whole number in "
                         f"0..2**63 − 1")
    dtype = dtype_of(attrs.get("dtype") or "float64")
    if dtype not in FLOATS:
        raise BuildError(f"random_uniform: dtype {dtype} is not floating; uniform numbers "
                         "in [0, 1) are float32 or float64")
    attrs.update(shape=tuple(int(d) for d in shape), seed=int(seed), dtype=dtype)
    return attrs["shape"]


_SHAPE_RULES[RANDOM] = _shape_random

defop("random_uniform", 150, 1, RANDOM, _np_random_uniform, NOGRAD, "uniform(c)", (None,),
      ((0.0, 50.0),), attrs=("shape", "seed", "dtype"), args="c", dtypes="cast",
      variadic=True,
      doc="uniform numbers in [0, 1): element i is a hash of (seed, counter c, i); the "
      "same counter gives the same numbers, training advances it every step; a second "
      "input only gives its shape (so minibatches resize it)")
defop("assign_state", 151, 1, UNARY, lambda a, ref: np.array(a), NOGRAD, "assign_state(a)",
      (None,), (_U,), dtypes="any", attrs=("ref",),
      doc="a, which `fit` writes into the state leaf `ref` after every step (running "
      "averages, the random counter)")


# -- builder functions -------------------------------------------------------------
def conv2d(x: Any, w: Any, strides: Any = 1, padding: str = "SAME", dilation: Any = 1,
           name: str | None = None) -> Node:
    """2-D convolution as TF1's ``tf.nn.conv2d``: ``x`` (batch, height, width,
    channels), filter ``w`` (height, width, in channels, out channels); ``strides``
    and ``dilation`` an int, ``(h, w)`` or ``[1, h, w, 1]``; ``padding`` "SAME"
    (output size ⌈n / stride⌉, the padding split with the smaller part before) or
    "VALID". Like TF1 it is a correlation: the filter is not flipped.

    >>> import nbbp, numpy as np
    >>> with nbbp.Graph():
    ...     x = nbbp.input(np.ones((1, 3, 3, 1))); w = nbbp.param(np.ones((2, 2, 1, 1)))
    ...     y = nbbp.conv2d(x, w, padding="VALID")
    >>> nbbp.Model(nbbp.sum(y)).value
    16.0
    """
    return apply("conv2d", x, w, name_=name, strides=strides, padding=padding,
                 dilation=dilation)


def conv2d_backprop_input(g: Any, w: Any, input_sizes: Any, strides: Any = 1,
                          padding: str = "SAME", dilation: Any = 1,
                          name: str | None = None) -> Node:
    """conv2d's gradient for its input (TF1's ``conv2d_backprop_input``): ``g`` is the
    gradient of conv2d's output, ``input_sizes`` the input's (height, width)."""
    return apply("conv2d_backprop_input", g, w, name_=name, strides=strides,
                 padding=padding, dilation=dilation, input_sizes=input_sizes)


def conv2d_backprop_filter(x: Any, g: Any, filter_sizes: Any, strides: Any = 1,
                           padding: str = "SAME", dilation: Any = 1,
                           name: str | None = None) -> Node:
    """conv2d's gradient for its filter (TF1's ``conv2d_backprop_filter``): the input
    ``x`` correlated with the output gradient ``g``; ``filter_sizes`` is (height, width)."""
    return apply("conv2d_backprop_filter", x, g, name_=name, strides=strides,
                 padding=padding, dilation=dilation, filter_sizes=filter_sizes)


def max_pool(x: Any, ksize: Any = 2, strides: Any = None, padding: str = "VALID",
             name: str | None = None) -> Node:
    """The maximum of each ``ksize`` window (TF1's ``tf.nn.max_pool``, NHWC); strides
    default to the window. The gradient goes to the first maximum of each window, in
    row-major window order, as TF1's MaxPoolGrad (PyTorch does the same).

    >>> import nbbp, numpy as np
    >>> with nbbp.Graph():
    ...     y = nbbp.max_pool(nbbp.input(np.arange(16.0).reshape(1, 4, 4, 1)), 2)
    >>> nbbp.Model(y).value.ravel().tolist()
    [5.0, 7.0, 13.0, 15.0]
    """
    return apply("max_pool", x, name_=name, ksize=ksize, strides=strides or ksize,
                 padding=padding)


def max_pool_grad(x: Any, g: Any, ksize: Any, strides: Any, padding: str,
                  name: str | None = None) -> Node:
    """max_pool's gradient: ``g`` added at the first maximum of each window of ``x``."""
    return apply("max_pool_grad", x, g, name_=name, ksize=ksize, strides=strides,
                 padding=padding)


def max_pool_gradgrad(x: Any, gg: Any, ksize: Any, strides: Any, padding: str,
                      name: str | None = None) -> Node:
    """max_pool_grad's gradient: ``gg`` read at the first maximum of each window of ``x``."""
    return apply("max_pool_gradgrad", x, gg, name_=name, ksize=ksize, strides=strides,
                 padding=padding)


def avg_pool(x: Any, ksize: Any = 2, strides: Any = None, padding: str = "VALID",
             name: str | None = None) -> Node:
    """The mean of each ``ksize`` window (TF1's ``tf.nn.avg_pool``, NHWC); over SAME
    padding each window is divided by the number of input elements it covers."""
    return apply("avg_pool", x, name_=name, ksize=ksize, strides=strides or ksize,
                 padding=padding)


def avg_pool_grad(g: Any, input_sizes: Any, ksize: Any, strides: Any, padding: str,
                  name: str | None = None) -> Node:
    """avg_pool's gradient: each element of ``g`` shared out over its window."""
    return apply("avg_pool_grad", g, name_=name, ksize=ksize, strides=strides,
                 padding=padding, input_sizes=input_sizes)


def flatten(x: Any, name: str | None = None) -> Node:
    """``x`` as (batch, features): axis 0 kept, the others joined (``tf.layers.flatten``)."""
    return apply("flatten", x, name_=name)


def layer_norm(x: Node, axis: int = -1, eps: float = 1e-5, gamma: Any = None,
               beta: Any = None) -> Node:
    """``(x − mean) / sqrt(var + eps)`` along ``axis`` (the features of each example;
    ``tf.contrib.layers.layer_norm``), times ``gamma`` plus ``beta`` if given. Built from
    mean, sub, mul, sqrt and div in a ``layer_norm`` scope, so the picture shows how.

    >>> import nbbp
    >>> with nbbp.Graph():
    ...     y = nbbp.layer_norm(nbbp.param([[1.0, 3.0]]))
    >>> nbbp.Model(nbbp.sum(y * y)).value_of(y).round(4).tolist()
    [[-1.0, 1.0]]
    """
    graph = x.graph if isinstance(x, Node) else get_graph()
    with graph.name_scope("layer_norm"):
        mu = mean(x, axis=axis, keepdims=True)
        d = x - mu
        y = d / sqrt(mean(d * d, axis=axis, keepdims=True) + eps)
        if gamma is not None:
            y = y * gamma
        if beta is not None:
            y = y + beta
    return y


# -- random numbers, the training flag, dropout, batch norm -----------------------------
RNG_COUNTER, TRAINING = "rng_counter", "training"


def _state_leaf(graph, name: str, value: Any, dtype: str, what: str) -> Node:
    """The graph's state leaf ``name`` (a non-trainable scalar param at the root
    scope), made on first use."""
    node = graph.by_name.get(name)
    if node is None:
        with graph.at_scope(""), graph.role("forward"):
            return graph.add_node("param", shape=(), name=name,
                                  value=np.asarray(value, dtype=dtype), dtype=dtype)
    if node.op != "param" or node.dtype != dtype or node.trainable or node.shape != ():
        raise BuildError(f"{what} is the node named {name!r}, but {name!r} is already a "
                         f"{node.dtype} {node.op} node; give that node another name")
    return node


def rng_counter(graph=None) -> Node:
    """The graph's random counter: the int64 leaf ``rng_counter`` that every
    ``random_uniform`` reads by default. ``fit`` adds 1 after every training step (its
    update ``rng_counter/next`` is an ``assign_state``); set it to replay a draw, or
    call ``Compiled.redraw()`` before a run for new numbers."""
    graph = graph or get_graph()
    fresh = RNG_COUNTER not in graph.by_name
    counter = _state_leaf(graph, RNG_COUNTER, 0, "int64", "the random counter")
    if fresh:
        with graph.at_scope(RNG_COUNTER), graph.role("forward"):
            assign_state(counter, add(counter, 1), name="next")
    return counter


def training_flag(graph=None) -> Node:
    """The graph's mode flag: the boolean leaf ``training`` that dropout and
    batch_norm read — False (eval) in the model, True inside ``fit``'s loop;
    ``Model.set_mode("train")`` shows the train-mode values."""
    return _state_leaf(graph or get_graph(), TRAINING, False, "bool", "the training flag")


def mode_flag(graph) -> Node | None:
    """The graph's training flag if it has one (see :func:`training_flag`)."""
    node = graph.by_name.get(TRAINING)
    return node if node is not None and node.op == "param" and node.dtype == "bool" \
        and not node.trainable else None


def state_updates(nodes) -> list[Node]:
    """The ``assign_state`` nodes among ``nodes`` (in order)."""
    return [n for n in nodes if n.op == "assign_state"]


def random_uniform(shape: Any, seed: int | None = None, dtype: Any = None,
                   counter: Node | None = None, name: str | None = None) -> Node:
    """Uniform numbers in [0, 1) of ``shape`` (a tuple, or a node whose shape it
    takes and follows when minibatches resize it), redrawn at every training step.

    Counter-based: element i is a hash of (``seed``, the value of ``counter``, i), so a
    draw is reproducible (the same in the compiled and NumPy engines, however ``fit``
    chunks its steps) and the next counter value gives fresh numbers. ``counter``
    defaults to the graph's :func:`rng_counter`, which ``fit`` advances every step;
    ``seed`` defaults to the number of ``random_uniform`` nodes already in the graph.

    >>> import nbbp
    >>> with nbbp.Graph():
    ...     u = nbbp.random_uniform((2, 3), seed=7)
    >>> m = nbbp.Model(nbbp.sum(u))
    >>> v = m.value_of(u); bool(((0 <= v) & (v < 1)).all()), v.shape
    (True, (2, 3))
    """
    like = (shape,) if isinstance(shape, Node) else ()
    graph = next((n.graph for n in (counter, *like) if isinstance(n, Node)), None) \
        or get_graph()
    if counter is None:
        counter = rng_counter(graph)
    if seed is None:
        seed = builtins.sum(1 for n in graph.nodes if n.op == "random_uniform")
    return apply("random_uniform", counter, *like, name_=name,
                 shape=None if like else shape, seed=seed,
                 dtype=dtype_of(dtype) if dtype is not None else graph.dtype)


def assign_state(ref: Node, value: Any, name: str | None = None) -> Node:
    """A state update: ``value``, which ``fit`` writes into the leaf ``ref`` after every
    training step (as TF's ``assign`` in ``UPDATE_OPS``); running averages and the
    random counter are kept this way. The node itself is a copy of ``value``."""
    if not isinstance(ref, Node) or ref.op != "param":
        shown = ref.name if isinstance(ref, Node) else repr(ref)
        raise BuildError(f"assign_state: {shown} is not a param; the state written after "
                         "each step is a param, e.g. param(0.0, trainable=False)")
    value = _lift(value, ref.graph, ref.dtype)
    if value.shape != ref.shape or value.dtype != ref.dtype:
        raise ShapeError(f"assign_state({ref.name}, {value.name}): the value is "
                         f"{value.dtype} {value.shape}, the state {ref.dtype} {ref.shape}; "
                         "they must match")
    return apply("assign_state", value, name_=name, ref=ref.name)


def _float_node(what: str, x: Any) -> Node:
    if not isinstance(x, Node):
        x = _lift(x, get_graph())
    if not is_float(x.dtype):
        raise BuildError(f"{what}({x.name}): {x.name} is {x.dtype}; {what} takes floating "
                         f"values, cast({x.name}, \"float32\") first")
    return x


def _number(what: str, label: str, value: Any, ok, rule: str) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
            or not ok(float(value))):
        raise BuildError(f"{what}: {label} {value!r} is outside {rule}")
    return float(value)


def dropout(x: Any, rate: float, seed: int | None = None, name: str | None = None) -> Node:
    """Inverted dropout: in train mode each unit is kept with probability ``1 − rate``
    and scaled by ``1 / (1 − rate)`` (kept when its uniform number is ≥ ``rate``, as
    TF1's ``floor(keep_prob + u)``); in eval mode ``x`` unchanged. Built in a
    ``dropout`` scope from ``random_uniform``, ``ge``, ``mul`` and ``where`` on the
    graph's ``training`` flag, so the picture shows the mask; the gradient flows
    through the kept units only.

    >>> import nbbp, numpy as np
    >>> with nbbp.Graph():
    ...     x = nbbp.param(np.ones((2, 4)), name="x")
    ...     y = nbbp.dropout(x, 0.5, seed=1)
    >>> m = nbbp.Model(nbbp.sum(y))
    >>> m.value_of(y).tolist()                       # eval mode: x
    [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]
    >>> sorted(set(m.set_mode("train").value_of(y).ravel().tolist()))   # 0 or 1/(1−rate)
    [0.0, 2.0]
    """
    x = _float_node("dropout", x)
    rate = _number(f"dropout({x.name})", "rate", rate, lambda r: 0.0 <= r < 1.0,
                   "[0, 1): rate is the fraction of units dropped (keep_prob = 1 − rate), "
                   "e.g. rate=0.5")
    graph = x.graph
    flag = training_flag(graph)
    with graph.name_scope(name or "dropout"):
        u = random_uniform(x, seed=seed, dtype=x.dtype, name="uniform")
        mask = mul(ge(u, rate), 1.0 / (1.0 - rate), name="mask")
        return where(flag, mul(x, mask, name="dropped"), x)


def batch_norm(x: Any, axes: Any = None, momentum: float = 0.99, eps: float = 1e-3,
               name: str | None = None) -> Node:
    """Batch normalisation (``tf.layers.batch_normalization``) with a learnable
    ``gamma`` (scale, ones) and ``beta`` (offset, zeros).

    ``axes``: the axes the statistics are taken over (default: all but the last, e.g.
    batch, height and width of NHWC images); the other axes keep their own mean and
    variance. In train mode ``x`` is normalised with the batch's mean and (biased)
    variance, and the gradient flows through them; ``fit`` then updates the running
    averages ``moving_mean`` and ``moving_variance`` (non-trainable params) every step
    inside its compiled loop: ``moving = momentum · moving + (1 − momentum) · batch
    statistic`` (TF's convention; the variance unbiased, n / (n − 1), as PyTorch and
    TF's fused kernel). In eval mode (the model, ``predict``) the running averages are
    used. Built from primitives in a ``batch_norm`` scope, so the picture shows how.

    >>> import nbbp, numpy as np
    >>> with nbbp.Graph():
    ...     x = nbbp.input(np.array([[1.0], [3.0]]), name="x")
    ...     y = nbbp.batch_norm(x, eps=1e-6)
    >>> m = nbbp.Model(nbbp.sum(y * y))
    >>> m.value_of(y).round(3).tolist(), m.set_mode("train").value_of(y).round(3).tolist()
    ([[1.0], [3.0]], [[-1.0], [1.0]])
    """
    x = _float_node("batch_norm", x)
    what = f"batch_norm({x.name})"
    if x.ndim == 0:
        raise ShapeError(f"{what}: {x.name} is a scalar; batch norm takes the statistics "
                         "over a batch: give a tensor such as (batch, features) or NHWC "
                         "images")
    if axes is None:
        axes = tuple(range(builtins.max(x.ndim - 1, 1)))
    listed = (axes,) if isinstance(axes, (int, np.integer)) else axes
    if (not isinstance(listed, (tuple, list)) or not listed
            or not builtins.all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                                for a in listed)):
        raise ShapeError(f"{what}: axes {axes!r} must be an axis or a tuple of axes of "
                         f"{x.name} {x.shape}, e.g. axes=(0, 1, 2) for NHWC images")
    bad = [a for a in listed if not -x.ndim <= a < x.ndim]
    if bad:
        raise ShapeError(f"{what}: axis {bad[0]} is out of range for {x.name} of shape "
                         f"{x.shape} (axes 0..{x.ndim - 1}, or −{x.ndim}..−1)")
    axes = tuple(sorted(int(a) % x.ndim for a in listed))
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{what}: axes {tuple(listed)!r} name an axis twice")
    momentum = _number(what, "momentum", momentum, lambda m: 0.0 <= m <= 1.0, "[0, 1]")
    eps = _number(what, "eps", eps, lambda e: e > 0.0, "(0, ∞): eps keeps the variance "
                  "away from 0")
    kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    graph = x.graph
    flag = training_flag(graph)

    def leaf(value: float, label: str, trainable: bool) -> Node:
        return graph.add_node("param", shape=kept, name=label, trainable=trainable,
                              value=np.full(kept, value, dtype=x.dtype), dtype=x.dtype)

    def stat(v: Node, label: str, over=None) -> Node:
        for i, a in enumerate(axes):
            v = (over or mean)(v, axis=a, keepdims=True,
                               name=label if i == len(axes) - 1 else None)
        return v

    with graph.name_scope(name or "batch_norm"):
        gamma, beta = leaf(1.0, "gamma", True), leaf(0.0, "beta", True)
        moving_mean = leaf(0.0, "moving_mean", False)
        moving_var = leaf(1.0, "moving_variance", False)
        mu = stat(x, "batch_mean")
        d = sub(x, mu)
        var = stat(d * d, "batch_variance")
        m = where(flag, mu, moving_mean, name="mean")
        v = where(flag, var, moving_var, name="variance")
        y = (x - m) / sqrt(v + eps) * gamma + beta
        # n / (n − 1) from the batch's count, so it follows minibatches of any size
        n = stat(x * 0.0 + 1.0, "count", sum)
        unbiased = n / maximum(n - 1.0, 1.0)
        assign_state(moving_mean, moving_mean * momentum + mu * (1.0 - momentum),
                     name="update_mean")
        assign_state(moving_var, moving_var * momentum + var * unbiased * (1.0 - momentum),
                     name="update_variance")
    return y


_CNN_BUILDERS = {f.__name__: f for f in (conv2d, conv2d_backprop_input,
                                         conv2d_backprop_filter, max_pool, max_pool_grad,
                                         max_pool_gradgrad, avg_pool, avg_pool_grad, flatten,
                                         random_uniform, assign_state)}


# Builder functions of the tensor ops, and those that build several nodes (not ops).
_TENSOR_BUILDERS = {f.__name__: f for f in (getitem, concat, stack, tile, pad, squeeze,
                                            expand_dims, gather, scatter, clip, cast,
                                            take, take_grad)}
COMPOSITES: dict[str, Callable[..., Any]] = {
    "unstack": unstack, "split": split, "embedding_lookup": embedding_lookup,
    "one_hot": one_hot, "layer_norm": layer_norm, "dropout": dropout,
    "batch_norm": batch_norm}
# Value builders: in FUNCTIONS (the cell namespace and nbbp). TF1's ``range`` is
# ``arange`` here (NumPy's name), so cells keep Python's ``for k in range(10)``.
VALUES: dict[str, Callable[..., Any]] = {"arange": arange, "shape": shape, "size": size}


_MAKERS = {UNARY: _unary, BINARY: _binary, REDUCE: _reduce, SOFTMAX: _softmax,
           LAYOUT: _layout, MATMUL: _binary}
_SPECIAL = {"where": where, "leaky_relu": leaky_relu}
_SPECIAL.update(_TENSOR_BUILDERS)
_SPECIAL.update(_CNN_BUILDERS)

# The builder functions, generated from the table: tanh, matmul, sum, …
FUNCTIONS: dict[str, Callable[..., Node]] = {}
for _op in OPS.values():
    if _op.kind == LEAF:
        continue
    _fn = _SPECIAL.get(_op.name) or _MAKERS[_op.kind](_op.name)
    _fn.__doc__ = _fn.__doc__ or (f"``{_op.expr}`` — {_op.doc}" if _op.doc else
                                  f"``{_op.expr}``; derivative: {_op.formula(0)}")
    FUNCTIONS[_op.name] = _fn
FUNCTIONS.update(COMPOSITES)
globals().update(FUNCTIONS)
FUNCTIONS.update(VALUES)

# Names the derivative rules above call (defined by the loop; listed for readers
# and linters).
neg = FUNCTIONS["neg"]; exp = FUNCTIONS["exp"]; log = FUNCTIONS["log"]            # noqa: E702
sin = FUNCTIONS["sin"]; cos = FUNCTIONS["cos"]; sigmoid = FUNCTIONS["sigmoid"]    # noqa: E702
sign = FUNCTIONS["sign"]; step = FUNCTIONS["step"]; add = FUNCTIONS["add"]        # noqa: E702
sub = FUNCTIONS["sub"]; mul = FUNCTIONS["mul"]; div = FUNCTIONS["div"]            # noqa: E702
pow = FUNCTIONS["pow"]; minimum = FUNCTIONS["minimum"]                            # noqa: E702
gt = FUNCTIONS["gt"]; ge = FUNCTIONS["ge"]; lt = FUNCTIONS["lt"]                  # noqa: E702
le = FUNCTIONS["le"]; eq = FUNCTIONS["eq"]; sum = FUNCTIONS["sum"]                # noqa: E702
matmul = FUNCTIONS["matmul"]; transpose = FUNCTIONS["transpose"]                  # noqa: E702
reshape = FUNCTIONS["reshape"]; broadcast_to = FUNCTIONS["broadcast_to"]          # noqa: E702
sum_to = FUNCTIONS["sum_to"]; prod = FUNCTIONS["prod"]                           # noqa: E702
equal = FUNCTIONS["equal"]; expand_dims = FUNCTIONS["expand_dims"]                # noqa: E702


mean = FUNCTIONS["mean"]; sqrt = FUNCTIONS["sqrt"]                                # noqa: E702
maximum = FUNCTIONS["maximum"]


# Arithmetic on nodes builds nodes with the functions above. The graph module knows
# nothing of ops: the op table gives Node its operators when it is imported (as JAX's
# primitives register their rules beside their definitions).
def _install_operators(cls: type) -> None:
    def flip(fn: Callable[..., Node]) -> Callable[..., Node]:
        return lambda self, other: fn(other, self)

    for dunder, fn in (("add", add), ("sub", sub), ("mul", mul), ("truediv", div),
                       ("pow", pow), ("matmul", matmul)):
        setattr(cls, f"__{dunder}__", lambda self, other, fn=fn: fn(self, other))
        setattr(cls, f"__r{dunder}__", flip(fn))
    for dunder, fn in (("floordiv", FUNCTIONS["floordiv"]), ("mod", FUNCTIONS["mod"])):
        setattr(cls, f"__{dunder}__", lambda self, other, fn=fn: fn(self, other))
        setattr(cls, f"__r{dunder}__", flip(fn))
    for dunder, fn in (("gt", gt), ("ge", ge), ("lt", lt), ("le", le)):
        setattr(cls, f"__{dunder}__", lambda self, other, fn=fn: fn(self, other))
    cls.__neg__ = lambda self: neg(self)
    cls.__pos__ = lambda self: self
    cls.T = property(lambda self: transpose(self), doc="The transpose (axes reversed).")
    cls.__getitem__ = lambda self, index: getitem(self, index)


_install_operators(Node)


def table_markdown() -> str:
    """The op table as Markdown (``docs/ops.md`` is this text; a test keeps it so)."""
    kinds = {UNARY: "elementwise", BINARY: "elementwise, broadcasting",
             WHERE: "elementwise, broadcasting", REDUCE: "reduction (axis=None|int, keepdims)",
             MATMUL: "matrix product", LAYOUT: "layout", SOFTMAX: "along an axis (default −1)",
             SELECT: "selection (moves elements)",
             CONV: "convolution / pooling (NHWC)", RANDOM: "random (counter-based)",
             TAKE: "selection at run-time indices"}
    lines = ["# The op table", "",
             "Generated from `nbbp.core.ops.OPS` by `nbbp.core.ops.table_markdown()`; "
             "`tests/test_docs.py` keeps this file in sync. Every op is a function in a "
             "`%%bpgraph` cell and in `nbbp`; `+ − * / ** @` and `-x` on nodes build "
             "`add sub mul div pow matmul neg`.", "",
             "| op | kind | computes | derivative shown on the picture |",
             "|---|---|---|---|"]
    for op in OPS.values():
        if op.kind == LEAF:
            continue
        derivs = "<br>".join(op.formula(i) for i in range(op.arity))
        many = op.variadic and op.kind != RANDOM      # random_uniform: one or two inputs
        what = (op.doc or pretty(op.expr)) + (" (any number of inputs)" if many else "")
        cells = [f"`{op.name}`", kinds[op.kind], what, derivs]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "Built from the ops above (they return several nodes, or are another "
              "name for one):", ""]
    for name, fn in COMPOSITES.items():
        lines.append(f"- `{name}`: {(fn.__doc__ or '').splitlines()[0]}")
    return "\n".join(lines) + "\n"
