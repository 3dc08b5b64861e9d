"""Benchmark CLI: ``python -m bench [--only W1,W2] [--quick]`` from the repository root.

Runs every selected workload for nbbp (hooks in ``bench/nbbp_side.py``) and every
installed peer in one process, checks each result against the reference of
``bench.workloads``, and prints a markdown table of median times with ratios to the
baseline column (nbbp by default).  S2 (cold start) spawns fresh ``python -c``
processes: one untimed warm-up (fills on-disk caches), then the median of 5.

A peer that is not installed (``ImportError``) is shown as "missing", a case it does
not implement as "n/a", a crash as "error", a wrong result as "<time> WRONG"; none of
them stops the run.  Exit status is 1 if any result was wrong or errored, else 0.

Threads are pinned (default 1, as in BENCHMARKS.md's W4 column) through
OMP/OpenBLAS/MKL/Numba environment variables, ``XLA_FLAGS`` and
``torch.set_num_threads`` before anything heavy is imported; subprocesses inherit them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

if __package__ in (None, ""):  # run as ``python bench/run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REPO_ROOT = Path(__file__).resolve().parent.parent
BASELINE = "nbbp"


def pin_threads(n: int) -> None:
    """Pin BLAS/OpenMP/Numba/XLA thread pools to ``n`` threads (before their import)."""
    if "numpy" in sys.modules:
        print("warning: numpy imported before the thread count was pinned", file=sys.stderr)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)
    if n == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            extra = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
            os.environ["XLA_FLAGS"] = f"{flags} {extra}".strip()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument(
        "--only", default="", help="comma-separated workloads, e.g. W1,W2,W4,S2 (default: all)"
    )
    p.add_argument(
        "--peers", default="", help="comma-separated columns to run (default: nbbp and all peers)"
    )
    p.add_argument(
        "--quick", action="store_true", help="~10 ms samples instead of ~25 ms (still 7 samples)"
    )
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        help="samples per measurement (default 7 quick, 9 full)",
    )
    p.add_argument(
        "--threads", type=int, default=1, help="threads for BLAS/XLA/torch/Numba (default 1)"
    )
    p.add_argument("--baseline", default=BASELINE, help="column the ratios refer to (default nbbp)")
    p.add_argument(
        "--s2-repeats",
        type=int,
        default=5,
        help="fresh processes per cold-start median (default 5)",
    )
    p.add_argument(
        "--json", type=Path, default=None, help="also write the raw results to this JSON file"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and print the table; return the exit status."""
    args = parse_args(argv)
    pin_threads(args.threads)

    # Heavy imports only after the thread pools are pinned.
    from bench import calls, nbbp_side, peers
    from bench import workloads as wl
    from bench.timing import (
        NOT_APPLICABLE,
        Cell,
        format_seconds,
        format_table,
        time_call,
        time_process,
    )
    from bench.workloads import Case, Prepared

    peers.configure(args.threads)
    only = {w.strip().upper() for w in args.only.split(",") if w.strip()}
    cases = [c for c in wl.CASES if not only or c.workload in only]
    columns = [BASELINE, *peers.PEERS]
    if args.peers:
        wanted = {p.strip() for p in args.peers.split(",") if p.strip()}
        unknown = wanted - set(columns)
        if unknown:
            print(
                f"unknown peers: {', '.join(sorted(unknown))}; choose from {', '.join(columns)}",
                file=sys.stderr,
            )
            return 2
        columns = [c for c in columns if c in wanted]
    target = 0.01 if args.quick else 0.025
    samples = args.samples or (7 if args.quick else 9)

    def prepare(column: str, case: Case) -> Prepared:
        if case.call:
            return calls.prepare(column, case)
        if column != BASELINE:
            if case.every:
                raise peers.NotApplicable("nbbp's picture only")
            return peers.prepare(column, case)
        hooks = {
            "W1": nbbp_side.nbbp_w1,
            "W2": nbbp_side.nbbp_w2,
            "W3": lambda: nbbp_side.nbbp_w3(case.step, case.steps),
            "W4": lambda: nbbp_side.nbbp_w4(case.dtype, case.step, case.every),
            "W5": nbbp_side.nbbp_w5,
            "W6": lambda: nbbp_side.nbbp_w6(case.dtype, case.step),
            "S1": nbbp_side.nbbp_s1,
        }
        return hooks[case.workload]()

    def s2_code(column: str) -> str:
        if column == BASELINE:
            return nbbp_side.nbbp_s2_code()
        if peers.version(column) is None:
            raise ImportError(f"{column} is not installed")
        if column not in peers.S2_CODE:
            raise peers.NotApplicable(f"{column} has no S2 snippet")
        return peers.S2_CODE[column]

    cells: dict[tuple[str, str], Cell] = {}
    notes: list[str] = []
    raw: list[dict[str, object]] = []
    bad = 0
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    for case in cases:
        for column in columns:
            label = f"{case.id} / {peers.TITLES[column]}"
            try:
                if case.workload == "S2":
                    timing, last = time_process(
                        s2_code(column), repeats=args.s2_repeats, cwd=str(REPO_ROOT)
                    )
                    try:
                        got = dict(zip(("f", "x", "y"), map(float, last.split()), strict=True))
                    except ValueError:
                        got = {}
                    problem = wl.compare(got, wl.W1_EXPECTED, 1e-9)
                else:
                    prepared = prepare(column, case)
                    result = prepared.extract(prepared.run())
                    want = prepared.expected if prepared.expected is not None else wl.expected(case)
                    problem = wl.compare(result, want, wl.tolerance(case))
                    timing = time_call(prepared.run, target=target, samples=samples)
                    del prepared
            except ImportError as exc:
                cells[case.id, column] = Cell(status="missing")
                log(f"{label}: missing ({exc})")
                continue
            except peers.NotApplicable:
                cells[case.id, column] = Cell(status=NOT_APPLICABLE)
                continue
            except Exception as exc:  # a broken peer must not stop the run
                msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                if case.workload == "S2" and msg.startswith("RuntimeError: ImportError"):
                    cells[case.id, column] = Cell(status="missing")
                    log(f"{label}: missing ({msg})")
                    continue
                cells[case.id, column] = Cell(status="error")
                notes.append(f"{label}: error: {msg}")
                log(f"{label}: error: {msg}")
                bad += 1
                continue
            if case.steps > 1:  # report per step
                timing = replace(timing, median=timing.median / case.steps)
            cells[case.id, column] = Cell(seconds=timing.median, wrong=problem is not None)
            raw.append(
                {"case": case.id, "column": column, "correct": problem is None, **asdict(timing)}
            )
            if problem is not None:
                notes.append(f"{label}: WRONG: {problem}")
                bad += 1
            log(
                f"{label}: {format_seconds(timing.median)} median "
                f"({timing.samples}x{timing.inner}, spread {timing.spread:.0%})"
                + ("" if problem is None else f"  WRONG: {problem}")
            )

    interp = None
    if any(c.workload == "S2" for c in cases):
        interp, _ = time_process("pass", repeats=args.s2_repeats, cwd=str(REPO_ROOT))

    versions = {c: peers.version(c) for c in columns if c not in (BASELINE, "numpy")}
    print(header(args, target, samples, versions))
    print()
    rows = [c.id for c in cases]
    print(format_table(rows, columns, cells, baseline=args.baseline, titles=peers.TITLES))
    print()
    print(legend(args.baseline, interp.median if interp else None))
    for note in notes:
        print(f"- {note}")
    print(f"\n_total run time {time.perf_counter() - started:.0f} s_")
    if args.json:
        args.json.write_text(
            json.dumps({"threads": args.threads, "quick": args.quick, "results": raw}, indent=2)
        )
    return 1 if bad else 0


def header(
    args: argparse.Namespace, target: float, samples: int, versions: dict[str, str | None]
) -> str:
    """Run context: machine, versions, settings."""
    import importlib.metadata as md

    import numpy

    parts = [f"python {platform.python_version()}", f"numpy {numpy.__version__}"]
    try:
        parts.append(f"numba {md.version('numba')}")
    except md.PackageNotFoundError:
        pass
    parts += [f"{name} {v or 'missing'}" for name, v in versions.items()]
    return (
        f"## nbbp benchmark ({'quick' if args.quick else 'full'})\n\n"
        f"{platform.machine()}, {os.cpu_count()} cpus, threads pinned to {args.threads}; "
        + ", ".join(parts)
        + f"\n\nmedian per call of {samples} samples of ~{target * 1e3:.0f} ms each"
    )


def legend(baseline: str, interpreter: float | None) -> str:
    """Text printed under the table."""
    lines = [
        f"(×r) = time relative to {baseline} (r > 1: slower than {baseline}); "
        "missing = not installed / hook not filled in; n/a = not implemented for that peer.",
        "Call rows: every system gets new input values each call and returns its value and "
        "gradients as Python floats (bench/calls.py); kernel-only rows: nbbp's compute() on "
        "the values already in its arena, nothing read, beside the peers as before.",
        "W3/W4/W6 fwd+bwd: the loss and the params' gradients, as the peers' value_and_grad "
        "of the params: nbbp f(*params) of f = m.function(*params, wrt=params) (params "
        "written, its backward pass pruned to them, fresh gradient arrays returned); the "
        "W4 'every gradient' row is nbbp's compute() of the whole picture, kernel only.",
        "W3/W4 SGD step: steady state of a Python-level training loop (one call = one step; "
        "for JAX the step itself is one jitted function; for nbbp one call of its compiled "
        "loop). 'In a compiled loop of 100': one call runs 100 steps, the time is per step "
        "(nbbp: Model.train_loop, what fit runs; JAX: lax.fori_loop inside jit; hand NumPy: "
        "a Python loop). "
        "Checked at rel 1e-9 (f64) / 1e-4 (W4 f32) against a hand NumPy step.",
        "S2: wall time of a fresh `python -c` process importing the package and running W1 "
        "(one untimed warm-up first, so on-disk caches are warm).",
    ]
    if interpreter is not None:
        lines.append(f"Bare interpreter start (`python -c pass`): {interpreter * 1e3:.1f} ms.")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
