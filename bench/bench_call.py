"""The call path, in one process: every form of nbbp's call against the bare kernel.

Run from the repository root: ``python bench/bench_call.py [--rounds 25]``.

For W1, W2 and W5 it times, interleaved round by round (so a load spike hits every
form alike), samples of ~0.5 ms; it shows the median and the minimum over the rounds,
and the ratio to the kernel of each (on a shared, loaded machine the minimum is the
steadier: noise only ever adds time):

* ``kernel``: ``m.compute()``, the compiled call on the values in the arena, nothing
  read (the kernel-only row of ``python -m bench``);
* ``f(*floats)``: ``m.function(...)`` called with new Python floats, value and
  gradients returned;
* ``f(**floats)``: the same by keyword;
* ``set(x=…) + value + grads``: ``m.set(x=a, y=b)`` with the names written out, as a
  loop in a notebook writes it, then ``m.value``, ``m.grads``;
* ``set(**d) + value + grads``: the same with a dict unpacked (``m.set(**floats)``);
* ``set(**d) + m[name].grad``: ``m.set(**floats)``, ``m.value``, then ``m[name].grad``
  for each leaf.

The inputs cycle through :func:`bench.calls.pool`, so every call gets new values.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.calls import NAMES, pool  # noqa: E402
from bench.nbbp_side import model  # noqa: E402


def forms(workload: str) -> dict:
    m = model(workload)
    names = NAMES[workload]
    f = m.function(*names)
    nxt = pool(workload)
    kw = itertools.cycle([dict(zip(names, nxt())) for _ in range(8)]).__next__

    # the names written out: a function made for this workload's leaves
    src = (f"def set_named():\n    v = nxt()\n"
           f"    m.set({', '.join(f'{k}=v[{i}]' for i, k in enumerate(names))})\n"
           f"    return m.value, m.grads\n")
    scope = {"m": m, "nxt": nxt}
    exec(src, scope)

    def set_grads():
        m.set(**kw())
        return m.value, m.grads

    def set_items():
        m.set(**kw())
        return m.value, [m[k].grad for k in names]

    return {"kernel": m.compute, "f(*floats)": lambda: f(*nxt()),
            "f(**floats)": lambda: f(**kw()), "set(x=…) + value + grads": scope["set_named"],
            "set(**d) + value + grads": set_grads, "set(**d) + m[name].grad": set_items}


def per_call(fn, n: int) -> float:
    t = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - t) * 1e-9 / n


def _fmt(t: float) -> str:
    return f"{t * 1e9:.0f} ns" if t < 1e-6 else f"{t * 1e6:.2f} µs"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=41)
    args = p.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.1f}\n")
    print("| workload | form | median | × kernel | minimum | × kernel |")
    print("|---|---|---|---|---|---|")
    for workload in ("W1", "W2", "W5"):
        fs = forms(workload)
        for fn in fs.values():                       # warm up, size the loops
            fn()
        inner = {k: max(1, int(5e-4 / max(per_call(fn, 50), 1e-9))) for k, fn in fs.items()}
        times: dict[str, list[float]] = {k: [] for k in fs}
        for _ in range(args.rounds):
            for k, fn in fs.items():
                times[k].append(per_call(fn, inner[k]))
        k_med, k_min = statistics.median(times["kernel"]), min(times["kernel"])
        for k, ts in times.items():
            med, low = statistics.median(ts), min(ts)
            print(f"| {workload} | {k} | {_fmt(med)} | {med / k_med:.2f} | {_fmt(low)} "
                  f"| {low / k_min:.2f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
