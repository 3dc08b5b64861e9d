"""Sweeps: results equal to sequential runs, on a local cluster and on a real
multi-process deployment that loses a worker mid-sweep; faults in their own rows;
bad input rejected before any task is sent; no process left behind."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import nbbp
from nbbp.errors import BuildError, FeedError, NbbpError
from nbbp.sweep import SweepResult, sweep
from nbbp.sweep import run as sweep_module

X, Y = nbbp.datasets.moons(100, noise=0.1, seed=0, labels="pm1")
DATA = {"X": X, "Y": Y}

MLP = """
x = input(X); y = input(Y)
with scope("hidden"):
    W1 = param(randn(2, hidden) * 0.5); b1 = param(zeros(hidden))
    h = relu(x @ W1 + b1)
with scope("out"):
    W2 = param(randn(hidden, 1) * 0.5); b2 = param(zeros(1))
    s = h @ W2 + b2
loss = mean(relu(1 - y * s)) + 1e-4 * sum(W1**2)
"""

# n = -1 does not build; lr = 10 throws w below zero, where log gives nan
FAULTY = """
w = param(ones(n) * 2.0)
loss = sum(log(w) ** 2)
"""


def sequential(source: str, config: dict, steps: int, optimizer: str = "sgd",
               namespace: dict | None = None, **settings) -> np.ndarray:
    """The oracle: one build and one fit in this process, as a user would write them."""
    seed = config.get("seed", 0)
    names = {k: v for k, v in config.items() if k not in ("seed", "lr")}
    m = nbbp.build(source, namespace={**(namespace or {}), **names}, seed=seed)
    opt = nbbp.optim.get(optimizer, config.get("lr"))
    for k, v in settings.items():
        setattr(opt, k, v)
    m.fit(steps, opt, seed=seed, progress=False)
    return np.asarray(m.history.loss)


def leftover_processes(before: set[int]) -> list:
    """Child processes started since ``before`` (multiprocessing's resource tracker,
    which lives as long as this process, is not ours to stop)."""
    import psutil
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.pid not in before and "resource_tracker" not in " ".join(p.cmdline()):
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def children() -> set[int]:
    import psutil
    return {p.pid for p in psutil.Process().children(recursive=True)}


def wait_gone(before: set[int], timeout: float = 20.0) -> list:
    end = time.monotonic() + timeout
    while (left := leftover_processes(before)) and time.monotonic() < end:
        time.sleep(0.05)
    return left


@pytest.fixture
def no_tasks(monkeypatch):
    """Fail the test if anything would be sent to a cluster or run."""
    def boom(*args, **kwargs):
        raise AssertionError("a task was sent although the input is bad")
    monkeypatch.setattr(sweep_module, "_collect_dask", boom)
    monkeypatch.setattr(sweep_module, "_collect_serial", boom)


# ---------------------------------------------------------------------------- local cluster
def test_local_cluster_results_equal_sequential_runs():
    pytest.importorskip("distributed")
    grid = {"lr": [0.05, 0.2], "seed": [0, 1, 2]}
    before = children()
    res = sweep(MLP, grid, steps=200, namespace={**DATA, "hidden": 8}, workers=2,
                progress=False)
    assert isinstance(res, SweepResult) and len(res) == 6 and res.workers == 2
    assert [r.config for r in res] == [{"lr": lr, "seed": s} for lr in grid["lr"]
                                       for s in grid["seed"]]
    for r in res:
        assert r.status == "ok", r.error
        want = sequential(MLP, {**r.config, "hidden": 8}, 200, namespace=DATA)
        np.testing.assert_array_equal(r.losses, want)       # bit for bit
        assert r.loss == want[-1] and r.worker.startswith("tcp://127.0.0.1:")
    assert not wait_gone(before), "the local cluster left processes behind"


def test_interrupt_cancels_the_rest_and_leaves_no_process(monkeypatch, capsys):
    pytest.importorskip("distributed")
    calls = []

    def interrupt(self, n, *ok):            # Ctrl-C as the first result arrives
        calls.append(n)
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_module._Progress, "update", interrupt)
    before = children()
    res = sweep(MLP, {"seed": list(range(8))}, steps=3000, namespace={**DATA, "hidden": 8},
                workers=1, chunk=1, progress=False)
    assert res.interrupted and calls == [1]
    statuses = [r.status for r in res]
    assert statuses.count("ok") == 1 and statuses.count("cancelled") == 7
    assert all(r.error == "interrupted" for r in res if r.status == "cancelled")
    assert "sweep interrupted after 1 of 8 runs" in capsys.readouterr().err
    assert not wait_gone(before), "an interrupted sweep left processes behind"


# ---------------------------------------------------------------------------- real deployment
@pytest.fixture
def deployment(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, and a Client."""
    pytest.importorskip("distributed")
    from distributed import Client
    dask = Path(sys.executable).with_name("dask")
    if not dask.exists():
        pytest.skip("the dask command is not installed next to this Python")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    procs: list[subprocess.Popen] = []

    def start(*args: str, log: str) -> subprocess.Popen:
        with open(tmp_path / log, "wb") as out:
            p = subprocess.Popen([str(dask), *args], stdout=out, stderr=subprocess.STDOUT,
                                 env=env, cwd=tmp_path, start_new_session=True)
        procs.append(p)
        return p

    info = str(tmp_path / "scheduler.json")
    client = None
    try:
        scheduler = start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                          "--dashboard-address", "127.0.0.1:0", "--scheduler-file", info,
                          log="scheduler.log")
        end = time.monotonic() + 60
        while not os.path.exists(info) and scheduler.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
        assert os.path.exists(info), (tmp_path / "scheduler.log").read_text()
        workers = {f"w{i}": start("worker", "--scheduler-file", info, "--nthreads", "1",
                                  "--no-nanny", "--host", "127.0.0.1", "--no-dashboard",
                                  "--name", f"w{i}", log=f"w{i}.log") for i in range(2)}
        client = Client(scheduler_file=info, set_as_default=False, timeout=60)
        client.wait_for_workers(2, timeout=60)
        yield client, workers
    finally:
        if client is not None:
            try:
                client.shutdown()           # the scheduler and the workers stop
            except Exception:
                client.close()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def test_deployment_survives_a_killed_worker(deployment, monkeypatch):
    client, workers = deployment
    # asked of the scheduler itself: the client's scheduler_info() is a cached copy that
    # may predate a worker's arrival on a loaded machine
    addresses = client.run_on_scheduler(
        lambda dask_scheduler: {ws.name: addr for addr, ws in dask_scheduler.workers.items()})
    killed: list[str] = []
    was_busy: list[bool] = []
    update = sweep_module._Progress.update

    def kill_a_busy_worker(self, n, *ok):      # as the first result arrives
        if not killed:
            busy = [a for a, keys in client.processing().items() if keys]
            name = next((k for k, a in addresses.items() if a in busy), "w0")
            was_busy.append(addresses[name] in busy)
            os.killpg(workers[name].pid, signal.SIGKILL)
            workers[name].wait(timeout=10)
            killed.append(addresses[name])
        update(self, n, *ok)

    monkeypatch.setattr(sweep_module._Progress, "update", kill_a_busy_worker)
    grid = {"seed": [0, 1, 2, 3], "hidden": [4, 8]}
    steps = 12000
    res = sweep(MLP, grid, steps=steps, lr=0.05, namespace=DATA, client=client, chunk=1,
                progress=False)
    assert was_busy == [True], "the worker was killed while it had tasks to run"
    assert sum(p.poll() is None for p in workers.values()) == 1
    assert [r.status for r in res] == ["ok"] * 8, [r.error for r in res]
    for r in res:
        want = sequential(MLP, {**r.config, "lr": 0.05}, steps, namespace=DATA)
        np.testing.assert_array_equal(r.losses, want)
    assert killed[0] not in {r.worker for r in res[-4:]}      # re-run elsewhere
    assert client.status == "running"                          # a given client stays open

    # faults on the cluster: their own rows, the same as here
    remote = sweep(FAULTY, {"n": [2, -1], "lr": [0.1, 10.0]}, steps=50, client=client,
                   progress=False)
    local = sweep(FAULTY, {"n": [2, -1], "lr": [0.1, 10.0]}, steps=50, client="serial",
                  progress=False)
    assert [r.status for r in remote] == ["ok", "nan", "error", "error"]
    assert [r.error for r in remote] == [r.error for r in local]
    np.testing.assert_array_equal(remote[1].losses, local[1].losses)

    def kernel_cache_stats():          # pickled by value: runs on the worker
        from nbbp.core import kernels as _kernels
        return {k: (sum(getattr(_kernels, k).stats.cache_hits.values()),
                    sum(getattr(_kernels, k).stats.cache_misses.values()))
                for k in ("run", "train")}

    for stats in client.run(kernel_cache_stats).values():   # loaded, never compiled
        assert all(hits >= 1 and misses == 0 for hits, misses in stats.values()), stats


# ---------------------------------------------------------------------------- faults
def test_failing_configurations_get_their_own_rows():
    res = sweep(FAULTY, {"n": [2, -1], "lr": [0.1, 10.0]}, steps=50, client="serial",
                progress=True)
    ok, nan, bad1, bad2 = res
    assert ok.status == "ok" and ok.loss < 1e-3 and ok.error is None
    assert nan.status == "nan" and math.isnan(nan.loss)
    assert "training stopped at step 1" in nan.error and "log" in nan.error
    np.testing.assert_array_equal(nan.losses, sequential(FAULTY, {"n": 2, "lr": 10.0}, 1))
    for bad in (bad1, bad2):
        assert bad.status == "error" and "a shape must be whole numbers ≥ 0, got (-1,)" in bad.error
        assert bad.losses.size == 0
    assert [r.index for r in res.failed] == [1, 2, 3] and res.best() is ok
    assert list(res["status"]) == ["ok", "nan", "error", "error"]


def test_interrupting_a_serial_sweep_stops_it(monkeypatch, capsys):
    from nbbp.train import TrainLoop
    run = TrainLoop.run

    def ctrl_c_at_lr_02(self, steps):         # fit itself swallows Ctrl-C; sweep must not
        if self.optimizer.lr == 0.2:
            raise KeyboardInterrupt
        run(self, steps)

    monkeypatch.setattr(TrainLoop, "run", ctrl_c_at_lr_02)
    res = sweep(FAULTY, {"lr": [0.1, 0.2, 0.3], "n": [2]}, steps=20, client="serial",
                progress=True)
    assert res.interrupted and [r.status for r in res] == ["ok", "cancelled", "cancelled"]
    assert "sweep interrupted after 1 of 3 runs" in capsys.readouterr().err


def test_a_failing_metric_marks_its_row():
    res = sweep(FAULTY, {"n": [2]}, steps=5, client="serial", progress=False,
                metrics={"boom": lambda m: 1 / 0, "w0": lambda m: m["w"].value[0]})
    (run,) = res
    assert run.status == "error" and "metric 'boom': ZeroDivisionError" in run.error
    assert math.isnan(run.metrics["boom"]) and 1.0 < run.metrics["w0"] < 2.0


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs,error,words", [
    (dict(grid={"lrr": [0.1]}), NbbpError, ["unknown grid key 'lrr'", "did you mean 'lr'",
                                            "hidden", "momentum"]),
    (dict(grid={}), NbbpError, ["the grid is empty"]),
    (dict(grid={"lr": []}), NbbpError, ["grid['lr'] is empty"]),
    (dict(grid={"lr": 0.1}), NbbpError, ["must be a list of values", "{'lr': [0.1]}"]),
    (dict(grid=[]), NbbpError, ["the list of configurations is empty"]),
    (dict(grid={"hidden": [4]}, source="hidden = 3\n" + MLP), NbbpError,
     ["assigns 'hidden' itself"]),
    (dict(grid={"momentum": [0.9]}, optimizer="adam"), NbbpError,
     ["'momentum' is not a setting of Adam"]),
    (dict(grid={"optimizer": ["sgd", "adamm"]}), NbbpError,
     ["unknown optimizer 'adamm'", "did you mean 'adam'"]),
    (dict(grid={"steps": [10, 0]}), NbbpError, ["steps must be a whole number ≥ 1"]),
    (dict(source="x = input(X)\nloss = sum(x) +"), BuildError, ["syntax error"]),
    (dict(source="x = input(XX)\nloss = sum(x)", grid={"lr": [0.1]}), BuildError,
     ["does not build", "unknown name 'XX'", "pass namespace={'XX': ...}"]),
    (dict(grid={"hidden": ["four"]}), BuildError, ["does not build", "{'hidden': 'four'}"]),
    (dict(namespace={**DATA, "hidden": 4, "X": lambda: X}, grid={"lr": [0.1]}), NbbpError,
     ["'X' that the model source reads is a function", "only plain data"]),
    (dict(metrics="acuracy"), NbbpError, ["unknown metric 'acuracy'",
                                          "did you mean 'accuracy'"]),
    (dict(feed={"xx": X}), FeedError, ["no node named 'xx'", "did you mean 'x'"]),
    (dict(feed={"loss": X}), FeedError, ["only inputs are fed"]),
], ids=["unknown-key", "empty-grid", "empty-axis", "scalar-axis", "empty-list",
        "assigned-name", "optimizer-setting", "unknown-optimizer", "bad-steps", "syntax",
        "missing-name", "does-not-build", "not-plain-data", "unknown-metric",
        "unknown-feed", "feed-not-input"])
def test_bad_input_fails_before_any_task(no_tasks, kwargs, error, words):
    kwargs = {"grid": {"hidden": [4, 8]}, "source": MLP,
              "namespace": DATA, "steps": 10, **kwargs}
    source = kwargs.pop("source")
    with pytest.raises(error) as info:
        sweep(source, **kwargs)
    for w in words:
        assert w in str(info.value)


def test_a_model_without_source_can_vary_only_settings(no_tasks):
    with nbbp.Graph():
        w = nbbp.param(0.0, name="w")
        loss = (w - 3.0) ** 2
    m = nbbp.Model(loss)
    with pytest.raises(NbbpError, match="no source text"):
        sweep(m, {"target": [1.0]}, client="serial")


# ---------------------------------------------------------------------------- models and keys
def test_a_model_object_is_rebuilt_from_its_source():
    m = nbbp.build(MLP, namespace={**DATA, "hidden": 4}, seed=5)
    m.fit(10, "sgd", lr=0.1, progress=False)          # trained state is not shipped
    res = sweep(m, {"seed": [5], "hidden": [4, 6]}, steps=30, lr=0.1, namespace=DATA,
                client="serial", progress=False, params=True)
    for r in res:
        want = sequential(MLP, {**r.config, "lr": 0.1}, 30, namespace=DATA)
        np.testing.assert_array_equal(r.losses, want)
    assert res[1].params["hidden/W1"].shape == (2, 6)
    assert set(res[0].params) == {"hidden/W1", "hidden/b1", "out/W2", "out/b2"}


def test_in_a_notebook_the_names_come_from_its_namespace(monkeypatch):
    IPython = pytest.importorskip("IPython")
    shell = SimpleNamespace(user_ns={"X": X, "Y": Y, "hidden": 3})
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    m = nbbp.build(MLP, namespace=shell.user_ns)          # what %%bpgraph does
    res = sweep(m, {"seed": [0, 1]}, steps=20, lr=0.1, client="serial", progress=False)
    for r in res:
        want = sequential(MLP, {**r.config, "lr": 0.1, "hidden": 3}, 20, namespace=DATA)
        np.testing.assert_array_equal(r.losses, want)


def test_a_model_without_source_travels_as_a_file():
    with nbbp.Graph():
        w = nbbp.param(0.0, name="w")
        loss = (w - 3.0) ** 2
    m = nbbp.Model(loss)
    res = sweep(m, {"lr": [0.1, 0.2]}, steps=20, client="serial", progress=False)
    for r in res:
        fresh = nbbp.Model(loss)
        fresh.fit(20, "sgd", lr=r.config["lr"], progress=False)
        np.testing.assert_array_equal(r.losses, fresh.history.loss)


def test_optimizers_and_their_settings_as_grid_keys():
    grid = [{"optimizer": "sgd", "lr": 0.1, "momentum": 0.9},
            {"optimizer": "adam", "lr": 0.05, "betas": (0.8, 0.99)},
            {"optimizer": nbbp.optim.RMSProp(lr=0.01), "seed": 3, "batch_size": 25}]
    res = sweep(MLP, grid, steps=40, namespace={**DATA, "hidden": 4}, client="serial",
                progress=False)
    assert list(res.axes) == ["optimizer", "lr", "momentum", "betas", "seed", "batch_size"]
    opts = [nbbp.optim.SGD(lr=0.1, momentum=0.9), nbbp.optim.Adam(lr=0.05, betas=(0.8, 0.99)),
            nbbp.optim.RMSProp(lr=0.01)]
    for r, opt, bs in zip(res, opts, [None, None, 25]):
        seed = r.config.get("seed", 0)
        m = nbbp.build(MLP, namespace={**DATA, "hidden": 4}, seed=seed)
        m.fit(40, opt, batch_size=bs, seed=seed, progress=False)
        np.testing.assert_array_equal(r.losses, m.history.loss)


def test_metrics_table_and_plot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    res = sweep(MLP, {"lr": [0.05, 0.5], "hidden": [2, 8], "seed": [0, 1]}, steps=150,
                namespace=DATA, client="serial", progress=False,
                metrics=["accuracy", lambda m: float(np.abs(m["out/W2"].value).max())])
    assert res.columns == ["lr", "hidden", "seed", "status", "loss", "accuracy",
                           "<lambda>", "time", "error"]
    acc = res["accuracy"]
    assert acc.shape == (8,) and ((acc > 0.5) & (acc <= 1)).all()
    m = nbbp.build(MLP, namespace={**DATA, "hidden": 8}, seed=1)
    m.fit(150, "sgd", lr=0.5, seed=1, progress=False)
    want = np.mean(np.sign(m.predict(X)) == Y)
    assert res[-1].metrics["accuracy"] == want
    assert res.best().loss == res["loss"].min()
    assert res.best("accuracy", largest=True).metrics["accuracy"] == acc.max()
    text = repr(res)
    assert text.startswith("<SweepResult: 8 runs (8 ok) over lr × hidden × seed")
    assert "lr    hidden  seed  status  loss" in text
    assert "<table>" in res._repr_html_()
    fig = res.plot()
    assert len(fig.axes) == 3                       # curves, heat map, its colour bar
    assert fig.axes[1].get_xlabel() == "lr" and "mean over seed" in fig.axes[1].get_title()
    with pytest.raises(NbbpError, match="did you mean 'seed'"):
        res.plot(x="lr", y="sed")
    with pytest.raises(NbbpError, match="no column 'los'"):
        res["los"]


def test_to_pandas():
    pytest.importorskip("pandas")
    res = sweep(FAULTY, {"n": [2, -1], "lr": [0.1, 10.0]}, steps=20, client="serial",
                progress=False)
    df = res.to_pandas()
    assert list(df.columns) == ["n", "lr", "status", "loss", "time", "error", "losses"]
    assert list(df["status"]) == ["ok", "nan", "error", "error"]
    assert df["losses"][0].shape == (20,)


def test_free_names_and_chunk_sizes():
    free, bound = sweep_module._names(MLP + "def f(a):\n    return a * k\nz = [i for i in r]")
    assert free == {"X", "Y", "hidden", "k", "r"}
    assert {"x", "W1", "f", "a", "i", "z"} <= bound
    assert sweep_module._chunk_size(64, 2, 0.01) == 8          # four tasks per worker
    assert sweep_module._chunk_size(64, 2, 0.1) == 2            # a quarter second each
    assert sweep_module._chunk_size(6, 2, 0.001) == 1
    assert sweep_module._chunk_size(1000, 2, None) == 1


def test_the_module_is_callable():
    import nbbp.sweep as mod
    res = mod(FAULTY, {"n": [1]}, steps=2, client="serial", progress=False)
    assert res[0].ok and "grid" in str(__import__("inspect").signature(mod))


def test_a_list_grid_falls_back_to_the_namespace_for_names_some_configs_leave_out():
    res = sweep(FAULTY, [{"lr": 0.1}, {"lr": 0.1, "n": 3}], steps=5, client="serial",
                namespace={"n": 2}, progress=False)
    assert [r.status for r in res] == ["ok", "ok"]
