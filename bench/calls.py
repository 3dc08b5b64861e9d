"""The *call* rows: every system on the same work, as a user's loop pays it.

Each timed call takes **new input values** and **reads its results back** as Python
floats: the value and every gradient of W1, W2 and W5. The inputs cycle through a
pool of ``POOL`` tuples (the workload's own inputs first, then the same scaled by
1 + 1e-3·j), so no system can reuse the previous call's values; the result checked
before timing is the first call's, on the workload's inputs.

* nbbp ``call``: ``f = m.function(...)``; ``value, grads = f(*inputs)``.
* nbbp ``set``: ``m.set(**inputs)`` then ``m.value`` and ``m.grads``.
* micrograd: new ``Value`` leaves, ``backward()``, ``.data`` / ``.grad``.
* HIPS autograd: ``value_and_grad`` on the floats.
* PyTorch eager: new ``requires_grad`` tensors, ``torch.autograd.grad``, ``.item()``.
* JAX: the jitted ``value_and_grad`` called with new float64 arrays
  (``np.float64`` scalars, which it converts as a user's arrays),
  ``block_until_ready``, ``float()`` of each result.
* hand NumPy: the hand-derived formulas on the floats (the Python limit).

The kernel-only rows of :mod:`bench.nbbp_side` (values already in the arena, nothing
read) stay in the table beside these, labelled as such.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bench import workloads as wl
from bench.workloads import Case, Prepared, Result

POOL = 8

# per workload: the leaf names in argument order, the value's result key, the inputs
NAMES = {"W1": ("x", "y"), "W2": ("x1", "x2", "w1", "w2", "b"), "W5": ("x",)}
VALUE_KEY = {"W1": "f", "W2": "o", "W5": "value"}


def inputs(workload: str) -> tuple[float, ...]:
    """The workload's own inputs, in :data:`NAMES` order."""
    if workload == "W5":
        return (wl.W5_X0,)
    given = wl.W1_INPUTS if workload == "W1" else wl.W2_INPUTS
    return tuple(float(given[k]) for k in NAMES[workload])


def pool(workload: str, convert: Callable[[float], Any] = float) -> Callable[[], tuple]:
    """A no-argument function giving the next input tuple of the cycle (converted)."""
    base = inputs(workload)
    tuples = [tuple(convert(v * (1 + 1e-3 * j)) for v in base) for j in range(POOL)]
    return itertools.cycle(tuples).__next__


def _result(workload: str, value: float, grads: Sequence[float]) -> Result:
    return {VALUE_KEY[workload]: value, **dict(zip(NAMES[workload], grads, strict=True))}


def _prepared(workload: str, run: Callable[[], tuple[float, Sequence[float]]]) -> Prepared:
    return Prepared(run, lambda r: _result(workload, *r))  # type: ignore[misc]


# ----------------------------------------------------------------------------- nbbp


def nbbp_call(case: Case) -> Prepared:
    """``m.function`` (``case.call == "call"``) or ``m.set`` + reads (``"set"``)."""
    from bench.nbbp_side import model

    m = model(case.workload)
    names, nxt = NAMES[case.workload], pool(case.workload)
    if case.call == "set":
        dicts = pool(case.workload)

        def run_set() -> tuple[float, list[float]]:
            m.set(dict(zip(names, dicts())))
            grads = m.grads
            return m.value, [grads[k] for k in names]

        return _prepared(case.workload, run_set)
    f = m.function(*names)
    return _prepared(case.workload, lambda: f(*nxt()))


# ----------------------------------------------------------------------------- peers


def _micrograd(workload: str) -> Prepared:
    from micrograd.engine import Value

    from bench.peers import _mg_unary

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))   # its recursive sort, W5
    nxt = pool(workload)

    def build(leaves: list[Any]) -> Any:
        if workload == "W1":
            x, y = leaves
            return x * x * y + y + 1
        if workload == "W2":
            x1, x2, w1, w2, b = leaves
            s = x1 * w1 + x2 * w2 + b
            t = math.tanh(s.data)
            return _mg_unary(s, t, 1.0 - t * t, "tanh")
        v = leaves[0]
        for k in range(wl.W5_N):
            r = k % 3
            v = (_mg_unary(v, math.sin(v.data), math.cos(v.data), "sin") if r == 0
                 else v * wl.W5_MUL if r == 1 else v + wl.W5_ADD)
        return v

    def run() -> tuple[float, list[float]]:
        leaves = [Value(v) for v in nxt()]
        out = build(leaves)
        out.backward()
        return out.data, [v.grad for v in leaves]

    return _prepared(workload, run)


def _autograd(workload: str) -> Prepared:
    import autograd
    import autograd.numpy as anp

    vg = autograd.value_and_grad(_fn(workload, anp), argnum=tuple(range(len(NAMES[workload]))))
    nxt = pool(workload)

    def run() -> tuple[float, list[float]]:
        value, grads = vg(*nxt())
        return float(value), [float(g) for g in grads]

    return _prepared(workload, run)


def _torch(workload: str) -> Prepared:
    from bench.peers import _torch as torch_module

    torch = torch_module()
    fn = _fn(workload, torch)
    nxt = pool(workload)

    def run() -> tuple[float, list[float]]:
        leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in nxt()]
        out = fn(*leaves)
        grads = torch.autograd.grad(out, leaves)
        return out.item(), [g.item() for g in grads]

    return _prepared(workload, run)


def _jax(workload: str) -> Prepared:
    from bench.peers import _jax as jax_modules

    jax, jnp = jax_modules()
    fn = jax.jit(jax.value_and_grad(_fn(workload, jnp),
                                    argnums=tuple(range(len(NAMES[workload])))))
    nxt = pool(workload, np.float64)

    def run() -> tuple[float, list[float]]:
        value, grads = jax.block_until_ready(fn(*nxt()))
        return float(value), [float(g) for g in grads]

    return _prepared(workload, run)


def _numpy(workload: str) -> Prepared:
    nxt = pool(workload)
    if workload == "W1":
        def run() -> tuple[float, Sequence[float]]:
            f, gx, gy = wl.hand_w1(*nxt())
            return f, (gx, gy)
    elif workload == "W2":
        def run() -> tuple[float, Sequence[float]]:
            o, dx1, dw1, dx2, dw2, db = wl.hand_w2(*nxt())
            return o, (dx1, dx2, dw1, dw2, db)
    else:
        def run() -> tuple[float, Sequence[float]]:
            value, dx = wl.hand_w5(*nxt())
            return value, (dx,)
    return _prepared(workload, run)


def _fn(workload: str, np_like: Any) -> Callable[..., Any]:
    """The workload as a function of its leaves, written with ``np_like``'s sin/tanh."""
    if workload == "W1":
        return lambda x, y: x * x * y + y + 1.0
    if workload == "W2":
        return lambda x1, x2, w1, w2, b: np_like.tanh(x1 * w1 + x2 * w2 + b)

    def w5(x: Any) -> Any:
        for k in range(wl.W5_N):
            r = k % 3
            x = np_like.sin(x) if r == 0 else (x * wl.W5_MUL if r == 1 else x + wl.W5_ADD)
        return x
    return w5


_PEERS = {"micrograd": _micrograd, "autograd": _autograd, "torch": _torch, "jax": _jax,
          "numpy": _numpy}


def prepare(column: str, case: Case) -> Prepared:
    """The call-row implementation of ``case`` for ``column`` (nbbp or a peer);
    peers have no ``set`` form (n/a)."""
    from bench.peers import NotApplicable

    if column == "nbbp":
        return nbbp_call(case)
    if case.call == "set":
        raise NotApplicable("m.set is nbbp's own form; see the call row")
    if column not in _PEERS:
        raise NotApplicable(f"{column} has no call form of {case.workload}")
    return _PEERS[column](case.workload)
