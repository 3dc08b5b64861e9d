"""Lowering a graph to a flat program, and running it.

Every node gets a slot in one float64 arena (scalars packed densely, tensors
64-byte aligned). :func:`lower` turns the nodes to compute into fixed-width int64
instructions (their layout and constants: :mod:`nbbp.core.isa`), which the cached
Numba interpreter (:mod:`nbbp.core.kernels`, loaded by :mod:`nbbp.core.loader`) runs in
one call. :class:`PythonProgram` runs the same nodes with the
op table's NumPy implementations: the readable reference and the kernels' oracle.

This module knows nothing of notebooks, Graphviz or widgets.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import NbbpError
from .graph import Graph, Node
from .isa import (
    ADDRELU,
    BINARY,
    COPY,
    INTERNAL_KIND,
    K_COPY,
    KIND,
    KIND_ID,
    LAYOUT,
    MASK,
    MATMUL,
    REDUCE,
    SEL_ELEMENTS,
    SEL_RUNS,
    SELECT,
    SIZE,
    SOFTMAX,
    UNARY,
    WHERE,
    W,
)
from .loader import _loaded, kernel, kernels, preload  # noqa: F401  (public here too)
from .ops import OPS, select_table

BIG = 4096     # matrices at least this big are transposed by BLAS, not copied
ALIGN = 8      # float64s per 64 bytes
ENGINES = ("numba", "python")


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


# internal instructions: the op whose lowering they share, and their opcode
_FUSED = {"copy": "reshape", "mask": "mul", "addrelu": "add"}
_CODES = {"mask": MASK, "addrelu": ADDRELU}


def _const_value(n: Node) -> float | None:
    """The value of a scalar const node, else None."""
    return float(n.value) if n.op == "const" and n.size == 1 else None


def _row_tail(small: Node, big: Node) -> bool:
    """True if ``small`` is one row of ``big`` repeated (its shape, leading ones
    stripped, equals the trailing dimensions of ``big``)."""
    shape = list(small.shape)
    while shape and shape[0] == 1:
        shape.pop(0)
    return bool(shape) and tuple(big.shape[len(big.shape) - len(shape):]) == tuple(shape)


def _rewrite(n: Node) -> tuple[str, tuple[Node, ...], dict]:
    """Peephole rewrites: which instruction computes ``n`` and from which nodes.

    ``a ** 2`` becomes ``a * a``, ``a ** 1`` a copy; a matmul with a transposed
    matrix operand reads that matrix directly (BLAS transposes for free), so the
    transpose node need not be computed at all; ``g * step(y)`` (relu's backward)
    becomes one ``mask`` pass and ``relu(a + b)`` one ``addrelu`` pass.
    """
    op = OPS[n.op]
    if op.name == "pow" and _const_value(n.inputs[1]) in (1.0, 2.0):
        a = n.inputs[0]
        return ("mul", (a, a), {}) if _const_value(n.inputs[1]) == 2.0 else ("copy", (a,), {})
    if op.kind == MATMUL:
        flags, ins = 0, list(n.inputs)
        for i, x in enumerate(ins):
            # OpenBLAS is slow on small A @ Bᵀ: copying a small B transposed is cheaper
            if (x.op == "transpose" and x.ndim == 2 and x.inputs[0].ndim == 2
                    and (i == 0 or x.size >= BIG)):
                flags |= 1 << i
                ins[i] = x.inputs[0]
        return "matmul", tuple(ins), {"flags": flags}
    if op.name == "mul":
        a, b = n.inputs
        for g, s in ((a, b), (b, a)):
            if s.op == "step" and g.shape == n.shape and s.shape == n.shape:
                return "mask", (g, s.inputs[0]), {}
    if op.name == "relu" and n.inputs[0].op == "add" and n.inputs[0].shape == n.shape:
        return "addrelu", n.inputs[0].inputs, {}
    return op.name, n.inputs, {}


def plan(nodes: Sequence[Node], keep: Sequence[Node] | None = None, rewrite: bool = True
         ) -> list[tuple[Node, str, tuple[Node, ...], dict]]:
    """The instructions for ``nodes`` (op nodes in build order) after rewrites,
    without those whose values nothing in ``keep`` needs (all are kept by default)."""
    steps = [(n, *_rewrite(n)) if rewrite else (n, n.op, n.inputs, {}) for n in nodes]
    if keep is None:
        return steps
    live = {n.id for n in keep}
    out = []
    for step in reversed(steps):
        if step[0].id in live:
            out.append(step)
            live.update(x.id for x in step[2])
    return out[::-1]


def _retarget(row: np.ndarray, name: str) -> None:
    """Make the instruction ``row`` run the op ``name`` instead (its code and kind)."""
    op = OPS[name]
    row[0], row[KIND] = op.code, KIND_ID[op.kind]


def lower(layout: Layout, nodes: Sequence[Node], keep: Sequence[Node] | None = None,
          watch: Sequence[Node] = (), extra: Sequence[Sequence[int]] = ()
          ) -> tuple[np.ndarray, list[Node]]:
    """Instructions computing ``nodes`` as one int64 array, and the node each computes.

    Each instruction is ``W`` ints (:mod:`nbbp.core.isa`); its ``KIND`` field holds the
    op table's kind of its op (``KIND_ID[OPS[name].kind]``), or the kind of an internal
    instruction (``INTERNAL_KIND``): the kernels dispatch on it, not on opcode values.
    ``extra`` instructions (e.g. optimizer updates, without a kind: it is filled in
    from their opcode) follow the nodes' own. The array
    ends with the watch list: ``(offset, size)`` of every node in ``watch``, then its
    start and length, which the kernels check for nan and inf.
    """
    off = layout.offsets
    steps = plan(nodes, keep)
    instr = np.zeros((len(steps) + len(extra), W), dtype=np.int64)
    for i, row in enumerate(extra):
        instr[len(steps) + i, :len(row)] = row
        if row[0] not in INTERNAL_KIND:
            raise NbbpError(f"internal: extra instruction with opcode {row[0]}, which "
                            "nbbp.core.isa does not define")
        instr[len(steps) + i, KIND] = INTERNAL_KIND[row[0]]
    aux: list[int] = []
    base = len(instr) * W

    def put(ints: list[int]) -> int:
        aux.extend(ints)
        return base + len(aux) - len(ints)

    for p, (n, name, ins, info) in enumerate(steps):
        op = OPS[_FUSED.get(name, name)]
        row = instr[p]
        row[0], row[1], row[SIZE] = _CODES.get(name, op.code), off[n.id], n.size
        row[KIND] = KIND_ID[op.kind]         # the kernels dispatch on this, then row[0]
        row[2] = off[ins[0].id]
        if name == "copy" or name == "stop_gradient" or (
                n.size == 1 and ins[0].size == 1 and op.kind in (REDUCE, LAYOUT)):
            row[0], row[KIND] = COPY, K_COPY
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
            elif a.size == n.size and _row_tail(b, n):
                row[6], row[4] = 4, b.size
            elif b.size == n.size and _row_tail(a, n):
                row[6], row[4] = 5, a.size
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
        elif op.kind == MATMUL:
            a, b = ins
            flags = info["flags"]
            row[3] = off[b.id]
            if n.size == 1 and a.size == 1 and b.size == 1:
                _retarget(row, "mul")                       # (1,1) @ (1,1)
                continue
            # a is (m, k), or (k, m) stored when flag 1; a vector is one row
            row[4] = (a.shape[1] if flags & 1 else a.shape[0]) if a.ndim == 2 else 1
            row[5] = (a.shape[0] if flags & 1 else a.shape[1]) if a.ndim == 2 else a.shape[0]
            row[6] = flags
        elif op.name == "transpose":
            x = ins[0]
            perm = n.attrs["perm"]
            xs = _strides(x.shape, x.shape)[4 - x.ndim:]
            row[3] = put(_pad4(n.shape) + [0] * (4 - x.ndim) + [xs[p_] for p_ in perm])
        elif op.name == "broadcast_to":
            row[3] = put(_pad4(n.shape) + _strides(ins[0].shape, n.shape))
        elif op.name == "sum_to":
            x = ins[0]
            if _row_tail(n, x) or n.size == 1:        # sum over leading axes: a reduce
                _retarget(row, "sum")
                row[3], row[4], row[5] = 1, x.size // n.size, n.size
            else:
                row[3] = put(_pad4(x.shape) + _strides(n.shape, x.shape))
                row[4] = x.size
        elif op.name == "reshape":
            pass
        elif op.kind == SELECT:
            _lower_select(row, n, ins, off, put)
        else:
            raise NbbpError(f"internal: no lowering for op {op.name!r}")
    watch_list = [int(v) for w in watch for v in (off[w.id], w.size)]
    tail = [base + len(aux), len(watch)]
    code = np.concatenate([instr.ravel(), np.asarray(aux + watch_list + tail, dtype=np.int64)])
    return code, [st[0] for st in steps]


def _runs(out_pos: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Split an index map into runs where both positions step by one: rows of
    ``(out position, source offset, length)``."""
    cut = np.flatnonzero((np.diff(out_pos) != 1) | (np.diff(src) != 1)) + 1
    starts = np.concatenate([[0], cut])
    lengths = np.diff(np.concatenate([starts, [len(src)]]))
    return np.stack([out_pos[starts], src[starts], lengths], axis=1)


def _lower_select(row: np.ndarray, n: Node, ins: Sequence[Node], off: np.ndarray,
                  put: Callable[[list[int]], int]) -> None:
    """A selection as arena offsets: for every output element the offset it is copied
    from (``scatter``: for every element of g, the output position it is added to).
    Stored as runs of block copies when the runs are long enough to pay (slices of
    rows, concat, tile, gather of rows), else element by element; a single element, or
    a selection that copies its input as it is (squeeze, expand_dims), is a copy."""
    scatter = n.op == "scatter"
    of = n.attrs["of"] if scatter else n.op
    shapes = tuple(x.shape for x in ins) if not scatter else None
    if scatter:
        from .ops import _dec_shapes
        shapes = _dec_shapes(n.attrs["shapes"])
    table = select_table(of, shapes, tuple((k, n.attrs[k]) for k in OPS[of].attrs))
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    if scatter:                    # g's element i is added to output position out[i]
        arg = n.attrs["arg"]
        pos = np.flatnonzero((table >= starts[arg]) & (table < starts[arg + 1]))
        out_pos, src = table[pos] - starts[arg], off[ins[0].id] + pos
    else:                          # output element i is copied from src[i]
        which = np.searchsorted(starts[1:], table, side="right")
        src = np.asarray([off[x.id] for x in ins], dtype=np.int64)[which] + table - starts[which]
        out_pos = np.arange(n.size, dtype=np.int64)
    if n.size == 1 and len(src) == 1 or (
            not scatter and len(ins) == 1 and n.size == ins[0].size
            and np.array_equal(src, off[ins[0].id] + out_pos)):
        row[0], row[KIND], row[2] = COPY, K_COPY, src[0]
        return
    runs = _runs(out_pos, src)
    if 4 * len(runs) <= len(src):
        row[3], row[4], row[5] = put(runs.ravel().tolist()), SEL_RUNS, len(runs)
    elif scatter:
        row[3], row[4], row[5] = (put(np.stack([out_pos, src], 1).ravel().tolist()),
                                  SEL_ELEMENTS, len(src))
    else:
        row[3], row[4], row[5] = put(src.tolist()), SEL_ELEMENTS, len(src)


class Program:
    """Compiled instructions for some nodes of a graph, run by the Numba interpreter.

    ``keep``: the nodes whose values must be right afterwards (default: all of
    ``nodes``); others may be skipped or fused away. ``watch``: the nodes whose
    nan or inf is an error.
    """

    engine = "numba"

    def __init__(self, layout: Layout, nodes: Sequence[Node], keep: Sequence[Node] | None = None,
                 watch: Sequence[Node] | None = None) -> None:
        self.layout = layout
        watch = list(keep if keep is not None else nodes) if watch is None else list(watch)
        self.code, self.nodes = lower(layout, nodes, keep, watch)
        self.n = len(self.nodes)
        self._fn = kernel("run_scalar" if layout.scalar else "run")
        from .kernels import SUPPORTED
        for n in self.nodes:
            if n.op not in SUPPORTED:
                raise NbbpError(f"op {n.op!r} (node {n.name!r}) has no compiled kernel: run "
                                "the model with engine='python', or add its kernel to "
                                "nbbp/core/kernels.py (see docs/engine.md)")

    def __call__(self, arena: np.ndarray, check: bool = False) -> int:
        """Run on ``arena``. Returns -1 if every watched value is finite; otherwise,
        with ``check``, the index of the first instruction whose output is not finite,
        and without, ``self.n``."""
        return self._fn(self.code, arena, 0, self.n, int(check))

    def bind(self, arena: np.ndarray) -> Callable[[], int]:
        """A no-argument callable running the program on ``arena`` (the hot path)."""
        return functools.partial(self._fn, self.code, arena, 0, self.n, 0)


class PythonProgram:
    """The same computation, node by node with NumPy: the reference path."""

    engine = "python"

    def __init__(self, layout: Layout, nodes: Sequence[Node], keep: Sequence[Node] | None = None,
                 watch: Sequence[Node] | None = None) -> None:
        self.layout = layout
        self.nodes = [st[0] for st in plan(nodes, keep, rewrite=False)]
        self.n = len(self.nodes)
        watch = list(keep if keep is not None else nodes) if watch is None else list(watch)
        self.watch = watch

    def __call__(self, arena: np.ndarray, check: bool = False) -> int:
        lay = self.layout
        with np.errstate(all="ignore"):
            for p, n in enumerate(self.nodes):
                op = OPS[n.op]
                args = [lay.view(arena, x) for x in n.inputs]
                kw = {k: n.attrs[k] for k in op.attrs}
                out = np.asarray(op.impl(*args, **kw), dtype=np.float64)
                lay.write(arena, n, out)
                if check and not np.isfinite(out).all():
                    return p
        if not check and not all(np.isfinite(lay.view(arena, w)).all() for w in self.watch):
            return self.n
        return -1

    def bind(self, arena: np.ndarray) -> Callable[[], int]:
        return functools.partial(self, arena)


def make_program(layout: Layout, nodes: Sequence[Node], engine: str = "numba",
                 keep: Sequence[Node] | None = None, watch: Sequence[Node] | None = None):
    """A runnable program for ``nodes`` on the chosen engine (see :class:`Program`)."""
    if engine == "numba":
        return Program(layout, nodes, keep, watch)
    if engine == "python":
        return PythonProgram(layout, nodes, keep, watch)
    from ..errors import suggest
    raise NbbpError(f"unknown engine {engine!r}; " + suggest(engine, ENGINES, "engine"))
