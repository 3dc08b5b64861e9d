"""nbbp.from_jax against JAX itself: forward value, jax.grad for every param, and for
every top-level jaxpr value the gradient of the output with respect to it (a zero
added to each value as the jaxpr is evaluated, differentiated by jax.grad)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src import core as jax_core

import nbbp
from nbbp.importers.jax import capture

rng = np.random.default_rng(0)


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def check(fn, params, *args):
    imp = capture(fn, params, *args)
    m, closed = imp.model, imp.program
    with jax.enable_x64(True):
        assert rel(m.value, fn(params, *args)) < 1e-12
        g = jax.grad(fn)(params, *args)
        for path, v in jax.tree_util.tree_flatten_with_path(g)[0]:
            key = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
            assert rel(m.grads[key], v) < 1e-12, key
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
        grads = jax.grad(run)(zeros)
    for v, gv in zip(outs, grads):
        node = imp.nodes[v]
        if node.op != "const":
            assert rel(m.grad_of(node), gv) < 1e-12, str(v)
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


def test_unsupported_primitive_names_op_and_line():
    import inspect
    start = inspect.getsourcelines(test_unsupported_primitive_names_op_and_line)[1]
    f = lambda w, x: jnp.sum(jax.scipy.special.erf(x @ w)) + jnp.sum(jnp.cumsum(w))  # noqa: E731
    with pytest.raises(nbbp.NbbpError) as err:
        nbbp.from_jax(f, np.ones((2, 2)), np.ones((3, 2)))
    msg = str(err.value)
    assert f"erf at test_import_jax.py:{start + 3}" in msg
    assert f"cumsum at test_import_jax.py:{start + 3}" in msg and "\n" not in msg
