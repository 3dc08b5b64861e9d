"""Start-up: fresh processes with Numba's on-disk cache warm, median of ``--repeats``.

Run from the repository root: ``python bench/bench_startup.py [--repeats 5]``.

* ``python -c pass``: the interpreter alone;
* ``import nbbp``: NumPy and nbbp (no Numba, IPython, torch, JAX, TensorBoard);
* **S2**: ``import nbbp``, build W1 and read its value and gradients (loads Numba and
  the scalar kernel from the cache);
* **magic**: in a fresh IPython shell, ``%load_ext nbbp`` then at once a first small
  ``%%bpgraph`` cell (W1) and its picture's DOT text — the cell waits for the kernel
  the extension started loading in the background.

Each process also reports where its time went (in-process timestamps), and which heavy
modules it imported; one untimed warm-up run comes first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numba", "scipy", "cffi", "torch", "jax", "tensorboard", "IPython", "graphviz",
         "ipywidgets", "matplotlib")
W1 = "x = param(3.0)\\ny = param(2.0)\\nf = x*x*y + y + 1"

REPORT = ("import json, sys\n"
          f"HEAVY = {HEAVY!r}\n"
          "print(json.dumps({'phases': P, 'heavy': sorted({m.split('.')[0] for m in "
          "sys.modules} & set(HEAVY))}))\n")

CASES = {
    "python -c pass": "P = {}\n" + REPORT,
    "import nbbp": ("import time; t = time.perf_counter()\nimport nbbp\n"
                    "P = {'import nbbp': time.perf_counter() - t}\n" + REPORT),
    "S2 (import, build and run W1)": (
        "import time; t0 = time.perf_counter()\nimport nbbp\nt1 = time.perf_counter()\n"
        f"m = nbbp.build('{W1}')\nt2 = time.perf_counter()\n"
        "assert (m.value, m.grads['x'], m.grads['y']) == (21.0, 12.0, 10.0)\n"
        "P = {'import nbbp': t1 - t0, 'build + first run (loads Numba)': t2 - t1}\n"
        + REPORT),
    "%load_ext nbbp + first %%bpgraph cell": (
        "import time; t0 = time.perf_counter()\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\nt1 = time.perf_counter()\n"
        "ip.run_line_magic('load_ext', 'nbbp')\nt2 = time.perf_counter()\n"
        f"pic = ip.run_cell_magic('bpgraph', 'f', '{W1}')\nt3 = time.perf_counter()\n"
        "dot = pic.to_dot()\nt4 = time.perf_counter()\n"
        "assert ip.user_ns['f'].value == 21.0 and 'digraph' in dot\n"
        "P = {'IPython shell': t1 - t0, '%load_ext nbbp': t2 - t1, 'first cell': t3 - t2, "
        "'its DOT text': t4 - t3, 'load_ext + cell + DOT': t4 - t1}\n" + REPORT),
}


def run(code: str) -> tuple[float, dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=False)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return wall, json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print("| case | wall, median | in-process phases (medians) | heavy modules imported |")
    print("|---|---|---|---|")
    for name, code in CASES.items():
        run(code)                                   # warm-up: caches, page cache
        walls, phases = [], []
        for _ in range(args.repeats):
            wall, rep = run(code)
            walls.append(wall)
            phases.append(rep["phases"])
        med = {k: statistics.median(ph[k] for ph in phases) for k in phases[0]}
        shown = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in med.items()) or "—"
        print(f"| {name} | {statistics.median(walls):.3f} s | {shown} | "
              f"{', '.join(rep['heavy']) or 'none'} |", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
