"""matmul on stacks of matrices (3-D and 4-D): one op, one kernel instruction.

Oracles: NumPy's ``matmul`` (values, including its broadcasting of the leading axes),
central finite differences of the NumPy expression (gradients, and of the first
derivative for second derivatives), and the Python reference engine.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import fd_grad

import nbbp
from nbbp.core.engine import Layout, lower
from nbbp.errors import ShapeError

SHAPES = [((3, 2, 4), (3, 4, 5)),          # a batch of 3
          ((2, 3, 4), (4, 2)),             # a stack times one matrix
          ((4, 3), (2, 3, 2)),             # one matrix times a stack
          ((2, 1, 3, 4), (1, 3, 4, 2)),    # both batch axes broadcast
          ((5, 2, 3), (1, 3, 2))]          # a batch axis of size 1



def _model(A, B, R, engine="numba", dtype="float64"):
    with nbbp.Graph():
        a = nbbp.param(A, name="a", dtype=dtype)
        b = nbbp.param(B, name="b", dtype=dtype)
        y = nbbp.matmul(a, b, name="y")
        f = nbbp.sum(nbbp.tanh(y) * nbbp.const(R, dtype=dtype), name="f")
    return nbbp.Model(f, engine=engine)


@pytest.mark.parametrize("sa,sb", SHAPES)
@pytest.mark.parametrize("engine", ["numba", "python"])
def test_values_and_gradients_match_numpy_and_finite_differences(sa, sb, engine):
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal(sa), rng.standard_normal(sb)
    want = np.matmul(A, B)
    R = rng.uniform(0.5, 1.5, want.shape)
    m = _model(A, B, R, engine)
    assert m["y"].value.shape == want.shape
    np.testing.assert_allclose(m["y"].value, want, rtol=1e-13, atol=1e-14)

    def f(a, b):
        return float(np.sum(np.tanh(np.matmul(a, b)) * R))

    np.testing.assert_allclose(m.grads["a"], fd_grad(lambda x: f(x, B), A), rtol=1e-6,
                               atol=1e-8)
    np.testing.assert_allclose(m.grads["b"], fd_grad(lambda x: f(A, x), B), rtol=1e-6,
                               atol=1e-8)


@pytest.mark.parametrize("sa,sb", SHAPES[:3])
def test_float32_stack_agrees_with_float64(sa, sb):
    rng = np.random.default_rng(2)
    A, B = rng.standard_normal(sa), rng.standard_normal(sb)
    R = rng.uniform(0.5, 1.5, np.matmul(A, B).shape)
    m64, m32 = _model(A, B, R), _model(A, B, R, dtype="float32")
    assert m32["y"].value.dtype == np.float32 and m32.grads["a"].dtype == np.float32
    np.testing.assert_allclose(m32["y"].value, m64["y"].value, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(m32.grads["b"], m64.grads["b"], rtol=1e-4, atol=1e-5)


def test_is_one_instruction_and_reads_transposed_operands_in_place():
    """A stacked product is one kernel instruction; a swap of the last two axes of a big
    operand is read in place (the transpose is not computed), as for matrices."""
    rng = np.random.default_rng(3)
    with nbbp.Graph():
        a = nbbp.param(rng.standard_normal((4, 64, 32)), name="a")
        b = nbbp.param(rng.standard_normal((4, 48, 32)), name="b")
        bt = nbbp.transpose(b, (0, 2, 1), name="bt")
        y = nbbp.matmul(a, bt, name="y")
    code, lowered = lower(Layout(y.graph), [bt, y], keep=[y])
    assert lowered == [y]          # the transpose is read in place, the product is one row
    m = nbbp.Model(nbbp.sum(y))
    np.testing.assert_allclose(m["y"].value, a.value @ np.swapaxes(b.value, 1, 2), rtol=1e-12)


def test_second_derivative_through_a_stack():
    rng = np.random.default_rng(4)
    A, B = rng.standard_normal((2, 2, 3)), rng.standard_normal((2, 3, 2))
    with nbbp.Graph():
        a = nbbp.param(A, name="a")
        b = nbbp.param(B, name="b")
        f = nbbp.sum(nbbp.sin(a @ b), name="f")
        ga = nbbp.grad(f, a)
        h = nbbp.sum(ga * ga, name="h")     # d/db of Σ (∂f/∂a)²
    m = nbbp.Model(h)

    def h_np(b):
        return float(np.sum((np.cos(A @ b) @ np.swapaxes(b, 1, 2)) ** 2))

    np.testing.assert_allclose(m.grads["b"], fd_grad(h_np, B, 1e-5), rtol=1e-5, atol=1e-7)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_broadcast_shapes_match_numpy(data):
    nb = data.draw(st.integers(1, 2), label="batch axes")
    batch = data.draw(st.lists(st.integers(1, 3), min_size=nb, max_size=nb))
    m_, k, n = (data.draw(st.integers(1, 4)) for _ in range(3))
    ba = [d if data.draw(st.booleans()) else 1 for d in batch]
    bb = [d if data.draw(st.booleans()) else 1 for d in batch]
    drop_a = data.draw(st.integers(0, nb))      # fewer batch axes on one side
    sa, sb = tuple(ba[drop_a:]) + (m_, k), tuple(bb) + (k, n)
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal(sa), rng.standard_normal(sb)
    with nbbp.Graph():
        y = nbbp.param(A, name="a") @ nbbp.param(B, name="b")
        f = nbbp.sum(y * y, name="f")
    m = nbbp.Model(f)
    want = np.matmul(A, B)
    np.testing.assert_allclose(m.value_of(y), want, rtol=1e-12, atol=1e-12)
    # ∂Σy²/∂a = 2y @ bᵀ, summed over the axes along which a was broadcast
    ga = np.matmul(2 * want, np.swapaxes(B, -1, -2))
    ga = ga.sum(axis=tuple(range(ga.ndim - len(sa))))
    ga = ga.sum(axis=tuple(i for i, d in enumerate(sa) if d == 1 and ga.shape[i] != 1),
                keepdims=True)
    np.testing.assert_allclose(m.grads["a"], ga, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sa,sb,text", [
    ((2, 3, 4), (4,), "a stack of matrices multiplies matrices, not a vector; make the "
                      "vector a matrix with expand_dims"),
    ((2, 3, 4), (3, 4, 2), "the batch axes (2,) and (3,) do not broadcast"),
    ((2, 3, 4), (2, 3, 2), "the inner dimensions 4 and 3 differ"),
])
def test_bad_shapes_are_one_line_errors(sa, sb, text):
    with nbbp.Graph():
        a, b = nbbp.param(np.zeros(sa), name="a"), nbbp.param(np.zeros(sb), name="b")
        with pytest.raises(ShapeError) as e:
            a @ b
    msg = str(e.value)
    assert text in msg and f"a @ b: {sa} @ {sb}" in msg and "\n" not in msg


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_stacks_multiply_in_integers(dtype):
    rng = np.random.default_rng(5)
    A = rng.integers(-50, 50, (2, 3, 4)).astype(dtype)
    B = rng.integers(-50, 50, (1, 4, 2)).astype(dtype)
    with nbbp.Graph():
        y = nbbp.matmul(nbbp.const(A, dtype=dtype), nbbp.input(B, dtype=dtype, name="b"),
                        name="y")
        f = nbbp.sum(nbbp.cast(y, "float64"), name="f")
    for engine in ("numba", "python"):
        got = nbbp.Model(f, engine=engine)["y"].value
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, np.matmul(A, B))
