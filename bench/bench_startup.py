"""Start-up: fresh processes with Numba's on-disk cache warm, median of ``--repeats``.

Run from the repository root: ``python bench/bench_startup.py [--repeats 5]``.

* ``python -c pass``: the interpreter alone;
* ``import nbbp``: NumPy and nbbp (no Numba, IPython, torch, JAX, TensorBoard);
* **S2**: ``import nbbp``, build W1 and read its value and gradients (loads Numba and
  the scalar kernel from the cache);
* **magic**: in a fresh IPython shell, the cells ``%load_ext nbbp`` then at once a
  first small ``%%bpgraph`` cell (W1), run as a notebook runs them (``run_cell``:
  IPython's events fire, the display hook computes the picture's SVG); then a next
  cell (``f.value``), which switches the model to the compiled engine, waiting for
  the rest of the kernels' background load;
* the same with the stand-in off (the first cell waits for the kernels: main's
  behaviour before the stand-in), and with the kernels loading beside the cell
  (started at ``%load_ext`` rather than once the notebook is idle), for the ratios;
* ``%load_ext``, a 2 s pause (typing), then the first cell: the kernels loaded in the
  pause, so the cell runs compiled (the pause is not counted).

Each process also reports where its time went (in-process timestamps), and which heavy
modules it imported; one untimed warm-up run comes first. nbbp's bytecode is compiled
first (``compileall``), as an installed package has it.
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
          "print(json.dumps({'phases': P, 'extra': globals().get('E', {}), 'heavy': "
          "sorted({m.split('.')[0] for m in sys.modules} & set(HEAVY))}))\n")

# IPython runs the cells as a notebook does; the display formatter computes every
# mime type (SVG included) as the kernel would, and we check that the SVG was made
MAGIC = (
    "import time\n"
    "from IPython.core.interactiveshell import InteractiveShell\n"
    "ip = InteractiveShell.instance()\n"
    "fmt = ip.display_formatter; fmt.active_types = list(fmt.format_types)\n"
    "shown, _format = [], fmt.format\n"
    "def keep(obj, *a, **k):\n"
    "    shown.append(_format(obj, *a, **k))\n"
    "    return shown[-1]\n"
    "fmt.format = keep\n"
    "t1 = time.perf_counter()\n"
    "PATCH"
    "ip.run_cell('%load_ext nbbp')\nPAUSE\nt2 = time.perf_counter()\n"
    f"ip.run_cell('%%bpgraph f\\n{W1}')\nt3 = time.perf_counter()\n"
    "assert '<svg' in shown[-1][0]['image/svg+xml'], shown\n"
    "first = ip.user_ns['f'].compiled.engine\n"
    "ip.run_cell('v = f.value')\nt4 = time.perf_counter()\n"
    "assert ip.user_ns['v'] == 21.0 and ip.user_ns['f'].compiled.engine == 'numba'\n"
    "P = {'%load_ext nbbp': t2 - t1, 'first cell + SVG': t3 - t2, "
    "'load_ext + first cell': t3 - t1, 'next cell': t4 - t3}\n"
    "E = {'first cell computed by': first}\n" + REPORT)



def _magic(patch: str = "", pause: str = "") -> str:
    return MAGIC.replace("PATCH", patch).replace("PAUSE", pause)


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
    "%load_ext nbbp + first %%bpgraph cell (W1)": _magic(),
    "… the same, stand-in off (the cell waits for Numba)": _magic(
        "import nbbp.core.engine as _e; _e.ready = lambda name: True\n"),
    "… the same, kernels loading beside the cell (load at %load_ext, not when idle)": _magic(
        "import nbbp.magic as _m; import nbbp.core.engine as _e\n"
        "_m._preload_when_idle = lambda: _e.preload()\n"),
    "%load_ext nbbp, 2 s of typing, first cell (not timed: the pause)": _magic(
        pause="t1 += 2.0; time.sleep(2.0)"),
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
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "nbbp")], check=True,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
                   stdout=subprocess.DEVNULL)
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
        shown += "".join(f"; {k}: {v}" for k, v in rep["extra"].items())
        print(f"| {name} | {statistics.median(walls):.3f} s | {shown} | "
              f"{', '.join(rep['heavy']) or 'none'} |", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
