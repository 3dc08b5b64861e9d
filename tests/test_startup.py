"""The first ``%%bpgraph`` cell of a session computes on the NumPy reference while the
compiled kernels load, and switches to them before the next cell.

Whether the kernels are "loaded" is injected (``nbbp.core.engine.ready``), so both
paths run deterministically; the oracle for every value, picture and error of the
stand-in is the same cell built on the compiled engine, and for the values also the
article's hand-computed numbers and central finite differences.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.testing import globalipapp

import nbbp
from nbbp import magic
from nbbp.core import engine, kernels, loader
from nbbp.core.engine import PythonProgram, StandIn, stand_in

ARTICLE = "x = param(3.0)\ny = param(2.0)\nf = x*x*y + y + 1"
NEURON = "x1 = input(2.0); w1 = param(-3.0); b = param(6.88)\nf = abs(x1*w1 + b) ** 2"
EXACT = {       # first cells the stand-in computes: float64 scalars, correctly rounded ops
    "article": ARTICLE,
    "neuron": NEURON,
    "mixed": ("a = param(3.0); b = param(2.0)\nd = (a - b) ** 2 / (a + 1) + sqrt(b)\n"
              "f = d * abs(-a) - sign(b) * a / 4 + b ** 1"),
}
INEXACT = {     # cells that wait for the compiled engine
    "tanh": "x1 = input(2.0); w1 = param(-3.0); b = param(6.88)\nf = tanh(x1*w1 + b)",
    "exp": "x = param(3.0)\nf = exp(x) / (1 + x)",
    "tensor": "w = param(np.array([1.0, 2.0]))\nf = sum(w * w)",
    "float32": "x = param(3.0, dtype='float32')\nf = x * x",
    "pow 3": "x = param(3.0)\nf = x ** 3",
    "relu": "x = param(3.0)\nf = relu(x - 1)",
    "maximum": "x = param(3.0)\nf = maximum(x, -x)",
}


@pytest.fixture(scope="module")
def ip():
    # one shell per process, shared (get_ipython: looked up after the shell started)
    shell = globalipapp.start_ipython() or globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "nbbp")
    return shell


@pytest.fixture(autouse=True)
def clean(ip):
    magics = ip.magics_manager.registry["BpgraphMagics"]
    before = magics.engine, magics.renderer
    magics.engine, magics.renderer = "numba", "graphviz-pure"
    yield
    magic.finish_loading()                 # nothing left standing in for the next test
    magics.engine, magics.renderer = before
    ip.user_ns.pop("f", None)


def loading(monkeypatch, still: bool = True) -> None:
    """Pretend the kernels are (not) loaded yet."""
    monkeypatch.setattr(engine, "ready", lambda name: not still)


def cell(ip, line: str, body: str, monkeypatch, kernels_loading: bool):
    loading(monkeypatch, kernels_loading)
    shown = ip.run_cell_magic("bpgraph", line, body)
    monkeypatch.undo()
    return shown, ip.user_ns["f"]


def state(m: nbbp.Model) -> dict:
    """Everything a user reads off a model (values, every gradient, every edge)."""
    return {"value": m.value, "grads": m.grads, "nodes": [(v.name, v.value) for v in m.nodes],
            "edges": [(e.src, e.dst, e.grad) for e in m.edges]}


def bits(a: dict) -> dict:
    """Every number of a :func:`state` as its bytes (so -0.0 differs from 0.0)."""
    return {k: np.hstack([np.ravel(v) for v in _leaves(a[k])] or [[]]).tobytes() for k in a}


def _leaves(v):
    if isinstance(v, dict):
        v = list(v.values())
    if isinstance(v, (list, tuple)):
        return [x for item in v for x in _leaves(item)]
    return [] if v is None or isinstance(v, str) else [np.asarray(v, dtype=float)]


@pytest.mark.parametrize("line", ["f", "f --backward"])
@pytest.mark.parametrize("name", EXACT)
def test_the_first_cell_stands_in_with_the_same_picture_and_values(ip, monkeypatch, name, line):
    pic, m = cell(ip, line, EXACT[name], monkeypatch, kernels_loading=True)
    assert isinstance(m.compiled.program, StandIn) and m.compiled.engine == "python"
    assert m.engine == "numba"                   # what it is for, and will run on
    bundle, first = pic._repr_mimebundle_(), state(m)
    ref_pic, ref = cell(ip, line, EXACT[name], monkeypatch, kernels_loading=False)
    assert type(ref.compiled.program).__name__ == "Program"
    assert bundle == ref_pic._repr_mimebundle_()        # the same SVG and text, byte for byte
    assert bits(first) == bits(state(ref))
    # the next cell switches it: the compiled engine computes, values as a compiled model's
    ip.user_ns["f"] = m
    ip.run_cell("engine_now = f.compiled.engine")
    assert ip.user_ns.pop("engine_now") == "numba" and m._call is m.compiled.call
    assert bits(state(m)) == bits(state(ref))
    assert pic._repr_mimebundle_() == bundle


@pytest.mark.parametrize("name", INEXACT)
def test_cells_whose_last_bits_could_differ_wait_for_the_compiled_engine(ip, monkeypatch, name):
    _, m = cell(ip, "f --renderer none", INEXACT[name], monkeypatch, kernels_loading=True)
    assert m.compiled.engine == "numba" and not magic._STANDING_IN


def _expr(leaves: st.SearchStrategy) -> st.SearchStrategy:
    """Random expressions of the ops a stand-in may run."""
    def grow(inner):
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})")
        unary = st.tuples(st.sampled_from(["-{}", "abs({})", "sqrt(abs({}))",
                                           "sign({})", "({}) ** 2", "({}) ** 1"]), inner).map(
            lambda t: t[0].format(t[1]))
        return binary | unary
    return st.recursive(leaves, grow, max_leaves=8)


number = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 1.0, -1.0])


@settings(max_examples=200, deadline=None)
@given(st.tuples(number, number, number), _expr(st.sampled_from(["x", "y", "z"])))
def test_random_exact_expressions_give_the_same_bits_on_both_engines(values, expr):
    source = "x = param({!r}); y = param({!r}); z = param({!r})\nf = {}".format(*values, expr)
    outcomes = []
    for standing_in in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            loading(mp, standing_in)
            try:
                with stand_in():
                    m = nbbp.build(source)
            except nbbp.NbbpError as err:       # nan or inf: the same message
                outcomes.append(("error", str(err)))
                continue
        assert m.compiled.engine == ("python" if standing_in else "numba")
        outcomes.append(("ok", bits(state(m))))
    event(outcomes[0][0])
    assert outcomes[0] == outcomes[1]


def test_the_stand_in_matches_the_article_and_finite_differences(ip, monkeypatch):
    _, m = cell(ip, "f", ARTICLE, monkeypatch, kernels_loading=True)
    assert m.compiled.engine == "python"
    assert (m.value, m.grads) == (21.0, {"x": 12.0, "y": 10.0})
    _, n = cell(ip, "f", EXACT["mixed"], monkeypatch, kernels_loading=True)
    assert n.compiled.engine == "python"
    h = 1e-6
    for leaf in ("a", "b"):
        v = n[leaf].value
        up = n.run("f", feed={leaf: v + h})
        down = n.run("f", feed={leaf: v - h})
        assert n.grads[leaf] == pytest.approx((up - down) / (2 * h), rel=1e-6)


def test_the_model_keeps_working_across_the_switch(ip, monkeypatch):
    _, m = cell(ip, "f", ARTICLE, monkeypatch, kernels_loading=True)
    assert m.set(x=1.0).value == 5.0 and m.run("f", feed={"y": 0.0}) == 1.0
    with pytest.raises(nbbp.FeedError, match="'x': needs a number"):
        m.set(x="a")
    ip.run_cell("pass")                                     # the next cell
    assert m.compiled.engine == "numba" and not magic._STANDING_IN
    assert m.value == 5.0 and m.grads == {"x": 4.0, "y": 2.0}    # its values kept
    assert m.set(x=3.0).value == 21.0 and m.run("f", feed={"y": 0.0}) == 1.0
    assert m.function("x", "y")(2.0, 1.0) == (6.0, (4.0, 5.0))
    m.fit(steps=2, lr=0.01, progress=False)
    assert m.compiled.engine == "numba" and m.value < 21.0


def test_a_function_made_in_the_first_cell_runs_compiled(ip, monkeypatch):
    """``m.function`` is the fast call: made while the reference stands in, it switches
    the model first, so it never keeps the reference's call."""
    _, m = cell(ip, "f", ARTICLE, monkeypatch, kernels_loading=True)
    assert m.compiled.engine == "python"
    f = m.function("x", "y")
    assert m.compiled.engine == "numba" and f._kernel == m._call
    assert f(2.0, 1.0) == (6.0, (4.0, 5.0)) and m.grads == {"x": 4.0, "y": 5.0}


def test_a_nan_in_the_first_cell_is_the_same_usage_error(ip, monkeypatch):
    body = "x = param(-1.0)\ny = param(2.0)\nf = log(x) * y"
    messages = []
    for still in (True, False):
        loading(monkeypatch, still)
        with pytest.raises(UsageError) as info:
            ip.run_cell_magic("bpgraph", "f", body)
        monkeypatch.undo()
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "cell line 4" in messages[0] and "log(x) produced nan from x = -1" in messages[0]
    assert not magic._STANDING_IN


def test_a_nan_after_the_first_cell_names_the_node_on_both_engines(ip, monkeypatch):
    _, m = cell(ip, "f", "x = param(4.0)\nf = sqrt(x) * 2", monkeypatch, kernels_loading=True)
    with pytest.raises(nbbp.NumericError, match=r"sqrt\(x\) produced nan from x = -1") as a:
        m.set(x=-1.0)
    ip.run_cell("pass")
    with pytest.raises(nbbp.NumericError) as b:
        m.set(x=-1.0)
    assert str(a.value) == str(b.value) and m.value == 4.0


def test_large_cells_and_training_panels_wait_for_the_compiled_engine(ip, monkeypatch):
    big = "x = param(1.0)\nh = x\nfor i in range(600):\n    h = h * 0.999 + x\nf = h"
    _, m = cell(ip, "f --renderer none", big, monkeypatch, kernels_loading=True)
    n_compute = len(m.compiled.program.nodes)
    assert n_compute > engine.STAND_IN_LIMIT and m.compiled.engine == "numba"
    _, m = cell(ip, "f --train --renderer none", "x = input(randn(8, 2)); w = param(randn(2, 1))"
                "\nf = mean((x @ w) ** 2)", monkeypatch, kernels_loading=True)
    assert m.compiled.engine == "numba" and not magic._STANDING_IN


def test_sliders_work_on_the_stand_in_and_after_the_switch(ip, monkeypatch):
    shown, m = cell(ip, "f --sliders w1", NEURON, monkeypatch, kernels_loading=True)
    assert m.compiled.engine == "python"
    shown.slider("w1").value = -2.5
    before = (m.value, m.grads, shown.graph.html.value)
    assert m.value == (2.0 * -2.5 + 6.88) ** 2
    ip.run_cell("pass")
    assert m.compiled.engine == "numba"
    shown.slider("w1").value = -3.0
    shown.slider("w1").value = -2.5
    assert (m.value, m.grads) == before[:2]
    assert shown.graph.html.value == before[2]
    shown.step.value = 0                          # step-through: back to the first state
    assert shown.graph.status.value == ""


def test_models_built_outside_the_magic_are_compiled_at_once(monkeypatch):
    loading(monkeypatch)
    m = nbbp.build(ARTICLE)                       # S2's path: no stand-in
    assert m.compiled.engine == "numba" and m.finish_loading() is False
    p = nbbp.build(ARTICLE, engine="python")
    assert isinstance(p.compiled.program, PythonProgram) and p.finish_loading() is False
    with stand_in():
        s = nbbp.build(ARTICLE, engine="python")
    assert type(s.compiled.program) is PythonProgram


def test_an_op_the_kernels_lack_is_refused_at_once_not_after_the_switch(monkeypatch):
    from nbbp.core import ops
    cube = ops.Op("cube", 199, 1, ops.UNARY, lambda a: a ** 3,
                  lambda g, y: (g * 3.0 * y.inputs[0] ** 2,), "a³", ("3*a**2",), ((-2.0, 2.0),))
    monkeypatch.setitem(ops.OPS, "cube", cube)
    loading(monkeypatch)
    with nbbp.Graph():
        x = nbbp.param(2.0, name="x")
        y = ops.apply("cube", x, name_="y")
    with stand_in(), pytest.raises(nbbp.NbbpError, match=r"op 'cube' \(node 'y'\) has no "
                                   r"compiled kernel.*engine='python'"):
        nbbp.Model(y)


def test_every_op_a_stand_in_runs_has_a_kernel():
    """The switch cannot fail on a missing kernel."""
    assert engine.EXACT_OPS | {"pow"} <= kernels.SUPPORTED


def test_a_failed_switch_says_so_in_one_line_and_keeps_the_reference(ip, monkeypatch, capsys):
    _, m = cell(ip, "f", ARTICLE, monkeypatch, kernels_loading=True)

    def broken(self):
        raise ImportError("No module named 'numba'")
    monkeypatch.setattr(StandIn, "compiled", broken)
    ip.run_cell("pass")
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["nbbp: model 'f' keeps computing on the NumPy reference (engine='python'): "
                   "the compiled engine did not load: No module named 'numba'"]
    assert m.compiled.engine == "python" and m.set(x=1.0).value == 5.0


def test_ready_says_whether_a_kernel_is_loaded_without_loading_it(monkeypatch):
    monkeypatch.setattr(loader, "_loaded", {})
    assert loader.ready("run_scalar") is False and loader._loaded == {}
    loader.kernel("run_scalar")
    assert loader.ready("run_scalar") is True


def test_the_background_load_waits_until_no_cell_has_run_for_a_moment(monkeypatch):
    import threading
    started = threading.Event()
    monkeypatch.setattr(engine, "preload", lambda: started.set())
    monkeypatch.setattr(magic, "_CELLS", {"running": True, "ended": 0.0, "loaded": True})
    magic._preload_when_idle()
    assert not started.wait(4 * magic.IDLE_SECONDS)       # a cell is running
    magic._cell_ends()
    assert started.wait(30)                                # idle: the load starts
    started.clear()
    magic._CELLS["running"] = True
    magic._preload_when_idle()
    magic._CELLS["loaded"] = False                         # %unload_ext: it gives up
    magic._cell_ends()
    assert not started.wait(4 * magic.IDLE_SECONDS)


def test_the_first_picture_waits_for_the_renderer_check_load_ext_started(ip, monkeypatch):
    import threading
    import time
    done = threading.Event()

    def slow_check(choice):
        time.sleep(0.3)
        done.set()
    monkeypatch.setattr(magic, "_check_renderer", slow_check)
    check = magic._Check()
    monkeypatch.setattr(magic, "_RENDERER_CHECK", check)
    check.start("auto")
    pic = ip.run_cell_magic("bpgraph", "f --engine python", ARTICLE)
    assert "<svg" in pic._repr_mimebundle_()["image/svg+xml"] and done.is_set()
