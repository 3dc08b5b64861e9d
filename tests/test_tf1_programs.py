"""TensorFlow 1 programs in the style of the public tutorials (tests/tf1_programs/),
each run as a script in its own process, its output checked against TF 1's.

Each program ends with its expected output: ``# $ python prog.py args`` starts a run
(runs of one program share a working folder, in order: save, then restore), ``# > ``
lines are what that run prints to stdout, and ``# ! `` lines (after ``# stderr:``)
are fragments its stderr must contain. The programs of a module run in parallel.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "tf1_programs"
ROOT = HERE.parents[1]
PROGRAMS = sorted(HERE.glob("p*.py"))


def expected_runs(path: Path) -> list[tuple[list[str], list[str], list[str]]]:
    """[(argv, stdout lines, stderr fragments)] from the program's last comment block."""
    runs: list[tuple[list[str], list[str], list[str]]] = []
    for line in path.read_text().splitlines():
        if line.startswith("# $ python "):
            argv = shlex.split(line[len("# $ python "):])
            assert argv[0] == path.name, f"{path.name}: a run of {argv[0]}"
            runs.append((argv[1:], [], []))
        elif line.startswith("# > ") or line == "# >":
            runs[-1][1].append(line[4:])
        elif line.startswith("# ! "):
            runs[-1][2].append(line[4:])
    return runs


def run_program(path: Path, workdir: Path) -> list[tuple[list[str], subprocess.CompletedProcess]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED="0")
    workdir.mkdir()
    out = []
    for argv, _, _ in expected_runs(path):
        out.append((argv, subprocess.run([sys.executable, str(path), *argv], cwd=workdir,
                                          env=env, capture_output=True, text=True,
                                          timeout=120)))
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    base = tmp_path_factory.mktemp("tf1_programs")
    # most of a program's second is starting Python and loading Numba's cached kernels,
    # partly waiting on files: run more programs than there are CPUs
    with ThreadPoolExecutor(max_workers=min(8, 2 * (os.cpu_count() or 2))) as pool:
        futures = {p.name: pool.submit(run_program, p, base / p.stem) for p in PROGRAMS}
        return {name: f.result() for name, f in futures.items()}


def test_there_are_programs_and_each_says_what_it_prints():
    assert len(PROGRAMS) >= 15
    for p in PROGRAMS:
        runs = expected_runs(p)
        assert runs and all(lines for _, lines, _ in runs), p.name


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_program_prints_what_tensorflow_1_prints(path, results):
    for (argv, want, errs), (_, got) in zip(expected_runs(path), results[path.name]):
        where = f"python {path.name} {' '.join(argv)}"
        assert got.returncode == 0, f"{where} failed:\n{got.stderr[-3000:]}"
        assert got.stdout.splitlines() == want, f"{where}:\n{got.stdout}\n{got.stderr[-2000:]}"
        for fragment in errs:
            assert fragment in got.stderr, f"{where}: stderr lacks {fragment!r}:\n{got.stderr}"
