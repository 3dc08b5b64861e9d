"""nbbp's side of the benchmark: hooks for the lead to fill in.

>>> TO FILL IN: every hook below raises ImportError for now, so the harness shows the
>>> "nbbp" column as "missing".  Replace each body with nbbp code; an ImportError raised
>>> by ``import nbbp`` keeps meaning "missing", any other exception is shown as "error".

Contract of every ``nbbp_w*`` hook: return a :class:`bench.workloads.Prepared` whose
``run()`` does one forward + backward (or, with ``step=True``, one full SGD step that
updates nbbp's own parameter state, so repeated calls time the steady state), blocks
until done and returns something that ``extract`` turns into the result dict below.
All one-time work (building the graph, compiling, loading the cache, converting data)
belongs in the hook, outside ``run``: the harness calls ``run()`` once for the
correctness check (right after setup, so ``extract`` may read live state), then times
further calls.  Use the data and constants of :mod:`bench.workloads` so that the
numbers match the peers'.

Result keys (floats or NumPy arrays):

* W1: ``f``, ``x``, ``y`` (the last two are df/dx, df/dy).
* W2: ``o``, ``x1``, ``w1``, ``x2``, ``w2``, ``b`` (do/d...).
* W3: ``loss`` and ``W1 b1 W2 b2 W3 b3`` — gradients for fwd+bwd, updated parameters
  for the SGD step (shapes as in ``workloads.w3_init_params()``).
* W4: ``loss`` and ``W1 b1 W2 b2`` likewise, in ``dtype`` "f64" or "f32".
* W5: ``value`` and ``x`` (d value / dx).
* S1: anything, with ``Prepared.expected`` set to the same keys from a fresh build.
"""

from __future__ import annotations

from bench.workloads import Prepared

_TODO = "nbbp benchmark hook not implemented yet (bench/nbbp_side.py)"


def nbbp_w1() -> Prepared:
    """W1 ``f = x*x*y + y + 1`` at x=3, y=2: forward + backward.  TO FILL IN."""
    raise ImportError(_TODO)


def nbbp_w2() -> Prepared:
    """W2 ``o = tanh(x1*w1 + x2*w2 + b)``: forward + backward.  TO FILL IN."""
    raise ImportError(_TODO)


def nbbp_w3(step: bool) -> Prepared:
    """W3 MLP 2-16-16-1 on the moons: fwd+bwd, or one SGD step if ``step``.  TO FILL IN."""
    raise ImportError(_TODO)


def nbbp_w4(dtype: str, step: bool) -> Prepared:
    """W4 MLP 784-128-10, ``dtype`` "f64"/"f32": fwd+bwd, or one SGD step.  TO FILL IN."""
    raise ImportError(_TODO)


def nbbp_w5() -> Prepared:
    """W5 chain of 1000 scalar ops: value and derivative.  TO FILL IN."""
    raise ImportError(_TODO)


def nbbp_s1() -> Prepared:
    """S1 slider update of a ~100-node graph: recompute + new picture.  TO FILL IN."""
    raise ImportError(_TODO)


def nbbp_s2_code() -> str:
    """S2: source for ``python -c`` (run from the repo root) that imports nbbp, builds and
    runs W1 and prints ``f df/dx df/dy`` as its last stdout line.  TO FILL IN."""
    raise ImportError(_TODO)
