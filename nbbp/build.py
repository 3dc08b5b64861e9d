"""Cell-style source → graph: what ``%%bpgraph`` and :func:`nbbp.build` run.

The source is Python, executed in a namespace where ``param``, ``input``,
``const``, ``scope``, ``grad``, the initialisers and every op of the table are in
reach, over the notebook's names. An AST pass makes each assignment name the node
it binds (``h = tanh(...)`` → node ``h``); loops and helper functions work because
it is Python. Every error is raised as an :class:`NbbpError` located at the
source line and column, and a failed build leaves nothing behind.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .core import graph as _graph
from .core import ops
from .core.autodiff import grad, gradients
from .core.compiled import paused_gc
from .core.graph import Graph, Node
from .errors import BuildError, NbbpError, closest, nearest, suggest
from .model import Model

FILENAME = "<bpgraph>"


class Initializers:
    """Seeded initialisers for a build: ``randn(2, 16)``, ``zeros(16)``, …"""

    def __init__(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def randn(self, *shape: int) -> np.ndarray:
        """Standard normal values of the given shape."""
        return self.rng.standard_normal(_shape(shape))

    def uniform(self, low: float = -1.0, high: float = 1.0, shape: Any = ()) -> np.ndarray:
        """Uniform values in [low, high) of the given shape."""
        return self.rng.uniform(low, high, _shape((shape,) if np.ndim(shape) == 0 and
                                                  shape != () else tuple(np.atleast_1d(shape))
                                                  if shape != () else ()))

    @staticmethod
    def zeros(*shape: int) -> np.ndarray:
        return np.zeros(_shape(shape))

    @staticmethod
    def ones(*shape: int) -> np.ndarray:
        return np.ones(_shape(shape))


def _shape(shape: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        if all(float(s) == int(s) and int(s) >= 0 for s in shape):
            return tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        pass
    raise BuildError(f"a shape must be whole numbers ≥ 0, got {shape!r}")


def dsl_namespace(seed: int | None = 0) -> dict[str, Any]:
    """The names a model's source can use (ops, leaves, scope, grad, initialisers)."""
    init = Initializers(seed)
    from .train.losses import LOSSES
    ns: dict[str, Any] = {**ops.FUNCTIONS, **LOSSES, "param": _graph.param,
                          "input": _graph.input, "const": _graph.const}
    ns = {k: _checked(k, f) for k, f in ns.items()}
    ns.update(scope=_graph.scope, grad=grad, gradients=gradients,
              randn=init.randn, uniform=init.uniform, zeros=init.zeros, ones=init.ones,
              np=np, pi=np.pi, e=np.e)
    return ns


def signature(name: str, fn: Callable) -> str:
    """``tanh(x, name=None)``: how a builder is called, without type hints."""
    sig = inspect.signature(fn)
    plain = [p.replace(annotation=p.empty) for p in sig.parameters.values()]
    return name + str(sig.replace(parameters=plain, return_annotation=sig.empty))


@functools.cache
def _checked(name: str, fn: Callable) -> Callable:
    """``fn`` for cells: a call with the wrong arguments (``tanh(x, x)``, whose second
    ``x`` would be taken as ``name=``, or ``tanh(x, axis=1)``) names the op and its
    signature. Calls with the usual arguments go straight through."""
    params = list(inspect.signature(fn).parameters.values())
    inputs = [p for p in params if p.name != "name" and p.kind == p.POSITIONAL_OR_KEYWORD]
    required = sum(p.default is p.empty for p in inputs)
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return fn
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def call(*args: Any, **kw: Any) -> Any:
        if required <= len(args) <= len(inputs) and not kw:
            return fn(*args)
        try:
            bound = sig.bind(*args, **kw)
        except TypeError as exc:
            raise BuildError(f"{name}: {exc}; call it as {signature(name, fn)}") from None
        label = bound.arguments.get("name")
        if label is not None and not isinstance(label, str):
            raise BuildError(f"{name} takes {len(inputs)} input"
                             f"{'s' if len(inputs) != 1 else ''}, got {len(args)}: call it "
                             f"as {signature(name, fn)} (a node's name is text, given as "
                             "name='...')")
        return fn(*args, **kw)
    return call


class _Namer(ast.NodeTransformer):
    """``h = expr`` → ``h = __name__(expr, "h")`` so nodes carry the cell's names."""

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        self.generic_visit(node)
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            node.value = self._wrap(node.value, node.targets[0].id)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        self.generic_visit(node)
        if node.value is not None and isinstance(node.target, ast.Name):
            node.value = self._wrap(node.value, node.target.id)
        return node

    @staticmethod
    def _wrap(value: ast.expr, name: str) -> ast.expr:
        call = ast.Call(func=ast.Name("__bp_name__", ast.Load()),
                        args=[value, ast.Constant(name)], keywords=[])
        return ast.copy_location(call, value)


def _locate(err: NbbpError, tb, lines: list[str]) -> NbbpError:
    """Attach the innermost source position inside the cell to ``err``."""
    line = col = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
            positions = getattr(tb.tb_frame.f_code, "co_positions", None)
            if positions is not None:
                try:
                    pos = list(positions())[tb.tb_lasti // 2]
                    if pos[0] == line and pos[2] is not None:
                        col = pos[2]
                except (IndexError, ValueError):
                    pass
        tb = tb.tb_next
    if line is not None and 0 < line <= len(lines):
        err.located(line, col, lines[line - 1])
    return err


def build_graph(source: str, namespace: Mapping[str, Any] | None = None, seed: int | None = 0,
                name: str = "graph", first_line: int = 1, dtype: Any = None
                ) -> tuple[Graph, dict[str, Node]]:
    """Run model source in a fresh graph (whose leaves and number constants are of
    ``dtype``, default float64); return the graph and, for each variable the source
    assigned a node to, that node (in the order of the last assignments).
    ``first_line`` is the number the user sees on the source's first line (2 in a
    ``%%bpgraph`` cell), for messages that point at another line."""
    g = Graph(name, dtype)       # an unknown dtype fails before the source runs
    if not isinstance(source, str):
        raise BuildError(f"the model source must be text, got {type(source).__name__}")
    lines = source.splitlines()
    if not source.strip():
        raise BuildError("the model source is empty: write at least one assignment, e.g. "
                         "`x = param(3.0)` then `f = x * x`")
    try:
        tree = ast.parse(source, FILENAME)
    except SyntaxError as exc:
        line = exc.lineno or 1
        text = lines[line - 1] if 0 < line <= len(lines) else (exc.text or "")
        raise BuildError(f"syntax error: {exc.msg}", line=line,
                         col=(exc.offset - 1) if exc.offset else None,
                         source_line=text) from None
    tree = ast.fix_missing_locations(_Namer().visit(tree))
    code = compile(tree, FILENAME, "exec")

    dsl = dsl_namespace(seed)
    user = dict(namespace or {})
    glb: dict[str, Any] = {**user, **dsl, "__builtins__": builtins}
    bound: dict[str, Node] = {}     # variable name -> node it last bound, in order
    rebound: dict[str, int] = {}    # a builder's name -> the line that assigned it

    def name_node(value: Any, target: str) -> Any:
        if target in dsl and callable(dsl[target]) and value is not dsl[target]:
            rebound.setdefault(target, g.line or 0)
        if isinstance(value, Node) and value.graph is g:
            if value.auto_named:
                g.rename(value, target, g.scope)
            bound.pop(target, None)
            bound[target] = value
        return value

    glb["__bp_name__"] = name_node
    try:
        with g, paused_gc():
            _exec_traced(code, glb, g)
    except NbbpError as exc:
        raise _locate(exc, exc.__traceback__, lines) from None
    except NameError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        known = [*dsl, *bound, *(k for k in user if not k.startswith("_") and k not in
                                 _IPYTHON_NAMES)]
        close = closest(missing, known)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        near = ", ".join(n for n in nearest(missing, known, 5) if n not in close)
        err = BuildError(f"unknown name {missing!r}: {hint}{'It' if hint else 'it'} is not "
                         "an op, a builder, a name assigned above or a notebook variable"
                         + (f" (nearest: {near})" if near else "")
                         + "; %%bpgraph? lists what a cell can use")
        raise _locate(err, exc.__traceback__, lines) from None
    except Exception as exc:
        err = _locate(BuildError(f"{type(exc).__name__}: {exc}"), exc.__traceback__, lines)
        called = _callee(err) if isinstance(exc, TypeError) else None
        if called in rebound and "not callable" in str(exc):
            at = rebound[called]
            text = lines[at - 1].strip() if 0 < at <= len(lines) else ""
            err.message = (f"{called}(...) no longer calls the op {called!r}: line "
                           f"{at + first_line - 1} rebound the name ({text}); give that "
                           f"variable another name, e.g. {called}_")
        raise err from None
    return g, bound


_IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "open"})


def _callee(err: NbbpError) -> str | None:
    """The name called at the error's position (``tanh`` in ``tanh(x)``), if any."""
    if err.source_line is None or err.col is None:
        return None
    m = re.match(r"([^\W\d]\w*)\s*\(", err.source_line[err.col:])
    return m.group(1) if m else None


def _exec_traced(code, glb: dict, g: Graph) -> None:
    """Run the source; each node records the source line that built it."""
    with g.lines_of(FILENAME):
        exec(code, glb)


def build(source: str, output: str | None = None, namespace: Mapping[str, Any] | None = None,
          *, engine: str = "numba", seed: int | None = 0, name: str | None = None,
          first_line: int = 1, dtype: Any = None) -> Model:
    """Build a model from cell-style source.

    Parameters
    ----------
    source
        Python code using ``param``, ``input``, ``const``, ``scope``, the ops and the
        initialisers; each assignment names the node it binds.
    output
        The name of the output node; by default the last assigned node.
    namespace
        Names the source may read, e.g. the notebook's data arrays.
    engine
        ``"numba"`` (compiled) or ``"python"`` (the NumPy reference path).
    seed
        Seed of ``randn`` and ``uniform``.
    name
        The model's name (default: the output's variable).
    first_line
        The line number of the source's first line as the user sees it (``%%bpgraph``
        passes 2), for messages that point at another line.
    dtype
        ``"float64"`` (the default) or ``"float32"``: the dtype of the leaves built
        without ``dtype=`` and of the constants written as numbers; a float32 model
        computes, trains and returns its values in float32.

    Examples
    --------
    >>> import nbbp
    >>> m = nbbp.build("x = param(3.0)\\ny = param(2.0)\\nf = x*x*y + y + 1")
    >>> m.value, m["x"].grad, m["y"].grad
    (21.0, 12.0, 10.0)
    """
    g, bound = build_graph(source, namespace, seed, name or output or "graph", first_line,
                           dtype)
    if output is None:
        if not bound:
            raise BuildError("the source assigns no node; end with an assignment such as "
                             "`f = x * y` (or pass output=...)")
        var, out_node = list(bound.items())[-1]
        name = name or var        # `f = h` names the model f even though the node is h
    else:
        out_node = g.by_name[output] if output in g.by_name else bound.get(output)
        if out_node is None:
            raise BuildError(f"output {output!r} is not a node of this model; "
                             + suggest(output, list(bound) + [n.name for n in g.nodes
                                                              if not n.auto_named],
                                       "node name"))
    return Model(out_node, engine=engine, source=source, name=name or out_node.name)
