"""Workload definitions shared by every implementation: data, constants, references.

Everything an implementation (a peer in ``bench.peers`` or nbbp in ``bench.nbbp_side``)
needs to compute the same numbers lives here, together with the reference results the
harness checks against.  The workloads are those of ``/work/shared/BENCHMARKS.md``:

W1  ``f = x*x*y + y + 1`` at x=3, y=2, forward + backward (f64).
W2  ``o = tanh(x1*w1 + x2*w2 + b)``, forward + backward (f64).
W3  MLP 2-16-16-1 (ReLU hidden, linear out) on 100 two-moons points,
    loss = mean(relu(1 - y*s)) + 1e-4 * sum of p**2 over ALL parameters (weights and
    biases), f64.  Timed twice: loss + all gradients ("fwd+bwd"), and one full SGD step
    with lr 0.05 ("SGD step": loss before the update + the updated parameters).
W4  MLP 784-128-10 (ReLU hidden), batch 64 of random data, mean softmax cross-entropy,
    SGD lr 0.01; fwd+bwd and SGD step, each in f64 and in f32.
W5  1000 scalar ops from x=0.5, op k being ``sin`` (k % 3 == 0), ``*1.001``
    (k % 3 == 1) or ``+0.0005`` (k % 3 == 2); value and d(value)/dx (f64).
S1  nbbp only (slider update); S2 cold start of a fresh process (see ``bench.run``).

Data and initial parameters (deterministic, documented here once):

* W3 data: :func:`make_moons` — 100 points, 50 per half moon, noise 0.1 drawn from
  ``np.random.default_rng(0)``, labels -1 (upper moon) / +1 (lower moon).
* W3 parameters: a separate ``np.random.default_rng(0)``; every parameter, weights AND
  biases, is ``rng.standard_normal(shape) * 0.5``, drawn in the order
  W1 (2,16), b1 (16,), W2 (16,16), b2 (16,), W3 (16,1), b3 (1,).
* W4 data and parameters: one ``np.random.default_rng(0)`` drawing, in order,
  X (64,784) standard normal, labels (64,) integers in [0,10), W1 (784,128) and
  W2 (128,10) as ``standard_normal * sqrt(2/fan_in)`` (He init); b1, b2 are zeros.
  The f32 variant uses these arrays cast to float32; its reference is the same hand
  NumPy step computed in float32 on the cast values (checked at rel 1e-4).

Weights are stored ``(fan_in, fan_out)`` and layers compute ``h @ W + b``.  Results are
plain dicts of floats / NumPy arrays keyed like the parameters (``"loss"``, ``"W1"``,
``"b1"``, ...): gradients for fwd+bwd cases, updated parameters for SGD cases.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating]
Result = dict[str, float | Array]
Params = dict[str, Array]

# --------------------------------------------------------------------------- constants

W1_INPUTS = {"x": 3.0, "y": 2.0}
W1_EXPECTED: Result = {"f": 21.0, "x": 12.0, "y": 10.0}

W2_INPUTS = {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0, "b": 6.8813735870195432}
W2_EXPECTED: Result = {
    "o": 0.7071067811865477,
    "x1": -1.5,
    "w1": 1.0,
    "x2": 0.5,
    "w2": 0.0,
    "b": 0.5,
}

W3_N = 100
W3_SIZES = (2, 16, 16, 1)
W3_ALPHA = 1e-4
W3_LR = 0.05
W3_NOISE = 0.1
W3_PARAM_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")

W4_BATCH = 64
W4_SIZES = (784, 128, 10)
W4_LR = 0.01
W4_PARAM_NAMES = ("W1", "b1", "W2", "b2")

W6_BATCH = 64
W6_FILTERS = 8
W6_LR = 0.05
W6_PARAM_NAMES = ("K", "kb", "W", "b")

W5_N = 1000
W5_X0 = 0.5
W5_MUL = 1.001
W5_ADD = 0.0005


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One row of the result table."""

    id: str  # row label, e.g. "W4 f32 SGD step"
    workload: str  # "W1" ... "W5", "S1", "S2"
    step: bool = False  # True: full SGD step; False: forward + backward only
    dtype: str = "f64"
    steps: int = 1  # SGD steps per timed call (a compiled loop); times are per step
    call: str = ""  # "call"/"set": new inputs every call, results read (bench.calls)
    every: bool = False  # nbbp only: every gradient of the picture, kernel only


CASES: tuple[Case, ...] = (
    Case("W1 call: new inputs, results read", "W1", call="call"),
    Case("W1 nbbp m.set + m.value, m.grads", "W1", call="set"),
    Case("W1 kernel only (nbbp: arena values, nothing read)", "W1"),
    Case("W2 call: new inputs, results read", "W2", call="call"),
    Case("W2 nbbp m.set + m.value, m.grads", "W2", call="set"),
    Case("W2 kernel only (nbbp: arena values, nothing read)", "W2"),
    Case("W3 fwd+bwd", "W3"),
    Case("W3 SGD step", "W3", step=True),
    Case("W3 SGD step, in a compiled loop of 100", "W3", step=True, steps=100),
    Case("W4 f64 fwd+bwd", "W4"),
    Case("W4 f64 fwd+bwd, every gradient (nbbp kernel only: ∂loss/∂x, every edge)", "W4",
         every=True),
    Case("W4 f64 SGD step", "W4", step=True),
    Case("W4 f32 fwd+bwd", "W4", dtype="f32"),
    Case("W4 f32 SGD step", "W4", step=True, dtype="f32"),
    Case("W5 call: new inputs, results read", "W5", call="call"),
    Case("W5 nbbp m.set + m.value, m.grads", "W5", call="set"),
    Case("W5 kernel only (nbbp: arena values, nothing read)", "W5"),
    Case("W6 f64 fwd+bwd", "W6"),
    Case("W6 f64 SGD step", "W6", step=True),
    Case("W6 f32 fwd+bwd", "W6", dtype="f32"),
    Case("W6 f32 SGD step", "W6", step=True, dtype="f32"),
    Case("S1", "S1"),
    Case("S2 cold start", "S2"),
)


@dataclass(frozen=True)
class Prepared:
    """A ready-to-time implementation of one case.

    ``run`` is the timed call (it must block until the work is done); ``extract`` turns
    its return value into a :data:`Result` (not timed).  ``expected`` overrides the
    harness's reference for cases whose reference only the implementation can build
    (S1).  For SGD cases ``run`` updates the implementation's own state, so repeated
    calls time the steady state of a training loop.
    """

    run: Callable[[], object]
    extract: Callable[[object], Result]
    expected: Result | None = None


def np_dtype(dtype: str) -> type[np.floating]:
    """Map ``"f64"``/``"f32"`` to the NumPy scalar type."""
    return {"f64": np.float64, "f32": np.float32}[dtype]


# --------------------------------------------------------------------------- data


def make_moons(n: int = W3_N, noise: float = W3_NOISE, seed: int = 0) -> tuple[Array, Array]:
    """Two interleaving half circles (like scikit-learn's ``make_moons``, unshuffled).

    Returns ``X`` of shape (n, 2) and labels ``y`` of shape (n,) in {-1.0, +1.0}: the
    first ``n - n//2`` points are the upper moon (label -1), the rest the lower (+1).
    """
    n_out = n - n // 2
    n_in = n // 2
    t_out = np.linspace(0.0, math.pi, n_out)
    t_in = np.linspace(0.0, math.pi, n_in)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], axis=1)
    inner = np.stack([1.0 - np.cos(t_in), 1.0 - np.sin(t_in) - 0.5], axis=1)
    X = np.concatenate([outer, inner], axis=0)
    rng = np.random.default_rng(seed)
    X = X + rng.normal(scale=noise, size=X.shape)
    y = np.concatenate([-np.ones(n_out), np.ones(n_in)])
    return X, y


def w3_data() -> tuple[Array, Array]:
    """The W3 inputs ``X`` (100, 2) and hinge labels ``y`` (100,), float64."""
    return make_moons()


def w3_init_params() -> Params:
    """Initial W3 parameters (fresh copies): every entry ``randn * 0.5``, seed 0."""
    rng = np.random.default_rng(0)
    d0, d1, d2, d3 = W3_SIZES
    shapes = {"W1": (d0, d1), "b1": (d1,), "W2": (d1, d2), "b2": (d2,), "W3": (d2, d3), "b3": (d3,)}
    return {name: rng.standard_normal(shapes[name]) * 0.5 for name in W3_PARAM_NAMES}


def w4_data(dtype: str = "f64") -> tuple[Array, npt.NDArray[np.int64], Params]:
    """W4 inputs ``X`` (64, 784), integer labels (64,) and fresh initial parameters."""
    rng = np.random.default_rng(0)
    d0, d1, d2 = W4_SIZES
    X = rng.standard_normal((W4_BATCH, d0))
    labels = rng.integers(0, d2, size=W4_BATCH).astype(np.int64)
    params: Params = {
        "W1": rng.standard_normal((d0, d1)) * math.sqrt(2.0 / d0),
        "b1": np.zeros(d1),
        "W2": rng.standard_normal((d1, d2)) * math.sqrt(2.0 / d1),
        "b2": np.zeros(d2),
    }
    t = np_dtype(dtype)
    return X.astype(t), labels, {k: v.astype(t) for k, v in params.items()}


def w6_data(dtype: str = "f64") -> tuple[Array, npt.NDArray[np.int64], Params]:
    """W6: the first 64 of scikit-learn's 8×8 digits as (64, 8, 8, 1) images in [0, 1],
    their integer labels, and initial parameters (``np.random.default_rng(0)``: conv
    filter K (3, 3, 1, 8), its bias kb, dense W (128, 10) and b)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images[:W6_BATCH] / 16.0)[..., None]
    labels = d.target[:W6_BATCH].astype(np.int64)
    rng = np.random.default_rng(0)
    params = {"K": rng.standard_normal((3, 3, 1, W6_FILTERS)) * 0.3,
              "kb": rng.standard_normal(W6_FILTERS) * 0.1,
              "W": rng.standard_normal((16 * W6_FILTERS, 10)) * 0.1,
              "b": rng.standard_normal(10) * 0.1}
    t = np_dtype(dtype)
    return X.astype(t), labels, {k: v.astype(t) for k, v in params.items()}


# --------------------------------------------------------------------------- hand NumPy math
# These are both the "hand NumPy" peer and the reference the other results are checked
# against (in float64).  They are written out by hand, without any autodiff.


def hand_w1(x: float, y: float) -> tuple[float, float, float]:
    """W1 by hand: ``(f, df/dx, df/dy)``."""
    f = x * x * y + y + 1.0
    return f, 2.0 * x * y, x * x + 1.0


def hand_w2(x1: float, x2: float, w1: float, w2: float, b: float) -> tuple[float, ...]:
    """W2 by hand: ``(o, do/dx1, do/dw1, do/dx2, do/dw2, do/db)``."""
    o = math.tanh(x1 * w1 + x2 * w2 + b)
    d = 1.0 - o * o
    return o, d * w1, d * x1, d * w2, d * x2, d


def hand_w3_grads(p: Mapping[str, Array], X: Array, y: Array) -> tuple[float, Params]:
    """W3 loss and gradients of all parameters, backpropagated by hand."""
    z1 = X @ p["W1"] + p["b1"]
    h1 = np.maximum(z1, 0.0)
    z2 = h1 @ p["W2"] + p["b2"]
    h2 = np.maximum(z2, 0.0)
    s = (h2 @ p["W3"] + p["b3"])[:, 0]
    margin = 1.0 - y * s
    reg = sum(float(np.sum(v * v)) for v in p.values())
    loss = float(np.mean(np.maximum(margin, 0.0))) + W3_ALPHA * reg
    ds = np.where(margin > 0.0, -y, 0.0) / len(y)
    g: Params = {"W3": h2.T @ ds[:, None], "b3": np.array([ds.sum()])}
    dz2 = (ds[:, None] @ p["W3"].T) * (z2 > 0.0)
    g["W2"], g["b2"] = h1.T @ dz2, dz2.sum(axis=0)
    dz1 = (dz2 @ p["W2"].T) * (z1 > 0.0)
    g["W1"], g["b1"] = X.T @ dz1, dz1.sum(axis=0)
    return loss, {k: g[k] + 2.0 * W3_ALPHA * p[k] for k in W3_PARAM_NAMES}


def hand_w4_grads(
    p: Mapping[str, Array], X: Array, labels: npt.NDArray[np.int64]
) -> tuple[float, Params]:
    """W4 mean softmax cross-entropy and gradients, by hand (in the dtype of ``X``)."""
    z1 = X @ p["W1"] + p["b1"]
    h1 = np.maximum(z1, 0.0)
    logits = h1 @ p["W2"] + p["b2"]
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    se = e.sum(axis=1, keepdims=True)
    rows = np.arange(len(labels))
    loss = float(np.mean((m[:, 0] + np.log(se[:, 0])) - logits[rows, labels]))
    dlogits = e / se
    dlogits[rows, labels] -= 1.0
    dlogits /= len(labels)
    g: Params = {"W2": h1.T @ dlogits, "b2": dlogits.sum(axis=0)}
    dz1 = (dlogits @ p["W2"].T) * (z1 > 0.0)
    g["W1"], g["b1"] = X.T @ dz1, dz1.sum(axis=0)
    return loss, {k: g[k] for k in W4_PARAM_NAMES}


def hand_w6_grads(
    p: Mapping[str, Array], X: Array, labels: npt.NDArray[np.int64]
) -> tuple[float, Params]:
    """W6 by hand: 3×3 SAME conv (im2col), relu, 2×2 max-pool (gradient to the first
    maximum), dense, mean sparse softmax cross-entropy; loss and gradients."""
    n, h, w, _ = X.shape
    f = p["K"].shape[3]
    xp = np.pad(X, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = np.stack([xp[:, i:i + h, j:j + w, 0] for i in range(3) for j in range(3)], -1)
    cols = cols.reshape(n * h * w, 9)
    z = (cols @ p["K"].reshape(9, f)).reshape(n, h, w, f) + p["kb"]
    a = np.maximum(z, 0.0)
    win = a.reshape(n, h // 2, 2, w // 2, 2, f).transpose(0, 1, 3, 5, 2, 4)
    win = win.reshape(n, h // 2, w // 2, f, 4)
    arg = win.argmax(-1)
    pooled = np.take_along_axis(win, arg[..., None], -1)[..., 0]
    flat = pooled.reshape(n, -1)
    logits = flat @ p["W"] + p["b"]
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    se = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(np.mean((m[:, 0] + np.log(se[:, 0])) - logits[rows, labels]))
    dlogits = e / se
    dlogits[rows, labels] -= 1.0
    dlogits /= n
    g: Params = {"W": flat.T @ dlogits, "b": dlogits.sum(axis=0)}
    dpooled = (dlogits @ p["W"].T).reshape(pooled.shape)
    dwin = np.zeros_like(win)
    np.put_along_axis(dwin, arg[..., None], dpooled[..., None], -1)
    da = dwin.reshape(n, h // 2, w // 2, f, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(a.shape)
    dz = da * (z > 0.0)
    g["kb"] = dz.sum(axis=(0, 1, 2))
    g["K"] = (cols.T @ dz.reshape(-1, f)).reshape(p["K"].shape)
    return loss, {k: g[k] for k in W6_PARAM_NAMES}


def hand_w5(x0: float = W5_X0, n: int = W5_N) -> tuple[float, float]:
    """W5 by hand in reverse mode: a forward pass storing local derivatives, then their product."""
    x = x0
    local = [1.0] * n
    for k in range(n):
        r = k % 3
        if r == 0:
            local[k] = math.cos(x)
            x = math.sin(x)
        elif r == 1:
            local[k] = W5_MUL
            x = x * W5_MUL
        else:
            x = x + W5_ADD
    g = 1.0
    for d in reversed(local):
        g *= d
    return x, g


def loop_w5(x0: float = W5_X0, n: int = W5_N) -> tuple[float, float]:
    """W5 reference: a plain Python loop carrying value and derivative forward (math.sin)."""
    v, d = x0, 1.0
    for k in range(n):
        r = k % 3
        if r == 0:
            v, d = math.sin(v), d * math.cos(v)
        elif r == 1:
            v, d = v * W5_MUL, d * W5_MUL
        else:
            v = v + W5_ADD
    return v, d


def sgd_update(p: Mapping[str, Array], g: Mapping[str, Array], lr: float) -> Params:
    """Plain SGD ``p - lr * g`` on every entry (new arrays)."""
    return {k: p[k] - lr * g[k] for k in p}


# --------------------------------------------------------------------------- references


def expected(case: Case) -> Result:
    """The reference result of a case, against which every implementation is checked
    (float64; W4 f32: the hand NumPy step computed in float32)."""
    if case.workload == "W1":
        return dict(W1_EXPECTED)
    if case.workload == "W2":
        return dict(W2_EXPECTED)
    if case.workload == "W3":
        X, y = w3_data()
        p = w3_init_params()
        for _ in range(case.steps):
            loss, g = hand_w3_grads(p, X, y)
            if case.step:
                p = sgd_update(p, g, W3_LR)
        return {"loss": loss, **(p if case.step else g)}
    if case.workload == "W4":
        X, labels, p = w4_data(case.dtype)     # f32: the hand step in float32 itself
        loss, g = hand_w4_grads(p, X, labels)
        return {"loss": loss, **(sgd_update(p, g, W4_LR) if case.step else g)}
    if case.workload == "W6":
        X, labels, p = w6_data(case.dtype)
        loss, g = hand_w6_grads(p, X, labels)
        return {"loss": loss, **(sgd_update(p, g, W6_LR) if case.step else g)}
    if case.workload == "W5":
        v, d = loop_w5()
        return {"value": v, "x": d}
    raise KeyError(f"no reference for {case.id}")


def tolerance(case: Case) -> float:
    """Relative tolerance of the correctness check: 1e-9 in f64, 1e-4 in f32."""
    return 1e-9 if case.dtype == "f64" else 1e-4


def compare(
    got: Mapping[str, object], want: Mapping[str, object], rtol: float, atol: float = 1e-12
) -> str | None:
    """Check ``got`` against ``want`` key by key; return a message on mismatch, else None.

    Each entry passes when ``max|got - want| <= rtol * max|want| + atol`` (a norm-wise
    relative error, so that exact zeros such as W2's dw2 do not make it blow up).
    """
    problems: list[str] = []
    for key, ref in want.items():
        if key not in got:
            problems.append(f"{key}: missing")
            continue
        a = np.asarray(got[key], dtype=np.float64)
        b = np.asarray(ref, dtype=np.float64)
        if a.size != b.size:
            problems.append(f"{key}: shape {a.shape} != {b.shape}")
            continue
        a = a.reshape(b.shape)
        err = float(np.max(np.abs(a - b))) if b.size else 0.0
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        if not np.all(np.isfinite(a)) or err > rtol * scale + atol:
            rel = err / scale if scale else err
            problems.append(f"{key}: rel err {rel:.2e}")
    return "; ".join(problems) or None
