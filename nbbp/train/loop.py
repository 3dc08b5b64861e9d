"""Training: the loop (forward, backward, optimizer update) inside compiled code.

:class:`TrainLoop` lowers a model's loss and parameter gradients plus one update
instruction per parameter into a single program, and
:func:`nbbp.core.kernels.train` runs many steps of it per call. Python gets control
back between chunks of steps (about ten times a second) to report progress, so
interrupting the kernel stops at a chunk boundary with the parameters of the last
completed step.

Minibatches and new input shapes work on a copy of the graph whose data inputs
have the new number of rows (shapes are static in nbbp); the trained parameters
are copied back into the model by name.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import ops
from ..core.compiled import Compiled
from ..core.engine import ALIGN, kernel, lower, make_program
from ..core.graph import Graph, Node, leaves
from ..errors import BuildError, FeedError, NbbpError, NumericError
from ..model import Model, as_array
from . import optim


@dataclass
class History:
    """The loss at every training step (across ``fit`` calls) and what stopped it."""

    loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def steps(self) -> int:
        return len(self.loss)

    def __repr__(self) -> str:
        if not self.loss:
            return "History(no steps yet)"
        tail = "".join(f", {k} {v[-1][1]:.4g}" for k, v in self.metrics.items() if v)
        tail += ", interrupted" if self.interrupted else ""
        return f"History(steps={self.steps}, loss {self.loss[0]:.6g} → {self.loss[-1]:.6g}{tail})"


def clone(outputs: list[Node], shapes: Mapping[Node, tuple[int, ...]]) -> dict[int, Node]:
    """Copy the part of the graph ``outputs`` need into a new graph, giving the nodes
    in ``shapes`` new shapes (shape rules run again). Returns old id → new node."""
    old = outputs[0].graph
    g = Graph(old.name)
    new: dict[int, Node] = {}
    for n in old.ancestors(outputs):
        if n.is_leaf:
            value = n.value
            if n in shapes:
                value = np.zeros(shapes[n])
            node = g.add_node(n.op, shape=value.shape, value=value, role=n.role,
                              trainable=n.trainable, exact_name=n.name)
        else:
            inputs = tuple(new[x.id] for x in n.inputs)
            op = ops.OPS[n.op]
            attrs = dict(n.attrs)
            try:
                shape = ops._SHAPE_RULES[op.kind](op, inputs, attrs)
            except NbbpError as exc:
                changed = ", ".join(f"{k.name!r} to {v}" for k, v in shapes.items())
                raise BuildError(f"changing the shape of {changed} breaks node {n.name!r}: "
                                 f"{exc.message}") from None
            node = g.add_node(n.op, inputs, attrs, shape, role=n.role, exact_name=n.name)
        node.line = n.line
        new[n.id] = node
    return new


class TrainLoop:
    """A compiled training loop for one model, optimizer and data feed.

    ``run(steps)`` trains in compiled code and keeps the state in the loop;
    ``sync()`` copies the parameters back into the model and recomputes it.
    """

    def __init__(self, model, optimizer: optim.Optimizer, batch_size: int | None = None,
                 feed: Mapping[Any, Any] | None = None, seed: int = 0) -> None:
        if model.output.shape != ():
            raise NbbpError(f"training needs a scalar loss; {model.output.name!r} has shape "
                            f"{model.output.shape}: end the model with mean(...) or sum(...)")
        self.model, self.optimizer, self.batch_size = model, optimizer, batch_size
        self.seed, self.rng = seed, np.random.default_rng(seed)
        data = self._data(model, feed)
        self.n_rows = self._rows(data, batch_size)
        shapes = {n: ((batch_size,) + v.shape[1:] if batch_size else v.shape)
                  for n, v in data.items()}
        shapes = {n: s for n, s in shapes.items() if s != n.shape}
        if shapes:
            mapping = clone([model.output], shapes)
            self.tmodel = Model(mapping[model.output.id], engine=model.engine,
                                source=model.source, name=model.name)
        else:
            mapping = {n.id: n for n in model.forward}
            self.tmodel = model
        tm = self.tmodel
        for n in model.forward:          # start from the model's current values
            t = mapping.get(n.id)
            if n.op in ("param", "input") and t is not None and t.shape == n.shape:
                tm.layout.write(tm.arena, t, model.value_of(n))
        self.data = {mapping[n.id]: v for n, v in data.items()}
        self.params = [(n, mapping[n.id]) for n in model.forward
                       if n.op == "param" and n.trainable and model.grad_node(n) is not None]
        if not self.params:
            raise NbbpError(f"model {model.name!r} has no trainable params that its loss "
                            "depends on; make weights with param(...)")
        self._build()
        self.history: list[float] = []

    # -- setting up ------------------------------------------------------------
    @staticmethod
    def _data(model, feed) -> dict[Node, np.ndarray]:
        data = {n: np.asarray(model.value_of(n)) for n in leaves(model.forward, "input")}
        for key, value in (feed or {}).items():
            node = model._node(key)
            if node.op != "input":
                raise FeedError(f"feed {node.name!r}: only inputs are fed in training; "
                                f"{node.name!r} is a {node.op} node")
            arr = as_array(node, value, "feed")
            if arr.shape[1:] != node.shape[1:] or arr.ndim != node.ndim:
                raise FeedError(f"feed {node.name!r}: the data has shape {arr.shape}, but "
                                f"{node.name!r} takes rows of shape {node.shape[1:]} "
                                f"(shape {node.shape})")
            data[node] = arr
        return data

    @staticmethod
    def _rows(data: dict[Node, np.ndarray], batch_size: int | None) -> int:
        rows = {n.name: v.shape[0] for n, v in data.items() if v.ndim}
        if batch_size is None:
            return 0
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise NbbpError(f"batch_size must be a whole number ≥ 1, got {batch_size!r}")
        if not rows:
            raise NbbpError("batch_size needs inputs with rows (one row per example); "
                            "this model has none")
        if len(set(rows.values())) != 1:
            raise FeedError("batch_size needs every input to have the same number of rows, "
                            f"got {rows}")
        n = next(iter(rows.values()))
        if batch_size > n:
            raise NbbpError(f"batch_size={batch_size} is larger than the data ({n} rows)")
        return n

    def _build(self) -> None:
        tm, opt = self.tmodel, self.optimizer
        lay = tm.layout
        loss = tm.output
        grads = [tm.grad_node(t) for _, t in self.params]
        todo = [n for n in tm.graph.ancestors([loss] + grads) if not n.is_leaf]
        # arena: the model's, then the hyperparameters, the optimizer state, the data
        pos = -(-lay.size // ALIGN) * ALIGN
        self.h_at = pos
        pos += optim.N_HYPER
        updates: list[list[int]] = [[optim.TICK, self.h_at, 0, 0, 0, 0, 0, 0]]
        self.state_at: list[int] = []
        for _, t in self.params:
            pos = -(-pos // ALIGN) * ALIGN
            self.state_at.append(pos)
            updates.append([opt.code, lay.offsets[t.id], lay.offsets[tm.grad_node(t).id],
                            pos, self.h_at, 0, 0, t.size])
            pos += max(opt.n_state, 2) * t.size
        self.size = pos
        self.arena = np.zeros(self.size)
        self.arena[:lay.size] = tm.arena
        self.arena[self.h_at:self.h_at + optim.N_HYPER] = opt.hyper()
        if isinstance(opt, optim.Adagrad) and opt.initial_accumulator:
            for (_, t), s in zip(self.params, self.state_at):
                self.arena[s:s + t.size] = opt.initial_accumulator
        self.code, nodes = lower(lay, todo, keep=[loss] + grads, watch=[loss], extra=updates)
        self.n_fb = len(nodes)
        self.n_all = self.n_fb + len(updates)
        self.loss_at = int(lay.offsets[loss.id])
        # minibatches: the full data lives in its own array, rows are copied in
        if self.batch_size:
            parts, spec = [], [len(self.data), self.batch_size]
            at = 0
            for node, arr in self.data.items():
                row = int(np.prod(arr.shape[1:], dtype=np.int64))
                spec += [at, int(lay.offsets[node.id]), row]
                parts.append(arr.reshape(-1))
                at += arr.size
            self.full = np.concatenate(parts)
            self.batches = np.asarray(spec, dtype=np.int64)
        else:
            for node, arr in self.data.items():
                lay.write(self.arena, node, arr)
            self.full = np.zeros(1)
            self.batches = np.zeros(2, dtype=np.int64)
        self._order = np.zeros(0, dtype=np.int64)
        if tm.engine == "numba":
            self._train = kernel("train")
        else:
            self._train = None
            self._reference = make_program(lay, todo, "python")

    def _rows_for(self, steps: int) -> np.ndarray:
        """Row indices of the next ``steps`` minibatches: shuffled epochs, seeded."""
        if not self.batch_size:
            return np.zeros(1, dtype=np.int64)
        need = steps * self.batch_size
        while self._order.size < need:
            self._order = np.concatenate([self._order, self.rng.permutation(self.n_rows)])
        rows, self._order = self._order[:need], self._order[need:]
        return np.ascontiguousarray(rows, dtype=np.int64)

    # -- running ---------------------------------------------------------------
    def run(self, steps: int) -> None:
        """Train ``steps`` steps (one compiled call); the model is not updated until
        :meth:`sync`. Raises NumericError if the loss becomes nan or inf."""
        hist = np.empty(steps)
        rows = self._rows_for(steps)
        if self._train is not None:
            bad = self._train(self.code, self.arena, self.n_fb, self.n_all, steps,
                              self.loss_at, hist, self.full, self.batches, rows)
        else:
            bad = self._run_python(steps, hist, rows)
        done = steps if bad < 0 else bad
        self.history.extend(hist[:done].tolist())
        if bad >= 0:
            self._diagnose(len(self.history))

    def _run_python(self, steps: int, hist: np.ndarray, rows: np.ndarray) -> int:
        """The reference loop: the NumPy path and ``Optimizer.step_numpy``."""
        tm, lay, opt = self.tmodel, self.tmodel.layout, self.optimizer
        view = self.arena[:lay.size]
        prog = self._reference
        t0 = int(self.arena[self.h_at + optim.H_T])
        for s in range(steps):
            if self.batch_size:
                r = rows[s * self.batch_size:(s + 1) * self.batch_size]
                for node, arr in self.data.items():
                    lay.write(view, node, arr[r])
            prog(view, check=False)
            hist[s] = loss = view[self.loss_at]
            if not np.isfinite(loss):
                return s
            t = t0 + s + 1
            self.arena[self.h_at + optim.H_T] = t
            for (_, p), at in zip(self.params, self.state_at):
                state = [self.arena[at + k * p.size:at + (k + 1) * p.size].reshape(p.shape)
                         for k in range(2)]
                new = opt.step_numpy(lay.view(view, p), lay.view(view, tm.grad_node(p)),
                                     state, t)
                lay.write(view, p, new)
        return -1

    def _diagnose(self, step: int) -> None:
        tm = self.tmodel
        arena = self.arena[:tm.layout.size].copy()
        check = Compiled.fetching([tm.output], engine=tm.engine, layout=tm.layout,
                                  arena=arena, source=tm.source)
        check.program(arena, check=True)
        try:
            check.raise_numeric(arena)
        except NumericError as exc:
            raise NumericError(f"training stopped at step {step}, before its update: "
                               f"{exc.message}", node=exc.node, line=exc.line, col=exc.col,
                               source_line=exc.source_line) from None
        raise NumericError(f"training stopped at step {step}: the loss is not finite")

    def sync(self) -> None:
        """Copy the trained parameters into the model and recompute its values."""
        m, tm = self.model, self.tmodel
        for n, t in self.params:
            m.layout.write(m.arena, n, tm.layout.view(self.arena, t))
        try:
            m.compute()
        except NumericError:
            pass    # training reports its own nan; the model shows the values as they are

    def value_of(self, name: str) -> float | np.ndarray:
        """A node's current value inside the loop (before :meth:`sync`)."""
        return self.tmodel.layout.read(self.arena, self.tmodel.graph[name])

    @property
    def last_loss(self) -> float:
        return self.history[-1] if self.history else float("nan")


def fit(model, steps: int = 100, optimizer: optim.Optimizer | str | None = None,
        lr: float | None = None, batch_size: int | None = None,
        feed: Mapping[Any, Any] | None = None, seed: int = 0, progress: bool = True,
        metrics: Mapping[str, Any] | None = None, every: int | None = None) -> History:
    """Train the model's params to lower its (scalar) output; see :meth:`Model.fit`."""
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise NbbpError(f"fit(steps=...) needs a whole number ≥ 1, got {steps!r}")
    opt = optim.get(optimizer, lr)
    loop = model._loop
    same = (loop is not None and loop.optimizer is opt and loop.batch_size == batch_size
            and loop.seed == seed)
    if not same or feed:                 # the same optimizer object goes on with its state
        loop = model._loop = TrainLoop(model, opt, batch_size, feed, seed)
    metrics = _metrics(model, metrics)
    every = every or max(1, steps // 20)
    history = model.history
    start = len(loop.history)
    bar = _progress_bar(steps, model.name) if progress else None
    done, chunk = 0, 1
    try:
        while done < steps:
            n = min(chunk, steps - done)
            if metrics:                     # stop at multiples of `every` to measure
                n = min(n, every - (done % every))
            t = time.perf_counter()
            loop.run(n)
            done += n
            # about ten chunks a second: progress stays live, Ctrl-C answers fast
            chunk = int(min(max(1, n * 0.1 / max(time.perf_counter() - t, 1e-9)), 10**6))
            if metrics and (done % every == 0 or done == steps):
                loop.sync()
                for name, fn in metrics.items():
                    history.metrics.setdefault(name, []).append(
                        (len(history.loss) + done, float(fn(model))))
            if bar is not None:
                bar.update(n)
                bar.set_postfix(loss=f"{loop.last_loss:.4g}", refresh=False)
    except KeyboardInterrupt:
        history.interrupted = True
        print(f"nbbp: training interrupted after {len(loop.history) - start} steps; the "
              "parameters are those of the last completed step.", file=sys.stderr)
    finally:
        history.loss.extend(loop.history[start:])
        if bar is not None:
            bar.close()
        loop.sync()
    return history


def accuracy(model, node: Any = None, labels: Any = None) -> float:
    """Fraction of rows classified right: the prediction node against the label input
    (``y`` by default). One column: score > 0 (or > 0.5 for values in [0, 1]) against
    label > 0.5 (labels 0/1) or > 0 (labels ±1); several columns: argmax against argmax."""
    pred = np.asarray(model.value_of(prediction_node(model, node)))
    if labels is None:
        names = [n for n in leaves(model.forward, "input")
                 if n.name.rsplit("/", 1)[-1] in ("y", "labels", "target", "t")]
        if not names:
            raise NbbpError("accuracy needs the labels: name the label input `y` or pass "
                            "labels=...")
        labels = model.value_of(names[0])
    y = np.asarray(labels, dtype=float).reshape(len(pred), -1)
    p = pred.reshape(len(pred), -1)
    if p.shape[1] > 1:
        return float(np.mean(p.argmax(axis=1) == y.argmax(axis=1)))
    cut = 0.5 if p.min() >= 0 and p.max() <= 1 else 0.0
    ycut = 0.0 if y.min() < 0 else 0.5
    return float(np.mean((p[:, 0] > cut) == (y[:, 0] > ycut)))


def _metrics(model, metrics) -> dict[str, Any]:
    if not metrics:
        return {}
    if isinstance(metrics, str) or not isinstance(metrics, Mapping):
        metrics = {m: m for m in ([metrics] if isinstance(metrics, str) else metrics)}
    out = {}
    for name, fn in metrics.items():
        if fn == "accuracy":
            fn = accuracy
        if not callable(fn):
            raise NbbpError(f"metric {name!r} must be 'accuracy' or a function of the "
                            f"model, got {fn!r}")
        out[name] = fn
    return out


def _progress_bar(total: int, name: str):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=f"fit {name}", unit="step", leave=True)


PREDICTION_NAMES = ("pred", "prediction", "y_hat", "yhat", "logits", "scores", "score",
                    "out", "output", "s", "o")


def prediction_node(model, node: Any = None) -> Node:
    """The node ``predict`` evaluates: ``node``, or one named like a prediction."""
    if node is not None:
        return model._node(node)
    for name in PREDICTION_NAMES:
        for n in model.forward:
            if n.name.rsplit("/", 1)[-1] == name and not n.is_leaf:
                return n
    rows = [n.name for n in model.forward if not n.is_leaf and n.ndim >= 1
            and n is not model.output]
    raise NbbpError("predict needs to know which node is the prediction: pass node=..., e.g. "
                    + ", ".join(repr(r) for r in rows[-4:]) + " (or name it `pred`)")


def predict(model, x: Any, node: Any = None) -> np.ndarray:
    """Evaluate the prediction node for new data: ``x`` is an array for the model's
    data input (or a dict ``{input name: array}``); any number of rows."""
    target = prediction_node(model, node)
    inputs = leaves(model.graph.ancestors([target]), "input")
    if isinstance(x, Mapping):
        feed = {model._node(k): as_array(model._node(k), v, "predict") for k, v in x.items()}
    else:
        if not inputs:
            raise NbbpError(f"node {target.name!r} depends on no input to feed")
        if len(inputs) > 1:
            raise NbbpError(f"node {target.name!r} depends on several inputs ("
                            + ", ".join(n.name for n in inputs)
                            + "); pass x as a dict {name: array}")
        feed = {inputs[0]: as_array(inputs[0], x, "predict")}
    for n, v in feed.items():
        if v.ndim != n.ndim or v.shape[1:] != n.shape[1:]:
            raise FeedError(f"predict: {n.name!r} takes rows of shape {n.shape[1:]}, got data "
                            f"of shape {v.shape}")
    shapes = {n: v.shape for n, v in feed.items() if v.shape != n.shape}
    if not shapes:
        return np.asarray(model.run(target, feed))
    key = ("predict", target.id, tuple(sorted((n.id, s) for n, s in shapes.items())))
    cached = model._subprograms.get(key)
    if cached is None:
        from ..core.engine import Layout
        mapping = clone([target], shapes)
        layout = Layout(mapping[target.id].graph)
        nodes = [n for n in layout.graph.nodes if not n.is_leaf]
        prog = make_program(layout, nodes, model.engine, keep=[mapping[target.id]])
        cached = model._subprograms[key] = (mapping, layout, prog)
    mapping, layout, prog = cached
    arena = layout.new_arena()
    for n in model.graph.ancestors([target]):
        if n.is_leaf:
            value = feed[n] if n in feed else model.value_of(n)
            layout.write(arena, mapping[n.id], value)
    prog(arena)
    return layout.read(arena, mapping[target.id])
