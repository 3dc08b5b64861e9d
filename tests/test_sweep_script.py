"""``nbbp.sweep`` from a plain script: without ``if __name__ == "__main__":`` it stops at
once with one line saying why and how to fix it (worker processes are spawned and run
the script again); with the guard it runs on the local cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ('nbbp.sweep("w = param(0.0)\\nloss = (w - 3.0)**2", grid={"lr": [0.01, 0.1]}, '
         'steps=50, optimizer="sgd", progress=False, workers=1)')


def run_script(tmp_path: Path, body: str, timeout: float = 120) -> subprocess.CompletedProcess:
    script = tmp_path / "experiment.py"
    script.write_text(textwrap.dedent(body))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_a_sweep_without_the_main_guard_stops_at_once_with_one_line(tmp_path):
    start = time.monotonic()
    done = run_script(tmp_path, f"""\
        import nbbp
        print("before")
        res = {SWEEP}
        print("after")
        """)
    took = time.monotonic() - start
    assert done.returncode == 1
    assert done.stdout == "before\n"
    last = done.stderr.strip().splitlines()[-1]
    assert last == ("nbbp.errors.NbbpError: nbbp.sweep at the top level of experiment.py "
                    "starts worker processes, which run the script again: put the script's "
                    "code under `if __name__ == \"__main__\":` (or pass client=\"serial\" to "
                    "run here)")
    assert "An attempt has been made" not in done.stderr
    assert len(done.stderr.splitlines()) < 12, done.stderr     # the traceback is short
    assert took < 30, f"took {took:.1f} s: a cluster was started"


def test_a_sweep_in_a_function_called_at_top_level_is_unguarded_too(tmp_path):
    done = run_script(tmp_path, f"""\
        import nbbp

        def main():
            return {SWEEP}

        main()
        """)
    assert done.returncode == 1
    assert "put the script's code under `if __name__" in done.stderr.splitlines()[-1]


def test_the_guard_is_recognised_and_serial_needs_none(tmp_path):
    done = run_script(tmp_path, """\
        import nbbp
        from nbbp.sweep.cluster import unguarded_script

        def where():
            return unguarded_script()

        print("top", where() is not None)
        res = nbbp.sweep("w = param(0.0)\\nloss = (w - 3.0)**2", grid={"lr": [0.1]},
                         steps=50, client="serial", progress=False)
        print("serial", res.best().config)

        if __name__ == "__main__":
            print("guarded", where())
        """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["top True", "serial {'lr': 0.1}", "guarded None"]


@pytest.mark.slow
def test_a_guarded_script_runs_its_sweep_on_worker_processes(tmp_path):
    done = run_script(tmp_path, f"""\
        import nbbp

        if __name__ == "__main__":
            res = {SWEEP}
            print(res.workers, [r.status for r in res], res.best().config)
        """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "1 ['ok', 'ok'] {'lr': 0.1}"
