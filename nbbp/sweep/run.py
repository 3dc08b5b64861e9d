"""Sweeps: many training runs at once — over seeds, learning rates, architectures — on Dask.

``nbbp.sweep(model_or_source, grid, steps=..., optimizer=..., feed=...)`` trains one
model per configuration of ``grid`` (every combination of its axes) and returns a
:class:`SweepResult`, a table with one row per configuration: the final and per-step
loss, the metrics asked for, the time, and the trained parameters if asked.

A grid key is a training setting (``seed``, ``steps``, ``batch_size``,
``optimizer``), a setting of the optimizer (``lr``, ``momentum``, ``betas``,
``weight_decay``, …), or a name the model source reads (``hidden`` in
``randn(2, hidden)``), so the architecture can vary too. ``seed`` seeds both the
initialisers (``randn``, ``uniform``) and the minibatch order.

How it runs:

* Every task rebuilds its model from plain data — the source text, the arrays and
  numbers the source reads, the settings — never from pickled notebook state. A
  model without source text (built with the Python API) travels as an
  :mod:`nbbp.io` file; its initial values are then fixed, and only training
  settings can vary.
* ``client=None`` starts a local ``dask.distributed`` cluster of worker
  *processes*, one per core, on 127.0.0.1, and closes it afterwards; a
  ``distributed.Client`` you pass (to a cluster on other machines, say) is used as
  it is and left open; ``client="serial"`` runs everything here, one run after the
  other, without Dask (for debugging, and the baseline).
* Bad input (an unknown grid key, an empty grid, a model that does not build with
  the first configuration, unknown feed names or metrics) fails before any task is
  sent. A configuration that fails later (an error, a nan loss) is reported in its
  own row with the reason, and the sweep goes on. A worker that dies has its tasks
  re-run elsewhere by Dask; a task is a pure function of its configuration, so the
  results are the same as those of an undisturbed run. Interrupting the kernel
  cancels the remaining tasks and returns the rows finished so far.
* Workers load the compiled kernels from the on-disk Numba cache that the notebook
  uses (the parent warms it before a local cluster starts); where no cache exists
  yet, a per-machine file lock lets one worker compile while the others wait, so
  the first-compile cost is paid once per machine, never per task.
* Cheap configurations are grouped into chunks, so that each task has at least a
  few tenths of a second of work and Dask's per-task overhead (a few milliseconds)
  stays small; ``chunk=1`` sends one configuration per task.

>>> from nbbp.sweep import sweep
>>> res = sweep("w = param(0.0)\\nloss = (w - 3.0)**2", grid={"lr": [0.01, 0.1]},
...             steps=50, optimizer="sgd", client="serial", progress=False)
>>> [round(r.loss, 4) for r in res]
[1.2428, 0.0]
>>> res.best().config
{'lr': 0.1}
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import NbbpError
from ..train import optim
from .cluster import close_cluster, cpu_cores, unguarded_script
from .cluster import local_cluster as local_cluster
from .plan import METRICS as METRICS
from .plan import SETTINGS as SETTINGS
from .plan import Plan
from .plan import source_names as _names  # noqa: F401  (tests/test_sweep.py calls run._names)
from .table import Run as Run
from .table import SweepResult as SweepResult
from .task import build_key, run_chunk, run_one

TASK_SECONDS = 0.25     # aim for at least this much work per task when chunking

# The parts: _sweep_plan checks the input and turns it into plain data, _sweep_task is
# what a worker runs (Dask imports it there by that path), _sweep_cluster starts a local
# cluster and loads the kernels, _sweep_table is the result. Here: the entry point, and
# sending the tasks and collecting their rows.


# ---------------------------------------------------------------------------- the call
def sweep(model_or_source: Any, grid: Mapping[str, Sequence] | Sequence[Mapping[str, Any]],
          steps: int = 100, optimizer: optim.Optimizer | str | None = "sgd",
          lr: float | None = None, batch_size: int | None = None,
          feed: Mapping[Any, Any] | None = None, seed: int | None = 0, *,
          namespace: Mapping[str, Any] | None = None, output: str | None = None,
          metrics: Any = None, params: bool = False, client: Any = None,
          workers: int | None = None, chunk: int | None = None, progress: bool = True,
          engine: str | None = None) -> SweepResult:
    """Train one model per configuration of ``grid``, on Dask; return the table.

    Parameters
    ----------
    model_or_source
        Model source text (as for :func:`nbbp.build`) or a :class:`nbbp.Model`. A model
        is rebuilt from its source for every run (fresh initial values, seeded by
        ``seed``); one without source is shipped as an :mod:`nbbp.io` file.
    grid
        ``{key: [values]}`` — every combination is one run — or a list of
        ``{key: value}`` configurations. Keys: ``seed``, ``steps``, ``batch_size``,
        ``optimizer`` (a name or an optimizer), an optimizer setting (``lr``,
        ``momentum``, ``betas``, …), or a name the source reads.
    steps, optimizer, lr, batch_size, feed, seed
        As for :meth:`nbbp.Model.fit`, for every run; a grid key of the same name
        overrides them. ``seed`` also seeds the initialisers.
    namespace
        Values of the names the source reads (data arrays, sizes). In IPython the
        notebook's variables are looked up too. Only plain data travels to workers:
        numbers, strings, arrays, and lists/tuples/dicts of them.
    output
        The output (loss) node's name, when it is not the source's last assignment.
    metrics
        ``"accuracy"`` (on the training data), a callable ``f(model) -> float``, or a
        list or dict of these; evaluated after training.
    params
        Return each run's trained parameters (``run.params``).
    client
        ``None``: a local cluster of worker processes (``workers`` of them, one per
        core by default), closed afterwards. A ``distributed.Client``: used as it is.
        ``"serial"``: run here, one after the other, without Dask.
    chunk
        Configurations per task; by default cheap runs are grouped so a task has a
        quarter of a second of work or so, with at least four tasks per worker.
    progress
        Show a progress bar over the runs.

    Returns
    -------
    SweepResult
        One :class:`Run` per configuration, in grid order.

    Examples
    --------
    >>> from nbbp.sweep import sweep
    >>> src = "w = param(randn() * 0.1)\\nloss = (w - target)**2"
    >>> res = sweep(src, {"seed": [0, 1], "target": [1.0, 2.0]}, steps=200, lr=0.1,
    ...             client="serial", progress=False)
    >>> res.columns
    ['seed', 'target', 'status', 'loss', 'time', 'error']
    >>> [r.status for r in res], bool(res["loss"].max() < 1e-12)
    (['ok', 'ok', 'ok', 'ok'], True)
    """
    start = time.perf_counter()
    if client is None and (script := unguarded_script()):
        raise NbbpError(
            f"nbbp.sweep at the top level of {os.path.basename(script)} starts worker "
            "processes, which run the script again: put the script's code under "
            "`if __name__ == \"__main__\":` (or pass client=\"serial\" to run here)")
    plan = Plan(model_or_source, grid, steps, optimizer, lr, batch_size, feed, seed,
                 namespace, output, metrics, params, engine)
    if isinstance(client, str) and client != "serial":
        raise NbbpError(f"sweep(client={client!r}): use None (a local cluster), a "
                        "distributed.Client, or 'serial' (this process, without Dask)")
    if client == "serial":
        runs, interrupted = _collect_serial(plan, progress)
        n_workers = 1
    else:
        runs, interrupted, n_workers = _collect_dask(plan, client, workers, chunk, progress)
    return SweepResult(runs, plan.axes, time.perf_counter() - start, n_workers, interrupted)


# ---------------------------------------------------------------------------- running
def _collect_serial(plan: Plan, progress: bool) -> tuple[list[Run], bool]:
    runs = [Run(i, c) for i, c in enumerate(plan.configs)]
    bar = _Progress(len(runs), progress)
    interrupted = False
    built: dict = {}        # runs that share source, names and seed share one build
    try:
        for i, job in enumerate(plan.jobs):
            _fill(runs[i], run_one(plan.shared, i, job, built))
            bar.update(1, runs[i].ok)
    except KeyboardInterrupt:
        interrupted = True
        _say_interrupted(runs)
    finally:
        bar.close()
    return runs, interrupted


def _collect_dask(plan: Plan, client: Any, workers: int | None, chunk: int | None,
                  progress: bool) -> tuple[list[Run], bool, int]:
    try:
        import distributed
    except ImportError:
        raise NbbpError("sweeps run on Dask: pip install 'nbbp[sweep]' (or pip install "
                        "'dask[distributed]'); client='serial' runs here without it") from None
    if client is not None and not isinstance(client, distributed.Client):
        raise NbbpError(f"sweep(client=...): expected a distributed.Client, None or "
                        f"'serial', got {type(client).__name__}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise NbbpError(f"sweep(workers=...): a whole number ≥ 1, got {workers!r}")
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int)
                              or chunk < 1):
        raise NbbpError(f"sweep(chunk=...): a whole number ≥ 1, got {chunk!r}")
    runs = [Run(i, c) for i, c in enumerate(plan.configs)]
    cluster = None
    interrupted = False
    bar = None
    try:
        if client is None:
            n = workers or cpu_cores()
            cluster = local_cluster(n, plan.engine)
            client = distributed.Client(cluster, set_as_default=False)
        else:
            n = sum(w.get("nthreads", 1) for w in
                    client.scheduler_info().get("workers", {}).values()) or 1
        size = chunk or _chunk_size(len(runs), n, plan.estimate)
        bar = _Progress(len(runs), progress)
        interrupted = _submit_and_gather(client, plan, runs, size, bar)
    finally:
        if bar is not None:
            bar.close()
        if cluster is not None:
            close_cluster(client, cluster)
    return runs, interrupted, n


def _submit_and_gather(client, plan: Plan, runs: list[Run], size: int, bar) -> bool:
    from distributed import as_completed
    token = uuid.uuid4().hex[:10]
    # configurations that build the same model go to the same task, which builds it once
    jobs = sorted(enumerate(plan.jobs), key=lambda ij: build_key(ij[1]))
    chunks = [jobs[k:k + size] for k in range(0, len(jobs), size)]
    # the shared data (source, arrays, settings) goes once to every worker: no task
    # waits for a transfer, none is drawn to one worker by its data, and a worker that
    # dies leaves copies on the others
    [data] = client.scatter([plan.shared], broadcast=True, hash=False)
    futures = client.map(run_chunk, [data] * len(chunks), chunks, pure=False,
                         key=[f"nbbp-sweep-{token}-{k}" for k in range(len(chunks))])
    members = {f.key: c for f, c in zip(futures, chunks)}
    pending = set(members)
    try:
        for fut in as_completed(futures, loop=client.loop):
            pending.discard(fut.key)
            if fut.status == "finished":
                results = fut.result()
            else:
                results = [_task_failed(i, fut) for i, _ in members[fut.key]]
            for res in results:
                _fill(runs[res["index"]], res)
            bar.update(len(results), *[runs[r["index"]].ok for r in results])
            fut.release()
    except KeyboardInterrupt:
        _say_interrupted(runs)
        return True
    finally:
        # interrupted, or the connection failed: cancel what is left, then the data
        left = [f for f in futures if f.key in pending] + [data]
        try:
            client.cancel(left)
        except Exception:
            pass
    return False


def _task_failed(index: int, fut) -> dict:
    if fut.status == "cancelled":
        return dict(index=index, status="cancelled", error="the task was cancelled")
    try:
        exc = fut.exception()
    except BaseException as err:    # a CancelledError, for instance
        exc = err
    why = f"{type(exc).__name__}: {exc}"
    if type(exc).__name__ == "KilledWorker":
        why += " (workers running this task kept dying: it may need more memory than a "
        why += "worker has)"
    return dict(index=index, status="error", error=why)


def _fill(run: Run, res: dict) -> None:
    for k, v in res.items():
        if k != "index":
            setattr(run, k, v)


def _say_interrupted(runs: list[Run]) -> None:
    done = sum(r.status != "cancelled" for r in runs)
    for r in runs:
        if r.status == "cancelled" and r.error is None:
            r.error = "interrupted"
    print(f"nbbp: sweep interrupted after {done} of {len(runs)} runs; the remaining tasks "
          "were cancelled.", file=sys.stderr)


def _chunk_size(n_runs: int, n_workers: int, estimate: float | None) -> int:
    """Configurations per task: enough work per task to hide Dask's overhead, and at
    least four tasks per worker so the load stays balanced."""
    by_balance = max(1, n_runs // (4 * n_workers))
    by_time = max(1, int(TASK_SECONDS / estimate)) if estimate else 1
    return min(by_balance, by_time)


class _Progress:
    """A tqdm bar over the runs (when tqdm is installed), counting failures."""

    def __init__(self, total: int, show: bool) -> None:
        self.bar, self.failed = None, 0
        if show:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, desc="sweep", unit="run", leave=True)
            except ImportError:
                pass

    def update(self, n: int, *ok: bool) -> None:
        self.failed += sum(not k for k in ok)
        if self.bar is not None:
            self.bar.update(n)
            if self.failed:
                self.bar.set_postfix(failed=self.failed, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
