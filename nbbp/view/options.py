"""Picture options: what ``%%bpgraph`` and ``to_dot(model, **opts)`` accept, checked once.

:class:`Options` is the record every part of the view reads (the scene, the DOT writer,
the live picture); :func:`options` builds and checks one; :func:`remember` keeps a
model's defaults (what ``%%bpgraph NAME --collapse …`` set) in a side table, and
:func:`for_model` applies call options on top of them.

>>> o = options(None, rankdir="lr", collapse="hidden")
>>> o.rankdir, o.collapse, o.precision
('LR', ('hidden',), 4)
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from ..errors import NbbpError, suggest

__all__ = ["AUTO_LR_RANKS", "FIELDS", "Options", "as_dict", "check", "check_collapse",
           "for_model", "options", "remember", "scopes_of"]

AUTO_LR_RANKS = 8          # rankdir="auto": left to right up to this many ranks


@dataclass(frozen=True)
class Options:
    """How a model is drawn; every field is an option of ``%%bpgraph`` (docs/bpgraph.md)."""

    rankdir: str = "auto"           # "LR", "TB", or "auto": LR up to 8 ranks deep
    precision: int = 4              # significant digits
    backward: bool = False          # also draw the gradient nodes
    grad: bool = True               # False: values only
    formulas: bool = True           # the local derivative on each op node
    collapse: tuple[str, ...] = ()  # scopes drawn as one node each
    max_nodes: int = 150            # collapse scopes automatically above this (0: never)
    renderer: str = "auto"          # "auto", "dot", "graphviz-pure", "none" or a path
    thumbnails: bool = True         # 2-D and larger tensors drawn as heat-map pictures


FIELDS = tuple(f.name for f in fields(Options))
_VIEWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def options(base: Options | None = None, **kw: Any) -> Options:
    """``base`` (or the defaults) with ``kw`` applied and checked; None keeps a value."""
    for k in kw:
        if k not in FIELDS:
            raise NbbpError(f"unknown picture option {k!r}; " + suggest(k, FIELDS, "option"))
    kw = {k: v for k, v in kw.items() if v is not None}
    if "rankdir" in kw:
        r = str(kw["rankdir"])
        kw["rankdir"] = r.lower() if r.lower() == "auto" else r.upper()
        if kw["rankdir"] not in ("LR", "TB", "auto"):
            raise NbbpError(f"rankdir must be 'LR' (left to right), 'TB' (top to bottom) or "
                            f"'auto' (LR up to {AUTO_LR_RANKS} ranks deep), got {r!r}")
    for k, lo, hi in (("precision", 1, 17), ("max_nodes", 0, 10**7)):
        v = kw.get(k, lo)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise NbbpError(f"{k} must be a whole number from {lo} to {hi}, got {v!r}")
        if k in kw:
            kw[k] = int(v)
    if "collapse" in kw:
        c = kw["collapse"]
        kw["collapse"] = (c,) if isinstance(c, str) else tuple(str(s) for s in c)
    for k in ("backward", "grad", "formulas", "thumbnails"):
        if k in kw:
            kw[k] = bool(kw[k])
    if "renderer" in kw:
        kw["renderer"] = str(kw["renderer"])
    return replace(base or Options(), **kw)


def as_dict(o: Options) -> dict[str, Any]:
    """``o`` as keyword arguments for :func:`options` or ``to_dot``."""
    return {f: getattr(o, f) for f in FIELDS}


def remember(model: Any, **opts: Any) -> None:
    """Make ``opts`` the model's default picture options (what ``%%bpgraph`` does)."""
    _VIEWS[model] = options(None, **opts)


def for_model(model: Any, opts: dict[str, Any]) -> Options:
    """The model's remembered options with ``opts`` applied on top."""
    return options(_VIEWS.get(model), **opts)


def check(model: Any, **opts: Any) -> Options:
    """Check picture options against ``model`` (e.g. that collapsed scopes exist)."""
    o = for_model(model, opts)
    check_collapse(model, o.collapse)
    return o


def scopes_of(nodes: list) -> list[str]:
    """Every scope path (and its parents) of ``nodes``, in order of first use."""
    out: dict[str, None] = {}
    for n in nodes:
        if n.scope:
            parts = n.scope.split("/")
            for k in range(1, len(parts) + 1):
                out.setdefault("/".join(parts[:k]))
    return list(out)


def check_collapse(model: Any, collapse: tuple[str, ...], nodes: list | None = None) -> None:
    """Raise if ``collapse`` names a scope the model does not have."""
    scopes = scopes_of(model.forward if nodes is None else nodes)
    for s in collapse:
        if s not in scopes:
            raise NbbpError(f"cannot collapse scope {s!r}: model {model.name!r} has no such "
                            "scope; " + (suggest(s, scopes, "scope") if scopes else
                                         "it has no scopes (make them with "
                                         "`with scope(\"name\"):`)"))
