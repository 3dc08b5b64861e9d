"""A sweep's plan: the grid, the model and the settings checked and turned into plain
data before any task is sent.

Bad input (an unknown grid key, an empty grid, a model that does not build with the
first configuration, unknown feed names or metrics) fails here, with a message that
says how to fix it; what passes travels to the workers as numbers, strings and arrays.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import BuildError, FeedError, NbbpError, suggest
from ..train import optim
from .table import same_value
from .task import make_optimizer, rebuild

SETTINGS = ("seed", "steps", "batch_size", "optimizer")   # grid keys beside the others
METRICS = ("accuracy",)                                     # metrics known by name


class Plan:
    """Everything checked and turned into plain data before any task is sent."""

    def __init__(self, model_or_source, grid, steps, optimizer, lr, batch_size, feed, seed,
                 namespace, output, metrics, params, engine) -> None:
        from ..model import Model
        self.configs, self.axes = _configs(grid)
        if isinstance(model_or_source, Model):
            model = model_or_source
            source = model.source
            engine = engine or model.engine
            output = output or model.output.name
        elif isinstance(model_or_source, str):
            model, source = None, model_or_source
        else:
            raise NbbpError(f"sweep needs model source text or an nbbp.Model, got "
                            f"{type(model_or_source).__name__}")
        engine = engine or "numba"
        # which keys are settings, optimizer settings, names the source reads
        free, bound = source_names(source) if source is not None else (set(), set())
        fields = {}         # each configuration's optimizer class -> its settings
        for o in _distinct([c.get("optimizer", optimizer) for c in self.configs]):
            cls = type(_base_optimizer(o, None))
            fields[cls] = {f.name for f in dataclasses.fields(cls)}
        every = {f.name for cls in set(optim.OPTIMIZERS.values())
                 for f in dataclasses.fields(cls)}
        classes = [type(_base_optimizer(c.get("optimizer", optimizer), None))
                   for c in self.configs] if every & set(self.axes) else []
        for i, c in enumerate(self.configs):
            for key in c:
                own = bool(classes) and key in fields[classes[i]]
                if key in SETTINGS or (key in free and not own) or (own and key not in free):
                    continue
                if own:
                    raise NbbpError(f"sweep: grid key {key!r} is both a setting of "
                                    f"{classes[i].__name__} and a name the model source "
                                    "reads; rename it in the source")
                if key in every:
                    raise NbbpError(f"sweep: grid key {key!r} is not a setting of "
                                    f"{classes[i].__name__}; vary it only with an optimizer "
                                    "that has it (e.g. momentum with 'sgd')")
                raise NbbpError(_unknown_key(key, free, bound, fields, source))
        for c in self.configs:
            for k, v in c.items():
                if k in free:
                    _check_plain(v, f"grid value {k}={v!r}")
        for s in _distinct([c.get("steps", steps) for c in self.configs]):
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
                raise NbbpError(f"sweep: steps must be a whole number ≥ 1, got {s!r}")

        # the model as plain data
        # names every configuration sets need no value from the namespace; names only
        # some set (a list grid) need one for the others
        always = set.intersection(*(set(c) for c in self.configs)) if self.configs else set()
        names = _lookup(free - always, namespace)
        self.missing = sorted(free - always - set(names))
        for k, v in names.items():
            _check_plain(v, f"the name {k!r} that the model source reads")
        self.feed = {_feed_name(k): np.asarray(v, dtype=np.float64)
                     for k, v in (feed or {}).items()}
        self.metrics = _metrics(metrics)
        if source is None:
            self.shared = dict(kind="file", file=_model_bytes(model), engine=engine)
        else:
            self.shared = dict(kind="source", source=source, output=output, namespace=names,
                               engine=engine)
        self.shared.update(feed=self.feed, metrics=self.metrics, params=bool(params))
        self.jobs = [dict(seed=c.get("seed", seed), steps=int(c.get("steps", steps)),
                          batch_size=c.get("batch_size", batch_size),
                          optimizer=_optimizer_spec(c.get("optimizer", optimizer), lr,
                                                    {k: v for k, v in c.items()
                                                     if k not in SETTINGS and k not in free}),
                          names={k: v for k, v in c.items() if k in free})
                     for c in self.configs]
        self.engine = engine
        self.estimate = self._trial(model)

    def _trial(self, model) -> float | None:
        """Build the first configuration here (a model that does not build fails now,
        with the usual message), check the feed, and time a few training steps to
        estimate a run's cost. Returns seconds per run, or None if unknown."""
        job = self.jobs[0]
        if self.engine == "numba":
            from ..core.engine import kernels
            kernels()
        t0 = time.perf_counter()
        try:
            trial = rebuild(self.shared, job)
        except NbbpError as exc:
            hint = ""
            if self.missing:
                hint = (f" The source reads {', '.join(map(repr, self.missing))}, found "
                        "neither in namespace= nor in the grid: pass namespace={"
                        + ", ".join(f"{m!r}: ..." for m in self.missing) + "}.")
            msg = exc.message if not hint or exc.message.endswith(".") else exc.message + "."
            raise BuildError(f"sweep: the model does not build with the first configuration "
                             f"{self.configs[0]}: {msg}{hint}", line=exc.line,
                             col=exc.col, source_line=exc.source_line) from None
        for name in self.feed:
            node = trial.node(name)
            if node.op != "input":
                raise FeedError(f"sweep: feed {name!r}: only inputs are fed in training; "
                                f"{name!r} is a {node.op} node")
        try:
            few = min(job["steps"], 16)
            loop = trial.train_loop(make_optimizer(job["optimizer"]), None,
                                    job["batch_size"], self.feed, job["seed"] or 0)
            t1 = time.perf_counter()
            loop.run(few)
            t2 = time.perf_counter()
        except FeedError as exc:
            raise FeedError(f"sweep: {exc.message}") from None
        except NbbpError:       # a setting of this configuration: its row will say so
            return None
        return (t1 - t0) + (t2 - t1) * job["steps"] / few


def _configs(grid) -> tuple[list[dict], dict[str, list]]:
    """The configurations of a grid, in order, and the values along each axis."""
    if isinstance(grid, Mapping):
        if not grid:
            raise NbbpError("sweep: the grid is empty; give at least one key with values, "
                            "e.g. grid={'lr': [0.01, 0.1], 'seed': [0, 1, 2]}")
        axes: dict[str, list] = {}
        for key, values in grid.items():
            if not isinstance(key, str):
                raise NbbpError(f"sweep: grid keys are names (strings), got {key!r}")
            if isinstance(values, (str, bytes, Mapping)) or not isinstance(
                    values, (Sequence, np.ndarray, range)):
                raise NbbpError(f"sweep: grid[{key!r}] must be a list of values, got "
                                f"{type(values).__name__} {values!r}; write "
                                f"{{{key!r}: [{values!r}]}} for a single value")
            values = list(values)
            if not values:
                raise NbbpError(f"sweep: grid[{key!r}] is empty; give it at least one value")
            axes[key] = [v.item() if isinstance(v, np.generic) else v for v in values]
        return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())], axes
    if isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)):
        configs = [dict(c) if isinstance(c, Mapping) else None for c in grid]
        if not configs:
            raise NbbpError("sweep: the list of configurations is empty")
        if any(c is None for c in configs):
            raise NbbpError("sweep: a list grid holds configurations, dicts like "
                            "{'lr': 0.1, 'seed': 0}")
        axes = {}
        for c in configs:
            for k, v in c.items():
                if not isinstance(k, str):
                    raise NbbpError(f"sweep: grid keys are names (strings), got {k!r}")
                vals = axes.setdefault(k, [])
                if not any(same_value(v, w) and type(v) is type(w) for w in vals):
                    vals.append(v)
        return configs, axes
    raise NbbpError(f"sweep: grid must be a dict {{key: [values]}} or a list of "
                    f"configurations, got {type(grid).__name__}")


def source_names(source: str) -> tuple[set[str], set[str]]:
    """The names the source reads from outside (free) and the names it binds."""
    from ..build import dsl_namespace
    try:
        tree = ast.parse(source)
    except SyntaxError:
        from ..build import build_graph
        build_graph(source)     # raises the located BuildError
        raise
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    free = loaded - bound - set(dsl_namespace(0)) - set(dir(builtins))
    return free, bound


def _unknown_key(key, free, bound, fields, source) -> str:
    choices = [*SETTINGS, *set().union(*fields.values()), *free]
    msg = f"sweep: unknown grid key {key!r}; " + suggest(key, choices, "grid key")
    if key in bound:
        msg += (f" The source assigns {key!r} itself, so a grid cannot set it: read it "
                f"from outside instead (delete the assignment `{key} = …`).")
    elif source is None:
        msg += (" This model has no source text (it was built with the Python API), so "
                "only training settings can vary; build it from source to vary its shape.")
    else:
        opts = ", ".join(sorted(c.__name__ for c in fields))
        msg += (f" A grid key is a training setting, a setting of the optimizer ({opts}) "
                "or a name the model source reads.")
    return msg


def _lookup(names: set[str], namespace: Mapping[str, Any] | None) -> dict[str, Any]:
    """Values of ``names`` from ``namespace``, then from the IPython user namespace."""
    found: dict[str, Any] = {}
    shell = None
    if "IPython" in sys.modules:
        shell = sys.modules["IPython"].get_ipython()
    sources = [namespace or {}, getattr(shell, "user_ns", None) or {}]
    for name in sorted(names):
        for src in sources:
            if name in src:
                found[name] = src[name]
                break
    return found


def _check_plain(value: Any, what: str, depth: int = 0) -> None:
    """Only plain data goes to workers: numbers, strings, arrays and containers of them."""
    ok = (value is None or isinstance(value, (bool, int, float, complex, str, np.generic))
          or (isinstance(value, np.ndarray) and value.dtype.kind in "biufcU"))
    if ok:
        return
    if isinstance(value, (list, tuple)) and depth < 8:
        for v in value:
            _check_plain(v, what, depth + 1)
        return
    if isinstance(value, dict) and depth < 8:
        for k, v in value.items():
            _check_plain(k, what, depth + 1)
            _check_plain(v, what, depth + 1)
        return
    raise NbbpError(f"sweep: {what} is a {type(value).__name__}; only plain data (numbers, "
                    "strings, arrays, and lists/tuples/dicts of them) is sent to the workers. "
                    "Compute it inside the model source, or pass the numbers it holds")


def _feed_name(key: Any) -> str:
    node = getattr(key, "node", key)
    name = getattr(node, "name", key)
    if not isinstance(name, str):
        raise FeedError(f"sweep: feed keys are input names, got {key!r}")
    return name


def _metrics(metrics: Any) -> dict[str, Any]:
    if metrics is None:
        return {}
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    if not isinstance(metrics, Mapping):
        metrics = {m if isinstance(m, str) else getattr(m, "__name__", f"metric{i}"): m
                   for i, m in enumerate(metrics)}
    out = {}
    for name, m in metrics.items():
        if isinstance(m, str) and m not in METRICS:
            raise NbbpError(f"sweep: unknown metric {m!r}; " + suggest(m, METRICS, "metric")
                            + " Or pass a function f(model) -> float.")
        if not isinstance(m, str) and not callable(m):
            raise NbbpError(f"sweep: metric {name!r} must be a name or a function "
                            f"f(model) -> float, got {type(m).__name__}")
        out[str(name)] = m
    return out


def _distinct(values: list) -> list:
    out: list = []
    for v in values:
        if not any(v is w or (type(v) is type(w) and same_value(v, w)) for w in out):
            out.append(v)
    return out


def _base_optimizer(opt: Any, lr: float | None) -> optim.Optimizer:
    try:
        base = optim.get(opt, lr)
    except NbbpError as exc:
        raise NbbpError(f"sweep: {exc.message}") from None
    if lr is not None and isinstance(opt, optim.Optimizer):
        base = dataclasses.replace(base, lr=lr)
    return base


def _optimizer_spec(opt: Any, lr: float | None, settings: dict) -> tuple[str, dict]:
    """An optimizer as plain data: its class name and every field."""
    base = _base_optimizer(opt, lr)
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    fields.update(settings)
    decay = fields.get("decay")
    if isinstance(decay, optim.Decay):
        fields["decay"] = dataclasses.asdict(decay)
    return type(base).__name__, fields


def _model_bytes(model) -> bytes:
    from .. import io
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.nbbp")
        io.save(model, path)
        with open(path, "rb") as f:
            return f.read()
