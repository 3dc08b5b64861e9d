"""The workers of a sweep: a local Dask cluster (start, close), and the compiled
kernels loaded once per worker process, with a per-machine file lock so that one
process compiles them when the on-disk Numba cache is empty and the others wait.

``local_cluster`` is public as ``nbbp.sweep.local_cluster``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile


def local_cluster(workers: int | None = None, engine: str = "numba"):
    """A local Dask cluster for sweeps: ``workers`` single-threaded worker processes
    (one per core by default) on 127.0.0.1, with the compiled kernels loaded in each.

    ``sweep(client=None)`` starts one per call and closes it; to run many sweeps, start
    one yourself and pass a client — ``Client(cluster)`` — then ``cluster.close()``.
    """
    from distributed import Client, LocalCluster
    if engine == "numba":
        from ..core.engine import kernels
        kernels()           # fill the on-disk cache before the workers look for it
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cache = _numba_cache_dir()
    if cache:
        env["NUMBA_CACHE_DIR"] = cache
    cluster = LocalCluster(n_workers=workers or cpu_cores(), threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None, env=env,
                           silence_logs=logging.ERROR,
                           scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
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
