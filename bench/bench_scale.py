"""Scale: graph construction, ``Model`` and a run against the number of scalar nodes.

Run from the repository root::

    python bench/bench_scale.py                    # 1k, 10k, 100k nodes, chain and wide sum
    python bench/bench_scale.py --sizes 1000000    # one size
    python bench/bench_scale.py --magic 200000     # a %%bpgraph cell looping N ops
    python bench/bench_scale.py --magic 120000     # … that builds 200k nodes (W5's pattern)
    python bench/bench_scale.py --cases chain:60000,wide:50000   # ~100k forward nodes each

Every case runs in a **fresh subprocess** (so peak memory is that case's alone), after
importing nbbp and loading the scalar kernel from Numba's cache. Shapes:

* **chain**: ``v = x`` then N ops ``sin``, ``*1.001``, ``+0.0005`` in turn (W5's pattern;
  the numbers become constants, so the forward graph has ~5N/3 nodes);
* **wide**: N params summed, ``p0 + p1 + … `` (2N forward nodes).

N counts the user's operations (chain) or leaves (wide); the table also shows the
forward nodes and all nodes (forward + gradient nodes). Times: ``build`` is the
Python loop that builds the graph, ``Model`` is autodiff + lowering + the arena + the
first run, ``run`` one more forward + backward. Memory: peak resident set of the
process (``ru_maxrss``) and its growth over the state after imports (``Δ peak``).
The ``--magic`` case runs ``%%bpgraph`` in an IPython shell and then asks for the
cell's picture (the mimebundle a notebook displays).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import gc, json, resource, sys, time
import nbbp
from nbbp.core.engine import kernel
kernel("run_scalar")
kind, n = sys.argv[1], int(sys.argv[2])
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = rss()
t0 = time.perf_counter()
with nbbp.Graph() as g:
    x = nbbp.param(0.5, name="x")
    if kind == "chain":
        v = x
        for k in range(n):
            r = k % 3
            v = nbbp.sin(v) if r == 0 else (v * 1.001 if r == 1 else v + 0.0005)
    else:
        v = x
        for i in range(1, n):
            v = v + nbbp.param(1e-3 * i, name=f"p{i}")
t1 = time.perf_counter()
m = nbbp.Model(v)
t2 = time.perf_counter()
m.compute()
t3 = time.perf_counter()
print(json.dumps({"kind": kind, "n": n, "forward": len(m.forward), "nodes": len(g.nodes),
                  "build": t1 - t0, "model": t2 - t1, "run": t3 - t2,
                  "peak_mb": rss(), "delta_mb": rss() - base, "value": m.value}))
"""

MAGIC = r"""
import json, resource, sys, time
from IPython.core.interactiveshell import InteractiveShell
n = int(sys.argv[1])
ip = InteractiveShell.instance()
from nbbp.core.engine import kernel
kernel("run_scalar")
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = rss()
t0 = time.perf_counter()
ip.run_line_magic("load_ext", "nbbp")
t1 = time.perf_counter()
cell = ("x = param(0.5)\nv = x\nfor k in range(N):\n"
        "    v = sin(v) if k % 3 == 0 else (v * 1.001 if k % 3 == 1 else v + 0.0005)\n")
ip.user_ns["N"] = n
pic = ip.run_cell_magic("bpgraph", "f", cell)
t2 = time.perf_counter()
bundle = pic._repr_mimebundle_()
t3 = time.perf_counter()
m = ip.user_ns["f"]
print(json.dumps({"n": n, "nodes": len(m.graph.nodes), "forward": len(m.forward),
                  "load_ext": t1 - t0,
                  "cell": t2 - t1, "picture": t3 - t2, "formats": sorted(bundle),
                  "peak_mb": rss(), "delta_mb": rss() - base}))
"""


def run_child(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter and return the JSON it prints last."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"case {args} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000,100000",
                   help="comma-separated N (default 1000,10000,100000)")
    p.add_argument("--kinds", default="chain,wide", help="chain, wide or both")
    p.add_argument("--cases", default="",
                   help="comma-separated kind:N cases instead of --sizes × --kinds, e.g. "
                        "chain:60000,wide:50000 (~100k forward nodes each)")
    p.add_argument("--magic", type=int, default=0,
                   help="also time a %%%%bpgraph cell building this many chain ops")
    args = p.parse_args(argv)
    print("| shape | N | forward nodes | all nodes | build | Model | run | peak RSS | Δ peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    cases = [(k, int(n)) for k, n in (c.split(":") for c in args.cases.split(",") if c)] \
        or [(kind, int(n)) for n in args.sizes.split(",") if n for kind in args.kinds.split(",")]
    for kind, n in cases:
        if kind not in ("chain", "wide"):
            p.error(f"unknown shape {kind!r}: use chain or wide")
        r = run_child(CHILD, kind, str(n))
        print(f"| {kind} | {n:,} | {r['forward']:,} | {r['nodes']:,} | {r['build']:.2f} s "
              f"| {r['model']:.2f} s | {r['run'] * 1e3:.2f} ms | {r['peak_mb']:.0f} MB "
              f"| {r['delta_mb']:.0f} MB |", flush=True)
    if args.magic:
        r = run_child(MAGIC, str(args.magic))
        print(f"\n%%bpgraph cell, loop of {args.magic:,} ops ({r['forward']:,} nodes built by "
              f"the loop, {r['nodes']:,} with the gradient): "
              f"%load_ext {r['load_ext']:.2f} s, cell {r['cell']:.2f} s, picture "
              f"{r['picture']:.2f} s ({', '.join(r['formats'])}); peak RSS "
              f"{r['peak_mb']:.0f} MB (Δ {r['delta_mb']:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
