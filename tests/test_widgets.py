"""The live widgets without a browser: sliders move the model and the picture's numbers,
the layout never moves, errors are shown (not raised), rapid updates keep memory flat
and draw only the last value, the step-through never shows a pending gradient as 0, the
gradient check and one-step Δ, the training panel, and the ``%%bpgraph`` options."""

from __future__ import annotations

import asyncio
import gc
import math
import re
import sys

import numpy as np
import pytest
from IPython.core.error import UsageError

import nbbp
from nbbp import widgets
from nbbp.errors import NbbpError
from nbbp.view import charts as _charts
from nbbp.view import explain as _explain
from nbbp.view import render
from nbbp.view.live import LivePicture, Overlay
from nbbp.view.scene import Scene

ARTICLE = "x = param(3.0)\ny = param(2.0)\nf = x*x*y + y + 1"
NEURON = ("x1 = input(2.0); x2 = input(0.0)\n"
          "w1 = param(-3.0); w2 = param(1.0); b = param(6.8813735870195432)\n"
          "o = tanh(x1*w1 + x2*w2 + b)")
MLP = """
x = input(X); y = input(Y)
with scope("hidden"):
    W1 = param(randn(2, 8) * 0.5); b1 = param(zeros(8))
    h = tanh(x @ W1 + b1)
s = h @ param(randn(8, 1) * 0.5, name="W2")
loss = mean(relu(1 - y * s))
"""


def neuron(**kw):
    return nbbp.build(NEURON, name="neuron", **kw)


def mlp():
    X, Y = nbbp.datasets.moons(60, noise=0.1, seed=0)
    return nbbp.build(MLP, namespace={"X": X, "Y": 2 * Y.reshape(-1, 1) - 1}, name="mlp")


def texts(pic: LivePicture, gid: str, svg: str | None = None) -> list[str]:
    return pic.numbers(svg if svg is not None else pic.svg())[gid]


def geometry(svg: str) -> list[str]:
    """Everything that places a shape: paths, polygons and text baselines."""
    return re.findall(r' (?:d|points|y)="[^"]*"', svg)


def row(got: list[str], key: str) -> str:
    """The text after a node's "value" or "grad" key."""
    return got[[t.split()[0] if t.split() else t for t in got].index(key) + 1]


# -- the live picture ------------------------------------------------------------------
@pytest.mark.parametrize("renderer", ["dot", "graphviz-pure"])
def test_live_picture_updates_numbers_in_place(renderer):
    m = neuron()
    pic = LivePicture(m, renderer=renderer)
    assert pic.mode == "live"
    before = pic.svg()
    m.set(w1=-2.5)
    after = pic.svg()
    assert geometry(before) == geometry(after)          # nothing moved
    assert pic.layouts == 1
    assert row(texts(pic, "n5", after), "value") == "-5"     # x1·w1 = 2·(-2.5)
    o = math.tanh(2 * -2.5 + 6.8813735870195432)
    assert texts(pic, "caption", after)[1] == f" = {render.fmt(o)}"
    assert texts(pic, "e5_1", after) == [render.fmt(2 * (1 - o * o))]     # ∂o/∂w1 = x1·(1-o²)


@pytest.mark.parametrize("src", [ARTICLE, NEURON, "slow"])
def test_every_number_equals_a_fresh_pictures(src):
    """S1's check: after an update the picture shows what a fresh build would show."""
    if src == "slow":
        from pathlib import Path
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
        from bench_render import scalar_graph
        src = scalar_graph(100)
    m = nbbp.build(src)
    leaf = next(n for n in m.forward if n.op in ("param", "input"))
    pic = LivePicture(m)
    new = float(m.value_of(leaf)) * 0.7 + 0.1
    m.set({leaf.name: new})
    live = pic.svg()
    fresh = nbbp.build(src)
    fresh.set({leaf.name: new})
    sc = Scene(fresh, render.options())
    for n in fresh.forward:
        got = pic.numbers(live).get(f"n{n.id}")
        if got is None or sc.compact_const(n):
            continue
        assert sc.value_text(n) in got, n.name
        if n.id in sc.grad:
            assert sc.grad_text(n) in got, n.name
    for e in sc.edges():
        if e.label:
            assert pic.numbers(live)[e.id] == [e.label]


def test_tooltips_carry_the_full_values():
    m = neuron()
    pic = LivePicture(m)
    m.set(w1=-2.5)
    svg = pic.svg()
    assert "value: -2.5" in svg and "value: -3.0" not in svg
    assert pic.svg(tips=False).count("xlink:title") == svg.count("xlink:title")


def test_collapsed_scopes_and_tensors_are_live():
    m = mlp()
    pic = LivePicture(m, collapse=("hidden",))
    assert pic.mode == "live"
    rows = texts(pic, "s_hidden")
    W1 = m.value_of("hidden/W1")
    m.set({"hidden/W1": W1 * 2})
    rows2 = texts(pic, "s_hidden")
    assert rows != rows2 and len(rows) == len(rows2)
    h = next(n for n in m.forward if n.name == "s")
    assert row(texts(pic, f"n{h.id}"), "value").startswith("mean ")


def test_wide_numbers_are_squeezed_not_moved():
    m = nbbp.build("x = param(1.0)\nf = x * 2")
    pic = LivePicture(m)
    before = pic.svg()
    m.set(x=-1.234567e-123)
    svg = pic.svg()
    assert geometry(before) == geometry(svg)
    assert 'lengthAdjust="spacingAndGlyphs"' in svg and ">-1.235e-123<" in svg


def test_without_a_renderer_the_widget_shows_the_listing(monkeypatch, tmp_path):
    from nbbp.view import graphviz as _renderers
    monkeypatch.delenv("NBBP_DOT", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(_renderers, "_graphviz_pure_paths", lambda: [])
    m = nbbp.build(ARTICLE)
    ex = widgets.sliders(m)
    assert ex.graph.picture.mode == "text" and "<pre" in ex.graph.html.value
    ex.slider("x").value = 1.0
    assert "f = 5" in ex.graph.html.value or "= 5 " in ex.graph.html.value


# -- sliders ------------------------------------------------------------------------------
def test_sliders_for_every_scalar_leaf_with_ranges_around_the_value():
    m = neuron()
    ex = widgets.sliders(m)
    assert ex.graph.status.value == "" and ex.graph.frames == 1
    assert list(ex.sliders) == ["x1", "x2", "w1", "w2", "b"]
    w1 = ex.slider("w1")
    assert w1.min < -3.0 < w1.max and w1.value == -3.0
    assert (w1.value - w1.min) / w1.step == pytest.approx(round((w1.value - w1.min) / w1.step))
    ex2 = widgets.sliders(m, "w1", b=(-10, 10, 0.5))
    assert list(ex2.sliders) == ["w1", "b"] and ex2.slider("b").step == 0.5
    with pytest.raises(NbbpError, match=r"no slider for 'W1'.*did you mean 'w1'"):
        widgets.sliders(m, "W1")
    assert widgets.slider_range(5.0, (-1, 1)) == (-1.0, 5.0, 0.02)   # widened to hold 5


def test_no_default_sliders_for_integer_and_boolean_leaves():
    """Dropout's random counter (int64) and the training flag (bool) are leaves, but a
    float slider would feed them fractions: they get none, and naming one says why."""
    m = nbbp.build("x = input(1.5)\nw = param(0.5)\nf = sum(dropout(x * w + zeros(4), 0.5))")
    ex = widgets.sliders(m)
    assert list(ex.sliders) == ["x", "w"]
    with pytest.raises(NbbpError) as e:
        widgets.sliders(m, "rng_counter")
    assert str(e.value) == ("no slider for 'rng_counter': it is int64, and sliders move "
                            "floating values; set it with m.set(rng_counter=...) (or "
                            "m.set_mode for the training flag)")


def test_moving_a_slider_recomputes_and_redraws():
    m = neuron()
    ex = widgets.sliders(m)
    frames = ex.graph.frames
    before = ex.graph.html.value
    ex.slider("w1").value = -2.5
    assert m["w1"].value == -2.5 and m.value == pytest.approx(math.tanh(1.8813735870195432))
    assert ex.graph.frames == frames + 1
    svg = ex.graph.html.value
    assert geometry(svg) == geometry(before)
    pic = ex.graph.picture
    assert row(texts(pic, "n5", svg), "value") == "-5"
    assert ex.graph.status.value == ""


def test_an_error_in_an_update_is_shown_and_the_widget_keeps_working():
    m = nbbp.build("x = param(2.0)\nf = log(x) * 3")
    ex = widgets.sliders(m, x=(-2, 4, 0.5))
    ex.slider("x").value = -1.0                       # log(-1): nan — shown, not raised
    assert "⚠" in ex.graph.status.value and "log" in ex.graph.status.value
    assert "x = -1" in ex.graph.status.value
    assert m["x"].value == 2.0                        # the model kept its last good values
    ex.slider("x").value = 1.0                        # and still works
    assert ex.graph.status.value == "" and m.value == 0.0
    assert texts(ex.graph.picture, "caption", ex.graph.html.value)[1] == " = 0"


def test_a_bug_in_a_callback_is_shown_not_raised(monkeypatch):
    m = neuron()
    ex = widgets.sliders(m)

    def boom(*a, **k):
        raise RuntimeError("renderer exploded")
    monkeypatch.setattr(ex.graph.picture, "svg", boom)
    ex.slider("b").value = 1.0
    assert "RuntimeError: renderer exploded" in ex.graph.status.value
    monkeypatch.undo()
    ex.slider("b").value = 2.0
    assert ">2<" in ex.graph.html.value


def test_tensor_params_get_an_element_picker():
    m = mlp()
    ex = widgets.sliders(m)
    assert not ex.sliders and [n.name for n in ex.tensors] == ["hidden/W1", "hidden/b1", "W2"]
    ex.tensor.value = "hidden/W1"
    ex.index[0].value, ex.index[1].value = 1, 3
    assert ex.element.description == "W1[1, 3]"
    assert ex.element.value == m.value_of("hidden/W1")[1, 3]
    old = m.value_of("hidden/W1").copy()
    ex.element.value = 0.75
    new = m.value_of("hidden/W1")
    assert new[1, 3] == 0.75 and np.array_equal(np.delete(new.ravel(), 11),
                                                np.delete(old.ravel(), 11))
    assert [b.layout.display for b in ex.index] == [None, None, "none", "none"]


def test_ten_thousand_rapid_updates_leave_memory_flat():
    m = nbbp.build(ARTICLE)
    ex = widgets.sliders(m, x=(-5, 5, 0.001))
    s = ex.slider("x")
    for i in range(500):                              # warm caches
        s.value = -5 + i * 0.001
    gc.collect()
    blocks = sys.getallocatedblocks()
    for i in range(10_000):
        s.value = -5 + (i % 9000) * 0.001 + 1e-4
    gc.collect()
    grown = sys.getallocatedblocks() - blocks
    assert grown < 1000, f"{grown} memory blocks kept after 10,000 updates"
    assert ex.graph.frames >= 10_000 and ex.graph.status.value == ""


def test_rapid_changes_on_an_event_loop_draw_once_with_the_last_value():
    m = neuron()
    ex = widgets.sliders(m, w1=(-4, 4, 0.01))

    async def drag() -> tuple[int, int]:
        start = ex.graph.frames
        for i in range(50):                           # 50 slider messages in one burst
            ex.slider("w1").value = -3 + 0.02 * (i + 1)
        mid = ex.graph.frames
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return mid - start, ex.graph.frames - start
    during, after = asyncio.run(drag())
    assert (during, after) == (0, 1)                  # one frame, not fifty
    assert m["w1"].value == pytest.approx(-2.0)
    assert row(texts(ex.graph.picture, "n5", ex.graph.html.value), "value") == "-4"  # the last


# -- step-through --------------------------------------------------------------------------
def test_step_through_plays_forward_then_backward_and_never_shows_pending_as_zero():
    m = neuron()
    ex = widgets.sliders(m)
    pic, st = ex.graph.picture, ex.steps
    n_fwd = sum(not n.is_leaf for n in m.forward)
    n_edges = sum(m.edge_grad_node(n, p) is not None for n in m.forward
                  for p in range(len(n.inputs)))
    assert len(st) == 1 + n_fwd + 1 + n_edges + 1
    assert ex.step.value == ex.step.max               # starts on the whole picture
    ex._goto(0)
    svg = ex.graph.html.value
    for n in m.forward:                               # every gradient is pending, no 0
        assert row(texts(pic, f"n{n.id}", svg), "grad") == "pending"
    assert all(texts(pic, e, svg) == ["pending"] for e in st.edge_id.values())
    assert "forward pass" in ex.explain.value
    # forward 3: add = mul + mul_1 = (-6) + 0 = -6, with add highlighted
    ex._goto(3)
    assert "add = mul + mul_1 = (-6) + 0 = -6" in ex.explain.value
    add = next(n for n in m.forward if n.name == "add")
    assert re.search(rf'<g id="n{add.id}" class="node">.*?stroke="#e6550d" stroke-width="3',
                     ex.graph.html.value, re.S)
    assert row(texts(pic, "n8", ex.graph.html.value), "value") == "pending"   # add_1: not yet
    # the backward step along x1 → mul writes out the chain rule
    ex._goto(st.index_of("edge", "x1"))
    assert "∂o/∂mul · ∂mul/∂x1 = 0.5 · (-3) = -1.5" in ex.explain.value
    assert "∂o/∂x1 is complete: -1.5" in ex.explain.value
    svg = ex.graph.html.value
    assert re.search(r'<g id="e5_0" class="edge">.*?stroke="#e6550d"', svg, re.S)
    assert row(texts(pic, "n0", svg), "grad") == "-1.5"
    assert row(texts(pic, "n2", svg), "grad") == "pending"   # w1 → mul comes next
    assert texts(pic, "e5_1", svg) == ["pending"]
    ex._goto(ex.step.max)
    assert ex.graph.html.value == pic.svg()          # the last state is the plain picture


def test_step_buttons_and_a_slider_change_while_stepping():
    m = neuron()
    ex = widgets.sliders(m)
    buttons = {b._dom_classes[0]: b for b in ex.box.children[1].children[:4]}
    buttons["nbbp-step-restart"].click()
    assert ex.step.value == 0
    buttons["nbbp-step-next"].click()
    buttons["nbbp-step-next"].click()
    assert ex.step.value == 2 and "forward 2/" in ex.explain.value
    ex.slider("w1").value = -1.0                      # values change under the step view
    assert "mul_1 = x2 * w2" in ex.explain.value or "forward 2/" in ex.explain.value
    buttons["nbbp-step-prev"].click()
    assert "mul = x1 * w1 = 2 * (-1) = -2" in ex.explain.value
    buttons["nbbp-step-end"].click()
    assert ex.step.value == ex.step.max


def test_local_derivative_comes_from_the_edge_gradient_node():
    m = nbbp.build("a = param(0.5)\nb = param(-3.0)\nv = a * b\nL = v * v")
    st = _explain.StepThrough(m, LivePicture(m).scene)
    v = m.graph["v"]
    assert st.local_derivative(v, 0) == -3.0 and st.local_derivative(v, 1) == 0.5
    _, text = st.explain(st.index_of("edge", "a"))
    assert "∂L/∂v · ∂v/∂a = (-3) · (-3) = 9" in text


# -- gradient check and one step's Δ --------------------------------------------------------
def test_gradient_check_colours_every_node_by_relative_error():
    m = neuron()
    ex = widgets.sliders(m)
    ex.check.value = True
    svg = ex.graph.html.value
    fills = re.findall(r'<g id="n\d+" class="node">.*?<path fill="([^"]+)"', svg, re.S)
    assert fills and set(fills) == {_explain.GOOD}
    assert "largest relative error" in ex.explain.value
    assert "| fd 0.5" in svg
    checks = _explain.gradient_check(m)
    assert max(c.rel for c in checks.values()) < 1e-6


def test_gradient_check_flags_a_kink():
    m = nbbp.build("x = param(0.0)\nf = relu(x)")
    checks = _explain.gradient_check(m)
    assert checks[m.graph["x"].id].rel > 0.1          # relu at 0: fd says 0.5
    ov, text = _explain.check_overlay(m, LivePicture(m).scene, checks)
    assert ov.node[f"n{m.graph['x'].id}"][0] == _explain.BAD and "at x" in text


def test_tensor_nodes_are_checked_along_a_direction():
    m = mlp()
    checks = _explain.gradient_check(m)
    W1 = checks[m.graph["hidden/W1"].id]
    assert W1.direction and W1.rel < 1e-5


def test_one_step_shows_the_change_of_every_number():
    m = nbbp.build("w = param(1.0)\nx = input(2.0)\nloss = (w * x - 3.0) ** 2")
    ex = widgets.sliders(m)
    g = m.grads["w"]
    ex.lr.value = 0.05
    ex.delta_button.click()
    assert m["w"].value == pytest.approx(1.0 - 0.05 * g)
    assert ex.slider("w").value == pytest.approx(m["w"].value)      # sliders follow
    assert "one SGD step (lr 0.05): loss 1 → " in ex.explain.value
    svg = ex.graph.html.value
    assert "Δ" in svg and "Δ+0.2" in svg                              # w: 1 → 1.2
    ex.slider("x").value = 1.0                                         # a change ends it
    assert "Δ" not in ex.explain.value


# -- the training panel ------------------------------------------------------------------------
def test_trainer_trains_and_draws_curve_graph_and_boundary():
    m = mlp()
    t = widgets.trainer(m, "adam", lr=0.03, steps=200, every=50)
    assert t.graph.status.value == "" and t.graph.frames == 1 and "<svg" in t.graph.html.value
    assert t._setup is not None and "data:image/png;base64," in t.boundary.value
    frames = t.graph.frames
    loss0 = m.value
    t.buttons["train"].click()                        # no event loop: runs to the end
    assert len(t.losses) == 200 and t.progress.value == 200
    assert m.value < loss0 and m.value == pytest.approx(t.losses[-1], rel=0.5)
    assert t.graph.frames > frames and "step 200" in t.curve.value
    assert "step 200" in t.info.value
    assert m.history.loss[-200:] == t.losses
    t.buttons["step"].click()
    assert len(t.losses) == 201
    t.buttons["reset"].click()
    assert t.losses == [] and np.array_equal(m.value_of("hidden/W1"), t.initial["hidden/W1"])
    assert "no steps yet" in t.curve.value


def test_trainer_pause_stops_a_running_train_between_chunks():
    m = mlp()
    t = widgets.trainer(m, "sgd", lr=0.1, steps=10**6, every=1000)

    async def session() -> None:
        t.buttons["train"].click()                    # returns at once: a task trains
        assert t.running and t.task is not None
        while t.progress.value == 0:
            await asyncio.sleep(0.001)
        assert t.buttons["pause"].disabled is False
        t.buttons["pause"].click()
        await asyncio.wait_for(t.task, 10)
    asyncio.run(session())
    assert not t.running and 0 < len(t.losses) < 10**6
    assert "paused at" in t.info.value and t.buttons["train"].disabled is False
    assert t.losses[-1] == pytest.approx(m.value, rel=0.5)


def test_trainer_changing_optimizer_or_lr_starts_a_new_loop():
    m = nbbp.build("w = param(0.0)\nloss = (w - 3.0)**2")
    t = widgets.trainer(m, "sgd", lr=0.1)
    t.step()
    first = t._loop
    t.optimizer.value = "adam"
    t.step()
    assert t._loop is not first and type(t._loop.optimizer).__name__ == "Adam"
    t.lr.value = 0.01
    t.step()
    assert t._loop.optimizer.lr == 0.01 and len(t.losses) == 3


def test_trainer_show_delta_after_step():
    m = nbbp.build("w = param(0.0)\nloss = (w - 3.0)**2")
    t = widgets.trainer(m, "sgd", lr=0.1)
    t.show_delta.value = True
    t.step()
    assert "Δ+0.6" in t.graph.html.value               # w: 0 → 0.6


def test_trainer_errors_are_shown():
    m = nbbp.build("w = param(1.0)\nloss = log(w)")
    t = widgets.trainer(m, "sgd", lr=10.0, steps=50, every=5)
    t.buttons["train"].click()
    assert "⚠" in t.graph.status.value and "training stopped" in t.graph.status.value
    assert t.running is False and t.buttons["train"].disabled is False
    with pytest.raises(NbbpError, match="scalar loss"):
        widgets.trainer(nbbp.build("w = param(ones(3))\nf = w * 2"))
    with pytest.raises(NbbpError, match="did you mean 'adam'"):
        widgets.trainer(m, "adma")


def test_trainer_with_sliders_shares_one_picture():
    m = nbbp.build("w = param(0.0)\nb = param(1.0)\nloss = (w - 3.0)**2 + b*b")
    t = widgets.trainer(m, "sgd", lr=0.1, steps=20, every=5, sliders=True)
    assert t.explorer is not None and t.graph is t.explorer.graph
    t.train()
    assert t.explorer.slider("w").value == pytest.approx(m["w"].value)
    t.explorer.slider("w").value = 0.0               # a slider change restarts the loop
    t.step()
    assert m["w"].value == pytest.approx(0.6)


def test_charts_are_deterministic():
    a = _charts.loss_svg([3.0, 1.0, 0.01, 0.001])
    assert a == _charts.loss_svg([3.0, 1.0, 0.01, 0.001]) and "(log scale)" in a
    m = mlp()
    setup = _charts.boundary_setup(m)
    assert _charts.boundary_svg(m, setup) == _charts.boundary_svg(m, setup)
    assert _charts.boundary_setup(nbbp.build(ARTICLE)) is None


# -- %%bpgraph --sliders / --train ----------------------------------------------------------------
@pytest.fixture(scope="module")
def ip():
    from IPython.testing.globalipapp import get_ipython, start_ipython
    shell = start_ipython() or get_ipython()     # one shell per process, shared
    shell.run_line_magic("load_ext", "nbbp")
    return shell


def test_magic_sliders(ip):
    shown = ip.run_cell_magic("bpgraph", "neuron --sliders w1=(-4, 4, 0.5) b --precision 3",
                              NEURON)
    assert isinstance(shown, widgets.Explorer)
    assert ip.user_ns["neuron"] is shown.model
    assert list(shown.sliders) == ["w1", "b"] and shown.slider("w1").step == 0.5
    assert shown.graph.picture.opts.precision == 3
    assert shown._repr_mimebundle_()["text/plain"] == (
        "<Explorer of model 'neuron': sliders w1, b>")
    everything = ip.run_cell_magic("bpgraph", "neuron --sliders", NEURON)
    assert list(everything.sliders) == ["x1", "x2", "w1", "w2", "b"]


def test_magic_sliders_mistakes_are_usage_errors(ip):
    with pytest.raises(UsageError, match=r"no slider for 'w12'.*did you mean 'w2' or 'w1'"):
        ip.run_cell_magic("bpgraph", "neuron --sliders w12", NEURON)
    with pytest.raises(UsageError, match=r"min < max"):
        ip.run_cell_magic("bpgraph", "neuron --sliders w1=(3,1)", NEURON)
    with pytest.raises(UsageError, match=r"cannot read"):
        ip.run_cell_magic("bpgraph", "neuron --sliders 3x", NEURON)


def test_magic_train(ip):
    shown = ip.run_cell_magic("bpgraph", "f --train", "w = param(0.0)\nf = (w - 3.0)**2")
    assert isinstance(shown, widgets.Trainer) and shown.explorer is None
    both = ip.run_cell_magic("bpgraph", "f --sliders --train",
                             "w = param(0.0)\nf = (w - 3.0)**2")
    assert isinstance(both, widgets.Trainer) and list(both.explorer.sliders) == ["w"]
    with pytest.raises(UsageError, match="scalar loss"):
        ip.run_cell_magic("bpgraph", "g --train", "w = param(ones(2))\ng = w * 2")


def test_overlay_keys_that_are_not_drawn_are_ignored():
    m = nbbp.build(ARTICLE)
    pic = LivePicture(m)
    assert pic.svg(Overlay(value={999: ("x", None, False)}, edge={"e99_0": "active"})) \
        == pic.svg()


def test_import_nbbp_does_not_import_ipywidgets():
    import subprocess
    import sys
    code = "import nbbp, sys; print('ipywidgets' in sys.modules, 'nbbp.widgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]
