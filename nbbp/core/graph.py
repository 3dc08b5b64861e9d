"""The graph IR: nodes in build order, leaves with their values, scopes and names.

A :class:`Graph` is a list of :class:`Node` objects in the order they were built
(ids ``n0, n1, …``). Leaves are ``param`` (trainable), ``input`` (fed, with a
default) and ``const``; every other node applies an op from :mod:`nbbp.core.ops` to
earlier nodes. Shapes are known when a node is built, so a wrong shape fails
there. Nothing here computes: values flow through :mod:`nbbp.core.engine`.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ..errors import BuildError
from .dtypes import DEFAULT, FLOATS, dtype_of, float_dtype

MAX_NDIM = 4
LEAF_OPS = ("param", "input", "const")
NO_ATTRS: dict[str, Any] = {}   # the attrs of every node without any: one dict, never written


def valid_name(name: object) -> bool:
    """A node or scope name part: any Python identifier (``x``, ``α``, ``权重``), and
    also ``.`` and ``-`` after the first character (names that front ends import)."""
    return (isinstance(name, str) and name[:1].isidentifier()
            and name.replace(".", "_").replace("-", "_").isidentifier())


def _name_error(what: str, name: object) -> BuildError:
    if not isinstance(name, str):
        return BuildError(f"{what} name must be text, got {name!r}: an extra argument "
                          "is taken as the name; give a name as name='...'")
    return BuildError(f"{what} name {name!r} is not valid: use a Python identifier "
                      "(letters of any alphabet, digits, _), e.g. 'x', 'W1' or 'α'")


class _Building(threading.local):
    """The graphs being built in this thread, innermost last. ``with Graph()`` holds in
    the thread that entered it (as TensorFlow's default graph does), so models built
    in threads at once do not add nodes to each other's graphs."""

    def __init__(self) -> None:
        self.graphs: list[Graph] = []


_building = _Building()


def get_graph(required: bool = True) -> Graph | None:
    """The graph that building functions add to (innermost ``with Graph()`` of this
    thread)."""
    graphs = _building.graphs
    if graphs:
        return graphs[-1]
    if required:
        raise BuildError("no graph to build in: wrap the code in `with nbbp.Graph() as g:` "
                         "or pass it as text to nbbp.build(...)")
    return None


def as_value(value: Any, what: str, dtype: str = DEFAULT) -> np.ndarray:
    """Turn a number, list or array into an array of ``dtype`` (a floating dtype's
    name), or explain why not."""
    if isinstance(value, Node):
        raise BuildError(f"{what} needs a number or an array, got the node {value.name!r}; "
                         "a leaf's value must be known when it is built")
    if isinstance(value, (str, bytes)) or value is None:
        raise BuildError(f"{what} needs a number or an array of numbers, got "
                         f"{type(value).__name__} {value!r}")
    try:
        if dtype not in FLOATS:              # integers and bool: no silent rounding
            raw = np.asarray(value)
            if raw.dtype.kind == "f" and dtype != "bool" and not np.all(raw == np.trunc(raw)):
                bad = raw.ravel()[np.flatnonzero(raw.ravel() != np.trunc(raw.ravel()))[0]]
                raise BuildError(f"{what}: {float(bad)!r} is not a whole number, and the "
                                 f"dtype is {dtype}; round it, or use a floating dtype")
            if raw.dtype.kind not in "biuf":
                raise TypeError(f"not numbers ({raw.dtype})")
        arr = np.array(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        shown = repr(value)
        shown = shown if len(shown) < 60 else shown[:57] + "..."
        raise BuildError(f"{what} needs a number or an array of numbers, got "
                         f"{type(value).__name__} {shown} ({exc})") from None
    if arr.ndim > MAX_NDIM:
        raise BuildError(f"{what}: arrays of up to {MAX_NDIM} dimensions are supported, "
                         f"got shape {arr.shape}")
    return arr


class Node:
    """One node of a graph: a leaf (param, input, const) or an op applied to nodes.

    Arithmetic on nodes builds new nodes: ``x * y + 1`` adds a ``mul``, a ``const``
    and an ``add`` node to the graph that ``x`` belongs to. The operators (and ``.T``)
    come from the op table: :mod:`nbbp.core.ops` installs them on this class when it
    is imported, so this module does not depend on it. A node's ``attrs`` are read,
    never written: nodes without any share one empty dict (:data:`NO_ATTRS`).
    """

    __slots__ = ("graph", "id", "op", "inputs", "attrs", "name", "scope", "shape", "size",
                 "role", "value", "trainable", "auto_named", "line", "dtype")
    __array_ufunc__ = None  # numpy defers to our reflected operators (X @ W, 2 * x)

    def __init__(self, graph: Graph, id: int, op: str, inputs: tuple[Node, ...],
                 attrs: dict[str, Any], name: str, scope: str, shape: tuple[int, ...],
                 role: str, value: np.ndarray | None, trainable: bool, auto_named: bool,
                 line: int | None, dtype: str = DEFAULT) -> None:
        self.graph, self.id, self.op, self.inputs = graph, id, op, inputs
        self.attrs, self.name, self.scope, self.shape = attrs, name, scope, shape
        self.size = math.prod(shape)
        self.role, self.value, self.trainable = role, value, trainable
        self.auto_named, self.line = auto_named, line
        self.dtype = dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_leaf(self) -> bool:
        return self.op in LEAF_OPS

    def __repr__(self) -> str:
        shape = "scalar" if self.shape == () else f"shape={self.shape}"
        args = ", ".join(i.name for i in self.inputs)
        body = f"{self.op}({args})" if self.inputs else self.op
        return f"<Node {self.name!r} = {body}, {shape}, id=n{self.id}>"

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise BuildError(f"node {self.name!r} has no truth value while the graph is being "
                         "built (its value is computed later); use where(cond, a, b) "
                         "instead of `if`, or compare numbers, not nodes")

    def __getitem__(self, index: Any) -> Node:
        raise BuildError(f"indexing node {self.name!r} is not supported; use reshape, "
                         "sum(x, axis=...) or where(...) to pick parts of a tensor")

    def __iter__(self) -> Iterator[Node]:
        raise BuildError(f"node {self.name!r} cannot be iterated or unpacked; build one "
                         "node per value instead")

    def __len__(self) -> int:
        if not self.shape:
            raise BuildError(f"node {self.name!r} is a scalar and has no length")
        return self.shape[0]


class Graph:
    """A computation graph: nodes in build order, names unique within it.

    Use it as a context manager so that ``param``, ``input``, ``const``, the ops and
    ``scope`` add to it::

        >>> import nbbp
        >>> with nbbp.Graph() as g:
        ...     x = nbbp.param(3.0, name="x")
        ...     f = x * x
        >>> [n.name for n in g.nodes]
        ['x', 'mul']
    """

    def __init__(self, name: str = "graph", dtype: Any = None) -> None:
        self.name = name
        # the dtype of leaves built without dtype= and of constants lifted from numbers
        self.dtype = float_dtype(dtype, "dtype")
        self.nodes: list[Node] = []
        self.by_name: dict[str, Node] = {}
        self._scopes: list[str] = []
        self._line: int | None = None   # source line being executed (see `line`)
        self._role = "forward"          # "grad" while nbbp.gradients adds nodes
        self._next_suffix: dict[str, int] = {}   # keeps unique_name linear

    # -- context -------------------------------------------------------------
    def __enter__(self) -> Graph:
        _building.graphs.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _building.graphs.remove(self)

    def __repr__(self) -> str:
        return f"<Graph {self.name!r}: {len(self.nodes)} nodes>"

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, name: str) -> Node:
        try:
            return self.by_name[name]
        except KeyError:
            from ..errors import suggest
            raise BuildError(f"no node named {name!r} in this graph; "
                             + suggest(name, self.by_name, "node name")) from None

    def __contains__(self, name: str) -> bool:
        return name in self.by_name

    @property
    def scope(self) -> str:
        return self._scope

    @property
    def _scopes(self) -> list[str]:
        """The current scope's parts; setting them also sets :attr:`scope`, the joined
        path, which every new node reads (joined once here, not once per node)."""
        return self._scope_parts

    @_scopes.setter
    def _scopes(self, parts: list[str]) -> None:
        self._scope_parts, self._scope = parts, "/".join(parts)

    # -- what new nodes are tagged with ----------------------------------------
    @property
    def current_role(self) -> str:
        """The role new nodes get: ``"forward"``, or ``"grad"`` inside :meth:`role`."""
        return self._role

    @contextlib.contextmanager
    def role(self, role: str) -> Iterator[None]:
        """Tag the nodes built inside with ``role`` (the autodiff uses ``"grad"``)."""
        saved, self._role = self._role, role
        try:
            yield
        finally:
            self._role = saved

    @property
    def line(self) -> int | None:
        """The source line new nodes record (the cell line being run), or None."""
        line = self._line
        return line() if line.__class__ is _SourceLine else line

    @line.setter
    def line(self, line: int | None) -> None:
        self._line = line

    @contextlib.contextmanager
    def at_line(self, line: int | None) -> Iterator[None]:
        """Record ``line`` on the nodes built inside (None: no line)."""
        saved, self._line = self._line, line
        try:
            yield
        finally:
            self._line = saved

    @contextlib.contextmanager
    def lines_of(self, filename: str) -> Iterator[None]:
        """Record on each node built inside the line being run in the innermost frame
        of code compiled as ``filename`` (a cell), looked up when the node is built."""
        saved, self._line = self._line, _SourceLine(filename)
        try:
            yield
        finally:
            self._line = saved

    @contextlib.contextmanager
    def at_scope(self, path: str) -> Iterator[str]:
        """Build inside the scope ``path`` (e.g. ``"grad/hidden"``) instead of the
        current one; unlike :meth:`name_scope` it replaces the whole scope, and its
        parts are not checked (they come from existing nodes' scopes)."""
        saved, self._scopes = self._scopes, [p for p in path.split("/") if p]
        try:
            yield self.scope
        finally:
            self._scopes = saved

    @contextlib.contextmanager
    def name_scope(self, name: str) -> Iterator[str]:
        """Prefix the names of nodes built inside with ``name/``."""
        if not valid_name(name):
            raise _name_error("scope", name)
        saved, self._scopes = self._scopes, [*self._scopes, name]
        try:
            yield self.scope
        finally:
            self._scopes = saved

    # -- building ------------------------------------------------------------
    def unique_name(self, base: str, scope: str | None = None) -> str:
        """``scope/base``, or ``scope/base_1``, ``_2``, … if taken (TensorFlow's rule)."""
        scope = self._scope if scope is None else scope
        full = f"{scope}/{base}" if scope else base
        taken = self.by_name
        if full not in taken:
            return full
        k = self._next_suffix.get(full, 1)
        name = f"{full}_{k}"
        while name in taken:
            k += 1
            name = f"{full}_{k}"
        self._next_suffix[full] = k + 1
        return name

    def add_node(self, op: str, inputs: tuple[Node, ...] = (), attrs: dict | None = None,
                 shape: tuple[int, ...] = (), name: str | None = None,
                 value: np.ndarray | None = None, role: str | None = None,
                 trainable: bool = False, exact_name: str | None = None,
                 dtype: str = DEFAULT) -> Node:
        """Append a node; ``name`` is made unique within the current scope
        (``exact_name``, used when copying a graph, is taken as it is)."""
        for x in inputs:
            if x.graph is not self:
                raise BuildError(f"node {x.name!r} belongs to another graph ({x.graph.name!r});"
                                 " build every node of a model inside the same graph")
        if name is not None:
            if not isinstance(name, str) or not all(map(valid_name, name.split("/"))):
                raise _name_error("node", name)
        if 0 in shape:
            raise BuildError(f"{op} {name or ''}: shape {tuple(shape)} has an axis of size 0; "
                             "every axis needs at least one element")
        full = exact_name or self.unique_name(name if name is not None else op)
        scope = full.rsplit("/", 1)[0] if exact_name and "/" in full else self._scope
        line = self._line
        if line.__class__ is _SourceLine:
            line = line()
        node = Node(self, len(self.nodes), op, tuple(inputs), dict(attrs) if attrs else NO_ATTRS,
                    full,
                    scope, tuple(map(int, shape)) if shape else (), role or self._role, value,
                    trainable, name is None, line, dtype)
        self.nodes.append(node)
        self.by_name[full] = node
        return node

    def rename(self, node: Node, base: str, scope: str | None = None) -> None:
        """Give an automatically named node the name a cell assigned it to, in
        ``scope`` (default: its own), e.g. ``loss = mse(p, y)`` names ``mse``'s result
        ``loss`` at the level of the assignment."""
        del self.by_name[node.name]
        node.scope = node.scope if scope is None else scope
        node.name = self.unique_name(base, node.scope)
        node.auto_named = False
        self.by_name[node.name] = node

    def truncate(self, n: int) -> None:
        """Drop every node from id ``n`` on (undo a failed build step)."""
        for node in self.nodes[n:]:
            self.by_name.pop(node.name, None)
        del self.nodes[n:]

    # -- queries -------------------------------------------------------------
    def ancestors(self, targets: list[Node], stop: set[int] | frozenset = frozenset()
                  ) -> list[Node]:
        """Nodes that ``targets`` depend on (themselves included), in build order.

        Nodes whose id is in ``stop`` are included but not looked through.
        """
        seen: set[int] = set()
        stack = list(targets)
        pop, push, add = stack.pop, stack.extend, seen.add
        while stack:
            n = pop()
            i = n.id
            if i in seen:
                continue
            add(i)
            if i not in stop:
                push(n.inputs)
        nodes = self.nodes                 # a node's id is its index in build order
        return [nodes[i] for i in sorted(seen) if i < len(nodes)]

    def leaves(self, *kinds: str) -> list[Node]:
        """The graph's leaves of the given kinds (default: params and inputs), in build
        order: ``g.leaves("param")`` are the weights."""
        return leaves(self.nodes, *kinds)

    def consumers(self) -> dict[int, list[tuple[Node, int]]]:
        """For every node id, the ``(consumer, argument position)`` pairs, in build order."""
        out: dict[int, list[tuple[Node, int]]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for pos, x in enumerate(n.inputs):
                out[x.id].append((n, pos))
        return out


class _SourceLine:
    """The line being run in the innermost frame of a file (see :meth:`Graph.lines_of`):
    a walk up the stack when a node is built, instead of a trace function that Python
    would call on every line and every function call of the build."""

    __slots__ = ("filename",)

    def __init__(self, filename: str) -> None:
        self.filename = filename

    def __call__(self) -> int | None:
        frame, filename = sys._getframe(1), self.filename
        while frame is not None:
            if frame.f_code.co_filename == filename:
                return frame.f_lineno
            frame = frame.f_back
        return None


# -- leaves ---------------------------------------------------------------------
def leaves(nodes: Iterable[Node], *kinds: str) -> list[Node]:
    """The leaves among ``nodes`` whose op is one of ``kinds`` (default: ``param`` and
    ``input``, the leaves a user sets), in the order given.

    >>> with Graph():
    ...     w = param(1.0, name="w"); x = input(2.0, name="x"); f = w * x
    >>> [n.name for n in leaves([w, x, f])], [n.name for n in leaves([w, x, f], "input")]
    (['w', 'x'], ['x'])
    """
    for k in kinds:
        if k not in LEAF_OPS:
            raise ValueError(f"leaf kinds are {', '.join(LEAF_OPS)}; got {k!r}")
    want = kinds or ("param", "input")
    return [n for n in nodes if n.op in want]


def _leaf_dtype(dtype: Any, what: str) -> tuple[Graph, str]:
    g = get_graph()
    if dtype is None:
        return g, g.dtype
    if what.startswith("param"):             # trained values are floating point
        try:
            return g, float_dtype(dtype, what)
        except BuildError as e:
            raise BuildError(f"{e}; a param is trained, so it must be floating — for "
                             "integer data use input(..., dtype=...) or const(..., "
                             "dtype=...), or param(..., dtype=\"float64\")") from None
    try:
        return g, dtype_of(dtype)
    except BuildError as e:
        raise BuildError(f"{what}: {e}") from None


def param(value: Any, name: str | None = None, trainable: bool = True,
          dtype: Any = None) -> Node:
    """A trainable leaf (a weight or bias) with its initial value.

    ``dtype``: ``"float64"`` or ``"float32"`` (default: the graph's, float64 unless
    the graph was built with ``dtype="float32"``); a param is trained, so integer and
    boolean dtypes are refused (they are for inputs and consts).

    >>> with Graph():
    ...     w = param([1.0, 2.0], name="w", dtype="float32")
    >>> w.shape, w.dtype
    ((2,), 'float32')
    """
    g, dt = _leaf_dtype(dtype, "param(...)")
    arr = as_value(value, "param(...)", dt)
    return g.add_node("param", shape=arr.shape, name=name, value=arr,
                      trainable=trainable, dtype=dt)


def input(value: Any = None, name: str | None = None, shape: tuple | None = None,
          dtype: Any = None) -> Node:
    """A fed leaf (data): ``value`` is its default, ``run(feed=...)`` replaces it.

    Give ``shape`` instead of ``value`` for an input that must be fed; ``dtype``: any
    of nbbp's dtypes (``"int32"``, ``"bool"``, … for labels and indices).
    """
    g, dt = _leaf_dtype(dtype, "input(...)")
    if value is None:
        if shape is None:
            raise BuildError("input() needs a default value or a shape, e.g. input(0.0) "
                             "or input(shape=(100, 2))")
        arr = np.zeros(tuple(int(d) for d in shape), dtype=dt)
    else:
        arr = as_value(value, "input(...)", dt)
        if shape is not None and tuple(shape) != arr.shape:
            raise BuildError(f"input(...): the value has shape {arr.shape} but shape="
                             f"{tuple(shape)} was given")
    return g.add_node("input", shape=arr.shape, name=name, value=arr, dtype=dt)


def const(value: Any, name: str | None = None, dtype: Any = None) -> Node:
    """A constant leaf: never trained, never fed; ``dtype``: any of nbbp's dtypes."""
    g, dt = _leaf_dtype(dtype, "const(...)")
    arr = as_value(value, "const(...)", dt)
    return g.add_node("const", shape=arr.shape, name=name, value=arr, dtype=dt)


@contextlib.contextmanager
def scope(name: str) -> Iterator[str]:
    """``with scope("hidden"):`` names the nodes built inside ``hidden/…``."""
    with get_graph().name_scope(name) as s:
        yield s
