"""Lowering a graph to a flat program, and running it.

Every node gets a slot in the array of its storage class (float64 or float32, one
aligned array each: an :class:`Arena`; scalars packed densely, tensors 64-byte
aligned). :func:`lower` turns the nodes to compute into fixed-width int64
instructions (their layout and constants: :mod:`nbbp.core.isa`), which the cached
Numba interpreter (:mod:`nbbp.core.kernels`, loaded by :mod:`nbbp.core.loader`) runs in
one call. :class:`PythonProgram` runs the same nodes with the
op table's NumPy implementations: the readable reference and the kernels' oracle.

This module knows nothing of notebooks, Graphviz or widgets.
"""

from __future__ import annotations

import contextlib
import functools
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar

import numpy as np

from ..errors import NbbpError, NumericError
from .autodiff import origin
from .graph import Graph, Node
from .isa import (
    ADDRELU,
    BAD_INDEX,
    BINARY,
    CAST,
    CONV,
    COPY,
    INTERNAL_KIND,
    K_CAST,
    K_COPY,
    K_SELECT,
    KIND,
    KIND_ID,
    LAYOUT,
    MASK,
    MATMUL,
    RANDOM,
    REDUCE,
    S_F32,
    S_F64,
    S_I64,
    SEL_ELEMENTS,
    SEL_RUNS,
    SELECT,
    SIZE,
    SOFTMAX,
    STORAGE,
    STORAGE_OF,
    STORAGES,
    TAKE,
    UNARY,
    WHERE,
    WRAP,
    WRAP_BOOL,
    WRAP_OF,
    W,
)
from .loader import _loaded, kernel, kernels, preload, ready  # noqa: F401  (public here too)
from .ops import OPS, conv_geometry, select_table

BIG = 4096     # matrices at least this big are transposed by BLAS, not copied
TENSOR_ONLY = ("erf",)   # ops run_scalar leaves out (kernels.unary_t): their graphs run on run_all
ALIGN = 64     # bytes: every tensor slot starts on a cache line
ENGINES = ("numba", "python")
STAND_IN_LIMIT = 1000   # nodes: a larger program waits for its kernel (see stand_in)
# ops whose result on float64 scalars is exact or the one correctly rounded IEEE 754
# value, so the NumPy reference and the kernels agree to the bit (pow: see _exact).
# Not relu: its backward's step node is fused into a mask and never computed by the
# kernels, so --backward would draw it differently; not maximum, minimum, clip: their
# choice between 0.0 and -0.0 differs (maximum(0.0, -0.0)), and pictures print "-0".
EXACT_OPS = frozenset({"add", "sub", "mul", "div", "neg", "sqrt", "abs", "sign",
                       "stop_gradient", "reshape",
                       "broadcast_to", "sum_to", "where", "eq", "ge", "gt", "le", "lt",
                       "equal", "not_equal", "greater", "greater_equal", "less",
                       "less_equal", "logical_and", "logical_or", "logical_not"})
_STAND_IN: ContextVar[int] = ContextVar("nbbp_stand_in", default=0)


def _aligned(size: int, dtype: str) -> np.ndarray:
    """A zeroed 1-D array of ``size`` elements whose data starts on 64 bytes."""
    item = np.dtype(dtype).itemsize
    raw = np.zeros(size + ALIGN // item, dtype=dtype)
    shift = (-raw.ctypes.data // item) % (ALIGN // item)
    return raw[shift:shift + size]


class Arena:
    """The values of a program: one aligned array per storage class
    (:data:`nbbp.core.isa.STORAGES`: ``f64``, ``f32``), indexed by class id."""

    __slots__ = ("stores",)

    def __init__(self, stores: Sequence[np.ndarray]) -> None:
        self.stores = list(stores)

    @property
    def f64(self) -> np.ndarray:
        return self.stores[S_F64]

    @property
    def f32(self) -> np.ndarray:
        return self.stores[S_F32]

    @property
    def i64(self) -> np.ndarray:
        return self.stores[S_I64]

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.stores)

    def copy(self) -> Arena:
        out = Arena([_aligned(s.size, s.dtype.name) for s in self.stores])
        for a, b in zip(out.stores, self.stores):
            a[:] = b
        return out

    def __repr__(self) -> str:
        sizes = ", ".join(f"{d}[{s.size}]" for d, s in zip(STORAGES, self.stores))
        return f"<Arena {sizes}, {self.nbytes} bytes>"


class Layout:
    """Where every node of a graph (as it is when the layout is made) lives: its
    storage class (``cls``, from its dtype) and its offset in that class's array.

    An operand read by an op of another storage class (float32 mixed with float64)
    also gets a *shadow* slot in the op's class, which a ``CAST`` instruction fills.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        nodes = graph.nodes
        self.n_nodes = len(nodes)
        cls = [STORAGE_OF[n.dtype] for n in nodes]   # Python lists while placing: fast
        # the class an op computes in: its output's, except comparisons and argmax
        # of floats, which compute in their inputs' class into a scratch slot that a
        # CAST then copies into the integer output
        work = list(cls)
        for n in nodes:
            if n.inputs and OPS[n.op].dtypes in ("compare", "index"):
                work[n.id] = STORAGE_OF[n.inputs[0].dtype if len(n.inputs) == 1 else
                                        _promoted(n.inputs)]
        self.cls = np.array(cls, dtype=np.int64)
        self.work = np.array(work, dtype=np.int64)
        size = np.fromiter((n.size for n in nodes), np.int64, len(nodes))
        self.scalar = bool((size == 1).all()) and not any(
            OPS[n.op].kind in (SOFTMAX, RANDOM) or n.op in TENSOR_ONLY for n in nodes
        ) and not any(cls)
        pos = [0] * len(STORAGES)
        align = [ALIGN // np.dtype(d).itemsize for d in STORAGES]

        def place(c: int, size: int) -> int:
            if size != 1:
                pos[c] = -(-pos[c] // align[c]) * align[c]
            at = pos[c]
            pos[c] += size
            return at

        # scalars first, packed in build order within their class (NumPy: a large
        # graph is mostly scalars), then tensors, aligned
        packed = np.zeros(len(nodes), dtype=np.int64)
        for c in range(len(STORAGES)):
            at = np.flatnonzero((size == 1) & (self.cls == c))
            packed[at] = np.arange(len(at))
            pos[c] = len(at)
        offsets = packed.tolist()
        for i in np.flatnonzero(size != 1).tolist():
            offsets[i] = place(cls[i], nodes[i].size)
        # operands read in another class (also through the lowering's rewrites, which
        # read an input's inputs): one shadow slot each, in the reader's class
        self.shadow: dict[tuple[int, int], int] = {}
        self.scratch: dict[int, int] = {}
        one_class = work == cls and len(set(cls)) <= 1   # nothing to read in another
        for n in () if one_class else nodes:
            c = work[n.id]
            if c != cls[n.id]:
                self.scratch[n.id] = place(c, n.size)
            if n.op == "cast" or OPS[n.op].kind in (RANDOM, TAKE):   # read where they are
                continue
            for x in n.inputs:
                for y in (x, *x.inputs):
                    if cls[y.id] != c and (y.id, c) not in self.shadow:
                        self.shadow[(y.id, c)] = place(c, y.size)
        self.offsets = np.array(offsets, dtype=np.int64)
        self.sizes = [max(p, 1) for p in pos]

    def new_arena(self, extra: Sequence[int] = ()) -> Arena:
        """Zeroed, 64-byte aligned storages with every leaf's value written in
        (``extra``: more elements at the end of each class, for the training loop)."""
        extra = list(extra) + [0] * (len(STORAGES) - len(extra))
        arena = Arena([_aligned(size + more, d)
                       for size, more, d in zip(self.sizes, extra, STORAGES)])
        scalars: list[tuple[list[int], list]] = [([], []) for _ in STORAGES]
        offsets, cls = self.offsets.tolist(), self.cls.tolist()
        for n in self.graph.nodes[:self.n_nodes]:
            if n.value is None:
                continue
            if n.size == 1:            # scalars: one vectorised write per class below
                at, values = scalars[cls[n.id]]
                at.append(offsets[n.id])
                values.append(n.value.item())
            else:
                self.write(arena, n, n.value)
        for store, (at, values) in zip(arena.stores, scalars):
            if at:
                store[at] = np.array(values, dtype=store.dtype)
        return arena

    def store(self, arena: Arena, node: Node) -> np.ndarray:
        """The array of ``arena`` that holds ``node``."""
        return arena.stores[self.cls[node.id]]

    def view(self, arena: Arena, node: Node) -> np.ndarray:
        """The node's value as an array view into the arena (shape of the node)."""
        o = self.offsets[node.id]
        return self.store(arena, node)[o:o + node.size].reshape(node.shape)

    def read(self, arena: Arena, node: Node) -> float | np.generic | np.ndarray:
        """A copy of the node's value: a Python float for float64 scalars, a NumPy
        scalar of the node's dtype for others (int32, bool, …), an array otherwise."""
        o = self.offsets[node.id]
        v = self.store(arena, node)
        if node.shape == ():
            if self.cls[node.id] == S_I64:
                return v[o:o + 1].astype(node.dtype)[0]
            return float(v[o]) if self.cls[node.id] == S_F64 else v[o]
        out = v[o:o + node.size].reshape(node.shape)
        return out.astype(node.dtype) if self.cls[node.id] == S_I64 else out.copy()

    def read_many(self, arena: Arena, nodes: Sequence[Node]) -> list:
        """``[read(arena, n) for n in nodes]``, with the float64 scalars (most nodes of
        a large scalar graph) gathered in one NumPy step."""
        if not nodes:
            return []
        ids = np.fromiter((n.id for n in nodes), np.int64, len(nodes))
        fast = (self.cls[ids] == S_F64) & np.fromiter((n.shape == () for n in nodes), bool,
                                                      len(nodes))
        values = arena.stores[S_F64][np.where(fast, self.offsets[ids], 0)].tolist()
        return [v if f else self.read(arena, n)
                for v, f, n in zip(values, fast.tolist(), nodes)]

    def write(self, arena: Arena, node: Node, value) -> None:
        o = self.offsets[node.id]
        self.store(arena, node)[o:o + node.size] = np.broadcast_to(value, node.shape).ravel()


def _promoted(inputs: Sequence[Node]) -> str:
    numeric = [x.dtype for x in inputs if x.dtype != "bool"]
    return str(np.result_type(*numeric)) if numeric else "bool"


def _wrap(dtype: str) -> int:
    """The WRAP field for an output of ``dtype``."""
    return WRAP_BOOL if dtype == "bool" else WRAP_OF.get(dtype, 0)


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


def _matmul_stack(n: Node, a: Node, b: Node, flags: int) -> list[int]:
    """A stacked matmul's map for the kernel: ``[m, k, flags, count]`` then, for each
    matrix of the output in order, where its ``a`` and ``b`` matrices start (relative
    to the operands; a batch axis of size 1 is broadcast by reading it again)."""
    m, k = n.shape[-2], a.shape[-1] if not flags & 1 else a.shape[-2]
    batch = n.shape[:-2]
    out = [m, k, flags, int(np.prod(batch, dtype=np.int64))]
    steps = []
    for x in (a, b):
        xb = (1,) * (len(batch) - (x.ndim - 2)) + tuple(x.shape[:-2])
        size, st = x.shape[-1] * x.shape[-2], [0] * len(batch)
        for j in range(len(batch) - 1, -1, -1):
            st[j] = size if xb[j] != 1 else 0
            size *= xb[j]
        steps.append(st)
    for idx in np.ndindex(*batch):
        out += [sum(i * s for i, s in zip(idx, steps[0])),
                sum(i * s for i, s in zip(idx, steps[1]))]
    return out


def _moves_nothing(shape: Sequence[int], perm: Sequence[int]) -> bool:
    """Whether transposing ``shape`` by ``perm`` keeps every element where it is: the
    axes longer than 1 stay in their order (only axes of length 1 move)."""
    kept = [p for p in perm if shape[p] != 1]
    return kept == sorted(kept)


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


_NO_INFO: dict = {}     # the info of a step without any (shared: never written to)


def _rewrite(n: Node) -> tuple[str, tuple[Node, ...], dict]:
    """Peephole rewrites: which instruction computes ``n`` and from which nodes.

    ``a ** 2`` becomes ``a * a``, ``a ** 1`` a copy; a matmul with a transposed
    matrix operand reads that matrix directly (BLAS transposes for free), so the
    transpose node need not be computed at all; ``g * step(y)`` (relu's backward)
    becomes one ``mask`` pass and ``relu(a + b)`` one ``addrelu`` pass; a scalar
    broadcast to the shape of a binary op's other operand is read as the scalar.
    """
    op = OPS[n.op]
    if op.name == "pow" and _const_value(n.inputs[1]) in (1.0, 2.0):
        a = n.inputs[0]
        return ("mul", (a, a), _NO_INFO) if _const_value(n.inputs[1]) == 2.0 \
            else ("copy", (a,), _NO_INFO)
    if op.kind == MATMUL:
        flags, ins = 0, list(n.inputs)
        for i, x in enumerate(ins):
            # OpenBLAS is slow on small A @ Bᵀ: copying a small B transposed is cheaper
            if (x.op == "transpose" and x.ndim >= 2 and x.ndim == n.ndim
                    and x.attrs["perm"] == tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
                    and (i == 0 or x.size >= BIG)):
                flags |= 1 << i
                ins[i] = x.inputs[0]
        return "matmul", tuple(ins), {"flags": flags}
    if op.name == "mul":
        a, b = n.inputs
        for g, s in ((a, b), (b, a)):
            if s.op == "step" and g.shape == n.shape and s.shape == n.shape:
                return "mask", (g, s.inputs[0]), _NO_INFO
    if op.name == "relu" and n.inputs[0].op == "add" and n.inputs[0].shape == n.shape:
        return "addrelu", n.inputs[0].inputs, _NO_INFO
    if op.kind == BINARY and len(n.inputs) == 2 and (n.inputs[0].op == "broadcast_to"
                                                     or n.inputs[1].op == "broadcast_to"):
        # a scalar broadcast to the other operand's shape (the backward pass of sum and
        # mean makes these) is read as the scalar: the binary kernel broadcasts it
        ins = tuple(x.inputs[0] if x.op == "broadcast_to" and x.inputs[0].size == 1
                    and o.shape == n.shape else x
                    for x, o in zip(n.inputs, n.inputs[::-1]))
        return op.name, ins, _NO_INFO
    return op.name, n.inputs, _NO_INFO


def plan(nodes: Sequence[Node], keep: Sequence[Node] | None = None, rewrite: bool = True
         ) -> list[tuple[Node, str, tuple[Node, ...], dict]]:
    """The instructions for ``nodes`` (op nodes in build order) after rewrites,
    without those whose values nothing in ``keep`` needs (all are kept by default)."""
    def step(n: Node) -> tuple[Node, str, tuple[Node, ...], dict]:
        return (n, *_rewrite(n)) if rewrite else (n, n.op, n.inputs, _NO_INFO)

    if keep is None:
        return [step(n) for n in nodes]
    if not keep:
        return []
    live = bytearray(1 + max([n.id for n in keep] + [n.id for n in nodes[-1:]]))
    for n in keep:
        live[n.id] = 1
    out = []
    for n in reversed(nodes):           # only the steps something kept needs
        if live[n.id]:
            st = step(n)
            out.append(st)
            for x in st[2]:
                live[x.id] = 1
    out.reverse()
    return out


class _Rows:
    """The instructions :func:`lower` appends (lists of ``W`` ints), packed as they come:
    8 bytes an int instead of a Python list per instruction (with a large graph the
    lists, their array and its copy were most of the memory a model ever takes)."""

    __slots__ = ("ints",)

    def __init__(self) -> None:
        self.ints = array("q")

    def append(self, row: list[int]) -> None:
        self.ints.extend(row)

    def __len__(self) -> int:
        return len(self.ints) // W


def _retarget(row: list[int], name: str) -> None:
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
    Its ``STORAGE`` field is the storage class of the node it computes; an operand of
    another class is read from its shadow slot, filled by a ``CAST`` instruction just
    before. ``extra`` instructions (e.g. optimizer updates, without a kind: it is
    filled in from their opcode; their storage field, if given, as given) follow the
    nodes' own. The array ends with the watch list: ``(class, offset, size)`` of
    every node in ``watch``, then its start and length, which the kernels check for
    nan and inf.
    """
    # fast to index: lists of the small class numbers, packed offsets (no int objects)
    off = array("q", layout.offsets.astype(np.int64).tobytes())
    cls, work = layout.cls.tolist(), layout.work.tolist()
    scratch = layout.scratch
    steps = plan(nodes, keep)
    rows = _Rows()
    computed: list[Node] = []
    aux: list[int] = []

    def put(ints: list[int]) -> int:      # aux positions are made absolute below
        aux.extend(ints)
        return len(aux) - len(ints)

    aux_fields: list[tuple[int, int]] = []   # (row index, field) holding an aux index

    cast_done: set[tuple[int, int]] = set()

    def src(x: Node, c: int) -> int:
        """The offset to read ``x`` at from an instruction in class ``c``."""
        if cls[x.id] == c:
            return int(off[x.id])
        at = layout.shadow[(x.id, c)]
        if (x.id, c) in cast_done:          # cast once, after x is computed
            return at
        cast_done.add((x.id, c))
        cast = [0] * W
        cast[0], cast[1], cast[2], cast[3], cast[SIZE] = CAST, at, off[x.id], cls[x.id], x.size
        cast[KIND], cast[STORAGE] = K_CAST, c
        rows.append(cast)
        computed.append(x)
        return at

    for n, name, ins, info in steps:
        op = OPS[_FUSED.get(name, name)]
        c = work[n.id]                       # lists: fast to index
        row = [0] * W
        out_at = scratch.get(n.id, off[n.id]) if scratch else off[n.id]
        row[0], row[1], row[SIZE] = _CODES.get(name, op.code), out_at, n.size
        row[KIND] = KIND_ID[op.kind]         # the kernels dispatch on this, then row[0]
        row[STORAGE] = c
        row[WRAP] = _wrap(n.dtype) if c == S_I64 else 0
        if name == "cast":                   # one CAST instruction, from x where it is
            x = ins[0]
            row[0], row[2], row[3], row[KIND], row[STORAGE] = CAST, off[x.id], cls[x.id], \
                K_CAST, cls[n.id]
            row[WRAP] = _wrap(n.dtype)
            rows.append(row)
            computed.append(n)
            continue
        if op.kind == RANDOM:                # reads its counter in the counter's class
            x = ins[0]
            row[2], row[3], row[5] = off[x.id], n.attrs["seed"], cls[x.id]
            rows.append(row)
            computed.append(n)
            continue
        x = ins[0]
        row[2] = off[x.id] if cls[x.id] == c else src(x, c)     # src, inlined
        if name in ("copy", "stop_gradient", "assign_state") or (
                n.size == 1 and ins[0].size == 1 and op.kind in (REDUCE, LAYOUT)
                and op.dtypes != "index"):
            row[0], row[KIND] = COPY, K_COPY
        elif op.kind == UNARY:
            pass
        elif op.kind == BINARY:
            a, b = ins
            row[3] = off[b.id] if cls[b.id] == c else src(b, c)
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
                aux_fields.append((len(rows), 5))
        elif op.kind == WHERE:
            cond, a, b = ins
            row[3], row[4] = src(a, c), src(b, c)
            row[5] = put(_pad4(n.shape) + _strides(cond.shape, n.shape)
                         + _strides(a.shape, n.shape) + _strides(b.shape, n.shape))
            aux_fields.append((len(rows), 5))
        elif op.kind in (REDUCE, SOFTMAX):
            row[3], row[4], row[5] = _axis_split(ins[0].shape, n.attrs["axis"])
        elif op.kind == MATMUL:
            a, b = ins
            flags = info["flags"]
            row[3] = src(b, c)
            if n.size == 1 and a.size == 1 and b.size == 1:
                _retarget(row, "mul")                       # (1,1) @ (1,1)
            elif n.ndim > 2:                                # a stack: its map in aux
                row[4], row[5] = put(_matmul_stack(n, a, b, flags)), 0
                aux_fields.append((len(rows), 4))
            else:
                # a is (m, k), or (k, m) stored when flag 1; a vector is one row
                row[4] = (a.shape[1] if flags & 1 else a.shape[0]) if a.ndim == 2 else 1
                row[5] = (a.shape[0] if flags & 1 else a.shape[1]) if a.ndim == 2 \
                    else a.shape[0]
                row[6] = flags
        elif op.name == "transpose" and _moves_nothing(ins[0].shape, n.attrs["perm"]):
            _retarget(row, "reshape")                   # e.g. (16, 1) → (1, 16): a copy
        elif op.name == "transpose":
            x = ins[0]
            perm = n.attrs["perm"]
            xs = _strides(x.shape, x.shape)[4 - x.ndim:]
            row[3] = put(_pad4(n.shape) + [0] * (4 - x.ndim) + [xs[p_] for p_ in perm])
            aux_fields.append((len(rows), 3))
        elif op.name == "broadcast_to":
            row[3] = put(_pad4(n.shape) + _strides(ins[0].shape, n.shape))
            aux_fields.append((len(rows), 3))
        elif op.name == "sum_to":
            x = ins[0]
            if _row_tail(n, x) or n.size == 1:        # sum over leading axes: a reduce
                _retarget(row, "sum")
                row[3], row[4], row[5] = 1, x.size // n.size, n.size
            else:
                row[3] = put(_pad4(x.shape) + _strides(n.shape, x.shape))
                aux_fields.append((len(rows), 3))
                row[4] = x.size
        elif op.name == "reshape":
            pass
        elif op.kind == SELECT:
            _lower_select(row, n, ins, [src(x, c) for x in ins], put)
            if row[KIND] == K_SELECT:                 # its map is in aux at row[3]
                aux_fields.append((len(rows), 3))
        elif op.kind == TAKE:                # the indices: read where they are (int64)
            row[3] = off[ins[1].id]
            row[4] = put(_take_geometry(n))
            aux_fields.append((len(rows), 4))
        elif op.kind == CONV:
            row[3] = src(ins[1], c) if len(ins) > 1 else row[2]
            row[4] = put(_conv_geometry(n, ins))
            aux_fields.append((len(rows), 4))
        else:
            raise NbbpError(f"internal: no lowering for op {op.name!r}")
        rows.append(row)
        computed.append(n)
        if scratch and n.id in scratch:      # computed in its inputs' class: copy over
            cast = [0] * W
            cast[0], cast[1], cast[2], cast[3], cast[SIZE] = CAST, off[n.id], out_at, c, n.size
            cast[KIND], cast[STORAGE], cast[WRAP] = K_CAST, cls[n.id], _wrap(n.dtype)
            rows.append(cast)
            computed.append(n)
    for r in extra:
        row = [*r, *[0] * (W - len(r))]
        if r[0] not in INTERNAL_KIND:
            raise NbbpError(f"internal: extra instruction with opcode {r[0]}, which "
                            "nbbp.core.isa does not define")
        row[KIND] = INTERNAL_KIND[r[0]]
        rows.append(row)
    base = len(rows) * W
    watch_list = [int(v) for w in watch for v in (cls[w.id], off[w.id], w.size)]
    rows.ints.extend(aux + watch_list + [base + len(aux), len(watch)])
    code = np.frombuffer(rows.ints, dtype=np.int64)   # the program: no copy
    for i, f in aux_fields:
        code[i * W + f] += base
    return code, computed


def _runs(out_pos: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Split an index map into runs where both positions step by one: rows of
    ``(out position, source offset, length)``."""
    cut = np.flatnonzero((np.diff(out_pos) != 1) | (np.diff(src) != 1)) + 1
    starts = np.concatenate([[0], cut])
    lengths = np.diff(np.concatenate([starts, [len(src)]]))
    return np.stack([out_pos[starts], src[starts], lengths], axis=1)


def _lower_select(row: list[int], n: Node, ins: Sequence[Node], at: Sequence[int],
                  put: Callable[[list[int]], int]) -> None:
    """A selection as offsets (``at``: where each input is read, in the instruction's
    storage class): for every output element the offset it is copied
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
        out_pos, src = table[pos] - starts[arg], at[0] + pos
    else:                          # output element i is copied from src[i]
        which = np.searchsorted(starts[1:], table, side="right")
        src = np.asarray(at, dtype=np.int64)[which] + table - starts[which]
        out_pos = np.arange(n.size, dtype=np.int64)
    if n.size == 1 and len(src) == 1 or (
            not scatter and len(ins) == 1 and n.size == ins[0].size
            and np.array_equal(src, at[0] + out_pos)):
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


def _take_axis(n: Node) -> tuple[tuple[int, ...], int]:
    """The shape of the values a take / take_grad node indexes, and the axis."""
    return (n.inputs[0].shape if n.op == "take" else n.shape), n.attrs["axis"]


def _take_geometry(n: Node) -> list[int]:
    """The ``isa.TAKE_GEOM`` ints of a take / take_grad instruction: the sizes before
    the axis, of the axis, after it, and the number of indices."""
    shape, axis = _take_axis(n)
    outer, m, inner = _axis_split(shape, axis)
    return [outer, m, inner, n.inputs[1].size]


def check_indices(n: Node, indices: np.ndarray) -> None:
    """Raise the one-line error of a take / take_grad node whose ``indices`` (their
    values in this run) hold one outside ``0..n-1`` of the axis; the compiled run stops
    at that instruction, the reference run checks before it."""
    shape, axis = _take_axis(n)
    size = shape[axis]
    idx = np.asarray(indices)
    bad = np.flatnonzero((idx.ravel() < 0) | (idx.ravel() >= size))
    if not bad.size:
        return
    fwd = origin(n) if n.role == "grad" else None
    fwd = n if fwd is None else fwd
    x, ids = fwd.inputs
    at = np.unravel_index(bad[0], idx.shape) if idx.ndim else ()
    where = ("" if not idx.ndim else
             f" at position {at[0] if idx.ndim == 1 else tuple(int(i) for i in at)}")
    head = (f"node {fwd.name!r} = gather({x.name}, {ids.name}, axis={axis})" if not
            fwd.auto_named else f"gather({x.name}, {ids.name}, axis={axis})")
    raise NumericError(
        f"{head}: index {int(idx.ravel()[bad[0]])}{where} of {ids.name} is out of range for "
        f"axis {axis} of {x.name} (shape {shape}): valid 0..{size - 1}; give indices in that "
        f"range, or clip({ids.name}, 0, {size - 1})", node=fwd.name, line=fwd.line or None)


def _conv_geometry(n: Node, ins: Sequence[Node]) -> list[int]:
    """The geometry ints (``isa.CONV_GEOM``) of a conv or pool instruction."""
    a = n.attrs
    if n.op.startswith("conv2d"):
        x = n if n.op == "conv2d_backprop_input" else ins[0]
        window = (ins[1].shape[:2] if n.op != "conv2d_backprop_filter"
                  else a["filter_sizes"])
        cout = n.shape[3] if n.op == "conv2d" else ins[1].shape[3]
        return list(conv_geometry(x.shape, window, cout, a["strides"], a["dilation"],
                                  a["padding"]))
    x = n if n.op == "avg_pool_grad" else ins[0]
    return list(conv_geometry(x.shape, a["ksize"], x.shape[3], a["strides"], (1, 1),
                              a["padding"]))


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
        self._fn = kernel(entry_name(layout))
        # programs with run-time indices: the kernel stops at an index out of range
        # (returning BAD_INDEX - p) and the call raises the error naming it
        self.takes = any(OPS[n.op].kind == TAKE for n in self.nodes if not n.is_leaf)
        from .kernels import SUPPORTED
        for n in self.nodes:          # (a CAST's node may be a leaf: no kernel needed)
            if n.op not in SUPPORTED and not n.is_leaf:
                raise NbbpError(f"op {n.op!r} (node {n.name!r}) has no compiled kernel: run "
                                "the model with engine='python', or add its kernel to "
                                "nbbp/core/kernels.py (see docs/engine.md)")

    def __call__(self, arena: Arena, check: bool = False) -> int:
        """Run on ``arena``. Returns -1 if every watched value is finite; otherwise,
        with ``check``, the index of the first instruction whose output is not finite,
        and without, ``self.n``."""
        return self._checked(functools.partial(self._fn, self.code, *self._stores(arena), 0,
                                               self.n, int(check)), arena)

    def _checked(self, call: Callable[[], int], arena: Arena) -> int:
        """Run ``call``; an index out of range stopped it at instruction ``p``: raise."""
        r = call()
        if r <= BAD_INDEX:
            n = self.nodes[BAD_INDEX - r]
            check_indices(n, self.layout.view(arena, n.inputs[1]))
            raise NbbpError(f"internal: node {n.name!r} stopped on an index its check "
                            "finds in range")
        return r

    def _stores(self, arena: Arena) -> list[np.ndarray]:
        """The kernel's storage arguments: the float64 array alone for an all-float64
        scalar program (``run_scalar``), else every class's array."""
        return arena.stores[:1] if self.layout.scalar else arena.stores

    def bind(self, arena: Arena) -> Callable[[], int]:
        """A no-argument callable running the program on ``arena`` (the hot path)."""
        call = functools.partial(self._fn, self.code, *self._stores(arena), 0, self.n, 0)
        return functools.partial(self._checked, call, arena) if self.takes else call


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

    def __call__(self, arena: Arena, check: bool = False) -> int:
        lay = self.layout
        with np.errstate(all="ignore"):
            for p, n in enumerate(self.nodes):
                op = OPS[n.op]
                args = [lay.view(arena, x) for x in n.inputs]
                if op.kind == TAKE:
                    check_indices(n, args[1])
                kw = {k: n.attrs[k] for k in op.attrs}
                out = np.asarray(op.impl(*args, **kw), dtype=n.dtype)   # the node's dtype
                lay.write(arena, n, out)
                if check and not np.isfinite(out).all():
                    return p
        if not check and not all(np.isfinite(lay.view(arena, w)).all() for w in self.watch):
            return self.n
        return -1

    def bind(self, arena: Arena) -> Callable[[], int]:
        return functools.partial(self, arena)


class StandIn(PythonProgram):
    """The reference path standing in for a compiled :class:`Program` whose kernel is
    still loading (see :func:`stand_in`); :meth:`compiled` makes that program. Its
    ``engine`` says ``"python"``: that is what computes until the switch."""

    def __init__(self, layout: Layout, nodes: Sequence[Node], keep: Sequence[Node] | None = None,
                 watch: Sequence[Node] | None = None) -> None:
        super().__init__(layout, nodes, keep, watch)
        self._args = (list(nodes), keep, watch)

    def compiled(self) -> Program:
        """The compiled program this stands in for (waits if its kernel is still loading)."""
        return Program(self.layout, *self._args)


def entry_name(layout: Layout) -> str:
    """The kernel a compiled program over ``layout`` runs: ``run_scalar`` for an
    all-float64 scalar graph, ``run_all`` otherwise."""
    return "run_scalar" if layout.scalar else "run_all"


def _exact(n: Node) -> bool:
    """Whether both engines compute ``n`` (a float64 scalar) to the same bits: an op
    of :data:`EXACT_OPS`, or ``a ** 2``, ``a ** 1``, ``a ** 0`` (the kernels run ``a *
    a`` and a copy; NumPy's power is exact there too; ``x ** 2``'s backward has
    ``a ** 1``, ``x ** 1``'s ``a ** 0``)."""
    return n.op in EXACT_OPS or n.op == "pow" and _const_value(n.inputs[1]) in (0.0, 1.0, 2.0)


@contextlib.contextmanager
def stand_in(limit: int = STAND_IN_LIMIT) -> Iterator[None]:
    """Let small programs start on the NumPy reference while their kernel loads.

    Inside the block, :func:`make_program` asked for the ``numba`` engine returns a
    :class:`StandIn` — the reference path — when the program's kernel is not loaded
    yet (:func:`~nbbp.core.loader.ready`, e.g. while ``%load_ext nbbp`` preloads it),
    it computes at most ``limit`` nodes, all float64 scalars, and every op is one
    whose result both engines give to the bit (:func:`_exact`: arithmetic, sqrt,
    relu, … — not tanh or exp, where NumPy's and the kernels' last bits may differ,
    which a picture's tooltips would show). Its owner switches to the compiled
    program later (``Compiled.finish_loading``). Any other program is compiled at
    once, waiting for its kernel, as outside the block. The ``%%bpgraph`` magic builds
    its cells in this block.
    """
    token = _STAND_IN.set(limit)
    try:
        yield
    finally:
        _STAND_IN.reset(token)


def make_program(layout: Layout, nodes: Sequence[Node], engine: str = "numba",
                 keep: Sequence[Node] | None = None, watch: Sequence[Node] | None = None):
    """A runnable program for ``nodes`` on the chosen engine (see :class:`Program`;
    within :func:`stand_in`, maybe a :class:`StandIn` for it)."""
    if engine == "numba":
        limit = _STAND_IN.get()
        if (limit and len(nodes) <= limit and layout.scalar and all(map(_exact, nodes))
                and not ready(entry_name(layout))):
            return StandIn(layout, nodes, keep, watch)
        return Program(layout, nodes, keep, watch)
    if engine == "python":
        return PythonProgram(layout, nodes, keep, watch)
    from ..errors import suggest
    raise NbbpError(f"unknown engine {engine!r}; " + suggest(engine, ENGINES, "engine"))
