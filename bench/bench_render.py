"""Speed of the picture: DOT text, full renders, and a 2,000-node graph end to end.

Standalone: ``.venv/bin/python bench/bench_render.py [--quick] [--json out.json]``.
Prints the median of repeated runs for each case (targets from the issue: DOT for 100
nodes ≤ 5 ms, a full render of 100 nodes ≤ 50 ms, a 2,000-node graph in a second or
two). Renders run with every renderer found (system ``dot``, ``graphviz-pure``).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nbbp  # noqa: E402
from nbbp.view import graphviz as _renderers  # noqa: E402
from nbbp.view import render  # noqa: E402


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def scalar_graph(n: int = 100) -> str:
    """A neuron-style scalar graph of exactly ``n`` forward nodes (params, consts, ops)."""
    lines = ["x = param(0.5)", "w = param(1.5)", "h = x"]
    count = 2
    i = 0
    while count + 4 <= n - 1:           # tanh(h * w + c): mul, const, add, tanh
        lines.append(f"h = tanh(h * w + {0.1 * (i % 7):.1f})")
        count += 4
        i += 1
    while count < n - 1:
        lines.append("h = sin(h)")
        count += 1
    lines.append("f = h * h")
    return "\n".join(lines)


def tensor_graph(layers: int = 14) -> str:
    """An MLP with one scope per layer (~100 nodes), on 64 samples."""
    src = ["x = input(randn(64, 8))", "y = input(randn(64, 1))", "h = x"]
    for k in range(layers):
        src += [f'with scope("layer{k}"):', "    W = param(randn(8, 8) * 0.4)",
                "    b = param(zeros(8))", "    h = tanh(h @ W + b)"]
    src += ["s = h @ param(randn(8, 1))", "loss = mean((s - y) ** 2)"]
    return "\n".join(src)


def big_graph(blocks: int = 20, per_block: int = 25) -> str:
    """~2,000 scalar nodes in ``blocks`` scopes (each step: sin, mul, const, add)."""
    src = ["x = param(0.5)", "h = x"]
    for b in range(blocks):
        src += [f'with scope("block{b}"):', f"    for i in range({per_block}):",
                "        h = sin(h) * 0.9 + x"]
    src.append("f = h")
    return "\n".join(src)


def flat_graph(steps: int = 500) -> str:
    """~2,000 scalar nodes and no scopes (the picture keeps the last nodes)."""
    return f"x = param(0.5)\nh = x\nfor i in range({steps}):\n    h = sin(h) * 0.9 + x\nf = h"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    a = ap.parse_args()
    reps = 7 if a.quick else 25
    big_reps = 3 if a.quick else 7

    renderers = [r for r in ("dot", "graphviz-pure") if render.find_renderer(r)]
    print(f"python {sys.version.split()[0]}, renderers: "
          + (", ".join(f"{r} ({render.find_renderer(r).version})" for r in renderers)
             or "none"), file=sys.stderr)
    results: dict[str, float] = {}

    def record(name: str, ms: float, target: str = "") -> None:
        results[name] = round(ms, 3)
        print(f"{name:<58} {ms:9.2f} ms  {target}")

    m100 = nbbp.build(scalar_graph(100), name="f")
    assert len(m100.forward) == 100, len(m100.forward)
    mt = nbbp.build(tensor_graph(), name="mlp")
    record("DOT text, 100 scalar nodes", median_ms(lambda: render.to_dot(m100), reps),
           "(target ≤ 5 ms)")
    record(f"DOT text, {len(mt.forward)}-node MLP (tensors, 14 scopes)",
           median_ms(lambda: render.to_dot(mt), reps))
    record("DOT text, 100 scalar nodes + backward pass",
           median_ms(lambda: render.to_dot(m100, backward=True, max_nodes=0), reps))
    for r in renderers:
        record(f"full render to SVG, 100 scalar nodes, {r}",
               median_ms(lambda r=r: render.svg(m100, renderer=r), reps),
               "(target ≤ 50 ms)")
        record(f"full render to SVG, {len(mt.forward)}-node MLP, {r}",
               median_ms(lambda r=r: render.svg(mt, renderer=r), reps))

    for label, src in (("2,000-node graph in 20 scopes", big_graph()),
                       ("2,000-node graph without scopes", flat_graph())):
        n = len(nbbp.build(src).forward)
        record(f"build, {label} ({n} nodes)", median_ms(lambda s=src: nbbp.build(s), big_reps))
        m = nbbp.build(src)
        record(f"DOT text, {label}", median_ms(lambda m=m: render.to_dot(m), big_reps))
        for r in renderers:
            record(f"end to end (build + SVG), {label}, {r}",
                   median_ms(lambda s=src, r=r: render.svg(nbbp.build(s), renderer=r),
                             big_reps), "(target: a second or two)")
    if "graphviz-pure" in renderers:
        m = nbbp.build(big_graph())
        record("SVG of all 2,000 nodes (max_nodes=0), graphviz-pure",
               median_ms(lambda: render.svg(m, renderer="graphviz-pure", max_nodes=0), 1,
                         warmup=0))
    if a.json:
        Path(a.json).write_text(json.dumps({"renderers": renderers, "median_ms": results,
                                            "dot": shutil.which("dot"),
                                            "graphviz-pure": _renderers._graphviz_pure_paths()},
                                           indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
