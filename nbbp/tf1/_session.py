"""``tf.Session``: runs fetches on nbbp's engine, keeping variable values per session.

``sess.run(fetches, feed_dict)`` finds the ops the fetches need (not looking past
fed tensors), lowers them to an nbbp graph with the feeds' shapes (see
:mod:`._lower`), and compiles it with :class:`nbbp.core.compiled.Compiled`.
The plan is cached per (fetches, fed tensors and their shapes), so a training
loop lowers once. Each run writes the session's variable values, the feeds and
fresh random samples into the arena, runs the program, reads the fetches, and
then applies the fetched ``assign`` and optimizer ops to the variable values (an
optimizer's update is :mod:`nbbp.train.optim`'s compiled rule, see
:class:`._apply.Update`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from ..core.compiled import Compiled
from ..core.engine import ENGINES, Arena, Layout
from ..errors import suggest
from ..model import Model
from ._apply import InArena, Update
from ._core import (
    Graph,
    Operation,
    Tensor,
    ThreadStack,
    get_default_graph,
    not_in_graph,
    register_session_finder,
)
from ._fetchers import FETCHERS
from ._lower import lower
from ._opdefs import ASSIGN_TYPES, OPDEFS
from ._ops import DEFAULT_GRAPH_SEED
from ._types import compatible, shape_list_str, shape_str
from .errors import (
    ClosedSessionError,
    FailedPreconditionError,
    FeedShapeError,
    FetchError,
    GraphMismatchError,
    InvalidArgumentError,
    UsageError,
)

_MAX_PLANS = 256


_sessions = ThreadStack()       # this thread's default sessions, innermost last


def get_default_session() -> Session | None:
    """The innermost session this thread entered with ``with``, or None."""
    stack = _sessions.items
    return stack[-1] if stack else None


def _session_for(obj: Tensor | Operation, session: Session | None, what: str) -> Session:
    s = session if session is not None else get_default_session()
    if s is None:
        raise UsageError(f"Cannot evaluate tensor using `{what}`: No default session is "
                         "registered. Use `with sess.as_default()` (or `with tf.Session() as "
                         f"sess:`) or pass an explicit session to `{what[:-2]}(session=sess)`")
    if s.graph is not obj.graph:
        raise GraphMismatchError(
            f"Cannot use the given session to evaluate tensor: the tensor's graph is "
            f"different from the session's graph ({obj.graph.describe()} vs "
            f"{s.graph.describe()})")
    return s


register_session_finder(_session_for)


def _as_tf(value: Any, dtype: Any) -> Any:
    """A value read from the arena as TF 1 returns it: a NumPy array or scalar of the
    tensor's dtype (``np.float32(6.9166665)``); float64 scalars as NumPy float64,
    which is a Python float too. (The arena holds every dtype as itself.)"""
    arr = np.asarray(value, dtype=dtype.name)
    return arr[()] if arr.ndim == 0 else arr


def _string_value(t: Tensor) -> Any:
    """A tf.string tensor's value as TF 1 fetches it: ``bytes``, or an object array of
    bytes. nbbp.tf1's string tensors are constants and identities of them."""
    op = t.op
    while op.type == "Identity":
        op = op.inputs[0].op
    value = op.attrs["value"].copy()
    return value[()] if value.ndim == 0 else value


class _Plan:
    """A lowered, compiled run: the program and arena, which slots to write before
    and read after, and the assignments and updates to apply after it."""

    def __init__(self, low, compiled: Compiled, outputs: list, actions: list,
                 held: dict) -> None:
        self.low, self.compiled = low, compiled
        self.outputs = outputs          # node (or None for an op) per fetch
        self.actions = actions          # (assign op, node) or (ApplyGradients op, Update)
        # where each run writes the variables and feeds: flat views of their slots
        # (the feeds' shapes are the plan's, the variables' fixed), so a run writes
        # them without Compiled.set's broadcasting
        lay, arena = compiled.layout, compiled.arena
        self.var_slots = [(v, lay.view(arena, n).reshape(-1)) for v, n in low.var_leaves]
        self.feed_slots = [(t, lay.view(arena, n).reshape(-1)) for t, n in low.feed_leaves]
        self.counter_slots = [(op, lay.view(arena, n).reshape(-1)) for op, n in low.counters]
        # the session's value (the array object) each variable's slot holds: a value
        # unchanged since the last run (the update stores what it wrote) is not rewritten
        self.held = held


def _arena(layout: Layout, ends: list[int]) -> Arena:
    """The layout's arena (leaf values written in), each storage ``ends[c]`` long:
    the updates' parameters, state and hyperparameters follow the graph's."""
    return layout.new_arena([e - size for e, size in zip(ends, layout.sizes)])


class Session:
    """Runs a graph's ops; holds the values of its variables.

    ``with tf.Session() as sess:`` also makes the session's graph the default
    graph inside the block, as in TF 1. ``engine="python"`` runs on nbbp's NumPy
    reference path instead of the compiled one.
    """

    def __init__(self, target: str = "", graph: Graph | None = None, config: Any = None,
                 engine: str = "numba") -> None:
        if engine not in ENGINES:
            raise UsageError(f"unknown engine {engine!r}; " + suggest(engine, ENGINES, "engine"))
        if graph is not None and not isinstance(graph, Graph):
            raise UsageError(f"tf.Session(graph=...) needs an nbbp.tf1.Graph, got {graph!r}")
        self.graph = graph if graph is not None else get_default_graph()
        self.engine = engine
        self._values: dict[Tensor, np.ndarray] = {}
        self._rngs: dict[Operation, np.random.Generator] = {}
        self._draws: dict[Operation, int] = {}        # runs of each RandomUniform op
        self._plans: dict[tuple, _Plan] = {}
        self._flats: dict[Any, tuple] = {}           # see _flat
        self._feed_shapes: dict[Tensor, tuple] = {}  # a shape accepted for each feed
        self._closed = False
        self._stack = contextlib.ExitStack()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._values)} variables set"
        return f"<nbbp.tf1.Session on {self.graph.describe()}, {state}>"

    # -- contexts ------------------------------------------------------------
    def __enter__(self) -> Session:
        self._stack.enter_context(self.graph.as_default())
        self._stack.enter_context(self.as_default())
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self.close()

    @contextlib.contextmanager
    def as_default(self) -> Iterator[Session]:
        """Make this the default session (for ``t.eval()``, ``op.run()``)."""
        stack = _sessions.items
        stack.append(self)
        try:
            yield self
        finally:
            stack.remove(self)

    def close(self) -> None:
        """Free the variable values; running afterwards raises."""
        self._closed = True
        self._values.clear()
        self._plans.clear()
        self._flats.clear()

    # -- running -------------------------------------------------------------
    def run(self, fetches: Any, feed_dict: Mapping | None = None, options: Any = None,
            run_metadata: Any = None) -> Any:
        """Compute ``fetches`` — a tensor, operation or name, or a list, tuple or dict
        of them (nested) — with ``feed_dict`` replacing tensors' values.

        Returns the same structure with NumPy arrays and scalars of each tensor's
        dtype (``np.float32(6.9166665)``, as TF 1 returns them) in place of tensors
        and None in place of operations.
        """
        if self._closed:
            raise ClosedSessionError("Attempted to use a closed Session.")
        targets, pack = self._flat(fetches)
        feeds = self._feeds(feed_dict)
        plan = self._plan(targets, feeds)
        c = plan.compiled
        held, values = plan.held, self._values
        for var, slot in plan.var_slots:        # each leaf's slot in the arena, flat
            value = values.get(var)
            if value is None or held.get(var) is not value:   # the slot holds another
                value = self._read(var)         # (raises for an uninitialised variable)
                slot[:] = value.ravel()
                held[var] = value
        for t, slot in plan.feed_slots:
            slot[:] = feeds[t].ravel()
        for op, node in plan.low.random_leaves:
            c.set(node, self._sample(op))
        draws = self._draws
        for op, slot in plan.counter_slots:     # the n-th run of a random op draws n
            slot[0] = draws.get(op, 0)
        c.run()
        for op, nodes in plan.low.checks:      # values TF 1's kernels refuse
            OPDEFS[op.type].check(op, *(c.read(n) for n in nodes))
        values = [None if n is None else _as_tf(c.read(n), t.dtype)
                  for n, t in zip(plan.outputs, targets)]
        for op, _ in plan.counter_slots:
            draws[op] = draws.get(op, 0) + 1
        for op, act in plan.actions:
            if op.type in ASSIGN_TYPES:
                self._store(op.attrs["var"], c.read(act), op.name)
            else:
                act.apply(self, c.arena)
        return pack(values)

    def _plan(self, targets: list, feeds: dict[Tensor, np.ndarray]) -> _Plan:
        key = (tuple((isinstance(t, Tensor), t.op.id if isinstance(t, Tensor) else t.id)
                     for t in targets),
               tuple(sorted((t.op.id, a.shape) for t, a in feeds.items())))
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        fed = {t.op: a.shape for t, a in feeds.items()}
        roots: list[Operation] = []
        actions: list[Operation] = []

        def expand(op: Operation) -> None:
            if op.type == "NoOp":
                for c in op.control_inputs:
                    expand(c)
                return
            roots.append(op)
            if (op.type in ASSIGN_TYPES or op.type == "ApplyGradients") and op not in fed \
                    and op not in actions:
                actions.append(op)

        for t in targets:
            expand(t.op if isinstance(t, Tensor) else t)
        low = lower(roots, fed, f"tf1-graph{self.graph.number}")
        outputs = [low.node_of[t.op] if isinstance(t, Tensor) else None for t in targets]
        read = [n for n in outputs if n is not None]
        read += [n for _, nodes in low.checks for n in nodes]
        for op in actions:
            read += [low.node_of[op]] if op.type in ASSIGN_TYPES else [
                low.node_of[t.op] for t in op.inputs]
        g = low.graph
        todo = [n for n in g.ancestors(read) if not n.is_leaf] if read else []
        layout = Layout(g)
        acts: list[tuple[Operation, Any]] = []
        ends = list(layout.sizes)
        held: dict = {}         # see _Plan.held
        for op in actions:
            if op.type in ASSIGN_TYPES:
                acts.append((op, low.node_of[op]))
                continue
            nodes = [low.node_of[t.op] for t in op.inputs]
            n_vars = len(op.attrs["vars"])
            hyper = dict(zip(op.attrs["hyper_names"], nodes[n_vars:]))
            update = Update(op, layout, nodes[:n_vars], hyper, ends, self.engine,
                            dict(low.var_leaves), held)
            acts.append((op, update))
            ends = update.ends
        compiled = Compiled(g, todo, keep=read, watch=[], engine=self.engine, layout=layout,
                            arena=_arena(layout, ends))
        plan = _Plan(low, compiled, outputs, acts, held)
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    # -- fetches and feeds ------------------------------------------------------
    def _flat(self, fetches: Any) -> tuple[list, Callable[[list], Any]]:
        """:meth:`_flatten`, remembered for a tensor or operation, or a list or tuple of
        them (fetched again at every step of a loop; they cannot change)."""
        if isinstance(fetches, (Tensor, Operation)):
            key: Any = fetches
        elif type(fetches) in (list, tuple) and all(
                isinstance(f, (Tensor, Operation)) for f in fetches):
            key = (type(fetches), *fetches)
        else:
            return self._flatten(fetches)
        hit = self._flats.get(key)
        if hit is None:
            if len(self._flats) >= _MAX_PLANS:
                self._flats.clear()
            hit = self._flats[key] = self._flatten(fetches)
        return hit

    def _flatten(self, fetches: Any) -> tuple[list, Callable[[list], Any]]:
        flat: list = []

        def walk(f: Any) -> Callable[[list], Any]:
            if isinstance(f, Mapping):
                keys = list(f)
                parts = [walk(f[k]) for k in keys]
                return lambda v: type(f)(zip(keys, (p(v) for p in parts))) \
                    if type(f) is not dict else {k: p(v) for k, p in zip(keys, parts)}
            if isinstance(f, (list, tuple)):
                parts = [walk(x) for x in f]
                if hasattr(f, "_fields"):      # a namedtuple
                    return lambda v: type(f)(*(p(v) for p in parts))
                return lambda v: type(f)(p(v) for p in parts)
            e = self._element(f)
            if isinstance(e, Tensor) and e.dtype.kind == "s":
                value = _string_value(e)
                return lambda v: value
            make = FETCHERS.get(e.op.type) if isinstance(e, Tensor) else None
            if make is not None:        # e.g. a summary: its inputs' values, made into bytes
                parts = [walk(x) for x in e.op.inputs]
                return lambda v: make(e.op, [p(v) for p in parts])
            i = len(flat)
            flat.append(e)
            return lambda v: v[i]

        return flat, walk(fetches)

    def _element(self, f: Any) -> Tensor | Operation:
        if isinstance(f, str):
            return self.graph.as_graph_element(f)
        if isinstance(f, (Tensor, Operation)):
            if f.graph is not self.graph:
                raise GraphMismatchError(f"Fetch argument {f!r} cannot be interpreted as a "
                                         f"Tensor. ({not_in_graph(f, self.graph)})")
            return f
        hint = (" (tf.gradients returns None for an x that ys does not depend on; leave "
                "it out of the fetches)") if f is None else ""
        raise FetchError(f"Fetch argument {f!r} has invalid type {type(f)}, must be a string "
                         f"or Tensor. (Can not convert a {type(f).__name__} into a Tensor or "
                         f"Operation.){hint}")

    def _feeds(self, feed_dict: Mapping | None) -> dict[Tensor, np.ndarray]:
        out: dict[Tensor, np.ndarray] = {}
        for k, v in (feed_dict or {}).items():
            t = self.graph.as_graph_element(k) if isinstance(k, str) else k
            if isinstance(t, Operation) or not isinstance(t, Tensor):
                raise FetchError(f"Cannot interpret feed_dict key as Tensor: {k!r} is not a "
                                 "tensor; feed tensors such as placeholders")
            if t.graph is not self.graph:
                raise GraphMismatchError("Cannot interpret feed_dict key as Tensor: "
                                         + not_in_graph(t, self.graph))
            if isinstance(v, (Tensor, Operation)):
                raise FetchError(f"The value of a feed cannot be a tf.Tensor object (feeding "
                                 f"{t.name} with {v!r}). Acceptable feed values include "
                                 "Python scalars, lists and numpy ndarrays; to compute a "
                                 "feed, sess.run it first")
            try:
                arr = np.asarray(v, dtype=t.dtype.name)     # as TF converts a feed
            except (TypeError, ValueError, OverflowError):
                raise FetchError(f"the value fed to {t.name} must be a number or an array of "
                                 f"numbers, got {type(v).__name__} {v!r}") from None
            if self._feed_shapes.get(t) == arr.shape:      # checked before
                out[t] = arr
                continue
            if not compatible(t._shape, arr.shape):
                raise FeedShapeError(
                    f"Cannot feed value of shape {arr.shape} for Tensor '{t.name}', which has "
                    f"shape '{shape_str(t._shape)}'. Feed an array of shape "
                    f"{shape_list_str(t._shape)} (? is any size).")
            if arr.ndim > 4:
                raise FeedShapeError(f"feeding {t.name}: nbbp supports up to 4 dimensions, "
                                     f"got shape {arr.shape}")
            self._feed_shapes[t] = arr.shape
            out[t] = arr
        return out

    # -- variable values and random numbers ----------------------------------
    def _read(self, var: Tensor) -> np.ndarray:
        value = self._values.get(var)
        if value is None:
            raise FailedPreconditionError(
                f"Attempting to use uninitialized value {var.op.name}. A variable has no "
                f"value in a session until its initializer runs there: run "
                f"sess.run(tf.global_variables_initializer()) after creating all variables "
                f"(including those an optimizer's minimize() adds), or "
                f"sess.run(v.initializer) for '{var.op.name}'.")
        if value.__class__ is InArena:          # the row a compiled update left it in
            value = self._values[var] = value.array()
        return value

    def _store(self, var: Tensor, value: Any, what: str) -> None:
        arr = np.array(value, dtype=var.dtype.name)
        if arr.shape != var._shape:
            raise InvalidArgumentError(
                f"Assign requires shapes of both tensors to match. lhs shape= "
                f"{shape_list_str(var._shape)} rhs shape= {shape_list_str(arr.shape)} "
                f"({what} into variable '{var.op.name}'); a variable's shape is fixed")
        self._values[var] = arr

    def _sample(self, op: Operation) -> np.ndarray:
        rng = self._rngs.get(op)
        if rng is None:
            graph_seed, op_seed = op.graph.seed, op.attrs["seed"]
            rng = self._rngs[op] = np.random.default_rng([
                DEFAULT_GRAPH_SEED if graph_seed is None else graph_seed,
                op.id if op_seed is None else op_seed])
        shape, a = op.outputs[0]._shape, op.attrs
        dt = op.outputs[0].dtype.name       # drawn in float64, rounded to the dtype
        z = rng.standard_normal(shape)
        if op.type == "TruncatedNormal":
            bad = np.abs(z) > 2.0
            while bad.any():
                z[bad] = rng.standard_normal(int(bad.sum()))
                bad = np.abs(z) > 2.0
        return (a["mean"] + a["stddev"] * z).astype(dt)

    # -- a bridge to nbbp's models -------------------------------------------
    def to_model(self, fetch: Tensor | str, feed_dict: Mapping | None = None):
        """An :class:`nbbp.Model` of ``fetch`` at this session's variable values and
        the feeds: draw it, read every edge's gradient, check it with finite
        differences. Variables become params, feeds and random tensors inputs."""
        (t,), _ = self._flatten([fetch])
        if not isinstance(t, Tensor):
            raise UsageError(f"to_model needs a tensor, got the operation {t!r}")
        feeds = self._feeds(feed_dict)
        low = lower([t.op], {x.op: a.shape for x, a in feeds.items()},
                    f"tf1-graph{self.graph.number}")
        for var, node in low.var_leaves:
            node.value = self._read(var).copy()
        for x, node in low.feed_leaves:
            node.value = feeds[x]
        for op, node in low.random_leaves:
            node.value = self._sample(op)
        for op, node in low.counters:
            node.value = np.array(self._draws.get(op, 0), dtype=np.int64)
        return Model(low.node_of[t.op], engine=self.engine, name=t.op.name)


class InteractiveSession(Session):
    """A session that makes itself (and its graph) the default as soon as it exists,
    for notebooks: ``t.eval()`` works without a ``with`` block. ``close()`` ends it."""

    def __init__(self, target: str = "", graph: Graph | None = None, config: Any = None,
                 engine: str = "numba") -> None:
        super().__init__(target, graph, config, engine)
        self.__enter__()

    def close(self) -> None:
        if not self._closed:
            self._stack.close()
        super().close()
