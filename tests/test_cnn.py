"""Convolution, pooling, flatten and sparse cross-entropy against oracles that share
no code with nbbp: plain-loop NumPy references of TF1's semantics (written out here,
element by element), central finite differences, and a trained CNN's test accuracy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import nbbp
from nbbp.core.autodiff import grad

# -- plain-loop references (TF1's conv2d / max_pool / avg_pool, NHWC, HWIO) ----------


def tf_out(n, k, s, d, padding):
    """TF1's output size and padding before along one axis."""
    keff = (k - 1) * d + 1
    if padding == "VALID":
        return (n - keff) // s + 1, 0
    out = -(-n // s)
    return out, max((out - 1) * s + keff - n, 0) // 2


def conv_taps(x_shape, w_shape, s, padding, d):
    """Every (n, i, j, kh, kw, ih, iw) where filter tap (kh, kw) of output (n, i, j)
    reads input pixel (ih, iw) inside the image (TF1's SAME/VALID geometry)."""
    N, H, W, _ = x_shape
    KH, KW = w_shape[:2]
    OH, pt = tf_out(H, KH, s, d, padding)
    OW, pl = tf_out(W, KW, s, d, padding)
    for n, i, j, kh, kw in itertools.product(range(N), range(OH), range(OW), range(KH),
                                             range(KW)):
        ih, iw = i * s + kh * d - pt, j * s + kw * d - pl
        if 0 <= ih < H and 0 <= iw < W:
            yield n, i, j, kh, kw, ih, iw


def ref_conv(x, w, s, padding, d):
    N, H, W, C = x.shape
    KH, KW, _, CO = w.shape
    y = np.zeros((N, tf_out(H, KH, s, d, padding)[0], tf_out(W, KW, s, d, padding)[0], CO))
    for n, i, j, kh, kw, ih, iw in conv_taps(x.shape, w.shape, s, padding, d):
        for c in range(C):
            for o in range(CO):
                y[n, i, j, o] += x[n, ih, iw, c] * w[kh, kw, c, o]
    return y


def ref_conv_vjp(x, w, gy, s, padding, d):
    """∂/∂x and ∂/∂w of Σ conv(x, w)·gy, by the same loops."""
    C, CO = w.shape[2:]
    gx, gw = np.zeros_like(x), np.zeros_like(w)
    for n, i, j, kh, kw, ih, iw in conv_taps(x.shape, w.shape, s, padding, d):
        for c in range(C):
            for o in range(CO):
                gx[n, ih, iw, c] += w[kh, kw, c, o] * gy[n, i, j, o]
                gw[kh, kw, c, o] += x[n, ih, iw, c] * gy[n, i, j, o]
    return gx, gw


def ref_pool(x, k, s, padding, kind, gy=None):
    """max / avg pool of x (and with gy, its VJP: max to the first maximum)."""
    N, H, W, C = x.shape
    OH, pt = tf_out(H, k, s, 1, padding)
    OW, pl = tf_out(W, k, s, 1, padding)
    y = np.zeros((N, OH, OW, C))
    gx = np.zeros_like(x)
    for n, i, j, c in itertools.product(range(N), range(OH), range(OW), range(C)):
        cells = [(ih, iw) for ih in range(i * s - pt, i * s - pt + k)
                 for iw in range(j * s - pl, j * s - pl + k) if 0 <= ih < H and 0 <= iw < W]
        vals = [x[n, ih, iw, c] for ih, iw in cells]
        if kind == "max":
            best = int(np.argmax(vals))            # the first maximum
            y[n, i, j, c] = vals[best]
            if gy is not None:
                gx[(n, *cells[best], c)] += gy[n, i, j, c]
        else:
            y[n, i, j, c] = sum(vals) / len(vals)
            if gy is not None:
                for cell in cells:
                    gx[(n, *cell, c)] += gy[n, i, j, c] / len(cells)
    return y, gx


# strides × dilation × padding (TF1 takes strides or dilation > 1, not both)
GRID = [(s, d, p) for s in (1, 2) for d in (1, 2) for p in ("SAME", "VALID")
        if not (s > 1 and d > 1)]
DTYPES = [("float64", 1e-10), ("float32", 2e-4)]


def conv_model(x, w, r, s, p, d, engine, dtype):
    with nbbp.Graph(dtype=dtype):
        xn = nbbp.param(x.astype(dtype), name="x")
        wn = nbbp.param(w.astype(dtype), name="w")
        y = nbbp.conv2d(xn, wn, strides=s, padding=p, dilation=d, name="y")
        f = nbbp.sum(y * r.astype(dtype), name="f")
    return nbbp.Model(f, engine=engine)


@pytest.mark.parametrize("dtype,tol", DTYPES)
@pytest.mark.parametrize("s,d,p", GRID)
def test_conv2d_and_its_vjps_match_plain_loops_and_finite_differences(s, d, p, engine,
                                                                      dtype, tol):
    rng = np.random.default_rng(7)
    x, w = rng.normal(size=(2, 7, 6, 3)), rng.normal(size=(3, 2, 3, 4))
    y = ref_conv(x, w, s, p, d)
    r = rng.uniform(0.5, 1.5, y.shape)
    m = conv_model(x, w, r, s, p, d, engine, dtype)
    np.testing.assert_allclose(m.value_of("y"), y, rtol=tol, atol=tol)
    gx, gw = ref_conv_vjp(x, w, r, s, p, d)
    np.testing.assert_allclose(m.grads["x"], gx, rtol=tol, atol=tol)
    np.testing.assert_allclose(m.grads["w"], gw, rtol=tol, atol=tol)
    # central differences of the plain-loop conv along a random direction
    eps = 1e-5
    for name, v in (("x", x), ("w", w)):
        u = rng.normal(size=v.shape)
        def f(t, name=name, v=v, u=u):
            args = {"x": x, "w": w, name: v + t * u}
            return float(np.sum(ref_conv(args["x"], args["w"], s, p, d) * r))
        numeric = (f(eps) - f(-eps)) / (2 * eps)
        assert float(np.sum(np.asarray(m.grads[name], dtype=float) * u)) == pytest.approx(
            numeric, rel=max(tol, 1e-7), abs=max(tol, 1e-7))


@pytest.mark.parametrize("dtype,tol", DTYPES)
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("k,s,p", [(2, 2, "VALID"), (3, 2, "SAME"), (3, 1, "SAME"),
                                   (2, 1, "VALID"), (3, 3, "SAME")])
def test_pooling_and_its_vjp_match_plain_loops(kind, k, s, p, engine, dtype, tol):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 7, 5, 3))
    y, _ = ref_pool(x, k, s, p, kind)
    r = rng.uniform(0.5, 1.5, y.shape)
    _, gx = ref_pool(x, k, s, p, kind, gy=r)
    with nbbp.Graph(dtype=dtype):
        xn = nbbp.param(x.astype(dtype), name="x")
        pool = nbbp.max_pool if kind == "max" else nbbp.avg_pool
        yn = pool(xn, k, strides=s, padding=p, name="y")
        f = nbbp.sum(yn * r.astype(dtype), name="f")
    m = nbbp.Model(f, engine=engine)
    np.testing.assert_allclose(m.value_of("y"), y, rtol=tol, atol=tol)
    np.testing.assert_allclose(m.grads["x"], gx, rtol=tol, atol=tol)
    if dtype == "float64":             # finite differences (no ties in random data)
        u = rng.normal(size=x.shape)
        eps = 1e-6
        def fd(t):
            return float(np.sum(ref_pool(x + t * u, k, s, p, kind)[0] * r))
        assert float(np.sum(m.grads["x"] * u)) == pytest.approx(
            (fd(eps) - fd(-eps)) / (2 * eps), rel=1e-6)


def test_max_pool_gives_a_tie_to_the_first_maximum_as_tf1(engine):
    x = np.zeros((1, 2, 2, 1))             # four equal values: TF1's MaxPoolGrad picks one
    with nbbp.Graph():
        xn = nbbp.param(x, name="x")
        f = nbbp.sum(nbbp.max_pool(xn, 2))
    m = nbbp.Model(f, engine=engine)
    assert m.grads["x"].ravel().tolist() == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("s,d,p", [(1, 1, "SAME"), (2, 1, "VALID"), (1, 2, "SAME")])
def test_second_derivatives_through_conv_match_differences_of_the_first(s, d, p, engine):
    """h = Σ ∂f/∂w · V with f = Σ tanh(conv(x, w))·R: ∂h/∂x (a Hessian-vector product,
    through conv2d_backprop_filter and its VJPs) against central differences of h."""
    rng = np.random.default_rng(5)
    x0, w0 = rng.normal(size=(2, 5, 5, 2)) * 0.5, rng.normal(size=(3, 3, 2, 3)) * 0.5
    V = rng.normal(size=w0.shape)

    def model(x):
        with nbbp.Graph():
            xn, wn = nbbp.param(x, name="x"), nbbp.param(w0, name="w")
            y = nbbp.conv2d(xn, wn, strides=s, padding=p, dilation=d)
            r = rng_r.uniform(0.5, 1.5, y.shape)
            f = nbbp.sum(nbbp.tanh(y) * r)
            h = nbbp.sum(grad(f, wn) * V, name="h")
        return nbbp.Model(h, engine=engine)

    rng_r = np.random.default_rng(1)
    m = model(x0)
    analytic = m.grads["x"]           # ∂h/∂x: autodiff through the backward graph
    assert {"conv2d_backprop_filter", "conv2d_backprop_input"} <= {
        n.op for n in m.graph.nodes}
    u = rng.normal(size=x0.shape)
    eps = 1e-5
    vals = []
    for t in (eps, -eps):
        rng_r = np.random.default_rng(1)
        vals.append(model(x0 + t * u).value)
    assert float(np.sum(analytic * u)) == pytest.approx((vals[0] - vals[1]) / (2 * eps),
                                                        rel=1e-6)


def test_flatten_keeps_the_batch_axis_and_new_batch_sizes():
    with nbbp.Graph():
        x = nbbp.input(np.arange(24.0).reshape(2, 3, 4, 1), name="x")
        f = nbbp.flatten(x, name="f")
    assert f.shape == (2, 12)
    m = nbbp.Model(nbbp.sum(f * f))
    np.testing.assert_array_equal(m.value_of("f"), np.arange(24.0).reshape(2, 12))


def test_sparse_softmax_cross_entropy_matches_numpy(engine):
    rng = np.random.default_rng(2)
    z, labels = rng.normal(size=(5, 4)), np.array([0, 3, 1, 1, 2])
    with nbbp.Graph():
        zn = nbbp.param(z, name="z")
        loss = nbbp.sparse_softmax_cross_entropy(zn, labels)
    m = nbbp.Model(loss, engine=engine)
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    assert m.value == pytest.approx(-logp[np.arange(5), labels].mean(), rel=1e-12)
    expected = (np.exp(logp) - np.eye(4)[labels]) / 5
    np.testing.assert_allclose(m.grads["z"], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype,ldtype", [("float64", "int64"), ("float32", "int32"),
                                          ("float64", "uint8")])
def test_sparse_softmax_cross_entropy_takes_an_integer_label_node(dtype, ldtype, engine):
    """Integer labels compared as integers (no float carrier): the same loss and
    gradient as the NumPy reference, for fed labels too."""
    rng = np.random.default_rng(3)
    z, labels = rng.normal(size=(6, 4)), np.array([0, 3, 1, 1, 2, 3])
    with nbbp.Graph(dtype=dtype):
        zn = nbbp.param(z, name="z")
        t = nbbp.input(labels, name="t", dtype=ldtype)
        loss = nbbp.sparse_softmax_cross_entropy(zn, t)
    assert not any(n.dtype == dtype for n in loss.graph.nodes
                   if n.op in ("equal", "expand_dims"))
    m = nbbp.Model(loss, engine=engine)
    tol = 1e-12 if dtype == "float64" else 2e-6
    for lab in (labels, labels[::-1]):
        m.set(t=lab)
        logp = z - z.max(1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(1, keepdims=True))
        assert float(m.value) == pytest.approx(-logp[np.arange(6), lab].mean(), rel=tol)
        np.testing.assert_allclose(m.grads["z"], (np.exp(logp) - np.eye(4)[lab]) / 6,
                                   rtol=max(tol, 1e-10), atol=tol)


# -- errors: one line, the op and both shapes, the cell line ------------------------
@pytest.mark.parametrize("src,line,message", [
    ("x = input(np.zeros((64, 8, 8, 1)))\nw = param(np.zeros((3, 3, 2, 8)))\n"
     "y = conv2d(x, w)",
     3, "conv2d: input (64, 8, 8, 1) has 1 channel, filter (3, 3, 2, 8) expects 2"),
    ("x = input(np.zeros((1, 2, 2, 1)))\ny = max_pool(x, 3)",
     2, "max_pool: the window (3, 3) is larger than the input (1, 2, 2, 1)"),
    ("z = param(np.zeros((2, 3)))\nt = input(np.array([0.0, 1.5]))\n"
     "L = sparse_softmax_cross_entropy(z, t)",
     3, "sparse_softmax_cross_entropy: label 1.5 is not an integer class index; "
     "labels are 0..2 for logits (2, 3)"),
    ("z = param(np.zeros((2, 3)))\nt = input(np.array([True, False]), dtype='bool')\n"
     "L = sparse_softmax_cross_entropy(z, t)",
     3, "sparse_softmax_cross_entropy: t is boolean, not integer class indices; labels "
     "are 0..2 for logits (2, 3): cast(t, \"int64\")"),
])
def test_cnn_mistakes_are_one_line_errors_with_the_cell_line(src, line, message):
    with pytest.raises(nbbp.NbbpError) as err:
        nbbp.build(src)
    first = str(err.value).splitlines()[0]
    assert first.startswith(f"line {line}, col ") and message in first, first


# -- a trained CNN ------------------------------------------------------------------
CNN = """
x = input(X); t = input(Y, dtype="int64")
with scope("conv"):
    k = param(randn(3, 3, 1, 8) * 0.3); kb = param(zeros(8))
    h = relu(conv2d(x, k) + kb)
p = max_pool(h, 2)
with scope("dense"):
    W = param(randn(128, 10) * 0.1); b = param(zeros(10))
    logits = flatten(p) @ W + b
loss = sparse_softmax_cross_entropy(logits, t)
"""


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_cnn_learns_the_digits(dtype):
    """conv 3×3×8 SAME → relu → 2×2 max-pool → flatten → dense 10, Adam, minibatches
    of 64: ≥ 95 % on the held-out digits."""
    X, y, Xt, yt = nbbp.datasets.digits(test=0.2, seed=0, dtype=dtype)
    m = nbbp.build(CNN, namespace={"X": X, "Y": y}, seed=0, dtype=dtype)
    m.fit(steps=600, optimizer=nbbp.optim.Adam(lr=0.01), batch_size=64, progress=False)
    pred = m.predict(Xt, node="dense/logits").argmax(axis=1)
    assert (pred == yt).mean() >= 0.95


def test_layer_norm_matches_numpy_and_finite_differences(engine):
    rng = np.random.default_rng(4)
    x, gamma, beta = rng.normal(size=(4, 6)), rng.normal(size=6), rng.normal(size=6)
    r = rng.normal(size=(4, 6))

    def ref(x):
        mu = x.mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * gamma + beta

    with nbbp.Graph():
        xn = nbbp.param(x, name="x")
        y = nbbp.layer_norm(xn, gamma=gamma, beta=beta)
        f = nbbp.sum(y * r)
    m = nbbp.Model(f, engine=engine)
    np.testing.assert_allclose(m.value_of(y), ref(x), rtol=1e-12)
    assert y.name.startswith("layer_norm/")
    u, eps = rng.normal(size=x.shape), 1e-6
    numeric = (np.sum(ref(x + eps * u) * r) - np.sum(ref(x - eps * u) * r)) / (2 * eps)
    assert float(np.sum(m.grads["x"] * u)) == pytest.approx(numeric, rel=1e-7)
