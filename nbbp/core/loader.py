"""Loading the compiled kernels: from Numba's on-disk cache, or compiled once.

:mod:`nbbp.core.kernels` (all of nbbp's Numba code) is imported here, on the first
run of a compiled program, never when ``nbbp`` is imported. The first-ever compile
announces itself; later sessions load the kernels from the cache.
"""

from __future__ import annotations

import glob
import os
import sys
import threading
from collections.abc import Callable

import numpy as np

from .isa import COPY, K_COPY, KIND, SIZE, STORAGE, W

_loaded: dict[str, Callable] = {}
_loading = threading.Lock()     # one loader at a time (preload runs in a thread)
_fresh: list[bool] = []         # [True] once the cache is known to match the sources


def kernel(name: str) -> Callable:
    """The compiled entry point ``name`` of :mod:`nbbp.core.kernels` (``run_all``,
    ``run``, ``run_scalar`` or ``train``), loaded from Numba's cache on first use — or compiled,
    once per installation, with a notice. Scalar-only graphs never load the tensor
    kernel."""
    fn = _loaded.get(name)
    if fn is not None:
        return fn
    with _loading:
        fn = _loaded.get(name)
        if fn is None:
            fn = _loaded[name] = _load(name)
    return fn


def ready(name: str) -> bool:
    """Whether the kernel ``name`` is loaded, i.e. :func:`kernel` returns it at once
    (asking never waits for, nor starts, a load)."""
    return name in _loaded


def preload(names: tuple[str, ...] = ("run_scalar", "run_all", "train")) -> threading.Thread:
    """Load the kernels in a background thread (``%load_ext nbbp`` does this), so the
    first model of a session does not wait for Numba's start-up."""
    def work() -> None:
        for name in names:
            try:
                kernel(name)
            except Exception:   # the foreground call will raise it with context
                return
    thread = threading.Thread(target=work, name="nbbp-preload", daemon=True)
    thread.start()
    return thread


def kernels() -> None:
    """Load (or compile) every kernel now, e.g. to warm the cache before a session."""
    kernel("run_scalar")
    kernel("run_all")
    kernel("run")
    kernel("train")


def _load(name: str) -> Callable:
    from . import kernels as _kernels
    if not _fresh:
        _drop_stale_cache(_kernels)
        _fresh.append(True)
    dispatcher = getattr(_kernels, name)
    if not _cache_present(dispatcher, name, _kernels.__file__):
        print(f"nbbp: compiling the engine's kernel {name!r} — once per installation, "
              "10–20 s; later sessions load it from Numba's cache.", file=sys.stderr)
    # the smallest program: one copy of one value, then an empty watch list; run on
    # the argument types every program uses (one array per storage class)
    row = [0] * W
    row[0], row[SIZE], row[KIND], row[STORAGE] = COPY, 1, K_COPY, 0
    code = np.array(row + [0, 0], dtype=np.int64)
    arena, ints = np.zeros(1), np.zeros(2, dtype=np.int64)
    arena32 = np.zeros(1, dtype=np.float32)
    if name == "train":                      # compile, or load from the cache
        dispatcher(code, arena, arena32, ints, 1, 1, 0, 0, arena, arena, arena32, ints, ints,
                   ints)
    elif name == "run_all":
        dispatcher(code, arena, arena32, ints, 0, 1, 1)
    elif name == "run":
        dispatcher(code, arena, arena32, 0, 1, 1)
    else:
        dispatcher(code, arena, 0, 1, 1)
    return _entry_point(dispatcher)


def _drop_stale_cache(mod) -> None:
    """Delete the kernels' cached code if it was compiled with other constants than
    the current :mod:`nbbp.core.isa` and op table (Numba only notices edits to the
    kernels' own file), before any kernel is loaded from it."""
    if mod.compiled_stamp() == mod.STAMP:
        return
    print("nbbp: the engine's instruction set changed since its kernels were cached; "
          "compiling them again.", file=sys.stderr)
    try:
        path = mod.run._cache._cache_path
        stem = os.path.splitext(os.path.basename(mod.__file__))[0]
        for f in glob.glob(os.path.join(path, f"{stem}.*.nb[ic]")):
            os.remove(f)
    except Exception as exc:    # private Numba API: refuse to run stale code
        from ..errors import NbbpError
        raise NbbpError(f"nbbp's cached kernels are stale and could not be removed ({exc}); "
                        "delete Numba's cache directory (NUMBA_CACHE_DIR or __pycache__ "
                        "beside nbbp/core/kernels.py) and try again") from None


def _cache_present(dispatcher, name: str, source: str) -> bool:
    """Whether Numba's cache holds ``name`` (its index files are named after the
    source module: ``kernels.run-<line>.py311.nbi``)."""
    try:
        path = dispatcher._cache._cache_path
        stem = os.path.splitext(os.path.basename(source))[0]
        return bool(glob.glob(os.path.join(path, f"{stem}.{name}-*.nbi")))
    except Exception:   # private Numba API: if it moved, just do not announce
        return True


def _entry_point(dispatcher):
    """The compiled function behind a Numba dispatcher, skipping its type dispatch
    (~0.15 µs a call). Our arguments always have the one signature compiled in
    :func:`_load`; if Numba's internals differ, fall back to the dispatcher."""
    try:
        (sig,) = dispatcher.signatures
        return dispatcher.overloads[sig].entry_point
    except Exception:
        return dispatcher
