"""Training: the loop (forward, backward, optimizer update) inside compiled code.

:class:`TrainLoop` lowers a model's loss and parameter gradients plus one update
instruction per parameter into a single program, and
:func:`nbbp.core.kernels.train` runs many steps of it per call. Python gets control
back between chunks of steps (about ten times a second) to report progress, so
interrupting the kernel stops at a chunk boundary with the parameters of the last
completed step.

The loop works on the core's :class:`~nbbp.core.compiled.Backprop`, not on the
model: the model's own, or — for minibatches and new input shapes — one for a copy
of the graph whose data inputs have the new number of rows (shapes are static in
nbbp, see :mod:`nbbp.train.reshape`); the trained parameters are copied back into
the model's by node. What ``fit`` keeps between calls (the history, the last loop)
lives in :mod:`nbbp.train.state`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core.compiled import Backprop, Compiled, as_array
from ..core.engine import Arena, kernel, lower
from ..core.graph import Node, leaves
from ..core.isa import COPY, S_F64, SIZE, STORAGE, STORAGES, W
from ..core.ops import mode_flag, state_updates
from ..errors import FeedError, NbbpError, NumericError
from . import optim
from .predict import metric_functions
from .reshape import clone
from .state import History, state

__all__ = ["History", "TrainLoop", "clone", "fit"]


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
        # the model's Backprop, never the model: the loop is kept in a side table
        # keyed by the model, and must not keep it alive
        bp = self.backprop = model.backprop
        self.optimizer, self.batch_size = optimizer, batch_size
        self.seed, self.rng = seed, np.random.default_rng(seed)
        data = self._data(model, feed)
        self.n_rows = self._rows(data, batch_size)
        shapes = {n: ((batch_size,) + v.shape[1:] if batch_size else v.shape)
                  for n, v in data.items()}
        shapes = {n: s for n, s in shapes.items() if s != n.shape}
        # state updates (running averages, the random counter) of the model's leaves
        names = {n.name for n in bp.forward}
        updates = [u for u in state_updates(bp.graph.nodes[:bp.layout.n_nodes])
                   if u.attrs["ref"] in names]
        if shapes:
            mapping = clone([bp.output] + updates, shapes)
            self.trained = Backprop(mapping[bp.output.id], bp.compiled.engine,
                                    bp.compiled.source)
            # as a model of the copy did: one run on its own leaf values (zeros for the
            # reshaped inputs), so a nan or inf there is still reported at this point
            self.trained.run()
        else:
            mapping = {n.id: n for n in bp.forward + updates}
            self.trained = bp
        tb = self.trained
        for n in bp.forward:             # start from the model's current values
            t = mapping.get(n.id)
            if n.op in ("param", "input") and t is not None and t.shape == n.shape:
                tb.set(t, bp.value_of(n))
        self.data = {mapping[n.id]: v for n, v in data.items()}
        self.updates = [mapping[u.id] for u in updates]
        flag = mode_flag(tb.graph)        # (a flag made after the model is not its)
        self.flag = flag if flag is not None and flag.id < tb.layout.n_nodes else None
        self.params = [(n, mapping[n.id]) for n in bp.forward
                       if n.op == "param" and n.trainable and bp.grad_node(n) is not None]
        if not self.params:
            raise NbbpError(f"model {model.name!r} has no trainable params that its loss "
                            "depends on; make weights with param(...)")
        self._build()
        self.history: list[float] = []

    # -- setting up ------------------------------------------------------------
    @staticmethod
    def _data(model, feed) -> dict[Node, np.ndarray]:
        bp = model.backprop
        data = {n: np.asarray(bp.value_of(n)) for n in leaves(bp.forward, "input")}
        for key, value in (feed or {}).items():
            node = model.node(key)
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
        tb, opt = self.trained, self.optimizer
        lay = tb.layout
        off, cls = lay.offsets, lay.cls
        loss = tb.output
        grads = [tb.grad_node(t) for _, t in self.params]
        todo = [n for n in tb.graph.ancestors([loss] + grads + self.updates) if not n.is_leaf]
        # each storage: the model's, then (float64) the hyperparameters, and in each
        # parameter's class its optimizer state (and its gradient, if that is of
        # another class: a float32 param whose gradient came out float64)
        params = [(int(cls[t.id]), int(off[t.id]), int(off[g.id]), int(cls[g.id]), t.size)
                  for t, g in zip((t for _, t in self.params), grads)]
        updates, self.h_at, placed, pos = optim.update_rows(opt, params, list(lay.sizes))
        updates += [self._copy_row(u) for u in self.updates]
        self.state_at = [(c, st) for c, _, st, _ in placed]
        self.arena = lay.new_arena([p - size for p, size in zip(pos, lay.sizes)])
        for mine, model in zip(self.arena.stores, tb.arena.stores):
            mine[:model.size] = model
        if self.flag is not None:        # the loop runs in train mode, the model in eval
            lay.write(self.arena, self.flag, True)
        self.arena.f64[self.h_at:self.h_at + optim.N_HYPER] = opt.hyper()
        if isinstance(opt, optim.Adagrad) and opt.initial_accumulator:
            for (_, t), (c, at) in zip(self.params, self.state_at):
                self.arena.stores[c][at:at + t.size] = opt.initial_accumulator
        self.code, nodes = lower(lay, todo, keep=[loss] + grads + self.updates, watch=[loss],
                                 extra=updates)
        self.n_fb = len(nodes)
        self.n_all = self.n_fb + len(updates)
        at = int(off[loss.id])
        self.loss_at = at if cls[loss.id] == S_F64 else -1 - at   # the kernel's encoding
        # minibatches: the full data lives in arrays of its own (one per class), rows
        # are copied in
        full = [np.zeros(1, dtype=d) for d in STORAGES]
        if self.batch_size:
            parts: list[list[np.ndarray]] = [[] for _ in STORAGES]
            spec = [len(self.data), self.batch_size]
            used = [0] * len(STORAGES)
            for node, arr in self.data.items():
                c = int(cls[node.id])
                row = int(np.prod(arr.shape[1:], dtype=np.int64))
                spec += [used[c], int(off[node.id]), row, c]
                parts[c].append(np.asarray(arr, dtype=STORAGES[c]).reshape(-1))
                used[c] += arr.size
            full = [np.concatenate(p) if p else f for p, f in zip(parts, full)]
            self.batches = np.asarray(spec, dtype=np.int64)
        else:
            for node, arr in self.data.items():
                lay.write(self.arena, node, arr)
            self.batches = np.zeros(2, dtype=np.int64)
        self.full = full
        self._order = np.zeros(0, dtype=np.int64)
        if tb.compiled.engine == "numba":
            self._train = kernel("train")
        else:               # the NumPy reference, on the model part of the loop's arena
            self._train = None
            self._reference = Compiled(tb.graph, todo, watch=[], engine="python",
                                       layout=lay, arena=self._model_part())

    def _copy_row(self, update: Node) -> list[int]:
        """The instruction writing a state update into its leaf after the step."""
        lay = self.trained.layout
        ref = self.trained.graph[update.attrs["ref"]]
        row = [0] * W
        row[0], row[1], row[2] = COPY, int(lay.offsets[ref.id]), int(lay.offsets[update.id])
        row[SIZE], row[STORAGE] = ref.size, int(lay.cls[ref.id])
        return row

    def _model_part(self) -> Arena:
        """The model's part of the loop's storages (views: writing changes the loop's)."""
        return Arena([st[:size] for st, size in zip(self.arena.stores,
                                                      self.trained.layout.sizes)])

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
            bad = self._train(self.code, *self.arena.stores, self.n_fb,
                              self.n_all, steps, self.loss_at, hist, *self.full,
                              self.batches, rows)
        else:
            bad = self._run_python(steps, hist, rows)
        done = steps if bad < 0 else bad
        self.history.extend(hist[:done].tolist())
        if bad >= 0:
            self._diagnose(len(self.history))

    def _run_python(self, steps: int, hist: np.ndarray, rows: np.ndarray) -> int:
        """The reference loop: the NumPy path and ``Optimizer.step_numpy``."""
        tb, ref, opt = self.trained, self._reference, self.optimizer
        hyper = self.arena.f64[self.h_at:self.h_at + optim.N_HYPER]
        t0 = int(hyper[optim.H_T])
        for s in range(steps):
            if self.batch_size:
                r = rows[s * self.batch_size:(s + 1) * self.batch_size]
                for node, arr in self.data.items():
                    ref.set(node, arr[r])
            ref.run()
            hist[s] = loss = ref.read(tb.output)
            if not np.isfinite(loss):
                return s
            t = t0 + s + 1
            hyper[optim.H_T] = t
            for (_, p), (c, at) in zip(self.params, self.state_at):
                store = self.arena.stores[c]
                state = [store[at + k * p.size:at + (k + 1) * p.size].reshape(p.shape)
                         for k in range(2)]
                new = opt.step_numpy(ref.view(p), ref.view(tb.grad_node(p)), state, t)
                ref.set(p, new)
            for u in self.updates:       # the state updates, as the compiled COPY rows
                ref.set(tb.graph[u.attrs["ref"]], ref.read(u))
        return -1

    def _diagnose(self, step: int) -> None:
        tb = self.trained
        arena = self._model_part().copy()
        check = Compiled.fetching([tb.output], engine=tb.compiled.engine, layout=tb.layout,
                                  arena=arena, source=tb.compiled.source)
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
        bp, tb = self.backprop, self.trained
        for n, t in self.params:
            bp.set(n, tb.layout.view(self.arena, t))
        for u in self.updates:           # running averages, the random counter
            name = u.attrs["ref"]
            bp.set(bp.graph[name], tb.layout.view(self.arena, tb.graph[name]))
        try:
            bp.run()
        except NumericError:
            pass    # training reports its own nan; the model shows the values as they are

    def value_of(self, name: str) -> float | np.ndarray:
        """A node's current value inside the loop (before :meth:`sync`)."""
        return self.trained.layout.read(self.arena, self.trained.graph[name])

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
    kept = state(model)
    loop = kept.loop
    same = (loop is not None and loop.optimizer is opt and loop.batch_size == batch_size
            and loop.seed == seed)
    if not same or feed:                 # the same optimizer object goes on with its state
        loop = kept.loop = TrainLoop(model, opt, batch_size, feed, seed)
    metrics = metric_functions(metrics)
    every = every or max(1, steps // 20)
    history = kept.history
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


def _progress_bar(total: int, name: str):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=f"fit {name}", unit="step", leave=True)
