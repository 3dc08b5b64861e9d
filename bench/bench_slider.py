"""S1: a slider update of a ~100-node graph — set one param, recompute forward and
backward, produce the new picture text — kernel side, without a browser.

Standalone: ``.venv/bin/python bench/bench_slider.py [--quick] [--json out.json]``.
Prints the median of repeated updates for each case (target from the widgets issue:
≤ 5 ms for 100 nodes) beside the full re-layout a live view avoids, and checks that
the picture's numbers equal a fresh build's and that no node moved. Exit status 1 if
a check fails.

``s1_prepared()`` is the S1 hook for ``bench/nbbp_side.py``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_render import scalar_graph, tensor_graph  # noqa: E402

import nbbp  # noqa: E402
from nbbp import widgets  # noqa: E402
from nbbp.view import render  # noqa: E402
from nbbp.view.live import LivePicture  # noqa: E402


def median_ms(fn: Callable[[int], object], repeats: int, warmup: int = 20) -> float:
    """Median of ``repeats`` calls of ``fn(i)`` (each a different slider value)."""
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        fn(warmup + i)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def numbers(pic: LivePicture, svg: str) -> dict[str, float]:
    """Every number in the picture's slots, as floats, keyed ``group[i]``."""
    out = {}
    for gid, texts in pic.numbers(svg).items():
        for i, t in enumerate(texts):
            try:
                out[f"{gid}[{i}]"] = float(t.strip(" =‖"))
            except ValueError:
                pass
    return out


def fresh_numbers(src: str, leaf: str, value: float) -> dict[str, float]:
    m = nbbp.build(src)
    m.set({leaf: value})
    pic = LivePicture(m)
    return numbers(pic, pic.svg())


def geometry(svg: str) -> list[str]:
    return re.findall(r' (?:d|points|y)="[^"]*"', svg)


def s1_prepared():
    """The S1 hook: ``run()`` moves param ``x`` of the 100-node graph and returns the new
    picture; ``extract`` reads its numbers; ``expected`` is a fresh build's picture."""
    from bench.workloads import Prepared
    src = scalar_graph(100)
    m = nbbp.build(src)
    pic = LivePicture(m)

    def run() -> str:
        m.set(x=0.3)
        return pic.svg()
    return Prepared(run, lambda svg: numbers(pic, svg), fresh_numbers(src, "x", 0.3))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args()
    repeats = 60 if args.quick else 300
    rows: list[tuple[str, float, str]] = []
    failures: list[str] = []

    src = scalar_graph(100)
    m = nbbp.build(src)
    pic = LivePicture(m)
    first = pic.svg()
    x0 = float(m.value_of("x"))
    vals = [x0 + 0.001 * (i % 200) for i in range(1000)]

    def s1(i: int) -> str:
        m.set(x=vals[i % len(vals)])
        return pic.svg()
    rows.append(("S1: set x + forward/backward + picture text (100 scalar nodes)",
                 median_ms(s1, repeats), f"{len(m.forward)} nodes, {len(pic._slots)} slots"))
    rows.append(("  of which set x + forward/backward",
                 median_ms(lambda i: m.set(x=vals[i % len(vals)]), repeats), ""))
    ex = widgets.sliders(m, x=(-1, 1, 0.001))
    slider = ex.slider("x")
    rows.append(("S1 through the widget: FloatSlider.value = v (no browser)",
                 median_ms(lambda i: setattr(slider, "value", vals[i % len(vals)]), repeats),
                 "observer → Model.set → frame → HTML.value"))
    last = s1(999)
    if geometry(last) != geometry(first):
        failures.append("S1: a node or edge moved")
    got, want = numbers(pic, last), fresh_numbers(src, "x", vals[999 % len(vals)])
    if got != want:
        bad = [k for k in want if got.get(k) != want[k]][:5]
        failures.append(f"S1: numbers differ from a fresh build's at {bad}")

    tsrc = tensor_graph()
    tm = nbbp.build(tsrc)
    tpic = LivePicture(tm)
    w0 = tm.value_of("layer0/W").copy()

    def element(i: int, tips: bool = True) -> str:
        w = w0.copy()
        w[0, 0] += 0.001 * (i % 200)
        tm.set({"layer0/W": w})
        return tpic.svg(tips=tips)
    rows.append(("tensor MLP, one element of W moved (14 scopes, 64×8 data)",
                 median_ms(element, repeats // 3), f"{len(tm.forward)} nodes"))
    rows.append(("  the same while dragging (tensor tooltips kept)",
                 median_ms(lambda i: element(i, tips=False), repeats // 3), ""))

    for renderer in ("dot", "graphviz-pure"):
        if render.find_renderer(renderer) is None:
            continue
        rows.append((f"what a live view avoids: full re-layout with {renderer}",
                     median_ms(lambda i, r=renderer: (m.set(x=vals[i % len(vals)]),
                                                      render.svg(m, renderer=r)),
                               max(5, repeats // 30), warmup=2), "and every node moves"))

    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  median ms  note")
    for name, ms, note in rows:
        print(f"{name:<{width}}  {ms:9.3f}  {note}")
    for f in failures:
        print("FAIL", f, file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"rows": [{"case": n, "median_ms": ms, "note": t} for n, ms, t in rows],
             "failures": failures}, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
