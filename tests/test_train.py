"""Training: optimizers against hand-computed steps, the compiled loop against the
NumPy reference loop, and Matt Mazur's published worked example."""

from __future__ import annotations

import numpy as np
import pytest

import nbbp
from nbbp import optim
from nbbp.train import TrainLoop

MAZUR = """
x = input([[0.05, 0.10]])
t = input([[0.01, 0.99]])
W1 = param([[0.15, 0.25], [0.20, 0.30]])
W2 = param([[0.40, 0.50], [0.45, 0.55]])
b1 = param(0.35, trainable=False)
b2 = param(0.60, trainable=False)
h = sigmoid(x @ W1 + b1)
o = sigmoid(h @ W2 + b2)
E = sum(0.5 * (t - o)**2)
"""


def test_mazur_step_by_step_backpropagation(engine):
    m = nbbp.build(MAZUR, engine=engine)
    assert m.value == pytest.approx(0.2983711087600027, rel=1e-15)
    # his hand-derived gradient for w5 (W2[0, 0]) is 0.082167041
    assert m["W2"].grad[0, 0] == pytest.approx(0.082167041, abs=1e-9)
    m.fit(1, "sgd", lr=0.5, progress=False)
    assert m.value == pytest.approx(0.29102777369359933, rel=1e-14)
    assert m["W2"].value[0, 0] == pytest.approx(0.35891647971788465, rel=1e-14)
    assert m["b1"].value == 0.35          # not trainable
    if engine == "numba":                 # the NumPy loop is slow for 10,000 steps
        m.fit(9999, "sgd", lr=0.5, progress=False)
        assert m.value == pytest.approx(3.510187782978859e-05, rel=1e-12)
        assert m.history.steps == 10000


QUADRATIC = "w = param(0.0)\nloss = (w - 3.0)**2"


@pytest.mark.parametrize("opt,want", [
    (optim.SGD(lr=0.1), [0.6, 1.08]),
    (optim.SGD(lr=0.1, momentum=0.9), [0.6, 1.62]),
    (optim.SGD(lr=0.1, momentum=0.9, nesterov=True), [1.14, None]),
    (optim.Adam(lr=0.1), [0.1 * 6 / (6 + 1e-8), None]),
    (optim.Adagrad(lr=0.1), [0.1 * 6 / (6 + 1e-10), None]),
    (optim.RMSProp(lr=0.1), [0.1 * 6 / (0.6 + 1e-8), None]),
    (optim.SGD(lr=0.1, weight_decay=0.5), [0.6, 0.6 + 0.1 * (4.8 - 0.3)]),
    (optim.SGD(lr=0.1, decay=optim.Decay("exponential", 0.5)), [0.6, 0.6 + 0.05 * 4.8]),
], ids=["sgd", "momentum", "nesterov", "adam", "adagrad", "rmsprop", "l2", "decay"])
def test_first_steps_by_hand(opt, want, engine):
    """∂loss/∂w = 2(w − 3): −6 at w = 0; the expected values are worked by hand."""
    m = nbbp.build(QUADRATIC, engine=engine)
    m.fit(1, opt, progress=False)
    assert m["w"].value == pytest.approx(want[0], rel=1e-14)
    if want[1] is not None:
        m.fit(1, opt, progress=False)            # the same optimizer: its state goes on
        assert m["w"].value == pytest.approx(want[1], rel=1e-14)


OPTIMIZERS = [
    optim.SGD(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01, l1=0.001),
    optim.Adam(lr=0.01, betas=(0.8, 0.95), decay=optim.Decay("inverse_time", 0.1)),
    optim.Adagrad(lr=0.05, initial_accumulator=0.1, decay=optim.Decay("step", 0.5, 7)),
    optim.RMSProp(lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.1),
    optim.SGD(lr=0.1, decay=optim.Decay("exponential", 0.97)),
]
NET = """
x = input(X); y = input(Y)
W = param(randn(3, 4) * 0.5); b = param(zeros(4))
V = param(randn(4, 1) * 0.5)
h = tanh(x @ W + b)
loss = mean((h @ V - y)**2) + 0.01 * sum(abs(W))
"""


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=repr)
@pytest.mark.parametrize("batch_size", [None, 4])
def test_compiled_loop_matches_numpy_loop(opt, batch_size, rng):
    X, Y = rng.normal(size=(10, 3)), rng.normal(size=(10, 1))
    ns = {"X": X, "Y": Y}
    a = nbbp.build(NET, namespace=ns)
    b = nbbp.build(NET, namespace=ns, engine="python")
    before = a.value
    ha = a.fit(25, opt, batch_size=batch_size, progress=False)
    hb = b.fit(25, opt, batch_size=batch_size, progress=False)
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-11)
    for k in ("W", "b", "V"):
        np.testing.assert_allclose(a[k].value, b[k].value, rtol=1e-11, atol=1e-14)
    assert a.value < before          # the loss on all the data went down


def test_minibatches_cover_each_epoch_once():
    loop = TrainLoop(nbbp.build("x = input(np.arange(10.0).reshape(10, 1))\n"
                                "w = param(1.0)\nl = mean(w * x)", namespace={"np": np}),
                     optim.SGD(lr=0.0), batch_size=5, seed=3)
    rows = loop._rows_for(6)
    for epoch in rows.reshape(3, 10):
        assert sorted(epoch) == list(range(10))


def test_fit_stops_at_nan_keeping_the_last_good_step():
    m = nbbp.build("w = param(1.0)\nloss = log(w) + w * 0")
    with pytest.raises(nbbp.NumericError) as info:
        m.fit(50, "sgd", lr=0.4, progress=False)
    text = str(info.value)
    assert "training stopped at step" in text and "before its update" in text
    assert "log(w) produced nan from w = " in text and "needs x > 0" in text
    # the parameters are those of the last completed step: finite, and where log fails
    assert np.isfinite(m["w"].value) and m["w"].value < 0
    assert all(np.isfinite(m.history.loss))


def test_interrupt_keeps_the_last_completed_step(monkeypatch):
    m = nbbp.build(QUADRATIC)
    calls = {"n": 0}
    original = TrainLoop.run

    def run(self, steps):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        original(self, steps)

    monkeypatch.setattr(TrainLoop, "run", run)
    h = m.fit(1000, "sgd", lr=0.01, progress=False)
    assert h.interrupted and 0 < h.steps < 1000
    ref = nbbp.build(QUADRATIC)
    monkeypatch.setattr(TrainLoop, "run", original)
    ref.fit(h.steps, "sgd", lr=0.01, progress=False)
    assert m["w"].value == ref["w"].value


@pytest.mark.parametrize("call,message", [
    (lambda m: m.fit(0, progress=False), "needs a whole number ≥ 1"),
    (lambda m: m.fit(5, "adamm", progress=False), "did you mean 'adam'"),
    (lambda m: m.fit(5, batch_size=3, progress=False), "batch_size needs inputs with rows"),
    (lambda m: m.fit(5, optim.SGD(lr=-1.0), progress=False), "lr=-1.0"),
])
def test_fit_errors(call, message):
    m = nbbp.build(QUADRATIC)
    with pytest.raises(nbbp.NbbpError, match=message):
        call(m)


def test_fit_needs_a_scalar_loss_and_params():
    with pytest.raises(nbbp.NbbpError, match="scalar loss.*mean"):
        nbbp.build("w = param([1.0, 2.0])\ny = w * 2").fit(3, progress=False)
    with pytest.raises(nbbp.NbbpError, match="no trainable params"):
        nbbp.build("x = input(1.0)\ny = x * 2").fit(3, progress=False)


MOONS_MLP = """
x = input(X); y = input(Y)
with scope("hidden1"):
    W1 = param(randn(2, 16) * 0.5); b1 = param(zeros(16))
    h1 = relu(x @ W1 + b1)
with scope("hidden2"):
    W2 = param(randn(16, 16) * 0.3); b2 = param(zeros(16))
    h2 = relu(h1 @ W2 + b2)
with scope("out"):
    W3 = param(randn(16, 1) * 0.3); b3 = param(zeros(1))
    logits = h2 @ W3 + b3
loss = bce_with_logits(logits, y)
"""


@pytest.mark.parametrize("batch_size", [None, 32])
def test_mlp_learns_the_moons(batch_size):
    X, Y = nbbp.datasets.moons(200, noise=0.1, seed=0)
    m = nbbp.build(MOONS_MLP, namespace={"X": X, "Y": Y})
    assert m.output.name == "loss" and "bce/" in " ".join(n.name for n in m.forward)
    m.fit(1500, nbbp.optim.Adam(lr=0.01), batch_size=batch_size, progress=False)
    assert ((m.predict(X) > 0) == (Y > 0.5)).mean() >= 0.97
    Xt, Yt = nbbp.datasets.moons(400, noise=0.1, seed=1)      # unseen points
    assert ((m.predict(Xt) > 0) == (Yt > 0.5)).mean() >= 0.95
    fig = m.plot_boundary()
    assert "decision boundary of out/logits" in fig.axes[0].get_title()
    assert "1500 steps" in m.plot_loss().axes[0].get_title()


def test_losses_against_their_formulas(rng):
    z, y01 = rng.normal(size=(6, 1)), (rng.random((6, 1)) > 0.5).astype(float)
    logits, onehot = rng.normal(size=(6, 3)), np.eye(3)[rng.integers(0, 3, 6)]
    ns = {"z": z, "y01": y01, "L": logits, "Y": onehot}
    cases = {
        "mse(p, y01)": np.mean((z - y01) ** 2),
        "mae(p, y01)": np.mean(np.abs(z - y01)),
        "bce_with_logits(p, y01)": np.mean(-(y01 * np.log(1 / (1 + np.exp(-z)))
                                             + (1 - y01) * np.log(1 - 1 / (1 + np.exp(-z))))),
        "hinge(p, 2 * y01 - 1)": np.mean(np.maximum(0, 1 - (2 * y01 - 1) * z)),
    }
    for expr, want in cases.items():
        m = nbbp.build(f"p = param(z)\nloss = {expr}", namespace=ns)
        assert m.value == pytest.approx(want, rel=1e-12), expr
        nbbp.check_grads(m)
    m = nbbp.build("q = param(L)\nloss = softmax_cross_entropy(q, Y)", namespace=ns)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert m.value == pytest.approx(np.mean(-np.log((p * onehot).sum(axis=1))), rel=1e-12)
    np.testing.assert_allclose(m.grads["q"], (p - onehot) / 6, rtol=1e-10)
    # stable for huge logits
    big = nbbp.build("q = param([[1000.0, -1000.0]])\nloss = softmax_cross_entropy(q, [[0.0, 1.0]])")
    assert big.value == pytest.approx(2000.0)


def test_predict_takes_any_number_of_rows(rng):
    X = rng.normal(size=(8, 2))
    m = nbbp.build("x = input(X)\nW = param(ones(2, 1))\npred = x @ W\nloss = mean(pred**2)",
                   namespace={"X": X})
    np.testing.assert_allclose(m.predict(X), X.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(m.predict(np.ones((3, 2))), np.full((3, 1), 2.0))
    with pytest.raises(nbbp.FeedError, match=r"takes rows of shape \(2,\)"):
        m.predict(np.ones((3, 5)))


def test_metrics_are_measured_every_k_steps():
    X, Y = nbbp.datasets.moons(100, noise=0.1, seed=0)
    m = nbbp.build(MOONS_MLP, namespace={"X": X, "Y": Y})
    h = m.fit(300, "adam", lr=0.01, progress=False, metrics="accuracy", every=100)
    steps = [s for s, _ in h.metrics["accuracy"]]
    assert steps == [100, 200, 300]
    assert h.metrics["accuracy"][-1][1] == nbbp.train.accuracy(m) >= 0.9
    assert "accuracy" in repr(h)
    with pytest.raises(nbbp.NbbpError, match="metric 'f1' must be"):
        m.fit(10, "adam", progress=False, metrics={"f1": 3})
