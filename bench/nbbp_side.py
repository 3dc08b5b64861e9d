"""nbbp's side of the benchmark.

Every hook builds its model once (outside the timed call) and returns a
:class:`bench.workloads.Prepared` whose ``run()`` is one compiled call:
``Model.compute()`` runs forward + backward over the leaf values already in the
model's arena, and ``extract`` reads the results (not timed): the *kernel-only*
rows. The fwd+bwd rows of W3, W4 and W6 do what the peers do instead — the loss and
the params' gradients of a function of the params (``m.function(*params,
wrt=params)``, whose backward pass leaves out ∂loss/∂input and the picture's edges, as
``jax.grad`` of the params does), params written and gradients returned each call;
the W4 row "every gradient" keeps the kernel-only run of the whole backward pass.
The scalar rows that time what a user's loop pays — new inputs, results read back,
for every system alike — are in :mod:`bench.calls`, which builds its scalar models
with :func:`model`. The SGD-step rows run the compiled training loop
(``Model.train_loop``, what ``Model.fit`` runs) one step per call.

Result keys are those documented in :mod:`bench.run`.
"""

from __future__ import annotations

import numpy as np

from bench import workloads as wl
from bench.workloads import Prepared

W1_SOURCE = "x = param(3.0)\ny = param(2.0)\nf = x*x*y + y + 1"
W2_SOURCE = """
x1 = input(2.0); x2 = input(0.0)
w1 = param(-3.0); w2 = param(1.0); b = param(6.8813735870195432)
o = tanh(x1*w1 + x2*w2 + b)
"""
W3_SOURCE = """
x = input(X); y = input(Y)
W1 = param(P["W1"]); b1 = param(P["b1"])
W2 = param(P["W2"]); b2 = param(P["b2"])
W3 = param(P["W3"]); b3 = param(P["b3"])
h1 = relu(x @ W1 + b1)
h2 = relu(h1 @ W2 + b2)
s = h2 @ W3 + b3
reg = sum(W1**2) + sum(b1**2) + sum(W2**2) + sum(b2**2) + sum(W3**2) + sum(b3**2)
loss = mean(relu(1 - y * s)) + alpha * reg
"""
W4_SOURCE = """
x = input(X); y = input(Y)
W1 = param(P["W1"]); b1 = param(P["b1"])
W2 = param(P["W2"]); b2 = param(P["b2"])
h = relu(x @ W1 + b1)
logits = h @ W2 + b2
loss = mean(-sum(y * log_softmax(logits, axis=1), axis=1))
"""

W6_SOURCE = """
x = input(X); t = input(T)
K = param(P["K"]); kb = param(P["kb"])
h = relu(conv2d(x, K, padding="SAME") + kb)
p = max_pool(h, 2)
W = param(P["W"]); b = param(P["b"])
logits = flatten(p) @ W + b
loss = sparse_softmax_cross_entropy(logits, t)
"""


def _nbbp():
    import nbbp
    return nbbp


def _leaf_grads(m, names) -> dict:
    return {k: m.grad_of(k) for k in names}


def _step(loop, names, steps: int = 1) -> Prepared:
    """``steps`` SGD steps (forward, backward, update) per call of the compiled loop."""
    return Prepared(lambda: loop.run(steps), lambda _: {"loss": loop.last_loss,
                                                        **{k: loop.value_of(k) for k in names}})


def _params_call(m, names) -> Prepared:
    """fwd+bwd as the peers time it: ``f(*params)`` returns the loss and fresh copies of
    the params' gradients (``f = m.function(*names, wrt=names)``)."""
    f = m.function(*names, wrt=names)
    params = [m.value_of(k) for k in names]
    return Prepared(lambda: f(*params), lambda r: {"loss": r[0], **dict(zip(names, r[1]))})


def model(workload: str):
    """The nbbp model of the scalar workload W1, W2 or W5."""
    nbbp = _nbbp()
    if workload == "W1":
        return nbbp.build(W1_SOURCE)
    if workload == "W2":
        return nbbp.build(W2_SOURCE)
    with nbbp.Graph():
        x = nbbp.param(wl.W5_X0, name="x")
        v = x
        for k in range(wl.W5_N):
            r = k % 3
            v = nbbp.sin(v) if r == 0 else (v * wl.W5_MUL if r == 1 else v + wl.W5_ADD)
    return nbbp.Model(v)


def nbbp_w1() -> Prepared:
    """W1 ``f = x*x*y + y + 1`` at x=3, y=2: forward + backward."""
    m = model("W1")
    return Prepared(m.compute, lambda _: {"f": m.value, **_leaf_grads(m, ("x", "y"))})


def nbbp_w2() -> Prepared:
    """W2 ``o = tanh(x1*w1 + x2*w2 + b)``: forward + backward."""
    m = model("W2")
    names = ("x1", "w1", "x2", "w2", "b")
    return Prepared(m.compute, lambda _: {"o": m.value, **_leaf_grads(m, names)})


def _w3_model():
    X, y = wl.w3_data()
    ns = {"X": X, "Y": y[:, None], "P": wl.w3_init_params(), "alpha": wl.W3_ALPHA}
    return _nbbp().build(W3_SOURCE, namespace=ns)


def nbbp_w3(step: bool, steps: int = 1) -> Prepared:
    """W3 MLP 2-16-16-1 on the moons: fwd+bwd, or ``steps`` SGD steps per call."""
    m = _w3_model()
    if step:
        return _step(m.train_loop("sgd", lr=wl.W3_LR), wl.W3_PARAM_NAMES, steps)
    return _params_call(m, wl.W3_PARAM_NAMES)


def nbbp_w4(dtype: str, step: bool, every: bool = False) -> Prepared:
    """W4 MLP 784-128-10 in float64 or float32 (a float32 model computes, trains and
    returns its values in float32); ``every``: the whole backward pass, kernel only."""
    X, labels, params = wl.w4_data(dtype)
    Y = np.eye(wl.W4_SIZES[2], dtype=wl.np_dtype(dtype))[labels]
    m = _nbbp().build(W4_SOURCE, namespace={"X": X, "Y": Y, "P": params},
                      dtype={"f64": "float64", "f32": "float32"}[dtype])
    if step:
        return _step(m.train_loop("sgd", lr=wl.W4_LR), wl.W4_PARAM_NAMES)
    if not every:
        return _params_call(m, wl.W4_PARAM_NAMES)
    return Prepared(m.compute, lambda _: {"loss": m.value,
                                          **_leaf_grads(m, wl.W4_PARAM_NAMES)})


def nbbp_w6(dtype: str, step: bool) -> Prepared:
    """W6 small CNN on the digits (conv 3×3×8 SAME, relu, 2×2 max-pool, dense 10,
    sparse softmax cross-entropy), batch 64, in float64 or float32."""
    X, labels, params = wl.w6_data(dtype)
    dt = {"f64": "float64", "f32": "float32"}[dtype]
    m = _nbbp().build(W6_SOURCE, namespace={"X": X, "T": labels.astype(dt), "P": params},
                      dtype=dt)
    if step:
        return _step(m.train_loop("sgd", lr=wl.W6_LR), wl.W6_PARAM_NAMES)
    return _params_call(m, wl.W6_PARAM_NAMES)


def nbbp_w5() -> Prepared:
    """W5 chain of 1000 scalar ops (sin, *1.001, +0.0005 in turn): value and derivative."""
    m = model("W5")
    return Prepared(m.compute, lambda _: {"value": m.value, "x": m.grad_of("x")})


def nbbp_s1() -> Prepared:
    """S1 slider update of a ~100-node graph: set + recompute + new picture text."""
    from bench.bench_slider import s1_prepared
    return s1_prepared()


def nbbp_s2_code() -> str:
    """S2: a fresh process imports nbbp, builds and runs W1, prints f df/dx df/dy."""
    return ("import nbbp; m = nbbp.build('x = param(3.0)\\ny = param(2.0)\\n"
            "f = x*x*y + y + 1'); print(m.value, m.grads['x'], m.grads['y'])")
