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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .core.compiled import Backprop, as_array
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


class Model:
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
        self.compute()

    # -- values ------------------------------------------------------------
    def compute(self) -> None:
        """Run forward and backward on the current leaf values (one compiled call)."""
        if self._call() >= 0:
            self.compiled.raise_numeric(self.arena)

    @property
    def value(self) -> float | np.ndarray:
        """The output's value."""
        return self.compiled.read(self.output)

    def value_of(self, node: Node | str) -> float | np.ndarray:
        node = self.node(node)
        if node.id >= self.layout.n_nodes:
            raise NbbpError(f"node {node.name!r} was added to the graph after the model was "
                            "built; build a new model to evaluate it")
        return self.compiled.read(node)

    def grad_of(self, node: Node | str) -> float | np.ndarray:
        """∂output/∂node; zeros for nodes the output does not depend on."""
        return self.backprop.grad_of(self.node(node))

    def grad_node(self, node: Node | str) -> Node | None:
        """The graph node that holds ∂output/∂node (for drawing the backward pass)."""
        return self.backprop.grad_node(self.node(node))

    def edge_grad_node(self, dst: Node, pos: int) -> Node | None:
        """The graph node holding the contribution along edge ``dst.inputs[pos] → dst``."""
        return self.backprop.edge_grad_node(dst, pos)

    def __getitem__(self, name: str) -> NodeView:
        return NodeView(self, self.node(name))

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

    @property
    def grads(self) -> dict[str, float | np.ndarray]:
        """∂output/∂leaf for every param and input, by name."""
        return {n.name: self.grad_of(n) for n in leaves(self.forward)}

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
    def set(self, values: Mapping[str, Any] | None = None, /, **kw: Any) -> Model:
        """Give leaves new values, then recompute values and gradients.

        Keyword names or a dict (needed for scoped names like ``"hidden/W1"``). If
        the new values produce a nan or inf, the old values are restored and a
        :class:`NumericError` names the node. Returns the model.
        """
        items = {**(values or {}), **kw}
        checked = [(n, self._feed_value(n, v, "set")) for n, v in
                   ((self._leaf(k), v) for k, v in items.items())]
        saved = [(n, self.compiled.read(n)) for n, _ in checked]
        for n, v in checked:
            self.compiled.set(n, v)
        try:
            self.compute()
        except NumericError:
            for n, v in saved:
                self.compiled.set(n, v)
            self._call()
            raise
        return self

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
