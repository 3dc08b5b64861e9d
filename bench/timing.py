"""Timing helpers and the markdown table printer.

:func:`time_call` times an in-process callable (median seconds per call);
:func:`time_process` times a fresh ``python -c`` process (median wall seconds);
:func:`format_table` renders medians and ratios against a baseline column.
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Per-call statistics of one timed callable, in seconds."""

    median: float
    minimum: float
    maximum: float
    inner: int  # calls per sample
    samples: int

    @property
    def spread(self) -> float:
        """(max - min) / median: a rough noise indicator."""
        return (self.maximum - self.minimum) / self.median if self.median else 0.0


def time_call(
    fn: Callable[[], object],
    *,
    target: float = 0.02,
    samples: int = 7,
    max_inner: int = 1_000_000,
) -> Timing:
    """Median time per call of ``fn``.

    The inner loop count is chosen so that one sample takes about ``target`` seconds
    (at least one call); then ``samples`` samples are taken and each divided by the
    inner count.  The calibration calls double as warm-up, so a first (compiling) call
    should already have happened.  GC stays enabled (allocation-heavy peers pay for
    their garbage, as in real use) but is collected before each sample.
    """
    if samples < 1:
        raise ValueError("samples must be >= 1")
    clock = time.perf_counter_ns
    inner = 1
    while True:
        t0 = clock()
        for _ in range(inner):
            fn()
        elapsed = (clock() - t0) * 1e-9
        if elapsed >= target / 5 or inner >= max_inner:
            break
        # Grow fast while the estimate is below timer resolution, then aim for target/5.
        inner = min(
            max_inner,
            inner * 10
            if elapsed < 1e-5
            else max(inner * 2, math.ceil(inner * target / 5 / elapsed)),
        )
    inner = max(1, min(max_inner, round(inner * target / elapsed))) if elapsed > 0 else max_inner
    per_call: list[float] = []
    for _ in range(samples):
        gc.collect()
        t0 = clock()
        for _ in range(inner):
            fn()
        per_call.append((clock() - t0) * 1e-9 / inner)
    return Timing(statistics.median(per_call), min(per_call), max(per_call), inner, samples)


def time_process(
    code: str,
    *,
    repeats: int = 5,
    warmup: int = 1,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
    timeout: float = 120.0,
) -> tuple[Timing, str]:
    """Median wall time of ``python -c code`` in fresh processes, and the last stdout line.

    ``warmup`` untimed runs go first (they fill on-disk caches, e.g. Numba's).  Raises
    ``RuntimeError`` with the process's stderr tail if a run fails.
    """
    run_env = dict(os.environ if env is None else env)
    times: list[float] = []
    last = ""
    for i in range(warmup + repeats):
        t0 = time.perf_counter_ns()
        proc = subprocess.run(
            [python, "-c", code],
            cwd=cwd,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        elapsed = (time.perf_counter_ns() - t0) * 1e-9
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
            kind = (
                "ImportError"
                if "ModuleNotFoundError" in proc.stderr or "ImportError" in proc.stderr
                else "error"
            )
            raise RuntimeError(f"{kind}: exit {proc.returncode}: {tail}")
        lines = proc.stdout.strip().splitlines()
        last = lines[-1] if lines else ""
        if i >= warmup:
            times.append(elapsed)
    return Timing(statistics.median(times), min(times), max(times), 1, repeats), last


# --------------------------------------------------------------------------- table

MISSING = "missing"
NOT_APPLICABLE = "n/a"


@dataclass(frozen=True)
class Cell:
    """One table cell: a timing, or a status ("missing", "n/a", "error", ...).

    ``wrong`` marks a timing whose result failed the correctness check.
    """

    seconds: float | None = None
    status: str = ""
    wrong: bool = False

    @property
    def ok(self) -> bool:
        """True when the cell holds a timing of a correct result."""
        return self.seconds is not None and not self.wrong


def format_seconds(s: float) -> str:
    """Three significant digits with a unit: ns, µs, ms or s."""
    s = float(f"{s:.3g}")  # round first, so 999.96 µs becomes 1.00 ms
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if s >= scale * (1 - 1e-12) or unit == "ns":
            v = s / scale
            decimals = max(0, 2 - math.floor(math.log10(v))) if v > 0 else 0
            return f"{v:.{decimals}f} {unit}"
    raise AssertionError("unreachable")


def format_cell(cell: Cell, base: Cell | None) -> str:
    """A cell's text: median, ratio to the baseline (``×r`` = r times the baseline's time)."""
    if cell.seconds is None:
        return cell.status or MISSING
    text = format_seconds(cell.seconds)
    if base is not None and base is not cell and base.ok and cell.seconds > 0:
        text += f" (×{cell.seconds / base.seconds:.3g})"  # type: ignore[operator]
    if cell.wrong:
        text += " WRONG"
    return text


def format_table(
    rows: Sequence[str],
    columns: Sequence[str],
    cells: Mapping[tuple[str, str], Cell],
    *,
    baseline: str = "nbbp",
    titles: Mapping[str, str] | None = None,
) -> str:
    """A markdown table of medians, each with its ratio to the ``baseline`` column's cell.

    A cell absent from ``cells`` shows "missing"; a baseline that is missing or wrong
    simply leaves the ratios out for that row.
    """
    titles = titles or {}
    header = ["workload", *(titles.get(c, c) for c in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        base = cells.get((row, baseline))
        texts = [format_cell(cells.get((row, col), Cell(status=MISSING)), base) for col in columns]
        lines.append("| " + " | ".join([row, *texts]) + " |")
    return "\n".join(lines)
