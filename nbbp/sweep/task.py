"""A sweep's task, as it runs on a worker: rebuild each configuration's model from plain
data, train it, measure it, and report the row as a dict; never raise for a run's faults.

Dask workers import these functions by their module path, ``nbbp.sweep.task``.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import NbbpError, NumericError
from ..train import optim
from ..train import state as training
from ..train.predict import classifier_data, predict
from .cluster import ensure_kernels


def run_chunk(shared: dict, jobs: list[tuple[int, dict]]) -> list[dict]:
    """A task: some configurations, one after the other. Configurations that differ
    only in training settings (lr, optimizer, steps, …) share one built model."""
    built: dict[tuple, tuple[Any, list]] = {}
    return [run_one(shared, i, job, built) for i, job in jobs]


def run_one(shared: dict, index: int, job: dict, built: dict | None = None) -> dict:
    """Build, train and measure one configuration; never raises for the run's faults."""
    out: dict[str, Any] = dict(index=index, status="ok", error=None, worker=_worker_name())
    model = t0 = None
    try:
        ensure_kernels(shared["engine"])     # once per process, not part of the run's time
        t0 = time.perf_counter()
        model = _model_for(shared, job, built)
        model.fit(job["steps"], make_optimizer(job["optimizer"]), None, job["batch_size"],
                  shared["feed"] or None, job["seed"] or 0, progress=False)
        if training.history(model).interrupted:   # fit stops quietly on Ctrl-C; a sweep too
            raise KeyboardInterrupt
    except NumericError as exc:
        out.update(status="nan", error=str(exc))
    except NbbpError as exc:
        out.update(status="error", error=str(exc))
    except Exception as exc:
        out.update(status="error", error=f"{type(exc).__name__}: {exc}")
    losses = np.asarray(training.history(model).loss if model is not None else [], dtype=float)
    out.update(losses=losses, loss=float(losses[-1]) if losses.size and
               out["status"] == "ok" else math.nan)
    if out["status"] == "ok":
        out["metrics"] = metrics = {}
        for name, m in shared["metrics"].items():
            try:
                metrics[name] = float(_accuracy(model, shared["feed"]) if m == "accuracy"
                                      else m(model))
            except Exception as exc:
                metrics[name] = math.nan
                out.update(status="error", error=f"metric {name!r}: {type(exc).__name__}: "
                                                 f"{exc}")
        if shared["params"]:
            out["params"] = {k: np.asarray(v) for k, v in model.params.items()}
    out["time"] = time.perf_counter() - t0 if t0 is not None else 0.0
    return out


def build_key(job: dict) -> tuple:
    """Configurations with equal keys build the same model (same names, same seed)."""
    return tuple(sorted((k, repr(v)) for k, v in job["names"].items())), repr(job["seed"])


def _model_for(shared: dict, job: dict, built: dict | None):
    """The configuration's model: built from plain data, or — when this task already
    built one from the same source, names and seed — that model put back to its
    initial values with a fresh history, which trains exactly as a new build would."""
    if built is None:
        return rebuild(shared, job)
    key = build_key(job)
    if key not in built:
        model = rebuild(shared, job)
        leaves = [(n, np.array(model.value_of(n))) for n in model.forward
                  if n.op in ("param", "input")]
        built[key] = (model, leaves)
        return model
    model, leaves = built[key]
    for n, value in leaves:
        model.layout.write(model.arena, n, value)
    model.compute()
    training.reset(model)
    return model


def rebuild(shared: dict, job: dict):
    """The configuration's model, from plain data."""
    if shared["kind"] == "file":
        from .. import io
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.nbbp")
            with open(path, "wb") as f:
                f.write(shared["file"])
            return io.load(path, engine=shared["engine"])
    from ..build import build
    return build(shared["source"], shared["output"], {**shared["namespace"], **job["names"]},
                 engine=shared["engine"], seed=job["seed"])


def make_optimizer(spec: tuple[str, dict]) -> optim.Optimizer:
    name, fields = spec
    fields = dict(fields)
    if isinstance(fields.get("decay"), Mapping):
        fields["decay"] = optim.Decay(**fields["decay"])
    return getattr(optim, name)(**fields)


def _accuracy(model, feed: Mapping[str, np.ndarray]) -> float:
    """Share of training rows classified right: the prediction node (``pred``, ``s``,
    ``logits``, …) against the one input it does not read (the labels)."""
    target, reads, labels = classifier_data(model)
    if len(reads) != 1 or len(labels) != 1:
        raise NbbpError("metric 'accuracy' needs one data input and one label input; pass "
                        "a function f(model) -> float instead")
    X = feed.get(reads[0].name, None)
    X = model.value_of(reads[0]) if X is None else X
    y = feed.get(labels[0].name, None)
    y = np.asarray(model.value_of(labels[0]) if y is None else y).reshape(len(X), -1)
    z = np.asarray(predict(model, X, target)).reshape(len(X), -1)
    if y.shape[1] > 1:
        return float(np.mean(z.argmax(axis=1) == y.argmax(axis=1)))
    if y.min() < 0:             # labels -1 / +1: the sign of a score
        return float(np.mean((z[:, 0] > 0) == (y[:, 0] > 0)))
    threshold = 0.5 if z.min() >= 0 and z.max() <= 1 else 0.0     # probability or logit
    return float(np.mean((z[:, 0] > threshold) == (y[:, 0] > 0.5)))


def _worker_name() -> str:
    if "distributed" in sys.modules:
        try:
            return sys.modules["distributed"].get_worker().address
        except ValueError:
            pass
    return "local"
