"""Counter-based random numbers, the train/eval flag and state updates.

Oracles: splitmix64 written here with Python integers (independent of the NumPy
reference and the kernel), the uniform distribution's moments and a chi-square test,
the NumPy reference engine (bit for bit), and training split into chunks in other ways.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nbbp
from nbbp.core.compiled import Compiled
from nbbp.core.ops import MAX_SEED, random_bits
from nbbp.errors import NbbpError

MASK = 2**64 - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def splitmix_bits(seed: int, counter: int, n: int) -> list[int]:
    """Element i: splitmix64's i-th output from the state mixed from seed and counter."""
    key = mix((mix((seed + GOLDEN) & MASK) + counter * GOLDEN) & MASK)
    return [mix((key + (i + 1) * GOLDEN) & MASK) for i in range(n)]


def splitmix_uniform(seed: int, counter: int, n: int, bits: int = 53) -> list[float]:
    """The top ``bits`` bits of each hash, scaled into [0, 1)."""
    return [(r >> (64 - bits)) / 2.0**bits for r in splitmix_bits(seed, counter, n)]


@given(st.integers(0, MAX_SEED), st.integers(0, 2**62), st.integers(1, 40))
def test_the_numpy_reference_is_splitmix64_for_any_seed_and_counter(seed, counter, n):
    assert random_bits(seed, counter, n).tolist() == splitmix_bits(seed, counter, n)


def _uniform_model(shape, seed, dtype="float64", engine="numba"):
    with nbbp.Graph():
        u = nbbp.random_uniform(shape, seed=seed, dtype=dtype, name="u")
        f = nbbp.sum(nbbp.cast(u, "float64"))
    return nbbp.Model(f, engine=engine), u


@pytest.mark.parametrize("dtype,bits", [("float64", 53), ("float32", 24)])
def test_random_uniform_is_splitmix64_in_both_engines(dtype, bits, engine):
    m, u = _uniform_model((3, 4), seed=11, dtype=dtype, engine=engine)
    got = m.value_of(u)
    assert got.dtype == dtype and got.shape == (3, 4)
    np.testing.assert_array_equal(got.ravel(), np.array(splitmix_uniform(11, 0, 12, bits),
                                                        dtype=dtype))
    m.set(rng_counter=5)
    np.testing.assert_array_equal(m.value_of(u).ravel(),
                                  np.array(splitmix_uniform(11, 5, 12, bits), dtype=dtype))


def test_random_uniform_is_uniform_and_streams_are_independent():
    m, u = _uniform_model((200, 500), seed=3)
    a = m.value_of(u).ravel()
    b = m.set(rng_counter=1).value_of(u).ravel()
    assert 0.0 <= a.min() and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.003 and abs(a.var() - 1 / 12) < 0.002
    counts = np.histogram(a, bins=20, range=(0, 1))[0]
    expected = a.size / 20
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < 43.8                      # χ²(19) at p = 0.001
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.01
    c, _ = _uniform_model((200, 500), seed=4)
    assert abs(np.corrcoef(a, c.value_of("u").ravel())[0, 1]) < 0.01


def test_redraw_gives_fresh_numbers_and_the_counter_replays_them():
    with nbbp.Graph():
        u = nbbp.random_uniform((5,), seed=2, name="u")
    c = Compiled.fetching([u])
    c.run()
    first = c.read(u)
    c.redraw()
    c.run()
    second = c.read(u)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(second, splitmix_uniform(2, 1, 5))
    c.set(c.graph["rng_counter"], 0)
    c.run()
    np.testing.assert_array_equal(c.read(u), first)


def test_default_seeds_differ_and_a_shape_node_is_followed():
    with nbbp.Graph():
        x = nbbp.input(np.zeros((4, 3)), name="x")
        a = nbbp.random_uniform(x, name="a")
        b = nbbp.random_uniform((4, 3), name="b")
    assert (a.attrs["seed"], b.attrs["seed"]) == (0, 1)
    assert a.shape == (4, 3) and a.inputs[1] is x


DROPOUT_NET = """
x = input(X); y = input(Y)
W = param(randn(5, 8) * 0.3); b = param(zeros(8))
h = dropout(relu(x @ W + b), 0.3, seed=1)
V = param(randn(8, 1) * 0.3)
pred = h @ V
loss = mse(pred, y)
"""


def _trained(chunks, engine="numba", batch_size=8):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(32, 5)), rng.normal(size=(32, 1))
    m = nbbp.build(DROPOUT_NET, namespace={"X": X, "Y": Y}, seed=0, engine=engine)
    opt = nbbp.optim.Adam(lr=0.01)
    for steps in chunks:
        m.fit(steps=steps, optimizer=opt, batch_size=batch_size, progress=False)
    return m


def test_training_draws_a_new_mask_every_step_however_it_is_chunked():
    a, b, c = _trained([12]), _trained([5, 1, 6]), _trained([12], engine="python")
    assert a.value_of("rng_counter") == 12 == b.value_of("rng_counter")
    for k in ("W", "V", "b"):
        np.testing.assert_array_equal(a.value_of(k), b.value_of(k))
        np.testing.assert_allclose(a.value_of(k), c.value_of(k), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a.history.loss, c.history.loss, rtol=1e-12)
    assert a.value_of("training") == False      # noqa: E712  (the model stays in eval mode)


def test_fit_runs_in_train_mode_and_the_model_in_eval_mode():
    """One full-batch SGD step with the mask drawn at counter 0 equals NumPy's step."""
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 1))
    src = "x = input(X); y = input(Y)\nW = param(P)\nh = dropout(x, 0.5, seed=9)\n" \
          "pred = h @ W\nloss = mean((pred - y)**2)"
    P = rng.normal(size=(3, 1))
    m = nbbp.build(src, namespace={"X": X, "Y": Y, "P": P})
    assert m.value == pytest.approx(np.mean((X @ P - Y) ** 2))          # eval: no dropout
    mask = (np.array(splitmix_uniform(9, 0, X.size)).reshape(X.shape) >= 0.5) * 2.0
    h = X * mask
    grad = 2 * h.T @ (h @ P - Y) / len(X)
    m.fit(steps=1, optimizer="sgd", lr=0.1, progress=False)
    np.testing.assert_allclose(m.value_of("W"), P - 0.1 * grad, rtol=1e-12)
    assert m.history.loss[0] == pytest.approx(np.mean((h @ P - Y) ** 2), rel=1e-12)


def test_set_mode_and_predict_in_eval_mode():
    m = _trained([3])
    X = m.value_of("x")
    eval_pred = m.predict(X[:5], node="pred")
    m.set_mode("train")
    assert m.value_of("training") == True       # noqa: E712
    assert not np.allclose(m.value_of("pred"), m.run("pred", {"training": False}))
    np.testing.assert_array_equal(m.predict(X[:5], node="pred"), eval_pred)
    np.testing.assert_array_equal(m.predict(X, node="pred"),
                                  m.run("pred", {"training": False}))
    assert m.set_mode("eval").value_of("training") == False     # noqa: E712
    with pytest.raises(NbbpError, match=r"^set_mode: the mode is 'train' or 'eval', got "
                                        r"'training'$"):
        m.set_mode("training")


@pytest.mark.parametrize("call,message", [
    (lambda x: nbbp.random_uniform((2, 0)), "random_uniform: shape (2, 0) must be a tuple"),
    (lambda x: nbbp.random_uniform((2,), seed=-1),
     "random_uniform: seed -1 must be a whole number in 0..2**63 − 1"),
    (lambda x: nbbp.random_uniform((2,), dtype="int32"),
     "random_uniform: dtype int32 is not floating"),
    (lambda x: nbbp.assign_state(x * 2, x), "assign_state: mul is not a param; the state written after each step is "
                                   "a param"),
    (lambda x: nbbp.assign_state(x, nbbp.sum(x)),
     "assign_state(x, sum): the value is float64 (), the state float64 (3,); they must "
     "match"),
])
def test_bad_random_and_state_input_is_one_line(call, message):
    with nbbp.Graph():
        x = nbbp.param(np.ones(3), name="x")
        with pytest.raises(NbbpError) as err:
            call(x)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_node_named_training_is_not_taken_for_the_flag():
    with nbbp.Graph():
        nbbp.param(1.0, name="training")
        x = nbbp.param(np.ones(3), name="x")
        with pytest.raises(NbbpError) as err:
            nbbp.dropout(x, 0.5)
    assert str(err.value) == ("the training flag is the node named 'training', but "
                              "'training' is already a float64 param node; give that node "
                              "another name")


def test_a_flag_made_after_the_model_does_not_touch_it():
    with nbbp.Graph() as g:
        w = nbbp.param(np.ones(3), name="w")
        loss = nbbp.sum(w * w)
    m = nbbp.Model(loss)
    with g:
        nbbp.dropout(w, 0.5)
    m.fit(steps=2, optimizer="sgd", lr=0.25, progress=False)
    np.testing.assert_allclose(m.value_of("w"), 0.25)          # (1 − 2·0.25)² · 1
    assert m.set_mode("train").value == pytest.approx(3 * 0.25**2)
