"""A model: the thin façade a user holds over a graph's output and its gradients.

A :class:`Model` holds a :class:`~nbbp.core.compiled.Backprop` (the forward nodes
that its output depends on, the gradient nodes for every one of them, and one
program that computes both in a single compiled call) and delegates: values to the
core, training to :mod:`nbbp.train`, pictures to :mod:`nbbp.view`, widgets to
:mod:`nbbp.widgets`, files to :mod:`nbbp.files`. No layer below imports it.
``m.set(...)`` writes new leaf values and recomputes; ``m.run(...)`` evaluates any
nodes with some of them fed, computing only the part of the graph the fetches need,
without touching the model's values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from typing import Any

import numpy as np

from .core._call import FastCall, FastSet, ModelBase
from .core.compiled import Backprop, Compiled, as_array
from .core.compiled import short as _fmt
from .core.engine import ENGINES
from .core.graph import Node, leaves
from .core.ops import mode_flag as _mode_flag
from .errors import BuildError, FeedError, NbbpError, NumericError, suggest
from .train import optim as _optim
from .train import state as _training
from .train.loop import TrainLoop, fit
from .train.predict import predict


@dataclass(frozen=True)
class Edge:
    """A forward edge ``src → dst`` into argument ``pos`` of ``dst``.

    ``grad`` is the contribution ∂output/∂src that flows along it (None where no
    gradient flows, e.g. into a constant); a node's gradient is the sum of the
    contributions on its outgoing edges.
    """

    src: str
    dst: str
    pos: int
    grad: float | np.ndarray | None

    def __repr__(self) -> str:
        return f"Edge({self.src} → {self.dst}[{self.pos}], grad={_fmt(self.grad)})"


class NodeView:
    """One node of a model: its value and ∂output/∂node (``m["x"].grad``)."""

    def __init__(self, model: Model, node: Node) -> None:
        self._m, self.node = model, node

    name = property(lambda self: self.node.name)
    op = property(lambda self: self.node.op)
    shape = property(lambda self: self.node.shape)

    @property
    def value(self) -> float | np.ndarray:
        return self._m.value_of(self.node)

    @property
    def grad(self) -> float | np.ndarray | None:
        return self._m.grad_of(self.node)

    def __repr__(self) -> str:
        return (f"<{self.node.op} {self.name!r}: value={_fmt(self.value)}, "
                f"grad={_fmt(self.grad)}>")


class Model(ModelBase):
    """A graph's output with values and gradients, kept up to date.

    >>> import nbbp
    >>> m = nbbp.build('''
    ... x = param(3.0)
    ... y = param(2.0)
    ... f = x*x*y + y + 1
    ... ''')
    >>> m.value, m.grads
    (21.0, {'x': 12.0, 'y': 10.0})
    >>> m.set(x=1.0).value
    5.0

    ``set``, ``value`` and ``grads`` are :class:`nbbp.core._call.ModelBase`'s: done in
    C for Python floats and float64 scalars, and by :meth:`_set`, :meth:`_value` and
    :meth:`_grads` otherwise.
    """

    def __init__(self, output: Node, engine: str = "numba", source: str | None = None,
                 name: str | None = None) -> None:
        if not isinstance(output, Node):
            raise BuildError(f"a model's output must be a node, got {type(output).__name__}")
        if engine not in ENGINES:
            raise NbbpError(f"unknown engine {engine!r}; " + suggest(engine, ENGINES, "engine"))
        self.graph = output.graph
        self.output = output
        self.engine = engine
        self.source = source
        self.name = name or output.name
        self.backprop = Backprop(output, engine, source)
        self.forward = self.backprop.forward
        self.compiled = self.backprop.compiled
        self.layout, self.arena = self.compiled.layout, self.compiled.arena
        self._call = self.compiled.call      # the hot path, one attribute away
        self._mv = self.compiled.f64         # float64 scalars as Python floats, by slot
        self._out = self.compiled.slot(output)
        self.compute()

    def finish_loading(self) -> bool:
        """Switch a model whose first values came from the NumPy reference while the
        compiled kernels loaded (``self.compiled.engine == "python"`` though
        ``self.engine == "numba"``: a ``%%bpgraph`` cell run right after ``%load_ext
        nbbp``, see docs/engine.md) to the compiled engine, and recompute; waits for
        the kernel if it is still loading. False if there was nothing to switch."""
        if not self.backprop.finish_loading():
            return False
        self._call = self.compiled.call
        self._fast = None                    # it holds the old call
        self.compute()
        return True

    # -- values ------------------------------------------------------------
    def compute(self) -> None:
        """Run forward and backward on the current leaf values (one compiled call)."""
        if self._call() >= 0:
            self.compiled.raise_numeric(self.arena)

    def _value(self) -> float | np.ndarray:
        """The output's value (``value`` where it is not a float64 scalar, or before
        the first ``set`` or ``grads``)."""
        if self._out >= 0:
            return self._mv[self._out]
        return self.compiled.read(self.output)

    def value_of(self, node: Node | str) -> float | np.ndarray:
        node = self.node(node)
        if node.id >= self.layout.n_nodes:
            raise NbbpError(f"node {node.name!r} was added to the graph after the model was "
                            "built; build a new model to evaluate it")
        return self.compiled.read(node)

    def grad_of(self, node: Node | str) -> float | np.ndarray:
        """∂output/∂node; zeros for nodes the output does not depend on."""
        if self.compiled.partial:
            self.compiled.complete()
        leaf = self._leaves.get(node) if isinstance(node, (str, Node)) else None
        if leaf is not None and leaf[2] >= 0:
            return self._mv[leaf[2]]
        return self.backprop.grad_of(self.node(node))

    def grad_node(self, node: Node | str) -> Node | None:
        """The graph node that holds ∂output/∂node (for drawing the backward pass)."""
        return self.backprop.grad_node(self.node(node))

    def edge_grad_node(self, dst: Node, pos: int) -> Node | None:
        """The graph node holding the contribution along edge ``dst.inputs[pos] → dst``."""
        return self.backprop.edge_grad_node(dst, pos)

    def __getitem__(self, name: str) -> NodeView:
        view = self._views.get(name) if type(name) is str else None
        if view is None:
            view = NodeView(self, self.node(name))
            if type(name) is str:
                self._views[name] = view
        return view

    @cached_property
    def _views(self) -> dict[str, NodeView]:
        """``m[name]``'s views by name, made once (a view holds no values: it reads)."""
        return {}

    @property
    def nodes(self) -> list[NodeView]:
        """Views of the forward nodes, in build order."""
        return [NodeView(self, n) for n in self.forward]

    @property
    def params(self) -> dict[str, float | np.ndarray]:
        return {n.name: self.value_of(n) for n in leaves(self.forward, "param")}

    @property
    def inputs(self) -> dict[str, float | np.ndarray]:
        return {n.name: self.value_of(n) for n in leaves(self.forward, "input")}

    def _grads(self) -> dict[str, float | np.ndarray]:
        """∂output/∂leaf for every param and input, by name (``grads``' Python path)."""
        if self.compiled.partial:
            self.compiled.complete()
        fast = self._armed().grads()        # every gradient a float64 scalar: in C
        if fast is not None:
            return fast
        mv, bp = self._mv, self.backprop
        return {n.name: mv[g] if g >= 0 else bp.grad_of(n) for n, _, g in self._leaf_slots}

    @property
    def edges(self) -> list[Edge]:
        """Every forward edge with the gradient contribution flowing along it."""
        out = []
        for n in self.forward:
            for pos, x in enumerate(n.inputs):
                gn = self.backprop.edge_grad_node(n, pos)
                grad = None if gn is None else self.compiled.read(gn)
                out.append(Edge(x.name, n.name, pos, grad))
        return out

    # -- changing leaves ----------------------------------------------------
    def _set(self, values: Mapping[str, Any] | None = None, /, **kw: Any) -> Model:
        """``set``'s Python path: what :meth:`ModelBase.set
        <nbbp.core._call.ModelBase.set>` (the contract) declined — other types, other
        leaves, a nan — or did not try: a dict and keywords together."""
        items = kw if values is None else values if not kw else {**values, **kw}
        if values is not None and kw and self._armed().set(items):   # merged, then in C
            return self
        get = self._leaves.get
        self._run(self._write([(get(k) or self._leaf_slot(k), v) for k, v in items.items()]))
        return self

    def function(self, *names: str, wrt: str | Iterable[str] | None = None) -> Function:
        """The model as a function of some of its leaves, like a jitted function:
        ``f(*values)`` sets them, runs forward and backward, and returns ``(value,
        grads)`` in one call — the same as ``m.set(...)`` then ``m.value`` and the
        gradients, with the same checks and errors, only faster. See
        :class:`Function`.

        >>> import nbbp
        >>> m = nbbp.build("x = param(3.0)\\ny = param(2.0)\\nf = x*x*y + y + 1")
        >>> f = m.function("x", "y")
        >>> f(3.0, 2.0)
        (21.0, (12.0, 10.0))
        >>> f(y=1.0, x=2.0)
        (6.0, (4.0, 5.0))
        """
        return Function(self, names, wrt)

    def __getstate__(self) -> dict:     # copies: the memoryview comes from the copy's arena
        return {k: v for k, v in self.__dict__.items() if k not in ("_mv", "_views")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._mv = self.compiled.f64

    # the call path: precomputed slots, Python floats in and out through a memoryview
    @cached_property
    def _leaf_slots(self) -> list[tuple[Node, int, int]]:
        """``(leaf, value slot, gradient slot)`` of every param and input, in build
        order (a slot is -1 where the fast path does not apply: see Compiled.slot)."""
        c, bp = self.compiled, self.backprop
        return [(n, c.slot(n), bp.grad_slot(n)) for n in leaves(self.forward)]

    def _armed(self) -> FastSet:
        """``set``'s common case — Python floats for float64 scalar leaves, by keyword —
        ``value`` and ``grads`` when every gradient is a float64 scalar, in C
        (:class:`nbbp.core._call.FastSet`, kept as ``_fast``; made on the first ``set``
        or ``grads``, not with the model: it walks the leaves); it declines anything
        else, and a nan, and the Python paths then do the work with their checks and
        errors."""
        if self._fast is None:
            e = self._leaf_slots
            slots = {n.name: o for n, o, _ in e if o >= 0}
            reads = all(g >= 0 for _, _, g in e)
            self._fast = FastSet(self._mv, slots,
                                 tuple(n.name for n, _, _ in e) if reads else None,
                                 tuple(g for _, _, g in e) if reads else None, self._call,
                                 self.compiled, self._out)
        return self._fast

    @cached_property
    def _leaves(self) -> dict[Any, tuple[Node, int, int]]:
        """The entries of :attr:`_leaf_slots` by leaf name and by node."""
        out: dict[Any, tuple[Node, int, int]] = {}
        for e in self._leaf_slots:
            out[e[0].name] = out[e[0]] = e
        return out

    def _leaf_slot(self, key: Any) -> tuple[Node, int, int]:
        """The slot entry for ``key`` that :attr:`_leaves` lacks (a node of the
        model that is not a leaf raises here, as do unknown names)."""
        node = self._leaf(key)
        return self._leaves.get(node) or (node, -1, -1)

    def _write(self, pairs: Iterable[tuple[tuple[Node, int, int], Any]]) -> list:
        """Check and write each ``(leaf slot entry, value)``; the values it replaced,
        to restore. A Python float goes straight into a float64 scalar's slot (nothing
        to check: a float is a number of the right shape; nan and inf are caught by the
        run); anything else through :func:`as_array` and the shape check. If a value
        is refused, the ones already written are restored before the error rises."""
        mv, saved = self._mv, []
        try:
            for e, v in pairs:
                o = e[1]
                if o >= 0 and type(v) is float:
                    saved.append((e, mv[o]))
                    mv[o] = v
                    continue
                node = e[0]
                arr = self._feed_value(node, v, "set")
                saved.append(((node, -1, -1), self.compiled.read(node)))
                self.compiled.set(node, arr)
        except BaseException:
            self._restore(saved)
            raise
        return saved

    def _restore(self, saved: list) -> None:
        for (node, o, _), old in reversed(saved):
            if o >= 0:
                self._mv[o] = old
            else:
                self.compiled.set(node, old)

    def _run(self, saved: list) -> None:
        """Compute on the values just written; on nan or inf, restore ``saved``,
        recompute, and raise the NumericError that names the node."""
        self.compiled.partial = False     # this run computes everything
        try:
            self.compute()
        except NumericError:
            self._restore(saved)
            self._call()
            raise

    def run(self, fetches: Any, feed: Mapping[Any, Any] | None = None) -> Any:
        """Evaluate ``fetches`` (a node or name, or a list/tuple/dict of them) with the
        nodes in ``feed`` replaced by the given values. Only the part of the graph the
        fetches need is computed; the model's own values are not changed.

        >>> import nbbp
        >>> m = nbbp.build("x = input(1.0)\\ny = param(2.0)\\nf = x * y")
        >>> m.run("f", feed={"x": 5.0})
        10.0
        """
        nodes, pack = _flatten(fetches, self.node)
        fed = {self.node(k): v for k, v in (feed or {}).items()}
        fed = {n: self._feed_value(n, v, "feed") for n, v in fed.items()}
        return pack(self.backprop.evaluate(nodes, fed))

    # -- training ----------------------------------------------------------
    @property
    def history(self):
        """The loss at every step of every ``fit`` so far (kept by :mod:`nbbp.train`)."""
        return _training.history(self)

    def fit(self, steps: int = 100, optimizer: Any = None, lr: float | None = None,
            batch_size: int | None = None, feed: Mapping[Any, Any] | None = None,
            seed: int = 0, progress: bool = True, metrics: Any = None,
            every: int | None = None):
        r"""Train the params to lower the output (a scalar loss), in compiled code.

        Parameters
        ----------
        steps
            Number of optimizer steps.
        optimizer
            An :mod:`nbbp.optim` optimizer, or a name: ``"sgd"``, ``"momentum"``,
            ``"adagrad"``, ``"rmsprop"``, ``"adam"``. Passing the same optimizer
            object again continues with its state (momentum, Adam's moments).
        lr
            Learning rate, when the optimizer is given by name.
        batch_size
            Rows per minibatch (shuffled each epoch, seeded by ``seed``); ``None``
            trains on all rows at every step.
        feed
            Training data for inputs, ``{name: array}``, instead of their defaults.
        progress
            Show a progress bar with the loss.
        metrics, every
            ``"accuracy"``, a list of names, or ``{name: function(model) -> float}``,
            measured every ``every`` steps (default: 20 times a fit) into
            ``history.metrics[name]`` as ``(step, value)`` pairs.

        Returns
        -------
        History
            ``m.history``: the loss at every step of every ``fit`` so far.

        Examples
        --------
        >>> import nbbp
        >>> m = nbbp.build("w = param(0.0)\nloss = (w - 3.0)**2")
        >>> m.fit(steps=100, optimizer="sgd", lr=0.1, progress=False)
        History(steps=100, loss 9 → 5.83526e-19)
        >>> round(m["w"].value, 6)
        3.0
        """
        return fit(self, steps, optimizer, lr, batch_size, feed, seed, progress, metrics,
                   every)

    def train_loop(self, optimizer: Any = None, lr: float | None = None,
                   batch_size: int | None = None, feed: Mapping[Any, Any] | None = None,
                   seed: int = 0):
        """A :class:`nbbp.train.TrainLoop` for stepping training by hand:
        ``loop.run(steps)`` trains in compiled code, ``loop.sync()`` updates the model."""
        return TrainLoop(self, _optim.get(optimizer, lr), batch_size, feed, seed)

    def set_mode(self, mode: str) -> Model:
        """``"train"`` or ``"eval"`` (the default): the mode dropout and batch_norm
        compute in — the graph's ``training`` flag — for the values, gradients and
        picture. ``fit`` always trains in train mode and ``predict`` always predicts in
        eval mode. Returns the model."""
        if mode not in ("train", "eval"):
            raise NbbpError(f"set_mode: the mode is 'train' or 'eval', got {mode!r}")
        flag = _mode_flag(self.graph)
        if flag is not None and flag.id < self.layout.n_nodes:
            self.set({flag.name: mode == "train"})
        return self

    def predict(self, x: Any, node: Any = None) -> np.ndarray:
        """The prediction node's value for new data ``x`` (any number of rows); the
        node is ``node`` or the one named ``pred``, ``logits``, ``s``, ``out``, …"""
        return predict(self, x, node)

    def plot_loss(self, **kw: Any):
        """Matplotlib figure of the loss at every training step."""
        from .view.plots import plot_loss
        return plot_loss(self, **kw)

    def plot_boundary(self, X: Any = None, y: Any = None, node: Any = None, **kw: Any):
        """Matplotlib figure of a 2-D classifier's decision regions and its data."""
        from .view.plots import plot_boundary
        return plot_boundary(self, X, y, node, **kw)

    # -- widgets (nbbp.widgets, imported when used) -------------------------
    def sliders(self, *names: Any, **ranges: Any):
        """Sliders over a live picture, with step-through backprop (nbbp.widgets.sliders)."""
        from .widgets import sliders
        return sliders(self, *names, **ranges)

    def trainer(self, *args: Any, **kw: Any):
        """A training panel: Step / Train N / Pause / Reset, loss curve (nbbp.widgets.trainer)."""
        from .widgets import trainer
        return trainer(self, *args, **kw)

    # -- the picture (nbbp.view.render, imported when used) ----------------------
    def to_dot(self, **opts: Any) -> str:
        """The picture as DOT text; options as in ``%%bpgraph`` (docs/bpgraph.md)."""
        from .view import render
        return render.to_dot(self, **opts)

    def svg(self, **opts: Any) -> str:
        """The picture as SVG text (raises ``RenderError`` if no Graphviz renderer works)."""
        from .view import render
        return render.svg(self, **opts)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        from .view import render
        return render.mimebundle(self, include, exclude)

    def save(self, path, **opts: Any) -> None:
        """Save the picture (``.svg``, ``.png``, ``.dot``) or, for any other suffix, the
        model: graph and current values in one ``.nbbp`` file (see :mod:`nbbp.files`) that
        ``nbbp.load(path)`` reads back without running any code."""
        if str(path).lower().endswith((".svg", ".png", ".dot")):
            from .view import render
            render.save(self, path, **opts)
            return
        from .files import write
        write(path, self.output, self.value_of, self.name, self.engine, self.source)

    # -- helpers -----------------------------------------------------------
    def node(self, key: Node | str | NodeView) -> Node:
        """The model's node for ``key`` (a name, a node or a view), or a FeedError that
        names the model and suggests the nearest names."""
        if isinstance(key, NodeView):
            key = key.node
        if isinstance(key, Node):
            if key.graph is not self.graph:
                raise FeedError(f"node {key.name!r} belongs to another graph than model "
                                f"{self.name!r}")
            if key.id >= self.layout.n_nodes:
                raise FeedError(f"node {key.name!r} was added after model {self.name!r} "
                                "was built; build a new model")
            return key
        if not isinstance(key, str):
            raise FeedError(f"nodes are named by strings, got {type(key).__name__} {key!r}")
        if key not in self.graph.by_name:
            names = [n.name for n in self.forward]
            raise FeedError(f"model {self.name!r} has no node named {key!r}; "
                            + suggest(key, names, "node name"))
        return self.graph.by_name[key]

    def _leaf(self, key: str) -> Node:
        node = self.node(key)
        if node.op not in ("param", "input"):
            names = [n.name for n in leaves(self.forward)]
            raise FeedError(f"cannot set {node.name!r}: it is a {node.op} node, computed from "
                            "its inputs (or a constant); set one of the params or inputs: "
                            + ", ".join(names))
        return node

    @staticmethod
    def _feed_value(node: Node, value: Any, verb: str) -> np.ndarray:
        arr = as_array(node, value, verb)
        if arr.shape != node.shape:
            raise FeedError(f"{verb} {node.name!r}: the value has shape {arr.shape}, but "
                            f"{node.name!r} has shape {node.shape}; a model's shapes are "
                            "fixed when it is built — rebuild it for new shapes")
        return arr

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={_fmt(v)}" for k, v in list(self.grads.items())[:6])
        more = "" if len(self.grads) <= 6 else ", …"
        return (f"<Model {self.name!r}: value={_fmt(self.value)}, grads {{{parts}{more}}}, "
                f"{len(self.forward)} nodes, engine={self.engine}>")


class Function(FastCall):
    """A model called like a function (``m.function(*names, wrt=...)``).

    ``f(*values, **named)`` takes a value for each of ``names`` (the leaves it sets; by
    default every param and input of the model, in build order), by position or by
    name, writes them into the model, runs forward and backward once, and returns
    ``(value, grads)``: the output's value and the gradients of ``wrt`` — a tuple in
    ``wrt``'s order, or one gradient when ``wrt`` is one name (default: ``names``).

    It is ``m.set(...)`` followed by ``m.value`` and ``m.grad_of(...)``: the model
    keeps the new values (its picture and ``m.value`` show the last call), every value
    is checked as ``set`` checks it, with the same errors, and a nan or inf restores the
    previous values and raises :class:`~nbbp.errors.NumericError`. Results are fresh
    objects (Python floats, or copies of arrays), never views that the next call
    overwrites. Python floats for float64 scalar leaves, with scalar gradients, take the
    fast path, in C (:class:`nbbp.core._call.FastCall`: a type check and a slot write
    each, the kernel, the reads); NumPy arrays of each leaf's float dtype and shape are
    copied straight into the model and the gradients straight out; other values go
    through ``set``'s conversion.
    A ``wrt`` that leaves out part of the backward pass (a network's params, not its
    input) runs only the part it needs; the model completes the rest before anything
    reads it.

    >>> import nbbp
    >>> m = nbbp.build("x = param(3.0)\\ny = param(2.0)\\nf = x*x*y + y + 1")
    >>> f = m.function("x", wrt="x")
    >>> f(3.0), f(x=1.0)
    ((21.0, 12.0), (5.0, 4.0))
    >>> m.value                # the model keeps the last call's values
    5.0
    """

    def __init__(self, model: Model, names: Iterable[str], wrt: Any = None) -> None:
        self.model = model
        model.finish_loading()       # a first cell's stand-in: the function runs compiled
        entries = ([model._leaf_slot(k) for k in names] if names
                   else list(model._leaf_slots))
        self.names = tuple(e[0].name for e in entries)
        self._label = f"model {model.name!r} as a function of ({', '.join(self.names)})"
        dup = next((k for i, k in enumerate(self.names) if k in self.names[:i]), None)
        if dup is not None:
            raise FeedError(f"function(...): {dup!r} is named twice; name each leaf once")
        self._entries = entries
        self._n = len(entries)
        offs = [e[1] for e in entries]
        # the model's hot-path attributes, one attribute away (they never change)
        self._mv, self._kernel, self._out = model._mv, model._call, model._out
        self._pick = (itemgetter(*self.names) if len(self.names) > 1
                      else lambda d: (d[self.names[0]],))
        self.single = isinstance(wrt, str)
        if wrt is None:
            grads = entries
        else:
            nodes = [model.node(k) for k in ([wrt] if self.single else wrt)]
            grads = [model._leaves.get(n) or (n, -1, model.backprop.grad_slot(n))
                     for n in nodes]
        self.wrt = tuple(e[0].name for e in grads)
        self._wrt_nodes = [e[0] for e in grads]
        slots = [e[2] for e in grads]
        # all gradients fast: one C-level itemgetter reads them (a tuple for 2+ slots)
        self._read = (itemgetter(*slots) if slots and min(slots) >= 0
                      and (self.single or len(slots) > 1) else None)
        self._pruned = wrt is not None and self._prune()
        self._views, self._gviews = self._array_views()
        self._args = (tuple(names), wrt)     # to rebuild it (pickle, copy)
        if offs and slots and min(offs) >= 0 and min(slots) >= 0 and self._out >= 0:
            # every argument and gradient a float64 scalar: the common call in C
            self._arm(self._mv, tuple(offs), self.names, self._out, tuple(slots),
                      self.single, self._kernel, model.compiled if self._pruned else None)

    def __reduce__(self):
        return Function, (self.model, *self._args)

    def _array_views(self) -> tuple[list[np.ndarray] | None, list[np.ndarray] | None]:
        """For the common array call — every argument an ndarray of its leaf's float
        dtype and shape, a network's params — the leaves' views onto the arena (what
        ``set`` would check and write comes down to one copy in, the old values one
        copy out), and the gradients' views when each is an array of its node's dtype
        that the program writes (what ``grad_of`` would read comes down to one copy
        out). None where that does not hold."""
        m = self.model
        lay, arena, c = m.layout, m.arena, m.compiled
        leaves = [e[0] for e in self._entries]
        views = ([lay.view(arena, n) for n in leaves] if leaves and all(
            n.dtype in ("float64", "float32") and n.shape != () for n in leaves) else None)
        if views is not None and any(v.dtype != n.dtype for v, n in zip(views, leaves)):
            views = None                 # stored in another class: set's conversion
        gs = [m.backprop.grads.total.get(n.id) for n in self._wrt_nodes]
        ok = gs and all(g is not None and g.dtype == n.dtype and n.shape != ()
                        for g, n in zip(gs, self._wrt_nodes)) and not c.missing(gs)
        return views, [lay.view(arena, g) for g in gs] if ok else None

    def _prune(self) -> bool:
        """With ``wrt`` naming some nodes only, run the part of the backward pass their
        gradients need (the params' gradients of a network, not ∂loss/∂input nor every
        edge of the picture), as ``jax.grad`` does: a program of its own on the model's
        arena. The model's other gradients are then out of date; the model knows
        (``compiled.partial``) and completes them before anything reads them."""
        m = self.model
        grads = [g for g in map(m.backprop.grad_node, self._wrt_nodes) if g is not None]
        fetch = list(dict.fromkeys([m.output, *grads]))
        watched = set(m.compiled.watch)
        sub = Compiled.fetching(fetch, engine=m.engine, layout=m.layout, arena=m.arena,
                                source=m.source, watch=[n for n in fetch if n in watched])
        if sub.program.n >= m.compiled.program.n:
            return False
        self._kernel = sub.call
        return True

    def _generic(self, *args: Any, **named: Any) -> tuple[Any, Any]:
        """Every call the C fast path does not take (see :class:`FastCall`)."""
        if named:                        # by name: every name once, nothing positional
            try:
                if args or len(named) != self._n:
                    raise KeyError
                args = self._pick(named)
            except KeyError:
                args = self._bind(args, named)
        elif len(args) != self._n:
            args = self._bind(args, named)
        views = self._views
        if views is not None and all(type(a) is np.ndarray and a.dtype == v.dtype
                                     and a.shape == v.shape for a, v in zip(args, views)):
            saved = [(e, v.copy()) for e, v in zip(self._entries, views)]   # set's result,
            for v, a in zip(views, args):                                 # without its
                np.copyto(v, a)                                           # conversions
        else:
            saved = self.model._write(zip(self._entries, args))
        if self._kernel() >= 0:          # nan or inf: the model's run names the node
            self.model._run(saved)       # and puts the old values back
        return self._results()

    def _nan(self, old: tuple) -> tuple[Any, Any]:
        """The run on the values just written hit a nan or inf: run again to name the
        node, restore ``old`` and raise (see ``Model._run``)."""
        self.model._run(list(zip(self._entries, old)))
        return self._results()

    def _results(self) -> tuple[Any, Any]:
        """The value and the gradients just computed (a pruned run computed them: they
        are read as they are, and the model is told the rest is out of date)."""
        compiled, mv, out = self.model.compiled, self._mv, self._out
        compiled.partial = False
        value = mv[out] if out >= 0 else self.model.value
        if self._read is not None:
            grads = self._read(mv)
        else:
            grads = (tuple(v.copy() for v in self._gviews) if self._gviews is not None
                     else tuple(self.model.grad_of(n) for n in self._wrt_nodes))
            grads = grads[0] if self.single else grads
        compiled.partial = self._pruned
        return value, grads

    def _bind(self, args: tuple, named: dict) -> tuple:
        """The values in ``names`` order from positions and keywords, or a FeedError
        saying which are missing, unknown or given twice."""
        if len(args) > self._n:
            raise FeedError(f"{self._label} takes {self._n} value{'s' if self._n != 1 else ''} "
                            f"({', '.join(self.names)}), got {len(args)}")
        values = dict(zip(self.names, args))
        for k, v in named.items():
            if k not in self.names:
                raise FeedError(f"{self._label} has no argument {k!r}; "
                                + suggest(k, self.names, "argument"))
            if k in values:
                raise FeedError(f"{self._label} got two values for {k!r}")
            values[k] = v
        missing = [k for k in self.names if k not in values]
        if missing:
            raise FeedError(f"{self._label} needs a value for {', '.join(map(repr, missing))} "
                            "(a function takes every one of its arguments; "
                            "m.set(...) changes some leaves only)")
        return tuple(values[k] for k in self.names)

    def __repr__(self) -> str:
        wrt = repr(self.wrt[0]) if self.single else f"({', '.join(self.wrt)})"
        return f"<function of {self.model.name!r}({', '.join(self.names)}), wrt={wrt}>"


def _flatten(fetches: Any, resolve) -> tuple[list[Node], Any]:
    if isinstance(fetches, Mapping):
        keys = list(fetches)
        nodes = [resolve(fetches[k]) for k in keys]
        return nodes, lambda vals: dict(zip(keys, vals))
    if isinstance(fetches, (list, tuple)):
        nodes = [resolve(f) for f in fetches]
        kind = type(fetches)
        return nodes, lambda vals: kind(vals)
    return [resolve(fetches)], lambda vals: vals[0]
