"""nbbp.from_jax against JAX itself: forward value, jax.grad for every param, and for
every top-level jaxpr value the gradient of the output with respect to it (a zero
added to each value as the jaxpr is evaluated, differentiated by jax.grad)."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax._src import core as jax_core

import nbbp
from nbbp.importers.jax import capture

rng = np.random.default_rng(0)


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def check(fn, params, *args):
    """Import ``fn`` and compare with JAX: the value, jax.grad for every param, jax.grad
    for every intermediate. Tolerance: 1e-12 in float64, 1e-5 in float32 (traced as
    JAX runs a float32 function by default, without 64-bit mode)."""
    imp = capture(fn, params, *args)
    m, closed = imp.model, imp.program
    x64 = m.output.dtype == "float64"
    tol = 1e-12 if x64 else 1e-5
    with jax.enable_x64(x64):
        assert rel(m.value, jax.jit(fn)(params, *args)) < tol
        g = jax.jit(jax.grad(fn))(params, *args)
        for path, v in jax.tree_util.tree_flatten_with_path(g)[0]:
            key = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path) \
                or next(iter(inspect.signature(fn).parameters))      # a bare array
            assert rel(m.grads[key], v) < tol, key
            assert m.grads[key].dtype == v.dtype, key
        jaxpr = closed.jaxpr
        flat = jax.tree_util.tree_leaves((params, *args))
        outs = [v for e in jaxpr.eqns for v in e.outvars
                if v in imp.nodes and jnp.issubdtype(v.aval.dtype, jnp.floating)]

        def run(deltas):
            env = dict(zip(jaxpr.invars, flat))
            env.update(zip(jaxpr.constvars, closed.consts))
            read = lambda v: v.val if hasattr(v, "val") else env[v]
            for e in jaxpr.eqns:
                ins = [read(v) for v in e.invars]
                inner = e.params.get("jaxpr", e.params.get("call_jaxpr"))
                if inner is not None:            # jit / custom_jvp calls: run the inside
                    rs = jax_core.jaxpr_as_fun(inner)(*ins)
                else:
                    r = e.primitive.bind(*ins, **e.params)
                    rs = r if e.primitive.multiple_results else [r]
                for v, x in zip(e.outvars, rs):
                    env[v] = x + deltas[outs.index(v)] if v in outs else x
            return read(jaxpr.outvars[0]).sum()

        zeros = [jnp.zeros(v.aval.shape, v.aval.dtype) for v in outs]
        grads = jax.jit(jax.grad(run))(zeros)     # one compile, not one per primitive
    for v, gv in zip(outs, grads):
        node = imp.nodes[v]
        if node.op != "const":
            assert rel(m.grad_of(node), gv) < tol, str(v)
    return m


def mlp(p, x, y):
    h = jnp.tanh(x @ p["hidden"]["W"] + p["hidden"]["b"])
    logits = h @ p["out"]["W"] + p["out"]["b"]
    return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * jax.nn.one_hot(y, 3), -1))


def attention(p, x):
    q, k, v = x @ p["q"], x @ p["k"], x @ p["v"]
    a = jax.nn.softmax(jnp.einsum("bsd,btd->bst", q, k) / 2.0)
    y = jnp.einsum("bst,btd->bsd", a, v) + x
    mu = y.mean(-1, keepdims=True)
    n = (y - mu) / jnp.sqrt(((y - mu) ** 2).mean(-1, keepdims=True) + 1e-5)
    return (n * jax.nn.sigmoid(y)).sum() + jnp.maximum(y, 0.1).sum() + jax.nn.relu(y[:, 1:]).sum()


def rnn(p, xs):
    h = jnp.zeros((2, 4))
    for t in range(xs.shape[0]):
        h = jnp.tanh(xs[t] @ p["Wx"] + h @ p["Wh"] + p["b"])
    return (h ** 2).sum()


def test_mlp_softmax_cross_entropy():
    p = {"hidden": {"W": rng.normal(size=(2, 5)), "b": np.zeros(5)},
         "out": {"W": rng.normal(size=(5, 3)), "b": np.zeros(3)}}
    m = check(mlp, p, rng.normal(size=(6, 2)), np.array([0, 1, 2, 2, 1, 0]))
    assert list(m.params) == ["hidden/W", "hidden/b", "out/W", "out/b"]
    assert list(m.inputs) == ["x"]      # integer labels are constants


def test_attention_layer_norm():
    p = {k: rng.normal(size=(4, 4)) * 0.5 for k in "qkv"}
    check(attention, p, rng.normal(size=(2, 3, 4)))


def test_unrolled_rnn():
    p = {"Wx": rng.normal(size=(3, 4)), "Wh": rng.normal(size=(4, 4)) * 0.5, "b": np.zeros(4)}
    check(rnn, p, rng.normal(size=(3, 2, 3)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exact_gelu_and_erf(dtype):
    """jax.nn.gelu(approximate=False) is written with erfc: 1 − erf in nbbp."""
    def f(p, x):
        h = jax.nn.gelu(x @ p["W"], approximate=False)
        return (jax.scipy.special.erf(h) * h).sum()
    r = np.random.default_rng(5)
    m = check(f, {"W": r.normal(size=(3, 4)).astype(dtype)}, r.normal(size=(5, 3)).astype(dtype))
    assert [n.op for n in m.forward].count("erf") == 2


def cnn(p, x, y, layout="NHWC"):
    """conv → relu → max pool → batch norm (jnp mean/var) → flatten → linear →
    softmax cross-entropy, in plain JAX (no flax): ``lax.conv_general_dilated`` and
    ``lax.reduce_window`` in NHWC, or ``lax.conv`` (NCHW/OIHW) in NCHW."""
    if layout == "NHWC":
        h = lax.conv_general_dilated(x, p["conv"]["w"], (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        window, axes = (1, 2, 2, 1), (0, 1, 2)
    else:
        h = jax.lax.conv(x, p["conv"]["w"], (1, 1), "VALID")
        window, axes = (1, 1, 2, 2), (0, 2, 3)
    h = jax.nn.relu(h + p["conv"]["b"].reshape((1, 1, 1, -1) if layout == "NHWC" else (1, -1, 1, 1)))
    h = lax.reduce_window(h, -jnp.inf, lax.max, window, window, "VALID")
    mu, var = h.mean(axis=axes, keepdims=True), h.var(axis=axes, keepdims=True)
    h = (h - mu) / jnp.sqrt(var + 1e-5)
    h = lax.reduce_window(h, 0.0, lax.add, window, (1, 1, 1, 1), "SAME") / 4.0
    logits = h.reshape(h.shape[0], -1) @ p["fc"]["W"] + p["fc"]["b"]
    return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * jax.nn.one_hot(y, 3), -1))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_small_cnn(layout, dtype):
    r = np.random.default_rng(3)
    w = r.normal(size=(3, 3, 2, 4) if layout == "NHWC" else (4, 2, 3, 3))
    feats = 3 * 3 * 4 if layout == "NHWC" else 2 * 2 * 4
    p = {"conv": {"w": w, "b": r.normal(size=4) * 0.1},
         "fc": {"W": r.normal(size=(feats, 3)) * 0.3, "b": np.zeros(3)}}
    p = jax.tree_util.tree_map(lambda a: a.astype(dtype), p)
    x = r.normal(size=(2, 6, 6, 2) if layout == "NHWC" else (2, 2, 6, 6)).astype(dtype)
    m = check(lambda p, x, y: cnn(p, x, y, layout), p, x, np.array([0, 2]))
    assert m.output.dtype == np.dtype(dtype).name
    assert sorted(m.params) == ["conv/b", "conv/w", "fc/W", "fc/b"]
    ops_ = [n.op for n in m.forward]
    assert ops_.count("conv2d") == 1 and ops_.count("max_pool") == 1
    assert ops_.count("transpose") == (0 if layout == "NHWC" else 2 * 3 + 1)


@pytest.mark.parametrize("dims, pad", [(("NHWC", "HWIO", "NCHW"), ((1, 0), (2, 1))),
                                       (("NCHW", "OIHW", "NHWC"), "SAME"),
                                       (("NCHW", "HWIO", "NCHW"), ((0, 0), (1, 1)))])
def test_conv_dimension_numbers_and_padding(dims, pad):
    r = np.random.default_rng(4)
    lhs = {"NHWC": (2, 5, 6, 3), "NCHW": (2, 3, 5, 6)}[dims[0]]
    rhs = {"HWIO": (3, 2, 3, 4), "OIHW": (4, 3, 3, 2)}[dims[1]]

    def f(w, x):
        y = lax.conv_general_dilated(x, w, (2, 1), pad, dimension_numbers=dims)
        z = lax.reduce_window(y, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 1, 2, 1),
                              ((0, 0), (1, 0), (0, 1), (0, 0)))
        return jnp.tanh(z).sum()
    check(f, r.normal(size=rhs), r.normal(size=lhs))


def test_unsupported_primitive_names_op_and_line():
    start = inspect.getsourcelines(test_unsupported_primitive_names_op_and_line)[1]
    f = lambda w, x: jnp.sum(lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=2)) + jnp.sum(jnp.cumsum(w))  # noqa: E731,E501
    with pytest.raises(nbbp.NbbpError) as err:
        nbbp.from_jax(f, np.ones((2, 1, 3, 3)), np.ones((1, 2, 4, 4)))
    here = f"test_import_jax.py:{start + 2}"
    assert str(err.value) == (
        f"from_jax: nbbp has no op for conv_general_dilated with feature_group_count=2, "
        f"batch_group_count=1 (grouped; nbbp's conv2d takes 1) at {here}; cumsum at {here}. "
        "See docs/import.md for the ops that import.")
