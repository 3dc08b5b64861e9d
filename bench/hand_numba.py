"""W3 by hand in Numba: the limit nbbp's compiled training loop is measured against.

One ``@njit`` function runs ``steps`` SGD steps of the W3 model (2-16-16-1 ReLU MLP,
hinge loss plus L2 on every parameter) with the forward, the hand-derived backward
and the update written as plain loops over preallocated buffers: no interpreter, no
dispatch, no allocation per step, rows that contribute no gradient skipped, inner
loops along contiguous rows and ``fastmath`` on (so the sums vectorise; nbbp's kernels
keep IEEE order) — the fastest of the variants tried: a layer-at-a-time form with
sums down the columns was 8× slower, and one calling BLAS (``np.dot``) for the three
16-wide products, as nbbp's kernels do, 1.3× slower (12.6 against 9.8 µs a step,
measured side by side on 2026-12-06: at these sizes the rows the hinge leaves out
of the backward pass are worth more than BLAS).
nbbp's loop interprets a program lowered from the graph; the ratio of the two is the
price of generality (issue 15 asks for at most 1.3×).

The math is :func:`bench.workloads.hand_w3_grads`'s, step for step; the harness
checks the result against it like every other peer's.
"""

from __future__ import annotations

import numpy as np

from bench import workloads as wl
from bench.workloads import Case, Prepared


def _kernel():
    from numba import njit

    @njit(cache=True, boundscheck=False, fastmath=True)
    def w3_steps(X, y, W1, b1, W2, b2, W3, b3, alpha, lr, steps,
                 h1, h2, e1, e2, s, gW1, gb1, gW2, gb2, gw3):
        n, d0 = X.shape
        d1, d2 = W1.shape[1], W2.shape[1]
        loss = 0.0
        for _ in range(steps):
            hinge = 0.0
            for i in range(n):
                for j in range(d1):
                    h1[i, j] = b1[j]
                for k in range(d0):
                    xk = X[i, k]
                    for j in range(d1):
                        h1[i, j] += xk * W1[k, j]
                for j in range(d1):
                    h1[i, j] = max(h1[i, j], 0.0)
                for j in range(d2):
                    h2[i, j] = b2[j]
                for k in range(d1):
                    hk = h1[i, k]
                    for j in range(d2):
                        h2[i, j] += hk * W2[k, j]
                acc = b3[0]
                for j in range(d2):
                    v = max(h2[i, j], 0.0)
                    h2[i, j] = v
                    acc += v * W3[j, 0]
                s[i] = acc
                hinge += max(1.0 - y[i] * acc, 0.0)
            reg = b3[0] * b3[0]
            for k in range(d0):
                for j in range(d1):
                    reg += W1[k, j] * W1[k, j]
            for k in range(d1):
                reg += b1[k] * b1[k]
                for j in range(d2):
                    reg += W2[k, j] * W2[k, j]
            for j in range(d2):
                reg += b2[j] * b2[j] + W3[j, 0] * W3[j, 0]
            loss = hinge / n + alpha * reg
            gW1[:, :] = 0.0
            gb1[:] = 0.0
            gW2[:, :] = 0.0
            gb2[:] = 0.0
            gw3[:] = 0.0
            gb3 = 0.0
            for i in range(n):
                if 1.0 - y[i] * s[i] <= 0.0:
                    continue
                ds = -y[i] / n
                gb3 += ds
                for j in range(d2):
                    gw3[j] += h2[i, j] * ds
                    e2[j] = ds * W3[j, 0] if h2[i, j] > 0.0 else 0.0
                    gb2[j] += e2[j]
                for k in range(d1):
                    hk = h1[i, k]
                    acc = 0.0
                    for j in range(d2):
                        gW2[k, j] += hk * e2[j]
                        acc += e2[j] * W2[k, j]
                    e1[k] = acc if hk > 0.0 else 0.0
                    gb1[k] += e1[k]
                for k in range(d0):
                    xk = X[i, k]
                    for j in range(d1):
                        gW1[k, j] += xk * e1[j]
            ta = 2.0 * alpha
            for k in range(d0):
                for j in range(d1):
                    W1[k, j] -= lr * (gW1[k, j] + ta * W1[k, j])
            for k in range(d1):
                b1[k] -= lr * (gb1[k] + ta * b1[k])
                for j in range(d2):
                    W2[k, j] -= lr * (gW2[k, j] + ta * W2[k, j])
            for j in range(d2):
                b2[j] -= lr * (gb2[j] + ta * b2[j])
                W3[j, 0] -= lr * (gw3[j] + ta * W3[j, 0])
            b3[0] -= lr * (gb3 + ta * b3[0])
        return loss

    return w3_steps


def prepare_w3(case: Case) -> Prepared:
    """``case.steps`` W3 SGD steps per call (an SGD-step case: the harness sends no
    other)."""
    run_steps = _kernel()
    X, y = wl.w3_data()
    p = {k: np.array(v, dtype=np.float64) for k, v in wl.w3_init_params().items()}
    n, (d1, d2) = len(y), wl.W3_SIZES[1:3]
    d0 = wl.W3_SIZES[0]
    bufs = (np.empty((n, d1)), np.empty((n, d2)), np.empty(d1), np.empty(d2), np.empty(n),
            np.empty((d0, d1)), np.empty(d1), np.empty((d1, d2)), np.empty(d2), np.empty(d2))
    args = (X, np.ascontiguousarray(y, dtype=np.float64),
            *(p[k] for k in wl.W3_PARAM_NAMES))

    def run() -> float:
        return run_steps(*args, wl.W3_ALPHA, wl.W3_LR, case.steps, *bufs)

    return Prepared(run, lambda r: {"loss": r, **p})
