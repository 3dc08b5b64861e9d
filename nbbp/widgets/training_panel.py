"""The training panel: optimizer and learning rate, Step / Train N / Pause / Reset,
progress, the loss curve, the graph every k steps and a 2-D classifier's regions.

Built by :func:`nbbp.widgets.trainer` (``m.trainer()``, ``%%bpgraph NAME --train``).
Train N runs as an asyncio task on the kernel's event loop, in compiled chunks of
about :data:`~nbbp.widgets.CHUNK_SECONDS`, so the kernel handles Pause in between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from html import escape
from typing import Any

import numpy as np

from ..core.graph import leaves
from ..errors import NbbpError, suggest
from ..train import state as training
from ..view import charts as _charts
from ..view import explain as _explain
from ..view.live import Overlay
from ..view.numbers import fmt
from .explorer import Explorer
from .live_graph import CHUNK_SECONDS, LEARNING_RATES, OPTIMIZER_NAMES, LiveGraph, ipw, running_loop


class Trainer:
    """A training panel for any model with a scalar loss; build with
    :func:`nbbp.widgets.trainer`.

    ``step()``, ``train(n)``, ``pause()`` and ``reset()`` do what the buttons do;
    ``losses`` holds the loss of every step taken in this panel.
    """

    def __init__(self, model: Any, optimizer: Any = "sgd", lr: float | None = None,
                 steps: int = 100, every: int = 10, batch_size: int | None = None,
                 feed: Mapping[Any, Any] | None = None, seed: int = 0,
                 explorer: Explorer | None = None,
                 opts: Mapping[str, Any] | None = None) -> None:
        from ..train import optim
        w = ipw()
        if model.output.shape != ():
            raise NbbpError(f"training needs a scalar loss; {model.output.name!r} has shape "
                            f"{model.output.shape}: end the model with mean(...) or sum(...)")
        self.model = model
        self._custom = optimizer if isinstance(optimizer, optim.Optimizer) else None
        name = type(optimizer).__name__.lower() if self._custom else str(optimizer).lower()
        if name == "sgd" and self._custom is not None and getattr(optimizer, "momentum", 0):
            name = "momentum"
        if name not in OPTIMIZER_NAMES:
            raise NbbpError(f"unknown optimizer {optimizer!r}; "
                            + suggest(name, OPTIMIZER_NAMES, "optimizer"))
        lr = float(self._custom.lr if self._custom else (0.1 if lr is None else lr))
        self._custom_key = (name, lr)
        self.batch_size, self.feed, self.seed = batch_size, feed, seed
        self.initial = {n.name: np.array(model.value_of(n), copy=True)
                        for n in leaves(model.forward, "param")}
        self.losses: list[float] = []
        self.running = False
        self._stop = False
        self._loop: Any = None
        self._loop_key: tuple | None = None
        self._seen = 0
        self._last_boundary = 0.0
        self._last_curve = 0.0
        self.task: asyncio.Task | None = None

        self._delta: tuple[Overlay, str] | None = None
        self.explorer = explorer
        self.graph = explorer.graph if explorer else LiveGraph(
            model, overlay=self._overlay, draw=False, **dict(opts or {}))
        if explorer is not None:
            explorer.listeners.append(self._forget_loop)

        self.optimizer = w.Dropdown(options=OPTIMIZER_NAMES, value=name,
                                    description="optimizer", layout=w.Layout(width="190px"),
                                    style={"description_width": "initial"})
        self.lr = w.Dropdown(options=sorted(set(LEARNING_RATES) | {lr}), value=lr,
                             description="learning rate", layout=w.Layout(width="190px"),
                             style={"description_width": "initial"})
        self.n = w.BoundedIntText(value=steps, min=1, max=10**7, description="N",
                                  layout=w.Layout(width="130px"),
                                  style={"description_width": "20px"})
        self.every = w.BoundedIntText(value=every, min=1, max=10**7,
                                      description="redraw graph every",
                                      layout=w.Layout(width="200px"),
                                      style={"description_width": "initial"})
        for wid, css in ((self.optimizer, "optimizer"), (self.lr, "lr"), (self.n, "n"),
                         (self.every, "every")):
            wid.add_class(f"nbbp-train-{css}")
        for wid in (self.optimizer, self.lr):
            wid.observe(lambda ch: self._forget_loop(), names="value")
        self.buttons = {}
        for key, label, tip, fn in (
                ("step", "Step", "one optimizer step", self.step),
                ("train", "Train N", "N steps, drawing as it goes", self._train_clicked),
                ("pause", "Pause", "stop after the current chunk", self.pause),
                ("reset", "Reset", "back to the initial params", self.reset)):
            b = w.Button(description=label, tooltip=tip, layout=w.Layout(width="80px"))
            b.add_class(f"nbbp-train-{key}")
            b.on_click(lambda _b, fn=fn: self._safe(fn))
            self.buttons[key] = b
        self.buttons["train"].button_style = "primary"
        self.buttons["pause"].disabled = True
        self.show_delta = w.Checkbox(value=False, description="Δ after Step", indent=False,
                                     layout=w.Layout(width="120px"))
        self.progress = w.IntProgress(value=0, min=0, max=steps, layout=w.Layout(width="240px"))
        self.progress.add_class("nbbp-progress")
        self.info = w.HTML()
        self.info.add_class("nbbp-train-info")
        self.curve = w.HTML()
        self.curve.add_class("nbbp-loss")
        self._setup = _charts.boundary_setup(model)
        self.boundary = w.HTML()
        self.boundary.add_class("nbbp-boundary")
        self._draw_curve()
        self._draw_boundary()
        self._info()
        charts = [self.curve] + ([self.boundary] if self._setup else [])
        panel = [w.HBox([self.optimizer, self.lr, self.n, self.every],
                        layout=w.Layout(flex_flow="row wrap")),
                 w.HBox(list(self.buttons.values()) + [self.show_delta],
                        layout=w.Layout(flex_flow="row wrap", align_items="center")),
                 w.HBox([self.progress, self.info], layout=w.Layout(align_items="center"))]
        above = explorer.controls if explorer else [self.graph.status]
        if self.graph.picture.scene.rankdir == "TB":
            # a tall graph: the charts beside it, as TensorFlow Playground lays out
            self.graph.html.layout = w.Layout(flex="1 1 auto", min_width="0")
            body = [w.HBox([w.VBox(charts, layout=w.Layout(flex="0 0 auto")),
                            self.graph.html], layout=w.Layout(align_items="flex-start"))]
        else:
            body = [w.HBox(charts, layout=w.Layout(align_items="flex-start")),
                    self.graph.html]
        self.box = w.VBox(panel + above + body)
        self.box.add_class("nbbp-trainer")
        if explorer is None:
            self.graph.draw()

    # -- the compiled loop -------------------------------------------------------------
    def _forget_loop(self) -> None:
        """Values or settings changed: the next step starts a new loop from the model."""
        if not self.running:
            self._loop = None

    def _train_loop(self) -> Any:
        from ..train import optim
        key = (self.optimizer.value, float(self.lr.value))
        if self._loop is None or self._loop_key != key:
            opt = self._custom if self._custom is not None and key == self._custom_key \
                else optim.get(key[0], key[1])
            self._loop = self.model.train_loop(opt, batch_size=self.batch_size,
                                               feed=self.feed, seed=self.seed)
            self._loop_key, self._seen = key, 0
        return self._loop

    def _run(self, k: int) -> None:
        loop = self._train_loop()
        try:
            loop.run(k)
        finally:
            new = loop.history[self._seen:]
            self._seen = len(loop.history)
            self.losses.extend(new)
            training.history(self.model).loss.extend(new)

    # -- buttons ---------------------------------------------------------------------------
    def step(self) -> None:
        """One optimizer step; with "Δ after Step", the picture shows every change."""
        if self.running:
            return
        scene = self.graph.picture.scene
        before = _explain.snapshot(scene) if self.show_delta.value else None
        self._run(1)
        self._loop.sync()
        if before is not None:
            after = _explain.snapshot(scene)
            p = scene.opts.precision
            self._set_delta((_explain.delta_overlay(scene, before, after),
                             f"one {type(self._loop.optimizer).__name__} step: loss "
                             f"{fmt(self.losses[-1], p)} → {fmt(self.model.value, p)}; every "
                             "number shows its new value and its change (Δ)"))
        else:
            self._set_delta(None)
        self._after(final=True)

    def _set_delta(self, delta: tuple[Overlay, str] | None) -> None:
        if self.explorer is not None:
            self.explorer.show_delta(delta)
        else:
            self._delta = delta

    def _overlay(self) -> Overlay | None:
        return self._delta[0] if self._delta else None

    def train(self, n: int | None = None) -> None:
        """Train ``n`` steps (default: the N box) right now, blocking until done."""
        if self.running:
            return
        for _ in self._training(int(n or self.n.value)):
            pass

    def _train_clicked(self) -> None:
        if self.running:
            return
        loop = running_loop()
        if loop is None:
            self.train()
            return
        chunks = self._training(int(self.n.value))

        async def run() -> None:
            try:
                for _ in chunks:
                    await asyncio.sleep(0.002)     # the kernel handles Pause clicks here
            except Exception as exc:
                self.graph.error(exc)
        self.task = loop.create_task(run())

    def _training(self, n: int):
        """Start training ``n`` steps; the returned generator trains one chunk per
        ``next`` (about 40 ms of compiled steps)."""
        self.running, self._stop = True, False
        self._set_delta(None)
        for key in ("step", "train", "reset"):
            self.buttons[key].disabled = True
        self.buttons["pause"].disabled = False
        self.progress.max, self.progress.value = n, 0
        return self._chunks(n)

    def _chunks(self, n: int):
        done, chunk, since = 0, 1, 0
        every = int(self.every.value)
        error = None
        try:
            while done < n and not self._stop:
                k = min(chunk, n - done, every - since)
                t = time.perf_counter()
                self._run(k)
                spent = time.perf_counter() - t
                done += k
                since += k
                chunk = int(min(max(1, k * CHUNK_SECONDS / max(spent, 1e-9)), 10**6))
                self.progress.value = done
                redraw = since >= every
                if redraw:
                    since = 0
                    self._loop.sync()
                self._after(final=False, graph=redraw)
                yield done
        except Exception as exc:
            error = exc
        finally:
            self.running = False
            for key in ("step", "train", "reset"):
                self.buttons[key].disabled = False
            self.buttons["pause"].disabled = True
            if self._loop is not None:
                self._loop.sync()
            self._after(final=True)
            if error is not None:
                self.graph.error(error, f"training stopped after {done} of {n} steps: ")
            elif self._stop:
                self.info.value += f' <span style="color:#b35900">paused at {done}/{n}</span>'

    def pause(self) -> None:
        """Stop a running Train N at the next chunk boundary."""
        self._stop = True

    def reset(self) -> None:
        """Stop, put back the initial params, forget the optimizer state and the curve."""
        self._stop = True
        self.model.set(self.initial)
        self._loop = None
        self.losses.clear()
        self.progress.value = 0
        self._set_delta(None)
        self._after(final=True)

    # -- drawing ----------------------------------------------------------------------------
    def _after(self, final: bool, graph: bool = True) -> None:
        now = time.perf_counter()
        if final or now - self._last_curve > 0.1:
            self._last_curve = now
            self._draw_curve()
        if graph:
            if self.explorer is not None:
                self.explorer.sync()
                self.explorer.forget_checks()
            if final:
                self.graph.ok()
            self.graph.refresh()
            if self._setup and (final or now - self._last_boundary > 0.5):
                self._last_boundary = now
                self._draw_boundary()
        self._info()

    def _info(self) -> None:
        name = self.model.output.name.rsplit("/", 1)[-1]
        loss = self.losses[-1] if self.losses else self.model.value
        self.info.value = (f'<span style="font-family:monospace">step {len(self.losses)} · '
                           f"{escape(name)} = {fmt(loss, 4)}</span>")

    def _draw_curve(self) -> None:
        self.curve.value = _charts.loss_svg(self.losses, label=self.model.output.name)

    def _draw_boundary(self) -> None:
        if self._setup:
            try:
                self.boundary.value = _charts.boundary_svg(self.model, self._setup)
            except Exception as exc:
                self.graph.error(exc, "decision boundary: ")

    def _safe(self, fn: Any) -> None:
        try:
            fn()
        except Exception as exc:
            self.graph.error(exc)

    def _repr_mimebundle_(self, **kw: Any) -> dict:
        bundle = self.box._repr_mimebundle_(**kw)
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        return (f"<Trainer of model {self.model.name!r}: {self.optimizer.value}, "
                f"lr {self.lr.value:g}, {len(self.losses)} steps>")
