"""Published worked examples: the numbers come from their sources, not from nbbp."""

from __future__ import annotations

import numpy as np
import pytest

import nbbp

SEED_F = """
x = param(3.0)
y = param(2.0)
f = x*x*y + y + 1
"""


def test_seed_example_values_grads_and_edges(engine):
    m = nbbp.build(SEED_F, engine=engine)
    assert m.value == 21.0
    assert m.grads == {"x": 12.0, "y": 10.0}
    by_edge = {(e.src, e.dst, e.pos): e.grad for e in m.edges}
    assert by_edge[("x", "mul", 0)] == 6.0 and by_edge[("x", "mul", 1)] == 6.0
    into_y = sorted(e.grad for e in m.edges if e.src == "y")
    assert into_y == [1.0, 9.0]
    # a node's gradient is the sum of the contributions on its outgoing edges
    for name in ("x", "y", "mul", "mul_1", "add"):
        assert sum(e.grad for e in m.edges if e.src == name) == m[name].grad


def test_seed_example_hessian():
    with nbbp.Graph():
        x = nbbp.param(3.0, name="x")
        y = nbbp.param(2.0, name="y")
        f = x * x * y + y + 1
        gx, gy = nbbp.gradients(f, [x, y])
        rows = [nbbp.gradients(g, [x, y]) for g in (gx, gy)]
    hess = [[0.0 if h is None else nbbp.Model(h).value for h in row] for row in rows]
    assert hess == [[4.0, 6.0], [6.0, 0.0]]


def test_cubic_with_second_derivative(engine):
    src = "x = param(2.0)\ny = param(3.0)\nf = x**3*y - x*y**2\ndx = grad(f, x)\nddx = grad(dx, x)"
    m = nbbp.build(src, output="f", engine=engine)
    assert m.value == pytest.approx(6.0, rel=1e-15)
    assert m.grads["x"] == pytest.approx(27.0, rel=1e-15)
    assert m.grads["y"] == pytest.approx(-4.0, rel=1e-15)
    assert nbbp.build(src, output="ddx", engine=engine).value == pytest.approx(36.0, rel=1e-15)


def test_third_derivative_of_tanh(engine):
    src = "x = param(2.0)\nt = tanh(x)\nd1 = grad(t, x)\nd2 = grad(d1, x)\nd3 = grad(d2, x)"
    assert nbbp.build(src, engine=engine).value == pytest.approx(0.2526540650980626, rel=1e-13)


def test_micrograd_readme_expression(engine):
    src = """
a = param(-4.0)
b = param(2.0)
c = a + b
d = a * b + b**3
c = c + c + 1
c = c + 1 + c + (-a)
d = d + d * 2 + relu(b + a)
d = d + 3 * d + relu(b - a)
e = c - d
f = e**2
g = f / 2.0
g = g + 10.0 / f
"""
    m = nbbp.build(src, engine=engine)
    assert m.value == pytest.approx(24.70408163265306, rel=1e-14)
    assert m.grads["a"] == pytest.approx(138.83381924198252, rel=1e-14)
    assert m.grads["b"] == pytest.approx(645.5772594752186, rel=1e-14)


def test_tanh_neuron(engine):
    src = """
x1 = input(2.0); x2 = input(0.0)
w1 = param(-3.0); w2 = param(1.0); b = param(6.8813735870195432)
o = tanh(x1*w1 + x2*w2 + b)
"""
    m = nbbp.build(src, engine=engine)
    assert m.value == pytest.approx(0.7071067811865477, rel=1e-15)
    want = {"x1": -1.5, "w1": 1.0, "x2": 0.5, "w2": 0.0, "b": 0.5}
    for k, v in want.items():
        assert m.grads[k] == pytest.approx(v, abs=1e-15), k


def test_colah_shared_subexpression(engine):
    m = nbbp.build("a = param(2.0)\nb = param(1.0)\ne = (a + b) * (b + 1)", engine=engine)
    assert (m.value, m.grads["a"], m.grads["b"]) == (6.0, 2.0, 5.0)


def test_cs231n_circuit(engine):
    m = nbbp.build("x = param(-2.0)\ny = param(5.0)\nz = param(-4.0)\nf = (x + y) * z",
                   engine=engine)
    assert m.value == -12.0
    assert m.grads == {"x": -4.0, "y": -4.0, "z": 3.0}


def test_pytorch_tutorial_mean(engine):
    m = nbbp.build("x = param(ones(2, 2))\ny = x + 2\nz = y * y * 3\nout = mean(z)",
                   engine=engine)
    assert m.value == 27.0
    np.testing.assert_array_equal(m.grads["x"], np.full((2, 2), 4.5))


def test_gradient_of_gradient_is_an_ordinary_graph():
    with nbbp.Graph() as g:
        x = nbbp.param(3.0, name="x")
        y = x ** 3
        (dx,) = nbbp.gradients(y, [x])
        (ddx,) = nbbp.gradients(dx, [x])
    assert {n.role for n in g.nodes} == {"forward", "grad"}
    assert nbbp.Model(dx).value == 27.0 and nbbp.Model(ddx).value == 18.0
