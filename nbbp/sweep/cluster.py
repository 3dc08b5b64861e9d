"""The workers of a sweep: a local Dask cluster (start, close), and the compiled
kernels loaded once per worker process, with a per-machine file lock so that one
process compiles them when the on-disk Numba cache is empty and the others wait.

``local_cluster`` is public as ``nbbp.sweep.local_cluster``.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import os
import sys
import tempfile


def local_cluster(workers: int | None = None, engine: str = "numba", processes: bool = True):
    """A local Dask cluster for sweeps: ``workers`` single-threaded worker processes
    (one per core by default) on 127.0.0.1, with the compiled kernels loaded in each.

    ``sweep(client=None)`` starts one per call and closes it; to run many sweeps, start
    one yourself and pass a client — ``Client(cluster)`` — then ``cluster.close()``.
    ``processes=False``: worker threads in this process instead (builds are per thread;
    see docs/sweeps.md for why processes are the default).
    """
    from distributed import Client, LocalCluster
    if engine == "numba":
        from ..core.engine import kernels
        kernels()           # fill the on-disk cache before the workers look for it
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cache = _numba_cache_dir()
    if cache:
        env["NUMBA_CACHE_DIR"] = cache
    # worker processes talk over TCP on loopback; worker threads share this process
    # (Dask's in-process transport: no address, no dashboard)
    where = (dict(host="127.0.0.1", env=env,
                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
             if processes else dict(scheduler_kwargs={"dashboard": False}))
    cluster = LocalCluster(n_workers=workers or cpu_cores(), threads_per_worker=1,
                           processes=processes, dashboard_address=None,
                           silence_logs=logging.ERROR, **where)
    try:
        with Client(cluster, set_as_default=False) as client:
            client.run(ensure_kernels, engine)         # every worker at once
    except BaseException:
        cluster.close()
        raise
    return cluster


def close_cluster(client, cluster) -> None:
    try:
        client.close()
    finally:
        cluster.close()


def _numba_cache_dir() -> str:
    if "numba" in sys.modules:
        return sys.modules["numba"].config.CACHE_DIR or ""
    return os.environ.get("NUMBA_CACHE_DIR", "")


def cpu_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


_WARM: set[str] = set()


def ensure_kernels(engine: str) -> None:
    """Load the compiled kernels once per process; one process per machine compiles
    them when the on-disk cache is empty, the others wait for it and load it."""
    if engine != "numba" or engine in _WARM:
        return
    from ..core import engine as _engine
    where = os.path.dirname(os.path.abspath(__file__)) + "|" + _numba_cache_dir()
    tag = hashlib.sha1(where.encode()).hexdigest()[:12]
    lock = os.path.join(tempfile.gettempdir(), f"nbbp-kernels-{tag}.lock")
    try:
        import fcntl
        f = open(lock, "a")
    except (ImportError, OSError):      # Windows, or a lock of another user: no lock
        _engine.kernels()
    else:
        with f:
            fcntl.flock(f, fcntl.LOCK_EX)       # released when the file closes
            _engine.kernels()
    _WARM.add(engine)


def unguarded_script() -> str | None:
    """The path of the script whose top-level code is running this call outside
    ``if __name__ == "__main__":``, or None (a notebook, ``python -c``, a guarded call,
    a start method that does not re-run the script, or a script that cannot be read).

    Worker processes are started with multiprocessing's "spawn" method, which runs the
    main script again in every new process; a sweep at the script's top level would then
    start a cluster inside each worker as it starts, and multiprocessing stops with a long
    traceback. Worker threads in this process (``local_cluster(processes=False)``) need
    no guard; processes are the default for isolation (docs/sweeps.md).
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path or not os.path.isfile(path):
        return None
    try:
        import dask
        method = dask.config.get("distributed.worker.multiprocessing-method", "spawn")
    except ImportError:
        return None
    if method == "fork":
        return None
    frame = sys._getframe(1)
    line = None
    while frame is not None:        # the outermost frame running the script's own code
        if frame.f_globals is vars(main) and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
        frame = frame.f_back
    if line is None:
        return None
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if (isinstance(node, ast.If) and _is_main_test(node.test)
                and node.lineno <= line <= (node.end_lineno or node.lineno)):
            return None
    return path


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides)
            and any(isinstance(x, ast.Constant) and x.value == "__main__" for x in sides))
