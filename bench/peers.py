"""Peer implementations of W1-W5: micrograd, HIPS autograd, PyTorch eager, JAX jit, hand NumPy.

Each ``_<peer>_<workload>(case)`` imports its peer lazily (so a missing peer raises
``ImportError``, which the harness reports as "missing") and returns a
:class:`~bench.workloads.Prepared`.  Setup work that a real program would do once —
building leaves, converting data, jit-compiling — happens outside the timed ``run``;
what ``run`` does is one forward + backward (or one SGD step), like a training loop
or a slider callback would.

Notes per peer:

* micrograd 0.1.0 has no ``tanh`` or ``sin``; W2/W5 add them the way micrograd itself
  defines ops (a new ``Value`` with a local ``_backward`` closure).  Its recursive
  topological sort needs a higher recursion limit for W5.  W3 uses ``micrograd.nn.MLP``
  (ReLU hidden, linear out) with its weights overwritten by the shared init.  W4 is not
  run (100k scalar weights x 64 samples is out of micrograd's reach): "n/a".
* HIPS autograd: ``value_and_grad`` with ``autograd.numpy``.
* PyTorch: eager tensors, ``torch.autograd.grad`` (no ``.grad`` accumulation); the SGD
  step updates the leaves in place under ``no_grad``; ``torch.set_num_threads`` is
  applied from :func:`configure`.
* JAX: ``jax.jit(jax.value_and_grad(...))`` with ``jax_enable_x64`` switched on (f32
  cases use explicit float32 arrays); the SGD step is one jitted function returning
  the new parameters, with the old ones donated.  Results are blocked on.
* hand NumPy: the hand-derived math of :mod:`bench.workloads` (plain Python floats for
  the scalar workloads W1, W2, W5).
* hand Numba: W3's training step only, written as plain loops in one ``@njit``
  function (:mod:`bench.hand_numba`) — the limit for nbbp's compiled loop.
"""

from __future__ import annotations

import importlib.metadata
import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from bench import workloads as wl
from bench.workloads import Case, Prepared, Result

PEERS: tuple[str, ...] = ("micrograd", "autograd", "torch", "jax", "numpy", "numba")
TITLES: dict[str, str] = {
    "nbbp": "nbbp",
    "micrograd": "micrograd",
    "autograd": "HIPS autograd",
    "torch": "PyTorch eager",
    "jax": "JAX jit",
    "numpy": "hand NumPy",
    "numba": "hand Numba",
}
DISTRIBUTIONS: dict[str, str] = {
    "micrograd": "micrograd",
    "autograd": "autograd",
    "torch": "torch",
    "jax": "jax",
    "numpy": "numpy",
    "numba": "numba",
}

_THREADS = 1


class NotApplicable(Exception):
    """The peer has no implementation of this case (shown as "n/a", not as missing)."""


def configure(threads: int) -> None:
    """Set the intra-op thread count that peers which manage their own pools (torch) use."""
    global _THREADS
    _THREADS = threads


def version(peer: str) -> str | None:
    """Installed version of a peer's distribution, or None if it is not installed."""
    try:
        return importlib.metadata.version(DISTRIBUTIONS[peer])
    except importlib.metadata.PackageNotFoundError:
        return None


def _w3_lists() -> tuple[list[list[float]], list[float]]:
    X, y = wl.w3_data()
    return X.tolist(), y.tolist()


def _tonp(x: Any) -> np.ndarray:
    """Any array-like (NumPy, torch, JAX) to a float64 NumPy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


# =========================================================================== micrograd


def _mg_value() -> Any:
    from micrograd.engine import Value

    return Value


def _mg_unary(v: Any, value: float, local: float, op: str) -> Any:
    """A micrograd op with one input and local derivative ``local``, built like ``relu``."""
    out = type(v)(value, (v,), op)

    def _backward() -> None:
        v.grad += local * out.grad

    out._backward = _backward
    return out


def _mg_w1(case: Case) -> Prepared:
    Value = _mg_value()

    def run() -> Any:
        x, y = Value(wl.W1_INPUTS["x"]), Value(wl.W1_INPUTS["y"])
        f = x * x * y + y + 1
        f.backward()
        return f, x, y

    return Prepared(run, lambda r: {"f": r[0].data, "x": r[1].grad, "y": r[2].grad})


def _mg_w2(case: Case) -> Prepared:
    Value = _mg_value()
    names = ("x1", "x2", "w1", "w2", "b")

    def tanh(v: Any) -> Any:
        t = math.tanh(v.data)
        return _mg_unary(v, t, 1.0 - t * t, "tanh")

    def run() -> Any:
        leaves = {k: Value(wl.W2_INPUTS[k]) for k in names}
        o = tanh(leaves["x1"] * leaves["w1"] + leaves["x2"] * leaves["w2"] + leaves["b"])
        o.backward()
        return o, leaves

    return Prepared(run, lambda r: {"o": r[0].data, **{k: v.grad for k, v in r[1].items()}})


def _mg_w3(case: Case) -> Prepared:
    _mg_value()
    from micrograd.nn import MLP

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
    model = MLP(wl.W3_SIZES[0], list(wl.W3_SIZES[1:]))
    init = wl.w3_init_params()
    # Our parameters in our names: W[l][i, j] is weight i of neuron j in layer l.
    named: dict[str, list[Any]] = {}
    for li, layer in enumerate(model.layers, start=1):
        W, b = init[f"W{li}"], init[f"b{li}"]
        for j, neuron in enumerate(layer.neurons):
            for i, w in enumerate(neuron.w):
                w.data = float(W[i, j])
            neuron.b.data = float(b[j])
        named[f"W{li}"] = [neuron.w[i] for i in range(W.shape[0]) for neuron in layer.neurons]
        named[f"b{li}"] = [neuron.b for neuron in layer.neurons]
    params = model.parameters()
    Xl, yl = _w3_lists()

    def loss() -> Any:
        scores = [model(x) for x in Xl]
        losses = [(1 + -yi * si).relu() for yi, si in zip(yl, scores, strict=True)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = wl.W3_ALPHA * sum(p * p for p in params)
        return data_loss + reg_loss

    def run() -> float:
        model.zero_grad()
        total = loss()
        total.backward()
        if case.step:
            for p in params:
                p.data -= wl.W3_LR * p.grad
        return total.data

    def extract(ret: object) -> Result:
        attr = "data" if case.step else "grad"
        out: Result = {"loss": float(ret)}  # type: ignore[arg-type]
        for k, vals in named.items():
            out[k] = np.array([getattr(v, attr) for v in vals], dtype=np.float64).reshape(
                init[k].shape
            )
        return out

    return Prepared(run, extract)


def _mg_w4(case: Case) -> Prepared:
    raise NotApplicable("micrograd is scalar-only; W4 is not run")


def _mg_w5(case: Case) -> Prepared:
    Value = _mg_value()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))

    def sin(v: Any) -> Any:
        return _mg_unary(v, math.sin(v.data), math.cos(v.data), "sin")

    def run() -> Any:
        x = Value(wl.W5_X0)
        v = x
        for k in range(wl.W5_N):
            r = k % 3
            v = sin(v) if r == 0 else (v * wl.W5_MUL if r == 1 else v + wl.W5_ADD)
        v.backward()
        return v, x

    return Prepared(run, lambda r: {"value": r[0].data, "x": r[1].grad})


# =========================================================================== HIPS autograd


def _ag() -> tuple[Any, Any]:
    import autograd
    import autograd.numpy as anp

    return autograd, anp


def _ag_w1(case: Case) -> Prepared:
    autograd, _ = _ag()
    vg = autograd.value_and_grad(lambda x, y: x * x * y + y + 1.0, argnum=(0, 1))
    x, y = wl.W1_INPUTS["x"], wl.W1_INPUTS["y"]
    return Prepared(lambda: vg(x, y), lambda r: {"f": r[0], "x": r[1][0], "y": r[1][1]})  # type: ignore[index]


def _ag_w2(case: Case) -> Prepared:
    autograd, anp = _ag()
    names = ("x1", "x2", "w1", "w2", "b")

    def f(x1: Any, x2: Any, w1: Any, w2: Any, b: Any) -> Any:
        return anp.tanh(x1 * w1 + x2 * w2 + b)

    vg = autograd.value_and_grad(f, argnum=(0, 1, 2, 3, 4))
    args = tuple(wl.W2_INPUTS[k] for k in names)
    return Prepared(lambda: vg(*args), lambda r: {"o": r[0], **dict(zip(names, r[1], strict=True))})  # type: ignore[index]


def _ag_w3(case: Case) -> Prepared:
    autograd, anp = _ag()
    X, y = wl.w3_data()
    init = wl.w3_init_params()
    state = [init[k] for k in wl.W3_PARAM_NAMES]

    def loss(p: list[Any]) -> Any:
        W1, b1, W2, b2, W3, b3 = p
        h1 = anp.maximum(anp.dot(X, W1) + b1, 0.0)
        h2 = anp.maximum(anp.dot(h1, W2) + b2, 0.0)
        s = (anp.dot(h2, W3) + b3)[:, 0]
        reg = sum(anp.sum(q * q) for q in p)
        return anp.mean(anp.maximum(1.0 - y * s, 0.0)) + wl.W3_ALPHA * reg

    vg = autograd.value_and_grad(loss)
    return _ag_prepare(case, vg, state, wl.W3_PARAM_NAMES, wl.W3_LR)


def _ag_w4(case: Case) -> Prepared:
    autograd, anp = _ag()
    X, labels, init = wl.w4_data(case.dtype)
    rows = np.arange(len(labels))
    state = [init[k] for k in wl.W4_PARAM_NAMES]

    def loss(p: list[Any]) -> Any:
        W1, b1, W2, b2 = p
        h1 = anp.maximum(anp.dot(X, W1) + b1, 0.0)
        logits = anp.dot(h1, W2) + b2
        m = anp.max(logits, axis=1, keepdims=True)
        lse = m[:, 0] + anp.log(anp.sum(anp.exp(logits - m), axis=1))
        return anp.mean(lse - logits[rows, labels])

    vg = autograd.value_and_grad(loss)
    return _ag_prepare(case, vg, state, wl.W4_PARAM_NAMES, wl.W4_LR)


def _ag_prepare(
    case: Case, vg: Callable[[Any], Any], state: list[Any], names: tuple[str, ...], lr: float
) -> Prepared:
    """fwd+bwd or SGD step around an autograd ``value_and_grad`` of a list of arrays."""
    if not case.step:
        return Prepared(
            lambda: vg(state),
            lambda r: {"loss": float(r[0]), **dict(zip(names, r[1], strict=True))},
        )  # type: ignore[index]

    def run() -> float:
        value, grads = vg(state)
        state[:] = [p - lr * g for p, g in zip(state, grads, strict=True)]
        return float(value)

    return Prepared(run, lambda r: {"loss": r, **dict(zip(names, state, strict=True))})  # type: ignore[dict-item]


def _ag_w5(case: Case) -> Prepared:
    autograd, anp = _ag()

    def f(x: Any) -> Any:
        for k in range(wl.W5_N):
            r = k % 3
            x = anp.sin(x) if r == 0 else (x * wl.W5_MUL if r == 1 else x + wl.W5_ADD)
        return x

    vg = autograd.value_and_grad(f)
    return Prepared(lambda: vg(wl.W5_X0), lambda r: {"value": r[0], "x": r[1]})  # type: ignore[index]


# =========================================================================== PyTorch eager


def _torch() -> Any:
    import torch

    if torch.get_num_threads() != _THREADS:
        torch.set_num_threads(_THREADS)
    return torch


def _torch_dtype(torch: Any, dtype: str) -> Any:
    return {"f64": torch.float64, "f32": torch.float32}[dtype]


def _torch_w1(case: Case) -> Prepared:
    torch = _torch()
    x = torch.tensor(wl.W1_INPUTS["x"], dtype=torch.float64, requires_grad=True)
    y = torch.tensor(wl.W1_INPUTS["y"], dtype=torch.float64, requires_grad=True)

    def run() -> Any:
        f = x * x * y + y + 1.0
        return (f.detach(), *torch.autograd.grad(f, (x, y)))

    return Prepared(run, lambda r: {"f": r[0].item(), "x": r[1].item(), "y": r[2].item()})  # type: ignore[index]


def _torch_w2(case: Case) -> Prepared:
    torch = _torch()
    names = ("x1", "x2", "w1", "w2", "b")
    t = {k: torch.tensor(wl.W2_INPUTS[k], dtype=torch.float64, requires_grad=True) for k in names}
    leaves = tuple(t[k] for k in names)

    def run() -> Any:
        o = torch.tanh(t["x1"] * t["w1"] + t["x2"] * t["w2"] + t["b"])
        return (o.detach(), *torch.autograd.grad(o, leaves))

    return Prepared(
        run,
        lambda r: {"o": r[0].item(), **{k: g.item() for k, g in zip(names, r[1:], strict=True)}},
    )  # type: ignore[index]


def _torch_w3(case: Case) -> Prepared:
    torch = _torch()
    Xn, yn = wl.w3_data()
    X, y = torch.from_numpy(Xn), torch.from_numpy(yn)
    init = wl.w3_init_params()
    params = [torch.tensor(init[k], requires_grad=True) for k in wl.W3_PARAM_NAMES]

    def loss() -> Any:
        W1, b1, W2, b2, W3, b3 = params
        h1 = torch.relu(X @ W1 + b1)
        h2 = torch.relu(h1 @ W2 + b2)
        s = (h2 @ W3 + b3)[:, 0]
        reg = sum((p * p).sum() for p in params)
        return torch.relu(1.0 - y * s).mean() + wl.W3_ALPHA * reg

    return _torch_prepare(case, torch, loss, params, wl.W3_PARAM_NAMES, wl.W3_LR)


def _torch_w4(case: Case) -> Prepared:
    torch = _torch()
    F = torch.nn.functional
    Xn, labels_n, init = wl.w4_data(case.dtype)
    X, labels = torch.from_numpy(Xn), torch.from_numpy(labels_n)
    params = [torch.tensor(init[k], requires_grad=True) for k in wl.W4_PARAM_NAMES]

    def loss() -> Any:
        W1, b1, W2, b2 = params
        logits = torch.relu(X @ W1 + b1) @ W2 + b2
        return F.cross_entropy(logits, labels)

    return _torch_prepare(case, torch, loss, params, wl.W4_PARAM_NAMES, wl.W4_LR)


def _torch_w6(case: Case) -> Prepared:
    torch = _torch()
    F = torch.nn.functional
    Xn, labels_n, init = wl.w6_data(case.dtype)
    X = torch.from_numpy(Xn).permute(0, 3, 1, 2).contiguous()      # NCHW
    labels = torch.from_numpy(labels_n)
    params = [torch.tensor(init[k], requires_grad=True) for k in wl.W6_PARAM_NAMES]

    def loss() -> Any:
        K, kb, W, b = params                                      # K is HWIO, as nbbp's
        h = torch.relu(F.conv2d(X, K.permute(3, 2, 0, 1), kb, padding=1))
        p = F.max_pool2d(h, 2).permute(0, 2, 3, 1).reshape(X.shape[0], -1)   # NHWC order
        return F.cross_entropy(p @ W + b, labels)

    return _torch_prepare(case, torch, loss, params, wl.W6_PARAM_NAMES, wl.W6_LR)


def _torch_prepare(
    case: Case,
    torch: Any,
    loss: Callable[[], Any],
    params: list[Any],
    names: tuple[str, ...],
    lr: float,
) -> Prepared:
    """fwd+bwd (``autograd.grad``) or an in-place SGD step around a torch loss closure."""

    def run() -> Any:
        value = loss()
        grads = torch.autograd.grad(value, params)
        if not case.step:
            return value.detach(), grads
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p.sub_(g, alpha=lr)
        return value.detach(), None

    def extract(r: Any) -> Result:
        arrays = r[1] if not case.step else params
        return {"loss": r[0].item(), **{k: _tonp(a) for k, a in zip(names, arrays, strict=True)}}

    return Prepared(run, extract)


def _torch_w5(case: Case) -> Prepared:
    torch = _torch()
    x = torch.tensor(wl.W5_X0, dtype=torch.float64, requires_grad=True)

    def run() -> Any:
        v = x
        for k in range(wl.W5_N):
            r = k % 3
            v = torch.sin(v) if r == 0 else (v * wl.W5_MUL if r == 1 else v + wl.W5_ADD)
        (g,) = torch.autograd.grad(v, (x,))
        return v.detach(), g

    return Prepared(run, lambda r: {"value": r[0].item(), "x": r[1].item()})  # type: ignore[index]


# =========================================================================== JAX jit


def _jax() -> tuple[Any, Any]:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return jax, jnp


def _jax_w1(case: Case) -> Prepared:
    jax, jnp = _jax()
    fn = jax.jit(jax.value_and_grad(lambda x, y: x * x * y + y + 1.0, argnums=(0, 1)))
    x, y = jnp.asarray(wl.W1_INPUTS["x"]), jnp.asarray(wl.W1_INPUTS["y"])
    return Prepared(
        lambda: jax.block_until_ready(fn(x, y)),
        lambda r: {"f": float(r[0]), "x": float(r[1][0]), "y": float(r[1][1])},  # type: ignore[index]
    )


def _jax_w2(case: Case) -> Prepared:
    jax, jnp = _jax()
    names = ("x1", "x2", "w1", "w2", "b")

    def f(x1: Any, x2: Any, w1: Any, w2: Any, b: Any) -> Any:
        return jnp.tanh(x1 * w1 + x2 * w2 + b)

    fn = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2, 3, 4)))
    args = tuple(jnp.asarray(wl.W2_INPUTS[k]) for k in names)
    return Prepared(
        lambda: jax.block_until_ready(fn(*args)),
        lambda r: {"o": float(r[0]), **{k: float(g) for k, g in zip(names, r[1], strict=True)}},  # type: ignore[index]
    )


def _jax_w3(case: Case) -> Prepared:
    jax, jnp = _jax()
    Xn, yn = wl.w3_data()
    X, y = jnp.asarray(Xn), jnp.asarray(yn)

    def loss(p: dict[str, Any]) -> Any:
        h1 = jax.nn.relu(X @ p["W1"] + p["b1"])
        h2 = jax.nn.relu(h1 @ p["W2"] + p["b2"])
        s = (h2 @ p["W3"] + p["b3"])[:, 0]
        reg = sum(jnp.sum(q * q) for q in p.values())
        return jnp.mean(jax.nn.relu(1.0 - y * s)) + wl.W3_ALPHA * reg

    return _jax_prepare(case, jax, jnp, loss, wl.w3_init_params(), wl.W3_LR)


def _jax_w4(case: Case) -> Prepared:
    jax, jnp = _jax()
    Xn, labels_n, init = wl.w4_data(case.dtype)
    X, labels = jnp.asarray(Xn), jnp.asarray(labels_n)

    def loss(p: dict[str, Any]) -> Any:
        logits = jax.nn.relu(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        logp = jax.nn.log_softmax(logits, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))

    return _jax_prepare(case, jax, jnp, loss, init, wl.W4_LR)


def _jax_w6(case: Case) -> Prepared:
    jax, jnp = _jax()
    Xn, labels_n, init = wl.w6_data(case.dtype)
    X, labels = jnp.asarray(Xn), jnp.asarray(labels_n)
    lax = jax.lax

    def loss(p: dict[str, Any]) -> Any:
        z = lax.conv_general_dilated(X, p["K"], (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = jax.nn.relu(z + p["kb"])
        pooled = lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        logits = pooled.reshape(X.shape[0], -1) @ p["W"] + p["b"]
        logp = jax.nn.log_softmax(logits, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))

    return _jax_prepare(case, jax, jnp, loss, init, wl.W6_LR)


def _jax_prepare(
    case: Case,
    jax: Any,
    jnp: Any,
    loss: Callable[[Any], Any],
    init: dict[str, np.ndarray],
    lr: float,
) -> Prepared:
    """Jitted fwd+bwd, or a jitted SGD step that carries the parameters in ``state``."""
    vg = jax.value_and_grad(loss)
    state = {"p": {k: jnp.asarray(v) for k, v in init.items()}}

    def extract_tree(value: Any, tree: dict[str, Any]) -> Result:
        return {
            "loss": float(value),
            **{k: np.asarray(v, dtype=np.float64) for k, v in tree.items()},
        }

    if not case.step:
        fn = jax.jit(vg)
        return Prepared(lambda: jax.block_until_ready(fn(state["p"])), lambda r: extract_tree(*r))  # type: ignore[misc]

    def sgd(p: dict[str, Any]) -> Any:
        value, g = vg(p)
        return value, jax.tree_util.tree_map(lambda a, b: a - lr * b, p, g)

    if case.steps > 1:  # the whole loop inside one jitted function
        def loop(p: dict[str, Any]) -> Any:
            def body(_: Any, carry: Any) -> Any:
                return sgd(carry[1])
            first = sgd(p)
            return jax.lax.fori_loop(1, case.steps, body, first)

        step = jax.jit(loop, donate_argnums=0)
    else:
        step = jax.jit(sgd, donate_argnums=0)

    def run() -> Any:
        value, state["p"] = jax.block_until_ready(step(state["p"]))
        return value

    return Prepared(run, lambda r: extract_tree(r, state["p"]))


def _jax_w5(case: Case) -> Prepared:
    jax, jnp = _jax()

    def f(x: Any) -> Any:
        for k in range(wl.W5_N):
            r = k % 3
            x = jnp.sin(x) if r == 0 else (x * wl.W5_MUL if r == 1 else x + wl.W5_ADD)
        return x

    fn = jax.jit(jax.value_and_grad(f))
    x0 = jnp.asarray(wl.W5_X0)
    return Prepared(
        lambda: jax.block_until_ready(fn(x0)), lambda r: {"value": float(r[0]), "x": float(r[1])}
    )  # type: ignore[index]


# =========================================================================== hand NumPy


def _np_w1(case: Case) -> Prepared:
    x, y = wl.W1_INPUTS["x"], wl.W1_INPUTS["y"]
    return Prepared(lambda: wl.hand_w1(x, y), lambda r: dict(zip(("f", "x", "y"), r, strict=True)))  # type: ignore[call-overload]


def _np_w2(case: Case) -> Prepared:
    args = tuple(wl.W2_INPUTS[k] for k in ("x1", "x2", "w1", "w2", "b"))
    keys = ("o", "x1", "w1", "x2", "w2", "b")
    return Prepared(lambda: wl.hand_w2(*args), lambda r: dict(zip(keys, r, strict=True)))  # type: ignore[call-overload]


def _np_w3(case: Case) -> Prepared:
    X, y = wl.w3_data()
    return _np_prepare(case, lambda p: wl.hand_w3_grads(p, X, y), wl.w3_init_params(), wl.W3_LR)


def _np_w4(case: Case) -> Prepared:
    X, labels, init = wl.w4_data(case.dtype)
    return _np_prepare(case, lambda p: wl.hand_w4_grads(p, X, labels), init, wl.W4_LR)


def _np_w6(case: Case) -> Prepared:
    X, labels, init = wl.w6_data(case.dtype)
    return _np_prepare(case, lambda p: wl.hand_w6_grads(p, X, labels), init, wl.W6_LR)


def _np_prepare(
    case: Case,
    grads: Callable[[dict[str, np.ndarray]], tuple[float, dict[str, np.ndarray]]],
    p: dict[str, np.ndarray],
    lr: float,
) -> Prepared:
    """fwd+bwd, or an in-place SGD step, around a hand-written gradient function."""
    if not case.step:
        return Prepared(lambda: grads(p), lambda r: {"loss": r[0], **r[1]})  # type: ignore[index]

    def run() -> float:
        for _ in range(case.steps):
            value, g = grads(p)
            for k in p:
                p[k] -= lr * g[k]
        return value

    return Prepared(run, lambda r: {"loss": r, **p})  # type: ignore[dict-item]


def _np_w5(case: Case) -> Prepared:
    return Prepared(wl.hand_w5, lambda r: {"value": r[0], "x": r[1]})  # type: ignore[index]


def _hand_numba_w3(case: Case) -> Prepared:
    if not case.step:
        raise NotApplicable("hand Numba has only the W3 training step")
    from bench import hand_numba
    return hand_numba.prepare_w3(case)


# =========================================================================== registry

_IMPLS: dict[str, dict[str, Callable[[Case], Prepared]]] = {
    "micrograd": {"W1": _mg_w1, "W2": _mg_w2, "W3": _mg_w3, "W4": _mg_w4, "W5": _mg_w5},
    "autograd": {"W1": _ag_w1, "W2": _ag_w2, "W3": _ag_w3, "W4": _ag_w4, "W5": _ag_w5},
    "torch": {"W1": _torch_w1, "W2": _torch_w2, "W3": _torch_w3, "W4": _torch_w4, "W5": _torch_w5,
              "W6": _torch_w6},
    "jax": {"W1": _jax_w1, "W2": _jax_w2, "W3": _jax_w3, "W4": _jax_w4, "W5": _jax_w5,
            "W6": _jax_w6},
    "numpy": {"W1": _np_w1, "W2": _np_w2, "W3": _np_w3, "W4": _np_w4, "W5": _np_w5, "W6": _np_w6},
    "numba": {"W3": _hand_numba_w3},
}



def prepare(peer: str, case: Case) -> Prepared:
    """Set up ``peer``'s implementation of ``case``.

    Raises ``ImportError`` if the peer is not installed and :class:`NotApplicable` if
    it has no implementation of the case (S1, micrograd W4).
    """
    impl = _IMPLS[peer].get(case.workload)
    if impl is None:
        raise NotApplicable(f"{peer} has no {case.workload}")
    if case.steps > 1 and peer not in ("jax", "numpy", "numba"):
        raise NotApplicable(f"{peer} has no compiled training loop; see its SGD step row")
    return impl(case)


# S2: code run by ``python -c`` in a fresh process: import the peer, build and run W1,
# print "f df/dx df/dy" on the last line.
S2_CODE: dict[str, str] = {
    "micrograd": (
        "from micrograd.engine import Value\n"
        "x, y = Value(3.0), Value(2.0)\n"
        "f = x * x * y + y + 1\n"
        "f.backward()\n"
        "print(f.data, x.grad, y.grad)\n"
    ),
    "autograd": (
        "from autograd import value_and_grad\n"
        "f, (gx, gy) = value_and_grad(lambda x, y: x * x * y + y + 1.0, argnum=(0, 1))(3.0, 2.0)\n"
        "print(float(f), float(gx), float(gy))\n"
    ),
    "torch": (
        "import torch\n"
        "x = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)\n"
        "y = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)\n"
        "f = x * x * y + y + 1.0\n"
        "f.backward()\n"
        "print(f.item(), x.grad.item(), y.grad.item())\n"
    ),
    "jax": (
        "import jax\n"
        "jax.config.update('jax_enable_x64', True)\n"
        "vg = jax.value_and_grad(lambda x, y: x * x * y + y + 1.0, argnums=(0, 1))\n"
        "f, (gx, gy) = jax.jit(vg)(3.0, 2.0)\n"
        "print(float(f), float(gx), float(gy))\n"
    ),
    "numpy": (
        "import numpy as np\n"
        "x, y = np.float64(3.0), np.float64(2.0)\n"
        "print(float(x * x * y + y + 1.0), float(2.0 * x * y), float(x * x + 1.0))\n"
    ),
}
