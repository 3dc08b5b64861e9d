"""The benchmark scripts still run, and their result checks still pass.

Nothing here is timed (the figures live in bench/ and docs/benchmarks.md). The harness
checks every nbbp result against its oracle before timing it — the hand NumPy steps
of W3, W4 and W6, the closed forms of W1 and W2, W5's plain loop — and exits 1 on a
wrong result; ``bench_tf1`` checks that its TF1 program and nbbp's own loop agree.
So these runs are correctness tests of the workloads as the bench builds them, and
they keep the scripts from rotting. Each runs in its own process, as from the shell.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_the_harness_checks_every_nbbp_workload_and_the_hand_step():
    text = _run("-m", "bench", "--only", "W1,W2,W3,W4,W5,W6,S1", "--peers", "nbbp,numba",
                "--samples", "1", "--quick")
    assert "WRONG" not in text and "error" not in text
    for row in ("| W1 call: new inputs, results read |", "| W3 SGD step, in a compiled loop",
                "| W4 f32 fwd+bwd |", "| W6 f64 SGD step |", "| S1 |"):
        assert row in text


@pytest.mark.parametrize("script, row", [
    ("bench/bench_call.py", "| W2 | set(x=…) + value + grads |"),
    ("bench/bench_tf1.py", "| tf1 sess.run([train, loss], feed) |"),
])
def test_a_bench_script_runs(script, row):
    assert row in _run(script, "--rounds", "1")
