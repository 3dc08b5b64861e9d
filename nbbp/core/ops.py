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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import BuildError, ShapeError
from .dtypes import promote
from .graph import LEAF_OPS, MAX_NDIM, Node, as_value, get_graph

# Kinds decide the shape rule and how the engine lowers the op (and, as ids in each
# instruction, which kernel runs it); they are named once, in the instruction set.
from .isa import BINARY, INTERNAL_KIND, LAYOUT, LEAF, MATMUL, REDUCE, SOFTMAX, UNARY, WHERE


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

    @property
    def elementwise(self) -> bool:
        return self.kind in (UNARY, BINARY, WHERE)

    @property
    def differentiable(self) -> bool:
        return self.vjp is not None

    def formula(self, i: int) -> str:
        """Display text of the derivative with respect to input ``i``."""
        arg = self.args[i]
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


# Names the derivative expressions in ``Op.d`` may use (tests evaluate them).
FORMULA_NS: dict[str, Any] = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos,
    "tanh": np.tanh, "sigmoid": _sigmoid, "sign": np.sign, "step": _step,
    "where": np.where, "minimum": np.minimum, "maximum": np.maximum,
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
    "leaf": "the dtype the leaf was made with",
}


def defop(name: str, code: int, arity: int, kind: str, impl, vjp, expr: str,
          d: tuple[str | None, ...], domain: tuple = (), **kw: Any) -> Op:
    """Register an op in the table and return it."""
    if name in OPS or any(o.code == code for o in OPS.values()) or code in INTERNAL_KIND:
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
    the graph's), so ``x32 * 2.0`` stays float32."""
    if isinstance(x, Node):
        return x
    dtype = graph.dtype if dtype is None else dtype
    value = as_value(x, "a constant operand", dtype)
    return graph.add_node("const", shape=value.shape, value=value, dtype=dtype)


def _dtype(op: Op, args: tuple) -> str | None:
    """The output dtype of ``op`` on ``args`` (None if no argument is a node): the
    nodes' dtypes promoted as NumPy does; numbers and arrays adopt it."""
    dtypes = [a.dtype for a in args if isinstance(a, Node)]
    return promote(*dtypes) if dtypes else None


def apply(name: str, *args: Any, name_: str | None = None, **attrs: Any) -> Node:
    """Add a node applying op ``name`` to ``args`` (numbers and arrays become consts
    of the nodes' dtype)."""
    op = OPS[name]
    graph = next((a.graph for a in args if isinstance(a, Node)), None) or get_graph()
    start = len(graph.nodes)
    try:
        dtype = _dtype(op, args) or graph.dtype
        inputs = tuple(_lift(a, graph, dtype) for a in args)
        shape = _SHAPE_RULES[op.kind](op, inputs, attrs)
        if graph.current_role == "grad" and op.elementwise and all(i.op == "const" for i in inputs):
            # fold constants the gradient rules create (e.g. the exponent b − 1 of
            # pow's VJP), so the engine can see through them
            graph.truncate(start)
            value = np.asarray(op.impl(*(i.value for i in inputs)), dtype=dtype)
            return graph.add_node("const", shape=shape, value=value, dtype=dtype)
        return graph.add_node(name, inputs, attrs, shape, name=name_, dtype=dtype)
    except BaseException:
        graph.truncate(start)   # no half-built consts left behind
        raise


def _show(op: Op, inputs: tuple[Node, ...]) -> str:
    names = [i.name for i in inputs]
    if op.symbol and len(names) == 2:
        return f"{names[0]} {op.symbol} {names[1]}"
    return f"{op.name}({', '.join(names)})"


def _broadcast(op: Op, shapes: list[tuple[int, ...]], inputs) -> tuple[int, ...]:
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
    if a.ndim == 0 or b.ndim == 0 or a.ndim > 2 or b.ndim > 2:
        raise ShapeError(f"{a.name} @ {b.name}: {a.shape} @ {b.shape} — matmul takes vectors "
                         "and matrices; use * to multiply by a scalar")
    k1, k2 = a.shape[-1], b.shape[0]
    if k1 != k2:
        raise ShapeError(
            f"{a.name} @ {b.name}: {a.shape} @ {b.shape} — the inner dimensions {k1} and "
            f"{k2} differ; {b.name} needs {k1} rows (or transpose one of them)")
    return a.shape[:-1] + b.shape[1:]


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
    a2 = a if a.ndim == 2 else reshape(a, (1, a.shape[0]))
    b2 = b if b.ndim == 2 else reshape(b, (b.shape[0], 1))
    g2 = g if g.shape == (a2.shape[0], b2.shape[1]) else reshape(g, (a2.shape[0], b2.shape[1]))
    ga = matmul(g2, transpose(b2))
    gb = matmul(transpose(a2), g2)
    return (ga if ga.shape == a.shape else reshape(ga, a.shape),
            gb if gb.shape == b.shape else reshape(gb, b.shape))


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
defop("mean", 51, 1, REDUCE, lambda a, axis, keepdims: np.mean(a, axis, keepdims=keepdims),
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
      (_U, _U), symbol="@", dtypes="numeric")

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
      doc="sum over the axes that broadcasting added (the VJP of broadcasting)", dtypes="numeric")

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


_MAKERS = {UNARY: _unary, BINARY: _binary, REDUCE: _reduce, SOFTMAX: _softmax,
           LAYOUT: _layout, MATMUL: _binary}
_SPECIAL = {"where": where, "leaky_relu": leaky_relu}

# The builder functions, generated from the table: tanh, matmul, sum, …
FUNCTIONS: dict[str, Callable[..., Node]] = {}
for _op in OPS.values():
    if _op.kind == LEAF:
        continue
    _fn = _SPECIAL.get(_op.name) or _MAKERS[_op.kind](_op.name)
    _fn.__doc__ = _fn.__doc__ or (f"``{_op.expr}`` — {_op.doc}" if _op.doc else
                                  f"``{_op.expr}``; derivative: {_op.formula(0)}")
    FUNCTIONS[_op.name] = _fn
globals().update(FUNCTIONS)

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
sum_to = FUNCTIONS["sum_to"]                                                      # noqa: E702


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
    for dunder, fn in (("gt", gt), ("ge", ge), ("lt", lt), ("le", le)):
        setattr(cls, f"__{dunder}__", lambda self, other, fn=fn: fn(self, other))
    cls.__neg__ = lambda self: neg(self)
    cls.__pos__ = lambda self: self
    cls.T = property(lambda self: transpose(self), doc="The transpose (axes reversed).")


_install_operators(Node)


def table_markdown() -> str:
    """The op table as Markdown (``docs/ops.md`` is this text; a test keeps it so)."""
    kinds = {UNARY: "elementwise", BINARY: "elementwise, broadcasting",
             WHERE: "elementwise, broadcasting", REDUCE: "reduction (axis=None|int, keepdims)",
             MATMUL: "matrix product", LAYOUT: "layout", SOFTMAX: "along an axis (default −1)"}
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
        what = op.doc or pretty(op.expr)
        cells = [f"`{op.name}`", kinds[op.kind], what, derivs]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
