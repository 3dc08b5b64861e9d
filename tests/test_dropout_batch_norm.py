"""dropout and batch_norm: train and eval mode, their gradients, the running averages
fit keeps, and their mistakes.

Oracles: NumPy references, central finite differences (dropout with its mask fixed),
PyTorch's ``torch.nn.functional.batch_norm`` and autograd (values, gradients, and
running statistics after SGD steps — torch's momentum is 1 − TF's), and the statistics
of a Bernoulli mask.
"""

from __future__ import annotations

import numpy as np
import pytest

import nbbp
from nbbp.errors import NbbpError

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _dropout_model(x, rate, seed=3, engine="numba"):
    with nbbp.Graph():
        xn = nbbp.param(x, name="x")
        y = nbbp.dropout(xn, rate, seed=seed, name="drop")
        r = np.random.default_rng(5).uniform(0.5, 1.5, x.shape)
        f = nbbp.sum(y * r, name="f")
    return nbbp.Model(f, engine=engine), y, r


# -- dropout ------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_mask_statistics(rate):
    x = np.random.default_rng(0).normal(size=(300, 400))
    m, y, _ = _dropout_model(x, rate)
    m.set_mode("train")
    mask = m.value_of("drop/mask")
    keep = 1.0 - rate
    assert set(np.unique(mask).tolist()) == {0.0, 1.0 / keep}
    kept = (mask != 0).mean()
    sd = np.sqrt(keep * rate / mask.size)
    assert abs(kept - keep) < 5 * sd                   # Bernoulli(keep)
    np.testing.assert_array_equal(m.value_of(y), x * mask)
    assert abs(np.mean(m.value_of(y)) - np.mean(x)) < 0.02   # inverted: E[y] = x


def test_dropout_is_reproducible_and_the_same_in_both_engines():
    x = np.random.default_rng(1).normal(size=(8, 6))
    a, _, _ = _dropout_model(x, 0.4, seed=7)
    b, _, _ = _dropout_model(x, 0.4, seed=7, engine="python")
    c, _, _ = _dropout_model(x, 0.4, seed=8)
    masks = [mm.set_mode("train").value_of("drop/mask") for mm in (a, b, c)]
    np.testing.assert_array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0], masks[2])
    np.testing.assert_array_equal(a.grads["x"], b.grads["x"])


def test_dropout_gradient_with_its_mask_fixed_matches_finite_differences(engine):
    x = np.random.default_rng(2).normal(size=(5, 4))
    m, _, r = _dropout_model(x, 0.5, engine=engine)
    m.set_mode("train")
    mask = m.value_of("drop/mask")
    assert 0 < np.count_nonzero(mask) < mask.size

    def f(v):
        return float(np.sum(v * mask * r))

    eps, numeric = 1e-6, np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[idx] = eps
        numeric[idx] = (f(x + d) - f(x - d)) / (2 * eps)
    np.testing.assert_allclose(m.grads["x"], numeric, rtol=1e-7, atol=1e-9)
    assert np.all(m.grads["x"][mask == 0] == 0)        # only the kept units get gradient


def test_dropout_in_eval_mode_is_the_identity(engine):
    x = np.random.default_rng(3).normal(size=(4, 3))
    m, y, r = _dropout_model(x, 0.5, engine=engine)
    np.testing.assert_array_equal(m.value_of(y), x)
    np.testing.assert_array_equal(m.grads["x"], r)


# -- batch norm ---------------------------------------------------------------------
def _bn_model(x, axes=None, momentum=0.9, eps=1e-3, engine="numba"):
    rng = np.random.default_rng(7)
    with nbbp.Graph():
        xn = nbbp.param(x, name="x")
        y = nbbp.batch_norm(xn, axes, momentum=momentum, eps=eps, name="bn")
        r = rng.normal(size=x.shape)
        f = nbbp.sum(y * r, name="f")
    m = nbbp.Model(f, engine=engine)
    feat = m.value_of("bn/gamma").shape
    m.set(**{"bn/gamma": rng.uniform(0.5, 1.5, feat), "bn/beta": rng.normal(size=feat)})
    return m, y, r


def _torch_layout(x, nhwc):
    t = torch.tensor(x, requires_grad=True)
    return t, (t.permute(0, 3, 1, 2) if nhwc else t)


@pytest.mark.parametrize("shape", [(16, 5), (6, 4, 4, 3)])
def test_batch_norm_train_mode_matches_numpy_and_torch(shape, engine):
    rng = np.random.default_rng(4)
    x = rng.normal(1.0, 2.0, size=shape)
    m, y, r = _bn_model(x, engine=engine)
    m.set_mode("train")
    gamma, beta = m.value_of("bn/gamma"), m.value_of("bn/beta")
    axes = tuple(range(len(shape) - 1))
    mu, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    np.testing.assert_allclose(m.value_of(y), (x - mu) / np.sqrt(var + 1e-3) * gamma + beta,
                               rtol=1e-12, atol=1e-12)
    nhwc = len(shape) == 4
    xt, xin = _torch_layout(x, nhwc)
    g = torch.tensor(gamma.ravel(), requires_grad=True)
    b = torch.tensor(beta.ravel(), requires_grad=True)
    out = F.batch_norm(xin, None, None, g, b, training=True, eps=1e-3)
    rt = torch.tensor(r)
    (out.permute(0, 2, 3, 1) if nhwc else out).mul(rt).sum().backward()
    np.testing.assert_allclose(m.grads["x"], xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.grads["bn/gamma"].ravel(), g.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(m.grads["bn/beta"].ravel(), b.grad.numpy(), rtol=1e-10)


def test_batch_norm_eval_mode_uses_the_running_averages_and_is_deterministic(engine):
    x = np.random.default_rng(5).normal(size=(8, 3))
    m, y, r = _bn_model(x, engine=engine)
    gamma, beta = m.value_of("bn/gamma"), m.value_of("bn/beta")
    mean, var = np.array([[0.5, -1.0, 2.0]]), np.array([[4.0, 0.25, 1.0]])
    m.set(**{"bn/moving_mean": mean, "bn/moving_variance": var})
    expected = (x - mean) / np.sqrt(var + 1e-3) * gamma + beta
    np.testing.assert_allclose(m.value_of(y), expected, rtol=1e-12)
    np.testing.assert_allclose(m.grads["x"], r * gamma / np.sqrt(var + 1e-3), rtol=1e-12)
    first = m.value_of(y)
    m.compute()
    np.testing.assert_array_equal(m.value_of(y), first)


BN_NET = """
x = input(X); t = input(T)
W = param(P["W"])
h = batch_norm(x @ W, momentum=0.9, name="bn")
V = param(P["V"])
pred = h @ V
loss = mean((pred - t)**2)
"""


@pytest.mark.parametrize("engine_", ["numba", "python"])
def test_fit_updates_the_running_averages_as_torch_does(engine_):
    """Five full-batch SGD steps: parameters and running statistics against PyTorch
    (momentum 1 − 0.9, unbiased running variance)."""
    rng = np.random.default_rng(6)
    X, T = rng.normal(2.0, 1.5, size=(12, 4)), rng.normal(size=(12, 1))
    P = {"W": rng.normal(size=(4, 3)), "V": rng.normal(size=(3, 1))}
    m = nbbp.build(BN_NET, namespace={"X": X, "T": T, "P": P}, engine=engine_)
    m.fit(steps=5, optimizer="sgd", lr=0.1, progress=False)

    W, V = (torch.tensor(P[k], requires_grad=True) for k in ("W", "V"))
    g = torch.ones(3, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for _ in range(5):
        h = F.batch_norm(torch.tensor(X) @ W, rm, rv, g, b, training=True, momentum=0.1,
                         eps=1e-3)
        loss = ((h @ V - torch.tensor(T)) ** 2).mean()
        for p in (W, V, g, b):
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in (W, V, g, b):
                p -= 0.1 * p.grad
    for name, ref in (("W", W), ("V", V), ("bn/gamma", g), ("bn/beta", b),
                      ("bn/moving_mean", rm), ("bn/moving_variance", rv)):
        np.testing.assert_allclose(np.ravel(m.value_of(name)), ref.detach().numpy().ravel(),
                                   rtol=1e-10, err_msg=name)
    # eval mode after training: the running averages, as torch's training=False
    out = F.batch_norm(torch.tensor(X) @ W, rm, rv, g, b, training=False, eps=1e-3) @ V
    np.testing.assert_allclose(m.predict(X, node="pred"), out.detach().numpy(), rtol=1e-10)


def test_running_averages_follow_minibatches():
    rng = np.random.default_rng(8)
    X, T = rng.normal(size=(40, 4)), rng.normal(size=(40, 1))
    P = {"W": rng.normal(size=(4, 3)), "V": rng.normal(size=(3, 1))}
    m = nbbp.build(BN_NET, namespace={"X": X, "T": T, "P": P})
    m.fit(steps=200, optimizer="sgd", lr=0.0, batch_size=10, progress=False)
    h = X @ P["W"]                                  # lr 0: W never moves
    np.testing.assert_allclose(m.value_of("bn/moving_mean").ravel(), h.mean(0), atol=0.15)
    np.testing.assert_allclose(m.value_of("bn/moving_variance").ravel(), h.var(0, ddof=1),
                               rtol=0.2)


# -- mistakes -------------------------------------------------------------------------
@pytest.mark.parametrize("src,message", [
    ("x = param(np.ones((2, 3)))\ny = dropout(x, 1.0)",
     "dropout(x): rate 1.0 is outside [0, 1): rate is the fraction of units dropped "
     "(keep_prob = 1 − rate), e.g. rate=0.5"),
    ("x = param(np.ones((2, 3)))\ny = dropout(x, -0.1)", "dropout(x): rate -0.1 is outside"),
    ("x = param(np.ones((2, 3)))\ny = dropout(x, '0.5')", "dropout(x): rate '0.5' is outside"),
    ("x = param(2.0)\ny = batch_norm(x)",
     "batch_norm(x): x is a scalar; batch norm takes the statistics over a batch"),
    ("x = param(np.ones((2, 3)))\ny = batch_norm(x, axes=2)",
     "batch_norm(x): axis 2 is out of range for x of shape (2, 3) (axes 0..1, or −2..−1)"),
    ("x = param(np.ones((2, 3)))\ny = batch_norm(x, axes=(0, -2))",
     "batch_norm(x): axes (0, -2) name an axis twice"),
    ("x = param(np.ones((2, 3)))\ny = batch_norm(x, axes='rows')",
     "batch_norm(x): axes 'rows' must be an axis or a tuple of axes of x (2, 3)"),
    ("x = param(np.ones((2, 3)))\ny = batch_norm(x, momentum=1.5)",
     "batch_norm(x): momentum 1.5 is outside [0, 1]"),
    ("x = input(np.ones((2, 3)), dtype='int32')\ny = dropout(x, 0.5)",
     "dropout(x): x is int32; dropout takes floating values"),
])
def test_mistakes_are_one_line_errors_with_the_cell_line(src, message):
    with pytest.raises(NbbpError) as err:
        nbbp.build(src)
    first = str(err.value).splitlines()[0]        # then the cell line and a caret
    assert first.startswith("line 2, col ") and message in first, first


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_check_grads_passes_through_dropout_and_batch_norm(mode):
    """Finite differences (order 1 and 2) of a model with both layers, in each mode; the
    flag and the counter are not perturbed."""
    m = nbbp.build("x = param(randn(5, 4))\nW = param(randn(4, 3))\n"
                   "h = batch_norm(dropout(x @ W, 0.4, seed=2))\nloss = sum(tanh(h) * h)",
                   seed=1)
    assert set(nbbp.check_grads(m.set_mode(mode))) == {"order 1", "order 2"}


def test_the_train_mode_picture_shows_the_mask_and_is_deterministic():
    def picture(mode):
        m = nbbp.build("x = param(np.ones((2, 3)))\ny = dropout(x, 0.5, seed=4)\n"
                       "loss = sum(y * y)")
        return m.set_mode(mode).to_dot()
    train, evald = picture("train"), picture("eval")
    assert train == picture("train") and evald == picture("eval")
    assert train != evald                      # the mask's zeros reach y and the loss


CNN32 = """
x = input(X); t = input(Y, dtype="int32")
with scope("conv"):
    K = param(randn(3, 3, 1, 8) * 0.3)
    h = relu(batch_norm(conv2d(x, K), name="bn"))
p = max_pool(h, 2)
with scope("dense"):
    W = param(randn(128, 10) * 0.1); b = param(zeros(10))
    logits = dropout(flatten(p), 0.3) @ W + b
loss = sparse_softmax_cross_entropy(logits, t)
"""


def test_a_float32_cnn_with_both_layers_trains_the_same_in_both_engines():
    """conv → batch_norm → relu → pool → dropout → dense on float32 digits with int32
    labels and minibatches: the compiled loop against the NumPy reference loop."""
    X, y, _, _ = nbbp.datasets.digits(test=0.2, seed=0, dtype="float32")
    models = [nbbp.build(CNN32, namespace={"X": X[:200], "Y": y[:200]}, seed=0,
                         dtype="float32", engine=e) for e in ("numba", "python")]
    for m in models:
        m.fit(steps=20, optimizer=nbbp.optim.Adam(lr=0.01), batch_size=32, progress=False)
    a, b = models
    np.testing.assert_allclose(a.history.loss, b.history.loss, rtol=2e-5)
    for k in ("conv/K", "dense/W", "conv/bn/gamma", "conv/bn/moving_mean",
              "conv/bn/moving_variance"):
        assert a.value_of(k).dtype == np.float32, k
        np.testing.assert_allclose(a.value_of(k), b.value_of(k), rtol=1e-4, atol=1e-6,
                                   err_msg=k)
    assert a.value_of("rng_counter") == 20 == b.value_of("rng_counter")
