"""Sweeps on Dask: 64 configurations × 500 steps of W3, local workers against one process.

Standalone: ``.venv/bin/python bench/bench_sweep.py [--quick] [--json out.json]``.

W3 is the MLP 2-16-16-1 on 100 two-moons points of ``bench.workloads`` (hinge loss
plus 1e-4·Σp² over all parameters, SGD); the sweep varies the learning rate (8
values around W3's 0.05) and the seed of the initial values (8 seeds), 500 steps each.
Cases, each the median of ``--repeats`` runs (threads pinned to 1 per process):

* **sequential**: ``nbbp.build`` + ``fit`` for every configuration in a loop, in this
  process — what a user would write without sweeps (the baseline);
* **serial**: ``nbbp.sweep(..., client="serial")`` — the sweep machinery, no Dask;
* **cluster, warm**: ``nbbp.sweep(..., client=c)`` on a local cluster of one worker
  process per core that is already up (default chunking, then one configuration per
  task);
* **cluster, cold**: ``nbbp.sweep(..., client=None)``: start the cluster, warm the
  kernels in every worker, run, close — the whole cost of one call;
* **overhead per task**: the time the busiest worker spends not running a model, per
  task it ran (one configuration per task; and 256 one-step scalar runs) — this does
  not depend on how fast the runs themselves were;
* **scaling**: 16, 64 and 256 configurations, warm cluster against sequential.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import nbbp  # noqa: E402
from bench import workloads as wl  # noqa: E402
from nbbp.sweep import sweep  # noqa: E402

W3 = """
x = input(X); y = input(Y)
W1 = param(randn(2, 16) * 0.5); b1 = param(randn(16) * 0.5)
W2 = param(randn(16, 16) * 0.5); b2 = param(randn(16) * 0.5)
W3 = param(randn(16, 1) * 0.5); b3 = param(randn(1) * 0.5)
h1 = relu(x @ W1 + b1)
h2 = relu(h1 @ W2 + b2)
s = h2 @ W3 + b3
reg = sum(W1**2) + sum(b1**2) + sum(W2**2) + sum(b2**2) + sum(W3**2) + sum(b3**2)
loss = mean(relu(1 - y * s)) + 1e-4 * reg
"""
STEPS = 500


def data() -> dict:
    X, y = wl.w3_data()
    return {"X": X, "Y": y[:, None]}


def grid(n: int) -> dict:
    """``n`` configurations: √n learning rates around W3's 0.05 × √n seeds."""
    k = int(round(n ** 0.5))
    return {"lr": [float(v) for v in np.geomspace(0.01, 0.2, k)], "seed": list(range(n // k))}


def sequential(g: dict, ns: dict, steps: int = STEPS) -> list[np.ndarray]:
    out = []
    for lr in g["lr"]:
        for seed in g["seed"]:
            m = nbbp.build(W3, namespace=ns, seed=seed)
            m.fit(steps, "sgd", lr=lr, seed=seed, progress=False)
            out.append(np.asarray(m.history.loss))
    return out


def median_s(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def idle(res) -> tuple[float, int]:
    """Wall time the busiest worker spent not running a model, and its task count
    (with chunk=1: its number of runs). Independent of how fast the runs were."""
    busy: dict[str, float] = {}
    count: dict[str, int] = {}
    for r in res:
        busy[r.worker] = busy.get(r.worker, 0.0) + r.time
        count[r.worker] = count.get(r.worker, 0) + 1
    w = max(busy, key=busy.get)
    return res.wall_time - busy[w], count[w]


def check(res, want: list[np.ndarray], what: str) -> None:
    bad = [r.config for r, w in zip(res, want) if not (r.ok and np.array_equal(r.losses, w))]
    if bad:
        raise SystemExit(f"{what}: results differ from the sequential runs for {bad[:3]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repeats, scaling up to 64")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workers", type=int, default=None, help="default: one per core")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--threads", action="store_true",
                    help="worker threads in this process instead of worker processes "
                    "(see docs/sweeps.md)")
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    from distributed import Client

    from nbbp import sweep as sweep_module
    load0 = os.getloadavg()
    nbbp.core.engine.kernels()
    ns = data()
    g64 = grid(64)
    sequential(grid(4), ns)                                         # warm-up
    out: dict[str, float] = {}
    rows: list[tuple[str, str]] = []

    t_seq, want = median_s(lambda: sequential(g64, ns), repeats)
    out["sequential_s"] = t_seq
    rows.append(("sequential, one process (build + fit × 64)", f"{t_seq * 1e3:.0f} ms"))
    t_ser, res = median_s(lambda: sweep(W3, g64, STEPS, namespace=ns, client="serial",
                                        progress=False), repeats)
    check(res, want, "serial")
    out["serial_s"] = t_ser
    rows.append(("sweep, client='serial'", f"{t_ser * 1e3:.0f} ms"))

    cluster = sweep_module.local_cluster(args.workers, processes=not args.threads)
    client = Client(cluster, set_as_default=False)
    try:
        n_workers = len(client.scheduler_info()["workers"])
        sweep(W3, grid(4), STEPS, namespace=ns, client=client, progress=False)   # warm
        run = lambda n, **kw: sweep(W3, grid(n), STEPS, namespace=ns, client=client,  # noqa: E731
                                    progress=False, **kw)
        t_warm, res = median_s(lambda: run(64), repeats)
        check(res, want, "cluster")
        out["cluster_warm_s"] = t_warm
        rows.append((f"sweep on a warm local cluster ({n_workers} workers, auto chunk)",
                     f"{t_warm * 1e3:.0f} ms — {t_seq / t_warm:.2f}× sequential"))
        gap, _ = idle(res)
        out["coordination_s"] = gap
        rows.append(("  of which the busiest worker is not running a model (plan, "
                     "transfers, waiting; last repeat)", f"{gap * 1e3:.0f} ms"))
        t_one, res = median_s(lambda: run(64, chunk=1), repeats)
        check(res, want, "cluster chunk=1")
        out["cluster_chunk1_s"] = t_one
        run_time = statistics.mean(r.time for r in res)
        out["run_s"] = run_time
        gap, tasks = idle(res)
        out["overhead_per_task_s"] = per_task = gap / tasks
        rows.append(("same, one configuration per task", f"{t_one * 1e3:.0f} ms — "
                     f"{t_seq / t_one:.2f}× sequential"))
        rows.append(("one run on a worker (build + 500 steps), mean",
                     f"{run_time * 1e3:.2f} ms"))
        rows.append(("overhead per task: busiest worker's idle time / its tasks (chunk=1)",
                     f"{per_task * 1e3:.2f} ms"))
        t_tiny, res = median_s(lambda: sweep("w = param(0.0)\nloss = (w - 3.0)**2",
                                             {"seed": list(range(256))}, 1, client=client,
                                             chunk=1, progress=False), repeats)
        gap, tasks = idle(res)
        out["tiny_sweep_s"], out["overhead_per_tiny_task_s"] = t_tiny, gap / tasks
        rows.append(("256 one-step scalar runs, chunk=1: wall; idle per task",
                     f"{t_tiny * 1e3:.0f} ms; {gap / tasks * 1e3:.2f} ms"))
        for n in (16, 64) if args.quick else (16, 64, 256):
            g = grid(n)
            t_s, _ = median_s(lambda g=g: sequential(g, ns), repeats)
            t_c, _ = median_s(lambda n=n: run(n), repeats)
            out[f"scaling_{n}_sequential_s"], out[f"scaling_{n}_cluster_s"] = t_s, t_c
            rows.append((f"{n} configurations: sequential / warm cluster",
                         f"{t_s * 1e3:.0f} ms / {t_c * 1e3:.0f} ms — {t_s / t_c:.2f}×"))
    finally:
        client.close()
        cluster.close()

    t_cold, res = median_s(lambda: sweep(W3, g64, STEPS, namespace=ns, workers=args.workers,
                                         progress=False), max(1, repeats // 2 + 1))
    check(res, want, "cold cluster")
    out["cluster_cold_s"] = t_cold
    rows.append(("sweep with client=None (start cluster, warm workers, run, close)",
                 f"{t_cold * 1e3:.0f} ms — {t_seq / t_cold:.2f}× sequential"))

    load = " / ".join(f"{v:.2f}" for v in (load0[0], os.getloadavg()[0]))
    out["load_average_before_after"] = [load0[0], os.getloadavg()[0]]
    print(f"\n## Sweeps: W3, 64 configurations × {STEPS} steps, {n_workers} local workers "
          f"({os.cpu_count()} cores), median of {repeats}; load average before / after: "
          f"{load} (other processes on the machine slow the parallel cases most)\n")
    print("| case | time |\n|---|---|")
    for name, val in rows:
        print(f"| {name} | {val} |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":          # worker processes are spawned: guard the entry point
    raise SystemExit(main())
