"""The sliders widget: sliders over a live picture, step-through, gradient check, Δ.

Built by :func:`nbbp.widgets.sliders` (``m.sliders()``, ``%%bpgraph NAME --sliders``);
see :mod:`nbbp.widgets` for how it stays responsive. The maths it shows comes from
the model and :mod:`nbbp.view.explain`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np

from ..core.dtypes import is_float
from ..core.graph import leaves
from ..errors import NbbpError, suggest
from ..view import explain as _explain
from ..view.live import Overlay
from ..view.numbers import fmt
from .live_graph import HINT, LiveGraph, css_class, ipw, slider_range


class Explorer:
    """Sliders over a live picture, with step-through, gradient check and one-step Δ.

    Build with :func:`nbbp.widgets.sliders`. ``box`` is the ipywidgets container
    (what a notebook shows); ``slider(name)``, ``step``, ``check``, ``graph`` are its
    parts.
    """

    def __init__(self, model: Any, names: Sequence[str] = (),
                 ranges: Mapping[str, Sequence[float]] | None = None,
                 opts: Mapping[str, Any] | None = None) -> None:
        w = ipw()
        self.model = model
        ranges = dict(ranges or {})
        fed = leaves(model.forward)
        by_name = {n.name: n for n in fed}
        wanted = list(dict.fromkeys(list(names) + list(ranges)))
        for name in wanted:                     # names are checked before any widget is built
            if name not in by_name:
                raise NbbpError(f"no slider for {name!r}: model {model.name!r} has no param or "
                                f"input of that name; " + suggest(name, by_name, "leaf"))
            if not is_float(by_name[name].dtype):
                raise NbbpError(f"no slider for {name!r}: it is {by_name[name].dtype}, and "
                                "sliders move floating values; set it with "
                                f"m.set({name}=...) (or m.set_mode for the training flag)")
        # by default every floating scalar leaf and every param: not the integer and
        # boolean leaves (dropout's random counter, the training flag, integer labels)
        chosen = [by_name[n] for n in wanted] if wanted else [
            n for n in fed if is_float(n.dtype) and (n.shape == () or n.op == "param")]
        self._syncing = False
        self._delta: tuple[Overlay, str] | None = None
        self._checks: tuple[Overlay, str] | None = None
        self.listeners: list[Any] = []          # called after the user changed a value

        self.graph = LiveGraph(model, overlay=self._overlay, draw=False, **dict(opts or {}))
        self.sliders: dict[str, Any] = {}
        for n in (n for n in chosen if n.shape == ()):
            lo, hi, step = slider_range(float(model.value_of(n)), ranges.get(n.name))
            s = w.FloatSlider(value=float(model.value_of(n)), min=lo, max=hi, step=step,
                              description=n.name, readout_format=".4",
                              continuous_update=True, style={"description_width": "initial"},
                              layout=w.Layout(width="300px"))
            s.add_class("nbbp-slider")
            s.add_class(f"nbbp-slider-{css_class(n.name)}")
            s.observe(lambda ch, name=n.name: self._on_slider(name, ch["new"]), names="value")
            self.sliders[n.name] = s
        rows: list[Any] = []
        if self.sliders:
            rows.append(w.HBox(list(self.sliders.values()),
                               layout=w.Layout(flex_flow="row wrap")))
        self.tensors = [n for n in chosen if n.shape != ()]
        if self.tensors:
            rows.append(self._tensor_row(w, ranges))

        # step-through: state k of the passes; the last state is the plain picture
        self.steps = _explain.StepThrough(model, self.graph.picture.scene)
        last = len(self.steps) - 1
        self.step = w.IntSlider(value=last, min=0, max=last, description="step",
                                readout=True, layout=w.Layout(width="210px"),
                                style={"description_width": "initial"})
        self.step.add_class("nbbp-step")
        self.play = w.Play(value=last, min=0, max=last, interval=900, description="play")
        w.jslink((self.play, "value"), (self.step, "value"))
        self.play.observe(lambda ch: ch["new"] and self.step.value == last and self._goto(0),
                          names="playing")     # play from the start when at the end
        buttons = []
        for icon, css, tip, fn in (
                ("fast-backward", "restart", "back to the start of the forward pass",
                 lambda: 0),
                ("step-backward", "prev", "one step back", lambda: self.step.value - 1),
                ("step-forward", "next", "one step forward", lambda: self.step.value + 1),
                ("fast-forward", "end", "the whole picture", lambda: last)):
            b = w.Button(description="", icon=icon, tooltip=tip,
                         layout=w.Layout(width="34px"))
            b.add_class(f"nbbp-step-{css}")
            b.on_click(lambda _b, fn=fn: self._goto(fn()))
            buttons.append(b)
        self.step.observe(lambda ch: self._safe(self._changed_view), names="value")
        self.check = w.Checkbox(value=False, description="gradient check",
                                tooltip="central finite differences at every node",
                                indent=False, layout=w.Layout(width="125px"))
        self.check.add_class("nbbp-check")
        self.check.observe(lambda ch: self._safe(self._changed_view), names="value")
        self.lr = w.BoundedFloatText(value=0.1, min=0.0, max=1e6, step=0.01, description="lr",
                                     layout=w.Layout(width="95px"),
                                     style={"description_width": "16px"})
        self.delta_button = w.Button(description="SGD step: Δ", tooltip=(
            "take one gradient-descent step on the params and show how every value, "
            "gradient and edge changed"), layout=w.Layout(width="100px"))
        self.delta_button.add_class("nbbp-delta")
        self.delta_button.on_click(lambda _b: self._safe(self.take_step))
        toolbar = w.HBox(buttons + [self.play, self.step, self.check, self.lr,
                                    self.delta_button],
                         layout=w.Layout(flex_flow="row wrap", align_items="center"))
        self.explain = w.HTML(f'<span style="color:#666">{escape(HINT)}</span>')
        self.explain.add_class("nbbp-explain")
        self.controls = rows + [toolbar, self.explain, self.graph.status]
        self.box = w.VBox(self.controls + [self.graph.html])
        self.box.add_class("nbbp-explorer")
        self.graph.draw()

    # -- parts -------------------------------------------------------------------------
    def slider(self, name: str) -> Any:
        """The slider of scalar leaf ``name``."""
        if name not in self.sliders:
            raise NbbpError(f"no slider named {name!r}; " + suggest(name, self.sliders, "slider"))
        return self.sliders[name]

    def _tensor_row(self, w: Any, ranges: Mapping[str, Sequence[float]]) -> Any:
        self._tranges = ranges
        self.tensor = w.Dropdown(options=[n.name for n in self.tensors], description="tensor",
                                 layout=w.Layout(width="200px"),
                                 style={"description_width": "initial"})
        self.index = [w.BoundedIntText(value=0, min=0, max=0, description=f"[{'ijkl'[a]}]",
                                       layout=w.Layout(width="90px"),
                                       style={"description_width": "20px"}) for a in range(4)]
        self.element = w.FloatSlider(description="", readout_format=".4",
                                     continuous_update=True, layout=w.Layout(width="300px"),
                                     style={"description_width": "initial"})
        self.element.add_class("nbbp-slider-element")
        self.tensor.observe(lambda ch: self._safe(self._pick), names="value")
        for box in self.index:
            box.observe(lambda ch: self._safe(self._pick), names="value")
        self.element.observe(lambda ch: self._on_element(ch["new"]), names="value")
        self._pick()
        return w.HBox([self.tensor] + self.index + [self.element],
                      layout=w.Layout(flex_flow="row wrap", align_items="center"))

    def _where(self) -> tuple[Any, tuple[int, ...]]:
        node = self.model.graph[self.tensor.value]
        return node, tuple(int(b.value) for b in self.index[:len(node.shape)])

    def _pick(self) -> None:
        """A tensor or index was picked: aim the element slider at that element."""
        node = self.model.graph[self.tensor.value]
        self._syncing = True
        try:
            for a, box in enumerate(self.index):
                box.layout.display = None if a < len(node.shape) else "none"
                if a < len(node.shape):
                    box.max = node.shape[a] - 1
            _, idx = self._where()
            v = float(np.asarray(self.model.value_of(node))[idx])
            lo, hi, step = slider_range(v, self._tranges.get(node.name))
            el = self.element
            el.min, el.max = min(lo, el.min), max(hi, el.max)
            el.step, el.value, el.min, el.max = step, v, lo, hi
            el.description = f"{node.name.rsplit('/', 1)[-1]}[{', '.join(map(str, idx))}]"
        finally:
            self._syncing = False

    # -- reacting ------------------------------------------------------------------------
    def _safe(self, fn: Any) -> None:
        try:
            fn()
        except Exception as exc:       # shown, not raised: the widget lives on
            self.graph.error(exc)

    def _set(self, values: Mapping[str, Any], what: str) -> None:
        if self._syncing:
            return
        try:
            self.model.set(dict(values))
        except Exception as exc:
            self.graph.error(exc, f"{what}: ")
            self.graph.refresh()       # the model kept its last good values: show them
            return
        self.graph.ok()
        self._delta = self._checks = None
        for fn in self.listeners:
            self._safe(fn)
        self._changed_view()

    def _on_slider(self, name: str, value: float) -> None:
        self._set({name: value}, f"{name} = {fmt(value, 6)}")

    def _on_element(self, value: float) -> None:
        if self._syncing:
            return
        try:
            node, idx = self._where()
            arr = np.array(self.model.value_of(node), dtype=float)
            arr[idx] = value
        except Exception as exc:
            self.graph.error(exc)
            return
        self._set({node.name: arr}, f"{self.element.description} = {fmt(value, 6)}")

    def _goto(self, k: int) -> None:
        self.step.value = int(min(max(k, self.step.min), self.step.max))

    def _changed_view(self) -> None:
        self.graph.refresh()

    def _overlay(self) -> Overlay | None:
        """The frame's overlay, and the sentence above the picture (at draw time)."""
        k, last = self.step.value, len(self.steps) - 1
        if k < last:
            ov, text = self.steps.overlay(k), self.steps.html(k)
        elif self._delta is not None:
            ov, text = self._delta[0], escape(self._delta[1])
        elif self.check.value:
            if self._checks is None:
                sc = self.graph.picture.scene
                checks = _explain.gradient_check(self.model)
                self._checks = _explain.check_overlay(self.model, sc, checks)
            ov, text = self._checks[0], escape(self._checks[1])
        else:
            ov, text = None, f'<span style="color:#666">{escape(HINT)}</span>'
        self.explain.value = text
        return ov

    def show_delta(self, delta: tuple[Overlay, str] | None) -> None:
        """Show ``(overlay, text)`` — each number's change after a training step — on
        the last frame (None: back to the plain picture); the trainer calls this."""
        self._delta = delta
        self.step.value = self.step.max

    def forget_checks(self) -> None:
        """The params changed outside the sliders: the gradient check is stale."""
        self._checks = None

    def take_step(self) -> None:
        """One SGD step (learning rate ``lr``) on the params; show each number's Δ."""
        loop = self.model.train_loop("sgd", float(self.lr.value))
        self._delta = None
        ov, text = _explain.optimizer_step(self.model, self.graph.picture.scene, loop)
        self.sync()
        for fn in self.listeners:
            self._safe(fn)
        self._delta, self._checks = (ov, text), None
        self.step.value = self.step.max
        self.graph.ok()
        self.graph.refresh()

    def sync(self) -> None:
        """Move the sliders to the model's values (after training changed them)."""
        self._syncing = True
        try:
            for name, s in self.sliders.items():
                v = float(self.model.value_of(name))
                s.min, s.max = min(s.min, v), max(s.max, v)
                s.value = v
            if self.tensors:
                self._syncing = False
                self._pick()
        finally:
            self._syncing = False

    def _repr_mimebundle_(self, **kw: Any) -> dict:
        bundle = self.box._repr_mimebundle_(**kw)
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        names = ", ".join(list(self.sliders) + [n.name for n in self.tensors]) or "none"
        return f"<Explorer of model {self.model.name!r}: sliders {names}>"
