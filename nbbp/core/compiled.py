"""Compiled graphs: the one way the layers above run anything.

:class:`Compiled` is some nodes of a graph lowered to one program over one arena:
``set`` writes a leaf, ``run`` computes, ``read``/``view`` give values back, and a
nan or inf in a watched node raises a :class:`~nbbp.errors.NumericError` that names
the node where it started. :class:`Backprop` is an output with the gradient of every
node it depends on (and the contribution along every edge), all computed by one
``run``: what a model, a training loop, a gradient check and a TF1 session hold.

>>> import nbbp
>>> with nbbp.Graph() as g:
...     x = nbbp.param(3.0, name="x"); y = nbbp.param(2.0, name="y")
...     f = x * x * y + y + 1
>>> bp = Backprop(f); bp.run()
>>> bp.value_of(f), bp.grad_of(x), bp.grad_of(y)
(21.0, 12.0, 10.0)
>>> bp.set(x, 1.0); bp.run(); bp.value_of(f)
5.0
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import FeedError, NumericError
from .autodiff import build_gradients, origin
from .engine import Arena, Layout, StandIn, make_program
from .graph import Graph, Node, leaves
from .isa import S_F64
from .ops import OPS, RNG_COUNTER


class _Pause:
    """How many ``paused_gc`` blocks are running, in any thread, and whether the
    collector was on before the first: the collector is process-wide, so blocks that
    overlap in threads share one pause (each keeping its own ``was`` could leave it
    off for good: a thread reading "off" while another's block ends, then disabling)."""

    lock = threading.Lock()
    depth = 0
    was = True


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a graph is built or compiled:
    those steps allocate one long-lived object after another, and with a large graph
    alive every collection walks all of it (lowering a 20k-op chain ran 2.5× slower
    with the collector on). It runs again, as it was, when the last block ends."""
    with _Pause.lock:
        if _Pause.depth == 0:
            _Pause.was = gc.isenabled()
            gc.disable()
        _Pause.depth += 1
    try:
        yield
    finally:
        with _Pause.lock:
            _Pause.depth -= 1
            if _Pause.depth == 0 and _Pause.was:
                gc.enable()


def short(v: float | np.ndarray | None) -> str:
    """A value in one short line, as error messages and ``repr`` show it."""
    if v is None:
        return "None"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return f"array{v.shape}" if v.size > 6 else np.array2string(
        v, precision=4, separator=", ", suppress_small=True).replace("\n", "")


def as_array(node: Node, value: Any, verb: str) -> np.ndarray:
    """A value for ``node`` as an array of the node's dtype (float64 values fed to a
    float32 node are converted), or a FeedError saying why not (``verb`` names what
    was being done: ``"set"``, ``"feed"``, ``"predict"``)."""
    if isinstance(value, (str, bytes)) or value is None or isinstance(value, Node):
        raise FeedError(f"{verb} {node.name!r}: needs a number or an array of numbers, "
                        f"got {type(value).__name__} {value!r}")
    try:
        raw = np.asarray(value)
        if node.dtype not in ("float64", "float32") and raw.dtype.kind not in "biu":
            if raw.dtype.kind != "f":
                raise TypeError(raw.dtype)
            if node.dtype != "bool" and not np.all(raw == np.trunc(raw)):
                bad = raw.ravel()[np.flatnonzero(raw.ravel() != np.trunc(raw.ravel()))[0]]
                raise FeedError(f"{verb} {node.name!r}: {float(bad)!r} is not a whole number, "
                                f"and {node.name!r} is {node.dtype}; round the values, or "
                                "make the input floating")
        return np.asarray(value, dtype=node.dtype)
    except (TypeError, ValueError):
        raise FeedError(f"{verb} {node.name!r}: needs a number or an array of numbers, "
                        f"got {type(value).__name__} {value!r}") from None


class Compiled:
    """Nodes of a graph compiled into one program that runs on one arena.

    Parameters
    ----------
    graph
        The graph the nodes belong to; the arena has a slot for each of its nodes.
    compute
        The non-leaf nodes to compute, in build order.
    keep
        The nodes whose values must be right after a run (default: all of
        ``compute``); others may be fused away.
    watch
        The nodes whose nan or inf is an error (default: ``keep``).
    engine
        ``"numba"`` (compiled, cached kernels) or ``"python"`` (NumPy, the reference).
    layout, arena
        Share another compiled object's arena layout (and, with ``arena``, its values:
        an :class:`~nbbp.core.engine.Arena`, one array per storage class).
    source
        The cell text the graph was built from, so errors can quote the line.
    """

    def __init__(self, graph: Graph, compute: Sequence[Node], *,
                 keep: Sequence[Node] | None = None, watch: Sequence[Node] | None = None,
                 engine: str = "numba", layout: Layout | None = None,
                 arena: Arena | None = None, source: str | None = None) -> None:
        self.graph, self.source = graph, source
        self.layout = Layout(graph) if layout is None else layout
        keep = list(compute) if keep is None else list(keep)
        self.watch = keep if watch is None else list(watch)
        self.program = make_program(self.layout, compute, engine, keep=keep, watch=self.watch)
        self.engine = self.program.engine        # "python" while a StandIn runs
        self.arena = self.layout.new_arena() if arena is None else arena
        self.call = self.program.bind(self.arena)   # the hot path: no checks, returns a code
        # the float64 store as a memoryview: its items are Python floats, read and
        # written ~2x faster than through NumPy's scalar indexing (see `slot`)
        self.f64 = memoryview(self.arena.stores[S_F64])

    #: True after a program computing only part of this one (a function's pruned
    #: backward pass, ``Model.function(wrt=...)``) ran on the arena: :meth:`read`
    #: and :meth:`view` first :meth:`complete` it, so nobody sees a stale value.
    partial = False

    def complete(self) -> None:
        """Run the whole program on the arena if a partial run left it out of date."""
        if self.partial:
            self.partial = False
            self.run()

    #: per node id, 1 if the program writes the node's slot or it is :attr:`fed` (made
    #: on the first read of an op node; None again when the program changes)
    _written: bytearray | None = None
    #: the ids of the nodes whose values are given, not computed (:meth:`fetching`'s
    #: ``fed``): a read takes the value given, as a leaf's
    fed: frozenset[int] = frozenset()

    def missing(self, nodes: Iterable[Node]) -> list[Node]:
        """The op nodes among ``nodes`` whose slots the program never writes: fused away
        (relu's backward ``g * step(y)`` is one ``mask`` instruction, its ``step`` node is
        never computed), not kept, or not part of the program at all. Their slots hold
        no value of theirs; :meth:`read`, :meth:`view` and :meth:`read_many` compute
        them first (:meth:`fill`)."""
        written = self._written
        if written is None:
            written = bytearray(self.layout.n_nodes)
            for n in self.program.nodes:
                written[n.id] = 1
            for i in self.fed:
                if i < len(written):
                    written[i] = 1
            self._written = written
        return [n for n in nodes if not n.is_leaf and n.id < len(written)
                and not written[n.id]]

    def fill(self, nodes: Sequence[Node], arena: Arena | None = None) -> None:
        """Compute, on the own arena (or ``arena``), the :meth:`missing` ones of
        ``nodes`` from the values the program left there: only the nodes between what
        the program wrote and them, into their own slots, which the program never
        writes, so nothing it computed changes. The program for each set of missing
        nodes is made once; a nan is read back, not raised (the program's own run
        watches what it watches)."""
        todo = self.missing(nodes)
        if not todo:
            return
        key = tuple(dict.fromkeys(n.id for n in todo))
        fills = self.__dict__.setdefault("_fills", {})
        sub = fills.get(key)
        if sub is None:
            done = _Written(self._written)      # look no further than what is there
            stop = [n for n in self.graph.ancestors(todo, done) if n.id in done]
            sub = fills[key] = Compiled.fetching(
                todo, stop, engine=self.program.engine,
                layout=self.layout, arena=self.arena, source=self.source, watch=[])
        sub.program(self.arena if arena is None else arena)

    def __getstate__(self) -> dict:
        """A copy (``copy.deepcopy``) carries the arena, not the memoryview onto it
        (nor the programs of :meth:`fill`, made again when needed)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("f64", "_fills")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.f64 = memoryview(self.arena.stores[S_F64])

    @classmethod
    def fetching(cls, fetches: Sequence[Node], fed: Iterable[Node] = (), *,
                 engine: str = "numba", layout: Layout | None = None,
                 arena: Arena | None = None, source: str | None = None,
                 watch: Sequence[Node] | None = None) -> Compiled:
        """Compile only what ``fetches`` need, not looking past the ``fed`` nodes
        (``watch`` as in the constructor; ``[]`` to read a nan back, not raise)."""
        graph = fetches[0].graph
        stop = frozenset(n.id for n in fed)
        compute = [n for n in graph.ancestors(list(fetches), stop)
                   if not n.is_leaf and n.id not in stop]
        out = cls(graph, compute, keep=fetches, watch=watch, engine=engine, layout=layout,
                  arena=arena, source=source)
        out.fed = stop
        return out

    # -- values -------------------------------------------------------------
    def set(self, node: Node, value: Any, arena: Arena | None = None) -> None:
        """Write ``value`` (broadcast to the node's shape) into the node's slot."""
        self.layout.write(self.arena if arena is None else arena, node, value)

    def read(self, node: Node, arena: Arena | None = None) -> float | np.ndarray:
        """A copy of the node's value: a float for float64 scalars, a NumPy scalar of
        the node's dtype for others, an array otherwise."""
        if not node.is_leaf:                        # (a leaf is never out of date)
            self._current((node,), arena)
        return self.layout.read(self.arena if arena is None else arena, node)

    def read_many(self, nodes: Sequence[Node], arena: Arena | None = None) -> list:
        """``[read(n) for n in nodes]``, the float64 scalars gathered in one step."""
        self._current(nodes, arena)
        return self.layout.read_many(self.arena if arena is None else arena, nodes)

    def scalars(self, ids: np.ndarray) -> np.ndarray:
        """The values of float64 scalar nodes, by id (an int64 array), in one gather:
        what a picture of a large graph needs of every node (its largest gradient),
        without a Python step per node unless one must be computed first (:meth:`fill`)."""
        self._current((), None)        # a partial run completed; the written mask made
        unwritten = ids[np.frombuffer(self._written, np.uint8)[ids] == 0]
        if unwritten.size:
            self.fill([self.graph.nodes[i] for i in unwritten.tolist()])
        return self.arena.stores[S_F64][self.layout.offsets[ids]]

    def _current(self, nodes: Sequence[Node], arena: Arena | None) -> None:
        """Make the values of ``nodes`` in ``arena`` (default: the own one) current:
        complete a :attr:`partial` run, compute what the program does not (:meth:`fill`)."""
        if arena is None and self.partial:
            self.complete()
        self.fill(nodes, arena)

    def view(self, node: Node, arena: Arena | None = None) -> np.ndarray:
        """The node's value as a view into the arena (writing to it changes the arena)."""
        if not node.is_leaf:
            self._current((node,), arena)
        return self.layout.view(self.arena if arena is None else arena, node)

    def redraw(self, arena: Arena | None = None) -> None:
        """Advance the graph's random counter (``rng_counter``), so the next run draws
        new ``random_uniform`` numbers (a TF 1 session does this before every run)."""
        counter = self.graph.by_name.get(RNG_COUNTER)
        if counter is not None and counter.id < self.layout.n_nodes:
            self.view(counter, arena)[...] += 1

    def slot(self, node: Node | None) -> int:
        """Where a float64 scalar node lives in :attr:`f64` (``f64[slot]`` is its value
        as a Python float, and ``f64[slot] = 2.0`` sets it: the hot path of a call), or
        -1 for any other node (tensors, other dtypes, nodes not in the layout)."""
        lay = self.layout
        if (node is None or node.shape != () or node.dtype != "float64"
                or node.id >= lay.n_nodes or lay.cls[node.id] != S_F64):
            return -1
        return int(lay.offsets[node.id])

    def finish_loading(self) -> bool:
        """Switch from a :class:`~nbbp.core.engine.StandIn` (the NumPy reference,
        run while the kernels loaded) to the compiled program it stands in for, on
        the same layout and arena, waiting for the kernel if it is still loading.
        True if it switched; whoever holds the old :attr:`call` must take the new one
        (a Model does). Values are not recomputed here."""
        if not isinstance(self.program, StandIn):
            return False
        self.program = self.program.compiled()
        self.engine, self.call = self.program.engine, self.program.bind(self.arena)
        self._written = None
        self.__dict__.pop("_fills", None)
        return True

    # -- running ------------------------------------------------------------
    def run(self, arena: Arena | None = None) -> None:
        """Compute on the own arena (or on ``arena``, a copy of it); raise
        :class:`NumericError` if a watched node came out nan or inf."""
        if arena is None:
            self.partial = False
        code = self.call() if arena is None else self.program(arena)
        if code >= 0:
            self.raise_numeric(self.arena if arena is None else arena)

    def raise_numeric(self, arena: Arena, watched: Sequence[Node] | None = None) -> None:
        """Raise :class:`NumericError` naming the first node whose nan or inf reached a
        watched node (a nan nothing uses, like the untaken branch of ``where``, is no
        error); return quietly if every watched node is finite."""
        lay = self.layout
        watched = self.watch if watched is None else watched
        bad = [w for w in watched if not np.isfinite(lay.view(arena, w)).all()]
        if not bad:
            return
        upstream = {n.id for n in self.graph.ancestors(bad)}
        node = next((n for n in self.program.nodes if n.id in upstream
                     and not np.isfinite(lay.view(arena, n)).all()), bad[0])
        val = lay.view(arena, node)
        what = "nan" if np.isnan(val).any() else "inf"
        err = _numeric_error(self.graph, node, what, lambda x: short(lay.read(arena, x))
                             if x.id < lay.n_nodes else "…")
        lines = self.source.splitlines() if self.source else []
        fwd = origin(node) if node.role == "grad" else None
        line = (node if fwd is None else fwd).line
        if line and 0 < line <= len(lines):
            err.located(line, None, lines[line - 1])
        raise err


class _Written:
    """The ids of the nodes a program writes, as ``stop`` for :meth:`Graph.ancestors`
    (ids past the layout count as there: nothing reads them)."""

    __slots__ = ("written",)

    def __init__(self, written: bytearray) -> None:
        self.written = written

    def __contains__(self, i: int) -> bool:
        return i >= len(self.written) or bool(self.written[i])


# how to keep an op in its domain, e.g. sqrt(maximum(x, eps)); {0}, {1}: its inputs
_GUARDS = {"sqrt": "sqrt(maximum({0}, eps))", "log": "log(maximum({0}, eps))",
           "div": "{0} / ({1} + eps) with eps of the sign of {1}"}


def _described(node: Node) -> str:
    """A node as the user wrote it: ``node 'y' = sqrt(x)``, or ``sqrt(x)`` when the
    cell did not name it."""
    expr = f"{node.op}({', '.join(_short_name(x) for x in node.inputs)})"
    return expr if node.auto_named else f"node {_short_name(node)!r} = {expr}"


def _short_name(node: Node) -> str:
    if node.op == "const" and node.auto_named and node.size == 1 and node.value is not None:
        return short(float(np.asarray(node.value).reshape(())))
    return node.name.rsplit("/", 1)[-1] if node.role == "forward" else node.name


def _feeds_where_branch(graph: Graph, node: Node) -> bool:
    """Whether ``node``'s value reaches a branch (not the condition) of a ``where``."""
    tainted = {node.id}
    for n in graph.nodes[node.id + 1:]:
        if n.role != "forward" or not any(i.id in tainted for i in n.inputs):
            continue
        if n.op == "where" and any(i.id in tainted for i in n.inputs[1:]):
            return True
        tainted.add(n.id)
    return False


def _numeric_error(graph: Graph, node: Node, what: str, value: Any) -> NumericError:
    """The report of ``node`` producing ``what`` (nan or inf): the user's forward node
    (for a gradient node, the one whose backward step it belongs to), its inputs, and
    advice that fits."""
    fwd = origin(node) if node.role == "grad" else node
    fwd = node if fwd is None else fwd
    op = OPS[fwd.op]
    why = f" ({op.doc})" if op.doc and "needs" in op.doc else ""
    ins = ", ".join(f"{_short_name(x)} = {value(x)}" for x in dict.fromkeys(fwd.inputs)
                    if not (x.op == "const" and x.auto_named))
    guard = _GUARDS.get(fwd.op, "").format(*(_short_name(x) for x in fwd.inputs), "", "")
    if fwd is not node:
        head = (f"the backward pass through {_described(fwd)} produced {what}"
                f"{' at ' + ins if ins else ''}{why}")
    else:
        head = f"{_described(fwd)} produced {what}" + (f" from {ins}" if ins else "") + why
    if guard and _feeds_where_branch(graph, fwd):
        advice = (f"both branches are evaluated: guard the input of {fwd.op}, e.g. {guard} "
                  "(where(...) only picks between the values, and the gradient of the "
                  "untaken branch is 0 · nan = nan)")
    elif guard:
        advice = f"change the inputs or guard the input of {fwd.op}, e.g. {guard}"
    else:
        advice = "change the inputs or guard the op"
    return NumericError(f"{head}; {advice}", node=fwd.name)


class Backprop:
    """An output, the gradient of the output with respect to every node it depends on,
    and the contribution along every edge — compiled together, computed by one run.

    ``grads.total[node.id]`` is the node holding ∂output/∂node, ``grads.edge[(dst.id,
    pos)]`` the one holding the contribution along ``dst.inputs[pos] → dst``. Every
    value the picture shows is computed; nan in the output or in a leaf's gradient is
    an error (elsewhere it may be a masked branch of ``where``).
    """

    def __init__(self, output: Node, engine: str = "numba", source: str | None = None) -> None:
        with paused_gc():
            self._build(output, engine, source)

    def _build(self, output: Node, engine: str, source: str | None) -> None:
        self.output, self.graph = output, output.graph
        self.forward = self.graph.ancestors([output])
        start = len(self.graph.nodes)
        self.grads = build_gradients(output, [n for n in self.forward if n.op != "const"],
                                     ancestors=self.forward)
        targets = (self.forward + list(self.grads.total.values())
                   + list(self.grads.edge.values()))
        watch = [output] + [self.grads.total[n.id] for n in leaves(self.forward)
                            if n.id in self.grads.total]
        # the ancestors of every target, in build order, without walking the graph
        # again: the transform keeps only new nodes its gradients need, and those read
        # only forward nodes and each other
        compute = [n for n in self.forward + self.graph.nodes[start:] if not n.is_leaf]
        self.compiled = Compiled(self.graph, compute, keep=targets, watch=watch,
                                 engine=engine, source=source)
        self._fetchers: dict[tuple, Compiled] = {}

    @property
    def layout(self) -> Layout:
        return self.compiled.layout

    @property
    def arena(self) -> Arena:
        return self.compiled.arena

    def set(self, node: Node, value: Any) -> None:
        self.compiled.set(node, value)

    def finish_loading(self) -> bool:
        """:meth:`Compiled.finish_loading`; the programs of :meth:`evaluate` made
        while the reference stood in are made again, compiled, when next needed."""
        if not self.compiled.finish_loading():
            return False
        self._fetchers.clear()
        return True

    def run(self) -> None:
        """Forward and backward on the current leaf values (one compiled call)."""
        self.compiled.run()

    def value_of(self, node: Node) -> float | np.ndarray:
        return self.compiled.read(node)

    def grad_node(self, node: Node) -> Node | None:
        """The node holding ∂output/∂node (None if the output does not depend on it)."""
        return self.grads.total.get(node.id)

    def grad_of(self, node: Node) -> float | np.ndarray:
        """∂output/∂node, in the node's dtype (in a graph mixing float32 and float64
        the gradient node may be float64 where the node is float32, as in JAX the
        cotangent is given in the primal's dtype); zeros for nodes the output does not
        depend on."""
        g = self.grads.total.get(node.id)
        value = np.zeros(node.shape, node.dtype) if g is None else self.compiled.read(g)
        if g is not None and g.dtype == node.dtype:
            return value
        value = np.asarray(value, dtype=node.dtype)
        if node.shape == ():
            return float(value) if node.dtype == "float64" else value[()]
        return value

    def grad_slot(self, node: Node) -> int:
        """Where ∂output/∂node lives in ``compiled.f64`` when :meth:`grad_of` would
        return it as a Python float read from one slot (both float64 scalars), else -1."""
        if node.dtype != "float64":
            return -1
        return self.compiled.slot(self.grads.total.get(node.id))

    def edge_grad_node(self, dst: Node, pos: int) -> Node | None:
        """The node holding the contribution along ``dst.inputs[pos] → dst``."""
        return self.grads.edge.get((dst.id, pos))

    def evaluate(self, fetches: Sequence[Node], fed: Mapping[Node, np.ndarray]
                 ) -> list[float | np.ndarray]:
        """The values of ``fetches`` with the ``fed`` nodes replaced, computing only what
        the fetches need, on a copy of the arena (this object's values do not change).
        The program for each set of fetches and fed nodes is compiled once."""
        key = (tuple(n.id for n in fetches), tuple(sorted(n.id for n in fed)))
        sub = self._fetchers.get(key)
        if sub is None:
            sub = self._fetchers[key] = Compiled.fetching(
                fetches, fed, engine=self.compiled.engine, layout=self.layout,
                arena=self.arena, source=self.compiled.source)
        arena = self.arena.copy()
        for n, v in fed.items():
            sub.set(n, v, arena)
        sub.run(arena)
        return [sub.read(n, arena) for n in fetches]
