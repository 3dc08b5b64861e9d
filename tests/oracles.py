"""Oracles the tests share that need no nbbp code: central finite differences."""

from __future__ import annotations

import numpy as np


def fd_grad(fn, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar ``fn`` at ``x``, element by element."""
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        out[idx] = (fn(xp) - fn(xm)) / (2 * eps)
    return out
