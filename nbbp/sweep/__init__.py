"""Sweeps: many training runs at once, over seeds, learning rates, architectures, on Dask.

``nbbp.sweep(model_or_source, grid, ...)`` is :func:`nbbp.sweep.run.sweep`: the package
itself is callable. :mod:`.plan` checks a grid and turns it into plain configurations,
:mod:`.task` trains one of them (on a worker), :mod:`.table` collects the
:class:`SweepResult`, :mod:`.cluster` starts a local Dask cluster.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any

from .cluster import local_cluster
from .plan import METRICS, SETTINGS
from .run import sweep
from .table import Run, SweepResult

__all__ = ["METRICS", "SETTINGS", "Run", "SweepResult", "local_cluster", "sweep"]


class _CallableModule(types.ModuleType):
    """``nbbp.sweep(...)`` calls :func:`sweep`, whether or not ``import nbbp.sweep``
    has replaced the ``nbbp.sweep`` attribute with this package."""

    def __call__(self, *args: Any, **kwargs: Any) -> SweepResult:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
__signature__ = inspect.signature(sweep)
