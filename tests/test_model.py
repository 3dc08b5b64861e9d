"""The model API: values, gradients for every node, edges, set, run, names, scopes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import nbbp

SEED_F = "x = param(3.0)\ny = param(2.0)\nf = x*x*y + y + 1"


def test_every_node_has_value_and_grad():
    m = nbbp.build(SEED_F)
    assert [n.name for n in m.forward] == ["x", "y", "mul", "mul_1", "add", "const", "f"]
    assert m["mul"].value == 9.0 and m["mul"].grad == 2.0      # ∂f/∂(x·x) = y
    assert m["mul_1"].grad == 1.0 and m["f"].grad == 1.0
    assert repr(m["x"]) == "<param 'x': value=3, grad=12>"
    assert repr(m) == "<Model 'f': value=21, grads {x=12, y=10}, 7 nodes, engine=numba>"


def test_set_recomputes_and_returns_model():
    m = nbbp.build(SEED_F)
    assert m.set(x=1.0).value == 5.0
    assert m.grads == {"x": 4.0, "y": 2.0}
    m.set({"y": 0.0})
    assert (m.value, m.grads["x"]) == (1.0, 0.0)


def test_set_reverts_on_numeric_error():
    m = nbbp.build("x = param(2.0)\nf = log(x)")
    with pytest.raises(nbbp.NumericError, match="node 'f' = log"):
        m.set(x=-1.0)
    assert m["x"].value == 2.0 and m.value == pytest.approx(np.log(2.0))


def test_run_evaluates_only_what_fetches_need_and_keeps_state():
    m = nbbp.build("x = input(1.0)\ny = param(2.0)\nz = x * y\nf = log(z)")
    assert m.run("z", feed={"x": 5.0}) == 10.0
    assert m.run(["z", "y"], feed={"x": 0.5}) == [1.0, 2.0]
    assert m.run({"a": "z"}, feed={"x": 3.0}) == {"a": 6.0}
    # fetching z never runs log, so a feed that would make log fail is fine
    assert m.run("z", feed={"x": -1.0}) == -2.0
    with pytest.raises(nbbp.NumericError):
        m.run("f", feed={"x": -1.0})
    assert m["x"].value == 1.0 and m.value == pytest.approx(np.log(2.0))
    # feeding an intermediate node cuts the graph there
    assert m.run("f", feed={"z": np.e}) == pytest.approx(1.0)


def test_run_fetches_gradient_nodes_under_feed():
    m = nbbp.build(SEED_F)
    gx = m.grad_node("x")
    assert m.run(gx, feed={"x": 1.0}) == 4.0


def test_tensor_model_and_feed_errors(rng):
    X = rng.normal(size=(10, 2))
    src = "x = input(X)\nW = param(randn(2, 3))\nb = param(zeros(3))\nloss = mean(tanh(x @ W + b)**2)"
    m = nbbp.build(src, namespace={"X": X})
    assert m["W"].grad.shape == (2, 3) and m["b"].grad.shape == (3,)
    nbbp.check_grads(m)
    with pytest.raises(nbbp.FeedError, match=r"has shape \(10, 2\); a model's shapes"):
        m.set(x=np.ones((5, 2)))
    with pytest.raises(nbbp.FeedError, match="did you mean 'W'"):
        m.set(w=1.0)
    with pytest.raises(nbbp.FeedError, match="cannot set 'loss'"):
        m.set(loss=1.0)


def test_assignments_name_nodes_in_scopes_loops_and_helpers():
    src = '''
def layer(x, n_out, name):
    with scope(name):
        W = param(ones(x.shape[-1], n_out))
        h = tanh(x @ W)
    return h

x = input(ones(4, 2))
h = x
for i in range(2):
    h = layer(h, 3, f"layer{i}")
out = sum(h)
'''
    m = nbbp.build(src)
    names = [n.name for n in m.forward]
    assert "layer0/W" in names and "layer1/W" in names and "layer1/h" in names
    assert names[-1] == "out" and m.output.name == "out"
    assert m.graph["layer0/W"].scope == "layer0"


def test_reassignment_names_get_suffixes():
    m = nbbp.build("x = param(1.0)\nh = x * 2\nh = h * 3\nh = h * 4")
    assert [n.name for n in m.forward if n.op == "mul"] == ["h", "h_1", "h_2"]
    assert m.value == 24.0


def test_python_api_equals_cell_source():
    with nbbp.Graph() as g:
        x = nbbp.param(3.0, name="x")
        y = nbbp.param(2.0, name="y")
        f = nbbp.add(x * x * y + y, 1.0, name="f")
    m = nbbp.Model(f)
    assert (m.value, m.grads) == (21.0, {"x": 12.0, "y": 10.0})
    assert g["f"] is f and repr(f) == "<Node 'f' = add(add, const), scalar, id=n6>"


def test_non_scalar_output_differentiates_the_sum():
    m = nbbp.build("x = param([1.0, 2.0])\ny = x * x")
    np.testing.assert_array_equal(m.grads["x"], [2.0, 4.0])


def test_check_grads_catches_a_wrong_rule(monkeypatch):
    m = nbbp.build("x = param(0.7)\nf = sin(x) * x")
    assert nbbp.check_grads(m)["order 1"] < 1e-8
    from nbbp.core import ops
    bad = ops.Op(**{**ops.OPS["sin"].__dict__, "vjp": lambda g, y: (g * ops.sin(y.inputs[0]),)})
    monkeypatch.setitem(ops.OPS, "sin", bad)
    m2 = nbbp.build("x = param(0.7)\nf = sin(x) * x")
    with pytest.raises(nbbp.GradientCheckError, match="gradient check failed"):
        nbbp.check_grads(m2)


def test_import_is_light():
    code = ("import sys, time; t = time.perf_counter(); import nbbp; "
            "dt = time.perf_counter() - t; "
            "heavy = [m for m in ('numba', 'IPython', 'ipywidgets', 'graphviz', 'scipy') "
            "if m in sys.modules]; print(heavy, dt)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "[]", out
    assert float(out[1]) < 1.0
