"""Lowering a graph to a flat program, and running it.

Every node gets a slot in one float64 arena (scalars packed densely, tensors
64-byte aligned). :func:`lower` turns the nodes to compute into fixed-width int64
instructions (see :mod:`nbbp._kernels` for the layout), which the cached Numba
interpreter runs in one call. :class:`PythonProgram` runs the same nodes with the
op table's NumPy implementations: the readable reference and the kernels' oracle.

This module knows nothing of notebooks, Graphviz or widgets.
"""

from __future__ import annotations

import functools
import glob
import os
import sys
from collections.abc import Callable, Sequence

import numpy as np

from .errors import NbbpError
from .graph import Graph, Node
from .ops import BINARY, LAYOUT, LEAF, MATMUL, OPS, REDUCE, SOFTMAX, UNARY, WHERE

W = 8          # ints per instruction (keep equal to _kernels.W)
COPY = 15      # the internal copy instruction (keep equal to _kernels.COPY)
ALIGN = 8      # float64s per 64 bytes
ENGINES = ("numba", "python")

_loaded: dict[str, Callable] = {}


def kernel(name: str) -> Callable:
    """The compiled entry point ``name`` of :mod:`nbbp._kernels` (``run`` or
    ``run_scalar``), loaded from Numba's cache on first use — or compiled, once per
    installation, with a notice. Scalar-only graphs never load the tensor kernel."""
    fn = _loaded.get(name)
    if fn is None:
        from . import _kernels
        dispatcher = getattr(_kernels, name)
        if not _cache_present(dispatcher, name):
            print(f"nbbp: compiling the engine's kernel {name!r} — once per installation, "
                  "10–20 s; later sessions load it from Numba's cache.", file=sys.stderr)
        code, arena = np.zeros(W, dtype=np.int64), np.zeros(1)
        code[0] = COPY
        dispatcher(code, arena, 0, 1)           # compile, or load from the cache
        fn = _loaded[name] = _entry_point(dispatcher)
    return fn


def kernels() -> None:
    """Load (or compile) every kernel now, e.g. to warm the cache before a session."""
    kernel("run_scalar")
    kernel("run")


def _cache_present(dispatcher, name: str) -> bool:
    try:
        path = dispatcher._cache._cache_path
        return bool(glob.glob(os.path.join(path, f"_kernels.{name}-*.nbi")))
    except Exception:   # private Numba API: if it moved, just do not announce
        return True


class Layout:
    """Arena offsets for every node of a graph (as it is when the layout is made)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.n_nodes = len(graph.nodes)
        self.scalar = all(n.size == 1 for n in graph.nodes) and not any(
            OPS[n.op].kind == SOFTMAX for n in graph.nodes)
        offsets = np.zeros(self.n_nodes, dtype=np.int64)
        pos = 0
        for n in graph.nodes:          # scalars first, packed
            if n.size == 1:
                offsets[n.id] = pos
                pos += 1
        for n in graph.nodes:          # then tensors, aligned
            if n.size != 1:
                pos = -(-pos // ALIGN) * ALIGN
                offsets[n.id] = pos
                pos += n.size
        self.offsets = offsets
        self.size = max(pos, 1)

    def new_arena(self) -> np.ndarray:
        """A zeroed, 64-byte aligned arena with every leaf's value written in."""
        raw = np.zeros(self.size + ALIGN, dtype=np.float64)
        shift = (-raw.ctypes.data // 8) % ALIGN
        arena = raw[shift:shift + self.size]
        for n in self.graph.nodes[:self.n_nodes]:
            if n.value is not None:
                self.write(arena, n, n.value)
        return arena

    def view(self, arena: np.ndarray, node: Node) -> np.ndarray:
        """The node's value as an array view into the arena (shape of the node)."""
        o = self.offsets[node.id]
        return arena[o:o + node.size].reshape(node.shape)

    def read(self, arena: np.ndarray, node: Node) -> float | np.ndarray:
        """A copy of the node's value: a float for scalars, an array otherwise."""
        o = self.offsets[node.id]
        if node.shape == ():
            return float(arena[o])
        return arena[o:o + node.size].reshape(node.shape).copy()

    def write(self, arena: np.ndarray, node: Node, value) -> None:
        o = self.offsets[node.id]
        arena[o:o + node.size] = np.broadcast_to(value, node.shape).ravel()


def _pad4(shape: Sequence[int]) -> list[int]:
    return [1] * (4 - len(shape)) + list(shape)


def _strides(shape: Sequence[int], like: Sequence[int]) -> list[int]:
    """Element strides of contiguous ``shape``, padded to 4-D like ``like``; 0 where
    ``shape`` has size 1, so it broadcasts along that axis."""
    s4 = _pad4(shape)
    strides, acc = [0] * 4, 1
    for j in range(3, -1, -1):
        strides[j] = acc if s4[j] != 1 else 0
        acc *= s4[j]
    return strides


def _axis_split(shape: Sequence[int], axis: int | None) -> tuple[int, int, int]:
    if axis is None:
        return 1, int(np.prod(shape, dtype=np.int64)), 1
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return outer, int(shape[axis]), inner


def lower(layout: Layout, nodes: Sequence[Node]) -> np.ndarray:
    """Instructions computing ``nodes`` (op nodes, in build order) as one int64 array."""
    off = layout.offsets
    instr = np.zeros((len(nodes), W), dtype=np.int64)
    aux: list[int] = []
    base = len(nodes) * W

    def put(ints: list[int]) -> int:
        aux.extend(ints)
        return base + len(aux) - len(ints)

    for p, n in enumerate(nodes):
        op = OPS[n.op]
        ins = n.inputs
        row = instr[p]
        row[0], row[1], row[7] = op.code, off[n.id], n.size
        if ins:
            row[2] = off[ins[0].id]
        if op.kind == LEAF:
            raise NbbpError(f"internal: leaf {n.name!r} has no instruction")
        if n.size == 1 and ins[0].size == 1 and op.kind in (REDUCE, LAYOUT) or (
                op.kind == UNARY and op.name == "stop_gradient"):
            row[0] = COPY
        elif op.kind == UNARY:
            pass
        elif op.kind == BINARY:
            a, b = ins
            row[3] = off[b.id]
            if a.size == n.size and b.size == n.size:
                row[6] = 0
            elif a.size == n.size and b.size == 1:
                row[6] = 1
            elif a.size == 1 and b.size == n.size:
                row[6] = 2
            else:
                row[6] = 3
                row[5] = put(_pad4(n.shape) + _strides(a.shape, n.shape)
                             + _strides(b.shape, n.shape))
        elif op.kind == WHERE:
            c, a, b = ins
            row[3], row[4] = off[a.id], off[b.id]
            row[5] = put(_pad4(n.shape) + _strides(c.shape, n.shape)
                         + _strides(a.shape, n.shape) + _strides(b.shape, n.shape))
        elif op.kind in (REDUCE, SOFTMAX):
            row[3], row[4], row[5] = _axis_split(ins[0].shape, n.attrs["axis"])
        elif op.kind == MATMUL and n.size == 1 and ins[0].size == 1 and ins[1].size == 1:
            row[0], row[3] = OPS["mul"].code, off[ins[1].id]     # (1,1) @ (1,1)
        elif op.kind == MATMUL:
            a, b = ins
            row[3] = off[b.id]
            row[4] = a.shape[0] if a.ndim == 2 else 1
            row[5] = a.shape[-1]
        elif op.name == "transpose":
            x = ins[0]
            perm = n.attrs["perm"]
            xs = _strides(x.shape, x.shape)[4 - x.ndim:]
            row[3] = put(_pad4(n.shape) + [0] * (4 - x.ndim) + [xs[p_] for p_ in perm])
        elif op.name == "broadcast_to":
            row[3] = put(_pad4(n.shape) + _strides(ins[0].shape, n.shape))
        elif op.name == "sum_to":
            x = ins[0]
            row[3] = put(_pad4(x.shape) + _strides(n.shape, x.shape))
            row[4] = x.size
        elif op.name == "reshape":
            pass
        else:
            raise NbbpError(f"internal: no lowering for op {op.name!r}")
    return np.concatenate([instr.ravel(), np.asarray(aux, dtype=np.int64)])


class Program:
    """Compiled instructions for some nodes of a graph, run by the Numba interpreter."""

    engine = "numba"

    def __init__(self, layout: Layout, nodes: Sequence[Node]) -> None:
        self.layout = layout
        self.nodes = list(nodes)
        self.code = lower(layout, self.nodes)
        self.n = len(self.nodes)
        self._fn = kernel("run_scalar" if layout.scalar else "run")

    def __call__(self, arena: np.ndarray) -> int:
        """Run on ``arena``; the index of the first non-finite instruction, or -1."""
        return self._fn(self.code, arena, 0, self.n)

    def bind(self, arena: np.ndarray) -> Callable[[], int]:
        """A no-argument callable running the program on ``arena`` (the hot path)."""
        return functools.partial(self._fn, self.code, arena, 0, self.n)


def _entry_point(dispatcher):
    """The compiled function behind a Numba dispatcher, skipping its type dispatch
    (~0.15 µs a call). Our arguments always have the one signature compiled in
    :func:`kernels`; if Numba's internals differ, fall back to the dispatcher."""
    try:
        (sig,) = dispatcher.signatures
        return dispatcher.overloads[sig].entry_point
    except Exception:
        return dispatcher


class PythonProgram:
    """The same computation, node by node with NumPy: the reference path."""

    engine = "python"

    def __init__(self, layout: Layout, nodes: Sequence[Node]) -> None:
        self.layout = layout
        self.nodes = list(nodes)
        self.n = len(self.nodes)

    def __call__(self, arena: np.ndarray) -> int:
        lay = self.layout
        first_bad = -1
        with np.errstate(all="ignore"):
            for p, n in enumerate(self.nodes):
                op = OPS[n.op]
                args = [lay.view(arena, x) for x in n.inputs]
                kw = {k: n.attrs[k] for k in op.attrs}
                out = np.asarray(op.impl(*args, **kw), dtype=np.float64)
                lay.write(arena, n, out)
                if first_bad < 0 and not np.isfinite(out).all():
                    first_bad = p
        return first_bad

    def bind(self, arena: np.ndarray) -> Callable[[], int]:
        return functools.partial(self, arena)


def make_program(layout: Layout, nodes: Sequence[Node], engine: str = "numba"):
    """A runnable program for ``nodes`` on the chosen engine."""
    if engine == "numba":
        return Program(layout, nodes)
    if engine == "python":
        return PythonProgram(layout, nodes)
    from .errors import suggest
    raise NbbpError(f"unknown engine {engine!r}; " + suggest(engine, ENGINES, "engine"))
