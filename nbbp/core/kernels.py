"""All of nbbp's Numba code: one cached interpreter for lowered programs.

A program (built by :mod:`nbbp.core.engine`) is one int64 array of fixed-width
instructions followed by auxiliary ints, and runs over the arena's storages: one
aligned array per storage class (float64, float32), each instruction on the array of
its class, so float32 runs in float32. The interpreter is compiled once per machine and
loaded from Numba's on-disk cache afterwards — never per graph.

Instruction layout (``W = 10`` ints): ``[opcode, out, a, b, c, x, y, n, kind, storage]``:
``out`` and ``a`` are arena offsets, ``n`` is the output's size, and the fields between
depend on the kind (see :func:`nbbp.core.engine.lower`): more operand offsets, sizes,
a broadcasting mode, or an index into the auxiliary ints after the instructions.
The interpreters branch on ``kind`` (the op table's kind of the op, as an id from
:mod:`nbbp.core.isa`), then on the opcode, which comes from the op table's row for the
op (:mod:`nbbp.core.ops`) or is one of the internal instructions in :mod:`nbbp.core.isa`.
No dispatch depends on how the opcodes are numbered.

Both entry points return the index of the first instruction whose output is not
finite, or -1, so the Python side can name the node that produced a nan.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
from numba import njit

from . import isa
from .isa import (
    ADDRELU,
    BAD_INDEX,
    CONV_GEOM,
    H_B1,
    H_B2,
    H_DA,
    H_DB,
    H_DECAY,
    H_EPS,
    H_FORM,
    H_L1,
    H_LR,
    H_LRT,
    H_NESTEROV,
    H_P1,
    H_P2,
    H_T,
    H_WD,
    K_BINARY,
    K_CAST,
    K_CONV,
    K_LAYOUT,
    K_MATMUL,
    K_RANDOM,
    K_REDUCE,
    K_SELECT,
    K_SOFTMAX,
    K_TAKE,
    K_TICK,
    K_UNARY,
    K_UPDATE,
    K_WHERE,
    KIND,
    MASK,
    S_F32,
    S_F64,
    S_I64,
    SEL_RUNS,
    SIZE,
    STORAGE,
    UPD_ADAGRAD,
    UPD_ADAM,
    UPD_SGD,
    WRAP,
    WRAP_BOOL,
    W,
)
from .ops import OPS

_implemented: set[str] = set()


def _code(name: str) -> int:
    """The op table's opcode of ``name``, recorded as an op these kernels implement."""
    _implemented.add(name)
    return OPS[name].code


# The op table's opcodes, each bound once here beside the kernels that implement it.
NEG, EXP, LOG, SQRT, ABS = _code("neg"), _code("exp"), _code("log"), _code("sqrt"), _code("abs")
SIN, COS, TANH, SIGMOID, RELU = (_code("sin"), _code("cos"), _code("tanh"), _code("sigmoid"),
                                 _code("relu"))
SOFTPLUS, SIGN, STEP, STOPGRAD = (_code("softplus"), _code("sign"), _code("step"),
                                  _code("stop_gradient"))
ERF = _code("erf")
ADD, SUB, MUL, DIV, POW = _code("add"), _code("sub"), _code("mul"), _code("div"), _code("pow")
MAXIMUM, MINIMUM, LEAKY = _code("maximum"), _code("minimum"), _code("leaky_relu")
GT, GE, LT, LE, EQ = _code("gt"), _code("ge"), _code("lt"), _code("le"), _code("eq")
WHERE = _code("where")
SUM, MEAN, MAX, MIN = _code("sum"), _code("mean"), _code("max"), _code("min")
MATMUL = _code("matmul")
TRANSPOSE, RESHAPE, BROADCAST, SUMTO = (_code("transpose"), _code("reshape"),
                                        _code("broadcast_to"), _code("sum_to"))
SOFTMAX, LOGSOFTMAX = _code("softmax"), _code("log_softmax")
CLIP, PROD, LOGSUMEXP = _code("clip"), _code("prod"), _code("logsumexp")
# Integers and booleans: the boolean comparisons run as the 0/1 mask comparisons
# (in their inputs' class; a CAST writes the bool), logical ops as integer ops.
EQUAL, NOTEQUAL, LESS, LESSEQ, GREATER, GREATEREQ = (
    _code("equal"), _code("not_equal"), _code("less"), _code("less_equal"), _code("greater"),
    _code("greater_equal"))
LAND, LOR, LNOT = _code("logical_and"), _code("logical_or"), _code("logical_not")
FLOORDIV, MOD = _code("floordiv"), _code("mod")
ARGMAX, ARGMIN, ANY, ALL = _code("argmax"), _code("argmin"), _code("any"), _code("all")
_code("cast")           # lowered to a CAST instruction
# The selections all run as one index map (see _take); scatter adds along it.
SCATTER = _code("scatter")
for _name in ("getitem", "concat", "stack", "tile", "pad", "squeeze", "expand_dims", "gather"):
    _code(_name)
# Convolution and pooling (kind K_CONV, see _conv); flatten is a selection (a copy).
CONV2D, CONV2D_BPI, CONV2D_BPF = (_code("conv2d"), _code("conv2d_backprop_input"),
                                  _code("conv2d_backprop_filter"))
MAXPOOL, MAXPOOLGRAD, MAXPOOLGG = (_code("max_pool"), _code("max_pool_grad"),
                                   _code("max_pool_gradgrad"))
AVGPOOL, AVGPOOLGRAD = _code("avg_pool"), _code("avg_pool_grad")
_code("flatten")
# Counter-based random numbers (kind K_RANDOM, see _random); a state update runs as a
# COPY (the training loop then copies it into its state leaf).
_code("random_uniform")
_code("assign_state")
# Gather at run-time indices and its VJP (kind K_TAKE, see _take_any).
TAKE, TAKEGRAD = _code("take"), _code("take_grad")

# The names of the ops the interpreters implement (those bound above); a program with
# any other op is refused (e.g. an op registered at run time: only the Python engine
# runs it).
SUPPORTED = frozenset(_implemented)


def _fingerprint() -> int:
    """A checksum of every constant compiled into the kernels that is defined outside
    this file: the instruction set and the op table's codes."""
    consts = sorted((k, v) for k, v in vars(isa).items() if k.isupper() and isinstance(v, int))
    consts += sorted((name, OPS[name].code) for name in _implemented)
    return zlib.crc32(repr(consts).encode())


# Numba's cache is keyed on this file alone: a change in isa.py or in an opcode of
# ops.py would load kernels compiled with the old constants. The loader compares the
# compiled_stamp() of the cached code with STAMP and recompiles when they differ.
STAMP = _fingerprint()

_JIT = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)


@njit(**_JIT)
def compiled_stamp():
    """:data:`STAMP` as it was when these kernels were compiled."""
    return STAMP


@njit(inline="always", **_JIT)
def unary(op, x):
    if op == NEG:
        return -x
    if op == EXP:
        return math.exp(x)
    if op == LOG:
        return math.log(x) if x > 0.0 else (-math.inf if x == 0.0 else math.nan)
    if op == SQRT:
        return math.sqrt(x) if x >= 0.0 else math.nan
    if op == ABS:
        return abs(x)
    if op == SIN:
        return math.sin(x)
    if op == COS:
        return math.cos(x)
    if op == TANH:
        return math.tanh(x)
    if op == SIGMOID:
        return 0.5 * (math.tanh(0.5 * x) + 1.0)
    if op == RELU:                  # nan passes, as in NumPy's maximum and _unary_loop
        return x if x > 0.0 or x != x else 0.0
    if op == SOFTPLUS:
        return max(x, 0.0) + math.log1p(math.exp(-abs(x)))
    if op == SIGN:
        return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else (0.0 if x == 0.0 else x))
    if op == STEP:
        return 1.0 if x > 0.0 else 0.0
    return x  # STOPGRAD, COPY


@njit(inline="always", **_JIT)
def unary_t(op, x):
    """:func:`unary` and the ops only the tensor interpreter runs: erf (with its code
    inlined into run_scalar, W1 and W2 ran 2-3 % slower, though they use no erf; the
    lowering sends a scalar graph with erf to run_all)."""
    if op == ERF:
        return math.erf(x)
    return unary(op, x)


@njit(inline="always", **_JIT)
def binary(op, x, y):
    if op == MUL:
        return x * y
    if op == ADD:
        return x + y
    if op == SUB:
        return x - y
    if op == DIV:
        return x / y
    if op == POW:                   # C's pow, as NumPy's power (Numba's ** is Python's)
        if x < 0.0 and x != -math.inf and y != np.floor(y):
            return math.nan
        if x == 0.0 and y < 0.0:        # -0.0 to an odd power: -inf
            return math.copysign(math.inf, x) if np.fmod(y, 2.0) == -1.0 else math.inf
        return x ** y
    if op == MAXIMUM:
        return x if x >= y or x != x else y
    if op == MINIMUM:
        return x if x <= y or x != x else y
    if op == LEAKY:
        return x if x > 0.0 else y * x
    if op == GT or op == GREATER:
        return 1.0 if x > y else 0.0
    if op == GE or op == GREATEREQ:
        return 1.0 if x >= y else 0.0
    if op == LT or op == LESS:
        return 1.0 if x < y else 0.0
    if op == LE or op == LESSEQ:
        return 1.0 if x <= y else 0.0
    if op == MASK:
        return x if y > 0.0 else 0.0
    if op == ADDRELU:
        z = x + y
        return z if z > 0.0 or z != z else 0.0
    if op == NOTEQUAL:
        return 1.0 if x != y else 0.0
    if op == FLOORDIV:
        return _ffloordiv(x, y)
    if op == MOD:
        return _fmod(x, y)
    return 1.0 if x == y else 0.0  # EQ, EQUAL


@njit(inline="always", **_JIT)
def _ffloordiv(x, y):
    """NumPy's floor_divide of floats, step for step as its ``npy_divmod`` (x // 0 is
    ±inf, or nan for 0 // 0; ±inf // y and nan // y are nan; -3 // inf is -1)."""
    if y == 0.0:
        return x / y
    m = np.fmod(x, y)
    d = (x - m) / y
    if m != 0.0 and (y < 0.0) != (m < 0.0):
        d -= 1.0
    if d == 0.0:
        return math.copysign(0.0, x / y)
    f = np.floor(d)
    return f + 1.0 if d - f > 0.5 else f


@njit(inline="always", **_JIT)
def _fmod(x, y):
    """NumPy's mod of floats: the remainder with the sign of y (nan for y = 0)."""
    if y == 0.0:
        return math.nan
    m = np.fmod(x, y)
    if m != 0.0 and (y < 0.0) != (m < 0.0):
        m += y
    elif m == 0.0:
        m = math.copysign(0.0, y)
    return m


@njit(inline="always", **_JIT)
def _bad(x):
    return x - x != 0.0   # nan or ±inf


@njit(**_JIT)
def run_scalar(code, v, start, stop, check):
    """Interpreter for programs whose every value is a scalar (one slot each); the
    return value is that of :func:`run`."""
    for p in range(start, stop):
        q = p * W
        op = code[q]
        o = code[q + 1]
        kind = code[q + KIND]
        if kind == K_UNARY:
            v[o] = unary(op, v[code[q + 2]])
        elif kind == K_BINARY:
            v[o] = binary(op, v[code[q + 2]], v[code[q + 3]])
        elif kind == K_WHERE:
            if op == CLIP:
                v[o] = _clip(v[code[q + 2]], v[code[q + 3]], v[code[q + 4]])
            else:
                v[o] = v[code[q + 3]] if v[code[q + 2]] != 0.0 else v[code[q + 4]]
        else:
            v[o] = v[code[q + 2]]      # COPY and every size-1 reduce / layout
        if check and _bad(v[o]):
            return p
    if not check:
        w, n_watch = code[code.size - 2], code[code.size - 1]
        for i in range(n_watch):        # (class, offset, size); all float64 here
            if _bad(v[code[w + 3 * i + 1]]):
                return stop
    return -1


@njit(**_JIT)
def _strided4(code, k):
    return code[k], code[k + 1], code[k + 2], code[k + 3]


@njit(**_JIT)
def _binary_general(op, out, x, y, code, k):
    d0, d1, d2, d3 = _strided4(code, k)
    a0, a1, a2, a3 = _strided4(code, k + 4)
    b0, b1, b2, b3 = _strided4(code, k + 8)
    i = 0
    for i0 in range(d0):
        for i1 in range(d1):
            for i2 in range(d2):
                ia = i0 * a0 + i1 * a1 + i2 * a2
                ib = i0 * b0 + i1 * b1 + i2 * b2
                for i3 in range(d3):
                    out[i] = binary(op, x[ia + i3 * a3], y[ib + i3 * b3])
                    i += 1


@njit(inline="always", **_JIT)
def _clip(x, lo, hi):
    """TF1's clip_by_value: the minimum with hi, then the maximum with lo (so lo wins if
    lo > hi); nan stays nan."""
    t = x if x <= hi or x != x else hi
    return t if t >= lo or t != t else lo


@njit(**_JIT)
def _where_general(op, out, c, x, y, code, k):
    d0, d1, d2, d3 = _strided4(code, k)
    c0, c1, c2, c3 = _strided4(code, k + 4)
    a0, a1, a2, a3 = _strided4(code, k + 8)
    b0, b1, b2, b3 = _strided4(code, k + 12)
    i = 0
    for i0 in range(d0):
        for i1 in range(d1):
            for i2 in range(d2):
                for i3 in range(d3):
                    ic = i0 * c0 + i1 * c1 + i2 * c2 + i3 * c3
                    if op == CLIP:
                        out[i] = _clip(c[ic], x[i0 * a0 + i1 * a1 + i2 * a2 + i3 * a3],
                                       y[i0 * b0 + i1 * b1 + i2 * b2 + i3 * b3])
                    elif c[ic] != 0.0:
                        out[i] = x[i0 * a0 + i1 * a1 + i2 * a2 + i3 * a3]
                    else:
                        out[i] = y[i0 * b0 + i1 * b1 + i2 * b2 + i3 * b3]
                    i += 1


@njit(**_JIT)
def _gather(out, x, code, k):
    """out[i] = x[strided index of i]: transpose and broadcast_to."""
    d0, d1, d2, d3 = _strided4(code, k)
    s0, s1, s2, s3 = _strided4(code, k + 4)
    if s0 == 0 and s1 == 0 and s2 == 0 and s3 == 0:     # a scalar spread out
        out[:] = x[0]
        return
    if s0 == 0 and s1 == 0 and s2 == 0 and s3 == 1:     # a row repeated
        for r in range(d0 * d1 * d2):
            out[r * d3:(r + 1) * d3] = x[:d3]
        return
    if d0 == 1 and d1 == 1 and s2 == 1 and s3 == d2:    # a matrix transposed
        src = x[:d2 * d3]               # bounded, unit stride: 3× the general loop's speed
        for i2 in range(d2):
            for i3 in range(d3):
                out[i2 * d3 + i3] = src[i3 * d2 + i2]
        return
    i = 0
    for i0 in range(d0):
        for i1 in range(d1):
            for i2 in range(d2):
                base = i0 * s0 + i1 * s1 + i2 * s2
                for i3 in range(d3):
                    out[i] = x[base + i3 * s3]
                    i += 1


@njit(**_JIT)
def _scatter_add(out, x, code, k):
    """out[strided index of i] += x[i]: sum_to, the VJP of broadcasting."""
    out[:] = 0.0
    d0, d1, d2, d3 = _strided4(code, k)
    s0, s1, s2, s3 = _strided4(code, k + 4)
    i = 0
    for i0 in range(d0):
        for i1 in range(d1):
            for i2 in range(d2):
                base = i0 * s0 + i1 * s1 + i2 * s2
                for i3 in range(d3):
                    out[base + i3 * s3] += x[i]
                    i += 1


@njit(**_JIT)
def _reduce(op, out, x, outer, n, inner):
    """Reduce the axis of size ``n`` between ``outer`` and ``inner`` blocks. With
    inner > 1 the innermost loop runs over contiguous elements, so it vectorises."""
    for o in range(outer):
        base = o * n * inner
        if inner == 1:
            acc = x[base]
            for t in range(1, n):
                e = x[base + t]
                if op == MAX:
                    acc = e if e > acc or e != e else acc
                elif op == MIN:
                    acc = e if e < acc or e != e else acc
                elif op == PROD:
                    acc *= e
                else:
                    acc += e
            out[o] = acc / n if op == MEAN else acc
            continue
        acc = x[base:base + inner].copy()   # a fresh array: no aliasing, so it vectorises
        for t in range(1, n):
            row = x[base + t * inner:base + (t + 1) * inner]
            if op == MAX:
                for j in range(inner):
                    e = row[j]
                    acc[j] = e if e > acc[j] or e != e else acc[j]
            elif op == MIN:
                for j in range(inner):
                    e = row[j]
                    acc[j] = e if e < acc[j] or e != e else acc[j]
            elif op == PROD:
                for j in range(inner):
                    acc[j] *= row[j]
            else:
                for j in range(inner):
                    acc[j] += row[j]
        if op == MEAN:
            for j in range(inner):
                acc[j] /= n
        out[o * inner:(o + 1) * inner] = acc


@njit(**_JIT)
def _logsumexp(out, x, outer, n, inner):
    """log Σ exp along the axis, shifted by the maximum so large values do not overflow."""
    for o in range(outer):
        for j in range(inner):
            b = o * n * inner + j
            m = x[b]
            for t in range(1, n):
                e = x[b + t * inner]
                m = e if e > m or e != e else m
            if m - m != 0.0:            # ±inf or nan: no shift (as NumPy's reference)
                m = 0.0
            s = 0.0
            for t in range(n):
                s += math.exp(x[b + t * inner] - m)
            out[o * inner + j] = math.log(s) + m


@njit(**_JIT)
def _take(out, src, table):
    """out[i] = src[table[i]]: a selection element by element (``src`` is the arena, of
    any dtype; the table holds offsets into it)."""
    for i in range(out.size):
        out[i] = src[table[i]]


@njit(**_JIT)
def _take_runs(out, src, runs):
    """out[p:p + m] = src[s:s + m] for each run (p, s, m): block copies."""
    for r in range(runs.size // 3):
        p, s, m = runs[3 * r], runs[3 * r + 1], runs[3 * r + 2]
        dst = out[p:p + m]
        blk = src[s:s + m]
        for t in range(m):
            dst[t] = blk[t]


@njit(**_JIT)
def _scatter_elements(out, src, pairs):
    """out = 0, then out[p] += src[s] for each pair (p, s): repeated positions add up."""
    out[:] = 0
    for r in range(pairs.size // 2):
        out[pairs[2 * r]] += src[pairs[2 * r + 1]]


@njit(**_JIT)
def _scatter_runs(out, src, runs):
    """out = 0, then out[p:p + m] += src[s:s + m] for each run (p, s, m)."""
    out[:] = 0
    for r in range(runs.size // 3):
        p, s, m = runs[3 * r], runs[3 * r + 1], runs[3 * r + 2]
        dst = out[p:p + m]
        blk = src[s:s + m]
        for t in range(m):
            dst[t] += blk[t]


# -- convolution and pooling (kind K_CONV) ------------------------------------------
# ``g`` holds the geometry (isa.CONV_GEOM ints): N, H, W, C, OH, OW, CO, KH, KW,
# strides, dilations, padding before. conv2d and its filter VJP copy the input's
# patches into a (KH·KW·C, N·OH·OW) matrix (im2col; zeros where a window hangs over
# the padding) and multiply it with BLAS; the input VJP multiplies with BLAS and adds
# the patches back (col2im). A direct loop kernel (the first version) was slower: its
# inner loops run over the few channels, and each pays loop set-up.
@njit(**_JIT)
def _im2col(cols, x, g, back):
    """back 0: cols[(kh, kw, c), (n, i, j)] = x[n, ih, iw, c], 0 in the padding (the
    patches as a (KH·KW·C, N·OH·OW) matrix: each row is filled by long loops over the
    output columns, 4-5× faster than a row per output position when C is small);
    back 1: x = 0, then x[n, ih, iw, c] += cols[(kh, kw, c), (n, i, j)] (col2im)."""
    N, H, Wd, C, OH, OW, KH, KW = g[0], g[1], g[2], g[3], g[4], g[5], g[7], g[8]
    sh, sw, dh, dw, pt, pl = g[9], g[10], g[11], g[12], g[13], g[14]
    M = N * OH * OW
    if back:
        x[:] = 0
    for kh in range(KH):
        for kw in range(KW):
            off = kw * dw - pl               # input column of output column j: j·sw + off
            j0 = 0
            while j0 < OW and j0 * sw + off < 0:
                j0 += 1
            j1 = OW
            while j1 > j0 and (j1 - 1) * sw + off >= Wd:
                j1 -= 1
            for c in range(C):
                row = ((kh * KW + kw) * C + c) * M
                for n in range(N):
                    for i in range(OH):
                        ih = i * sh + kh * dh - pt
                        r = row + (n * OH + i) * OW
                        inside = ih >= 0 and ih < H
                        xb = ((n * H + ih) * Wd + off) * C + c
                        if back:
                            if inside:
                                for j in range(j0, j1):
                                    x[xb + j * sw * C] += cols[r + j]
                        elif not inside:
                            for j in range(OW):
                                cols[r + j] = 0
                        else:
                            for j in range(j0):
                                cols[r + j] = 0
                            for j in range(j0, j1):
                                cols[r + j] = x[xb + j * sw * C]
                            for j in range(j1, OW):
                                cols[r + j] = 0


@njit(**_JIT)
def _pool_fwd(op, out, x, g):
    """max_pool (the largest of each window; padding never counts) or avg_pool (the
    mean of the window's input elements, as TF1 over SAME padding)."""
    N, H, Wd, C, OH, OW = g[0], g[1], g[2], g[3], g[4], g[5]
    KH, KW, sh, sw, pt, pl = g[7], g[8], g[9], g[10], g[13], g[14]
    o = 0
    for n in range(N):
        for i in range(OH):
            h0, h1 = max(i * sh - pt, 0), min(i * sh - pt + KH, H)
            for j in range(OW):
                w0, w1 = max(j * sw - pl, 0), min(j * sw - pl + KW, Wd)
                b = ((n * H + h0) * Wd + w0) * C
                for c in range(C):
                    out[o + c] = x[b + c]
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        if ih == h0 and iw == w0:
                            continue
                        b = ((n * H + ih) * Wd + iw) * C
                        if op == MAXPOOL:
                            for c in range(C):
                                out[o + c] = max(out[o + c], x[b + c])
                        else:
                            for c in range(C):
                                out[o + c] += x[b + c]
                if op == AVGPOOL:
                    inv = 1.0 / ((h1 - h0) * (w1 - w0))
                    for c in range(C):
                        out[o + c] *= inv
                o += C


@njit(**_JIT)
def _pool_back(op, out, x, y, g):
    """max_pool_grad (out = 0, then y added at the first maximum of each window of x:
    strictly greater wins, as TF1's MaxPoolGrad), max_pool_gradgrad (out = y read at
    those positions) and avg_pool_grad (out = 0, then x / count over each window; x
    is the gradient there)."""
    N, H, Wd, C, OH, OW = g[0], g[1], g[2], g[3], g[4], g[5]
    KH, KW, sh, sw, pt, pl = g[7], g[8], g[9], g[10], g[13], g[14]
    if op != MAXPOOLGG:
        out[:] = 0
    best = np.empty(C, dtype=x.dtype)
    at = np.empty(C, dtype=np.int64)
    o = 0
    for n in range(N):
        for i in range(OH):
            h0, h1 = max(i * sh - pt, 0), min(i * sh - pt + KH, H)
            for j in range(OW):
                w0, w1 = max(j * sw - pl, 0), min(j * sw - pl + KW, Wd)
                if op == AVGPOOLGRAD:
                    inv = 1.0 / ((h1 - h0) * (w1 - w0))
                    for ih in range(h0, h1):
                        for iw in range(w0, w1):
                            b = ((n * H + ih) * Wd + iw) * C
                            for c in range(C):
                                out[b + c] += x[o + c] * inv
                    o += C
                    continue
                b = ((n * H + h0) * Wd + w0) * C
                for c in range(C):
                    best[c] = x[b + c]
                    at[c] = b + c
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        b = ((n * H + ih) * Wd + iw) * C
                        for c in range(C):
                            if x[b + c] > best[c]:
                                best[c] = x[b + c]
                                at[c] = b + c
                if op == MAXPOOLGRAD:
                    for c in range(C):
                        out[at[c]] += y[o + c]
                else:
                    for c in range(C):
                        out[o + c] = y[at[c]]
                o += C


@njit(**_JIT)
def _conv(op, v, o, a, b, g):
    """One conv/pool instruction on the storage ``v``: output at ``o``, inputs at ``a``
    and ``b``, geometry ``g``."""
    N, H, Wd, C, OH, OW, CO, KH, KW = g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8]
    nx, ny, nw = N * H * Wd * C, N * OH * OW * CO, KH * KW * C * CO
    M, K = N * OH * OW, KH * KW * C
    if op == CONV2D or op == CONV2D_BPF:
        cols = np.empty(M * K, dtype=v.dtype)
        _im2col(cols, v[a:a + nx], g, False)
        if op == CONV2D:          # (K, M)ᵀ @ (K, CO)
            np.dot(cols.reshape(K, M).T, v[b:b + nw].reshape(K, CO), v[o:o + ny].reshape(M, CO))
        else:                     # (K, M) @ (M, CO)
            np.dot(cols.reshape(K, M), v[b:b + ny].reshape(M, CO), v[o:o + nw].reshape(K, CO))
    elif op == CONV2D_BPI:        # (K, CO) @ (M, CO)ᵀ, then added back into the image
        cols = np.empty(M * K, dtype=v.dtype)
        np.dot(v[b:b + nw].reshape(K, CO), v[a:a + ny].reshape(M, CO).T, cols.reshape(K, M))
        _im2col(cols, v[o:o + nx], g, True)
    elif op == MAXPOOL or op == AVGPOOL:
        _pool_fwd(op, v[o:o + ny], v[a:a + nx], g)
    elif op == MAXPOOLGRAD:
        _pool_back(op, v[o:o + nx], v[a:a + nx], v[b:b + ny], g)
    elif op == MAXPOOLGG:
        _pool_back(op, v[o:o + ny], v[a:a + nx], v[b:b + nx], g)
    else:   # AVGPOOLGRAD: its one input is the gradient, shaped like the output
        _pool_back(op, v[o:o + nx], v[a:a + ny], v[a:a + 1], g)

@njit(**_JIT)
def _softmax(op, out, x, outer, n, inner):
    for o in range(outer):
        for j in range(inner):
            b = o * n * inner + j
            m = x[b]
            for t in range(1, n):
                m = max(m, x[b + t * inner])
            s = 0.0
            for t in range(n):
                s += math.exp(x[b + t * inner] - m)
            if op == SOFTMAX:
                for t in range(n):
                    out[b + t * inner] = math.exp(x[b + t * inner] - m) / s
            else:
                ls = math.log(s)
                for t in range(n):
                    out[b + t * inner] = x[b + t * inner] - m - ls


@njit(**_JIT)
def _matmul(v, o, a, b, m, k, n, flags):
    """C = op(A) @ op(B) through BLAS; flags bit 0 / 1 mean A / B are stored transposed.

    Each layout combination has its own np.dot call so Numba sees contiguous
    (C or F) operands and passes them to BLAS directly.
    """
    C = v[o:o + m * n].reshape(m, n)
    if m == 1 and n == 1:
        acc = 0.0
        for t in range(k):
            ia = a + t * m if flags & 1 else a + t
            ib = b + t if flags & 2 else b + t * n
            acc += v[ia] * v[ib]
        C[0, 0] = acc
    elif k == 1:                 # an outer product: BLAS is slower than a plain loop
        for i in range(m):
            ai = v[a + i]
            row = v[o + i * n:o + (i + 1) * n]
            bb = v[b:b + n]
            for j in range(n):
                row[j] = ai * bb[j]
    elif flags == 0:
        np.dot(v[a:a + m * k].reshape(m, k), v[b:b + k * n].reshape(k, n), C)
    elif flags == 1:
        np.dot(v[a:a + m * k].reshape(k, m).T, v[b:b + k * n].reshape(k, n), C)
    elif flags == 2:
        np.dot(v[a:a + m * k].reshape(m, k), v[b:b + k * n].reshape(n, k).T, C)
    else:
        np.dot(v[a:a + m * k].reshape(k, m).T, v[b:b + k * n].reshape(n, k).T, C)


@njit(inline="always", **_JIT)
def _stacked(code, q, t, o, a, n):
    """The ``t``-th product of the stacked matmul instruction at ``q`` (output ``o``,
    operand ``a``, ``n`` outputs): ``_matmul``'s arguments after ``v``, read from its
    map in the auxiliary ints (``m, k, flags, count``, then the operands' matrix
    offsets)."""
    x = code[q + 4]
    m, size = code[x], n // code[x + 3]
    return (o + t * size, a + code[x + 4 + 2 * t], code[q + 3] + code[x + 5 + 2 * t], m,
            code[x + 1], size // m, code[x + 2])


@njit(inline="always", **_JIT)
def _unary_loop(op, out, x):
    """The common activations get loops of their own, so they vectorise."""
    n = out.size
    if op == RELU:
        for i in range(n):
            out[i] = x[i] if x[i] > 0.0 or x[i] != x[i] else 0.0
    elif op == STEP:
        for i in range(n):
            out[i] = 1.0 if x[i] > 0.0 else 0.0
    elif op == NEG:
        for i in range(n):
            out[i] = -x[i]
    elif op == TANH:
        for i in range(n):
            out[i] = math.tanh(x[i])
    elif op == EXP:
        for i in range(n):
            out[i] = math.exp(x[i])
    elif op == SIGMOID:
        for i in range(n):
            out[i] = 0.5 * (math.tanh(0.5 * x[i]) + 1.0)
    else:
        for i in range(n):
            out[i] = unary_t(op, x[i])


@njit(inline="always", **_JIT)
def _bin_vv(op, out, x, y):
    n = out.size
    if op == MUL:
        for i in range(n):
            out[i] = x[i] * y[i]
    elif op == ADD:
        for i in range(n):
            out[i] = x[i] + y[i]
    elif op == SUB:
        for i in range(n):
            out[i] = x[i] - y[i]
    elif op == DIV:
        for i in range(n):
            out[i] = x[i] / y[i]
    elif op == MASK:
        for i in range(n):
            out[i] = x[i] if y[i] > 0.0 else 0.0
    elif op == ADDRELU:
        for i in range(n):
            z = x[i] + y[i]
            out[i] = z if z > 0.0 or z != z else 0.0
    else:
        for i in range(n):
            out[i] = binary(op, x[i], y[i])


@njit(inline="always", **_JIT)
def _bin_vs(op, out, x, y):
    n = out.size
    if op == MUL:
        for i in range(n):
            out[i] = x[i] * y
    elif op == ADD:
        for i in range(n):
            out[i] = x[i] + y
    elif op == SUB:
        for i in range(n):
            out[i] = x[i] - y
    elif op == DIV:
        for i in range(n):
            out[i] = x[i] / y
    else:
        for i in range(n):
            out[i] = binary(op, x[i], y)


@njit(inline="always", **_JIT)
def _bin_sv(op, out, x, y):
    n = out.size
    if op == MUL:
        for i in range(n):
            out[i] = x * y[i]
    elif op == ADD:
        for i in range(n):
            out[i] = x + y[i]
    elif op == SUB:
        for i in range(n):
            out[i] = x - y[i]
    else:
        for i in range(n):
            out[i] = binary(op, x, y[i])


@njit(inline="always", **_JIT)
def _bin_rows(op, out, x, y, rows, k, xs, ys):
    """``rows`` rows of ``k``: row ``i`` of ``x`` starts at ``i * xs`` and of ``y`` at
    ``i * ys`` (a stride 0 repeats one row: a bias). One loop nest per op, the op chosen
    once, so each row's loop vectorises (a call per row cost as much as the row).
    Same-size operands keep :func:`_bin_vv`'s flat loops: run as one row here they were
    slower (16 elements 6 → 12 ns, a 1600-element mask 341 → 424 ns, measured)."""
    if op == MUL:
        for i in range(rows):
            r, p, q = i * k, i * xs, i * ys
            for j in range(k):
                out[r + j] = x[p + j] * y[q + j]
    elif op == ADD:
        for i in range(rows):
            r, p, q = i * k, i * xs, i * ys
            for j in range(k):
                out[r + j] = x[p + j] + y[q + j]
    elif op == SUB:
        for i in range(rows):
            r, p, q = i * k, i * xs, i * ys
            for j in range(k):
                out[r + j] = x[p + j] - y[q + j]
    elif op == DIV:
        for i in range(rows):
            r, p, q = i * k, i * xs, i * ys
            for j in range(k):
                out[r + j] = x[p + j] / y[q + j]
    elif op == MASK:
        for i in range(rows):
            r, p, q = i * k, i * xs, i * ys
            for j in range(k):
                out[r + j] = x[p + j] if y[q + j] > 0.0 else 0.0
    elif op == ADDRELU:
        for i in range(rows):
            r, p, q = i * k, i * xs, i * ys
            for j in range(k):
                z = x[p + j] + y[q + j]
                out[r + j] = z if z > 0.0 or z != z else 0.0
    else:
        for i in range(rows):
            r, p, q = i * k, i * xs, i * ys
            for j in range(k):
                out[r + j] = binary(op, x[p + j], y[q + j])


@njit(**_JIT)
def _binary(op, v, o, a, b, n, mode, k, code, aux):
    """Broadcasting modes: 0 same size, 1 / 2 right / left operand scalar, 4 / 5
    right / left operand one row of length k repeated, 3 general (strides in aux)."""
    if mode == 0:
        _bin_vv(op, v[o:o + n], v[a:a + n], v[b:b + n])
    elif mode == 1:
        _bin_vs(op, v[o:o + n], v[a:a + n], v[b])
    elif mode == 2:
        _bin_sv(op, v[o:o + n], v[a], v[b:b + n])
    elif mode == 4:
        _bin_rows(op, v[o:o + n], v[a:a + n], v[b:b + k], n // k, k, k, 0)
    elif mode == 5:
        _bin_rows(op, v[o:o + n], v[a:a + k], v[b:b + n], n // k, k, 0, k)
    else:
        _binary_general(op, v[o:o + n], v[a:], v[b:], code, aux)


@njit(**_JIT)
def _tick(v, h):
    """Count a step and set this step's learning rate (with its decay); the tf1 form
    keeps β₁ᵗ, β₂ᵗ as running products (the first step's are set by the caller)."""
    t = v[h + H_T] + 1.0
    v[h + H_T] = t
    if v[h + H_FORM] != 0.0 and t > 1.0:
        v[h + H_P1] *= v[h + H_B1]
        v[h + H_P2] *= v[h + H_B2]
    lr = v[h + H_LR]
    kind = v[h + H_DECAY]
    k = t - 1.0
    if kind == 1.0:
        lr *= v[h + H_DA] ** k
    elif kind == 2.0:
        lr /= 1.0 + v[h + H_DA] * k
    elif kind == 3.0:
        lr *= v[h + H_DA] ** math.floor(k / v[h + H_DB])
    v[h + H_LRT] = lr


@njit(**_JIT)
def _update(op, v, p, g, s, n, hv, h):
    """One optimizer step for the parameter at ``p`` (PyTorch's rules, or TF 1's with
    the form flag; see nbbp.train.optim); parameter, gradient and state in ``v`` (their
    storage), hyperparameters in ``hv`` (float64)."""
    P = v[p:p + n]
    G = v[g:g + n]
    lr, wd, l1 = hv[h + H_LRT], hv[h + H_WD], hv[h + H_L1]
    b1, b2, eps = hv[h + H_B1], hv[h + H_B2], hv[h + H_EPS]
    plain = wd == 0.0 and l1 == 0.0
    tf1 = hv[h + H_FORM] != 0.0
    if op == UPD_SGD and b1 == 0.0 and plain and not tf1:
        for i in range(n):
            P[i] -= lr * G[i]
        return
    S = v[s:s + n]
    T = v[s + n:s + 2 * n]
    t = hv[h + H_T]
    c1 = 1.0 - b1 ** t
    c2 = 1.0 - b2 ** t
    nesterov = hv[h + H_NESTEROV] != 0.0
    lr_t = lr * math.sqrt(1.0 - hv[h + H_P2]) / (1.0 - hv[h + H_P1]) if tf1 else lr
    for i in range(n):
        gi = G[i]
        if not plain:
            pi = P[i]
            gi += wd * pi + l1 * (1.0 if pi > 0.0 else (-1.0 if pi < 0.0 else 0.0))
        if op == UPD_SGD and tf1:       # TF 1's ApplyMomentum (its order of operations)
            S[i] = S[i] * b1 + gi
            P[i] -= gi * lr + S[i] * b1 * lr if nesterov else S[i] * lr
        elif op == UPD_SGD:
            if b1 != 0.0:
                S[i] = b1 * S[i] + gi
                gi = gi + b1 * S[i] if nesterov else S[i]
            P[i] -= lr * gi
        elif op == UPD_ADAM and tf1:    # ε̂ after the bias correction (TF 1)
            S[i] += (gi - S[i]) * (1.0 - b1)
            T[i] += (gi * gi - T[i]) * (1.0 - b2)
            m = gi * (1.0 - b1) + b1 * S[i] if nesterov else S[i]
            P[i] -= (m * lr_t) / (math.sqrt(T[i]) + eps)
        elif op == UPD_ADAM:
            S[i] = b1 * S[i] + (1.0 - b1) * gi
            T[i] = b2 * T[i] + (1.0 - b2) * gi * gi
            P[i] -= lr * (S[i] / c1) / (math.sqrt(T[i] / c2) + eps)
        elif op == UPD_ADAGRAD:
            S[i] += gi * gi
            P[i] -= lr * gi / (math.sqrt(S[i]) + eps)
        elif tf1:  # RMSProp, TF 1: ε inside the root, lr inside the momentum
            S[i] += (gi * gi - S[i]) * (1.0 - b2)
            T[i] = T[i] * b1 + gi * lr / math.sqrt(S[i] + eps)
            P[i] -= T[i]
        else:  # RMSProp; b1 is its momentum, b2 its alpha
            S[i] = b2 * S[i] + (1.0 - b2) * gi * gi
            step = gi / (math.sqrt(S[i]) + eps)
            if b1 != 0.0:
                T[i] = b1 * T[i] + step
                step = T[i]
            P[i] -= lr * step



@njit(inline="always", **_JIT)
def _cast(out, x):
    for i in range(out.size):
        out[i] = x[i]


# -- integers and booleans: every integer dtype and bool run in the int64 storage ----
@njit(inline="always", **_JIT)
def _wrap(x, w):
    """x wrapped to ``w`` bits as NumPy's astype does (negative w: unsigned)."""
    if w > 1:
        h = 1 << (w - 1)
        return ((x + h) & ((h << 1) - 1)) - h
    if w < 0:
        return x & ((1 << -w) - 1)
    return x


@njit(inline="always", **_JIT)
def _ifloordiv(x, y):
    if y == 0:
        return 0                          # NumPy's result (it warns)
    q = x // y                            # Numba's // on ints floors, as Python's
    return q


@njit(inline="always", **_JIT)
def ibinary(op, x, y):
    if op == ADD:
        return x + y
    if op == SUB:
        return x - y
    if op == MUL:
        return x * y
    if op == MAXIMUM:
        return x if x >= y else y
    if op == MINIMUM:
        return x if x <= y else y
    if op == FLOORDIV:
        return _ifloordiv(x, y)
    if op == MOD:
        return 0 if y == 0 else x - y * (x // y)
    if op == GT or op == GREATER:
        return 1 if x > y else 0
    if op == GE or op == GREATEREQ:
        return 1 if x >= y else 0
    if op == LT or op == LESS:
        return 1 if x < y else 0
    if op == LE or op == LESSEQ:
        return 1 if x <= y else 0
    if op == NOTEQUAL:
        return 1 if x != y else 0
    if op == LAND:
        return 1 if x != 0 and y != 0 else 0
    if op == LOR:
        return 1 if x != 0 or y != 0 else 0
    return 1 if x == y else 0  # EQ, EQUAL


@njit(inline="always", **_JIT)
def iunary(op, x):
    if op == NEG:
        return -x
    if op == ABS:
        return -x if x < 0 else x
    if op == SIGN:
        return 1 if x > 0 else (-1 if x < 0 else 0)
    if op == RELU:
        return x if x > 0 else 0
    if op == LNOT:
        return 1 if x == 0 else 0
    return x  # STOPGRAD, COPY


@njit(**_JIT)
def _ibinary(op, v, o, a, b, n, mode, k, code, aux):
    """The broadcasting modes of :func:`_binary`, on integers."""
    if mode == 3:
        d0, d1, d2, d3 = _strided4(code, aux)
        a0, a1, a2, a3 = _strided4(code, aux + 4)
        b0, b1, b2, b3 = _strided4(code, aux + 8)
        i = 0
        for i0 in range(d0):
            for i1 in range(d1):
                for i2 in range(d2):
                    for i3 in range(d3):
                        v[o + i] = ibinary(op, v[a + i0 * a0 + i1 * a1 + i2 * a2 + i3 * a3],
                                           v[b + i0 * b0 + i1 * b1 + i2 * b2 + i3 * b3])
                        i += 1
        return
    # the other modes as rows of length k (one row unless a row repeats): each operand
    # moves by a row (0: its row repeats) and by an element (0: a scalar)
    rows, k = (n // k, k) if mode == 4 or mode == 5 else (1, n)
    xr, xe = (0 if mode == 5 else k, 1) if mode != 2 else (0, 0)
    yr, ye = (0 if mode == 4 else k, 1) if mode != 1 else (0, 0)
    for r in range(rows):
        out, pa, pb = o + r * k, a + r * xr, b + r * yr
        for j in range(k):
            v[out + j] = ibinary(op, v[pa + j * xe], v[pb + j * ye])


@njit(**_JIT)
def _ireduce(op, out, x, outer, n, inner):
    """Integer reductions: sum, prod, max, min, mean (the sum divided by the count,
    truncated toward zero, as TF1's reduce_mean of integers), any, all."""
    for o in range(outer):
        for j in range(inner):
            b = o * n * inner + j
            acc = x[b]
            if op == ANY or op == ALL:
                acc = 1 if acc != 0 else 0
            for t in range(1, n):
                e = x[b + t * inner]
                if op == MAX:
                    acc = e if e > acc else acc
                elif op == MIN:
                    acc = e if e < acc else acc
                elif op == PROD:
                    acc *= e
                elif op == ANY:
                    acc = 1 if acc != 0 or e != 0 else 0
                elif op == ALL:
                    acc = 1 if acc != 0 and e != 0 else 0
                else:
                    acc += e
            if op == MEAN:
                q = (acc if acc >= 0 else -acc) // n
                acc = q if acc >= 0 else -q
            out[o * inner + j] = acc


@njit(**_JIT)
def _argreduce(op, out, x, outer, n, inner):
    """The position of the largest (ARGMAX) or smallest element along the axis, the
    first at a tie and the first nan if any (as NumPy), written as a number of the
    storage's type (a CAST makes it int64)."""
    for o in range(outer):
        for j in range(inner):
            b = o * n * inner + j
            best = x[b]
            at = 0
            if best == best:
                for t in range(1, n):
                    e = x[b + t * inner]
                    if e != e:
                        at = t
                        break
                    if (e > best) if op == ARGMAX else (e < best):
                        best = e
                        at = t
            out[o * inner + j] = at


@njit(**_JIT)
def _imatmul(v, o, a, b, m, k, n, flags):
    """C = op(A) @ op(B) on the int64 storage (no BLAS for integers; the caller wraps a
    narrower dtype); ``flags`` as :func:`_matmul`'s. Row by row, so B is read along its
    rows."""
    for i in range(m):
        row = v[o + i * n:o + (i + 1) * n]
        row[:] = 0
        for t in range(k):
            x = v[a + t * m + i] if flags & 1 else v[a + i * k + t]
            if x == 0:
                continue
            if flags & 2:
                for j in range(n):
                    row[j] += x * v[b + j * k + t]
            else:
                bt = v[b + t * n:b + (t + 1) * n]
                for j in range(n):
                    row[j] += x * bt[j]


@njit(**_JIT)
def _exec_int(code, q, v):
    """Run the instruction at ``q`` on the int64 storage (integers and booleans), then
    wrap a narrower integer output to its width."""
    op = code[q]
    o = code[q + 1]
    a = code[q + 2]
    n = code[q + SIZE]
    kind = code[q + KIND]
    if kind == K_UNARY:
        for i in range(n):
            v[o + i] = iunary(op, v[a + i])
    elif kind == K_BINARY:
        _ibinary(op, v, o, a, code[q + 3], n, code[q + 6], max(code[q + 4], 1), code,
                 code[q + 5])
    elif kind == K_WHERE:
        _where_general(op, v[o:o + n], v[a:], v[code[q + 3]:], v[code[q + 4]:], code,
                       code[q + 5])
    elif kind == K_REDUCE:
        outer, m, inner = code[q + 3], code[q + 4], code[q + 5]
        if op == ARGMAX or op == ARGMIN:
            _argreduce(op, v[o:o + n], v[a:a + outer * m * inner], outer, m, inner)
        else:
            _ireduce(op, v[o:o + n], v[a:a + outer * m * inner], outer, m, inner)
    elif kind == K_MATMUL and code[q + 5] == 0:    # a stack of matrices: map in aux
        for t in range(code[code[q + 4] + 3]):
            _imatmul(v, *_stacked(code, q, t, o, a, n))
    elif kind == K_MATMUL:
        m = code[q + 4]
        _imatmul(v, o, a, code[q + 3], m, code[q + 5], n // m, code[q + 6])
    elif kind == K_LAYOUT and (op == TRANSPOSE or op == BROADCAST):
        _gather(v[o:o + n], v[a:], code, code[q + 3])
    elif kind == K_SELECT:
        k, cnt = code[q + 3], code[q + 5]
        if code[q + 4] == SEL_RUNS:
            _take_runs(v[o:o + n], v, code[k:k + 3 * cnt])
        else:
            _take(v[o:o + n], v, code[k:k + n])
    else:  # K_COPY, and RESHAPE
        v[o:o + n] = v[a:a + n]
    w = code[q + WRAP]
    if w != 0:
        for i in range(o, o + n):
            v[i] = _wrap(v[i], w)


@njit(inline="always", **_JIT)
def _to_int(x):
    """A float truncated toward zero into an int64, as NumPy's astype (nan, inf and
    values beyond int64 give int64's minimum, as NumPy on x86)."""
    if x < 9.223372036854775807e18 and x >= -9.223372036854775807e18:
        return np.int64(x)
    return np.int64(-9223372036854775807 - 1)


@njit(**_JIT)
def _cast_any(code, q, v64, v32, vi):
    """A CAST instruction: out (class STORAGE) = a (class in field b), then wrapped to
    the output's width (WRAP; 1: bool, x != 0)."""
    o, a, n = code[q + 1], code[q + 2], code[q + SIZE]
    dst, srcc, w = code[q + STORAGE], code[q + 3], code[q + WRAP]
    if dst == S_I64:
        out = vi[o:o + n]
        if srcc == S_I64:
            out[:] = vi[a:a + n]
        elif srcc == S_F32:
            x32 = v32[a:a + n]
            for i in range(n):
                out[i] = (1 if x32[i] != 0.0 else 0) if w == WRAP_BOOL else _to_int(x32[i])
        else:
            x64 = v64[a:a + n]
            for i in range(n):
                out[i] = (1 if x64[i] != 0.0 else 0) if w == WRAP_BOOL else _to_int(x64[i])
        if w == WRAP_BOOL:
            for i in range(n):
                out[i] = 1 if out[i] != 0 else 0
        elif w != 0:
            for i in range(n):
                out[i] = _wrap(out[i], w)
    elif dst == S_F32:
        if srcc == S_I64:
            _cast(v32[o:o + n], vi[a:a + n])
        elif srcc == S_F32:
            v32[o:o + n] = v32[a:a + n]
        else:
            _cast(v32[o:o + n], v64[a:a + n])
    else:
        if srcc == S_I64:
            _cast(v64[o:o + n], vi[a:a + n])
        elif srcc == S_F32:
            _cast(v64[o:o + n], v32[a:a + n])
        else:
            v64[o:o + n] = v64[a:a + n]


# splitmix64's constants (the hash of nbbp.core.ops.random_bits, bit for bit)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@njit(inline="always", **_JIT)
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(**_JIT)
def _random(code, q, v64, v32, vi):
    """random_uniform: element i = splitmix64's i-th output from a state mixed from the
    seed (field b) and the counter (at a, in the class of field x), as 53 (float64) or
    24 (float32) random bits scaled into [0, 1)."""
    o, a, n = code[q + 1], code[q + 2], code[q + SIZE]
    cc = code[q + 5]
    if cc == S_I64:
        ctr = vi[a]
    elif cc == S_F32:
        ctr = _to_int(v32[a])
    else:
        ctr = _to_int(v64[a])
    key = _mix(_mix(np.uint64(code[q + 3]) + _GOLDEN) + np.uint64(ctr) * _GOLDEN)
    if code[q + STORAGE] == S_F32:
        for i in range(n):
            r = _mix(key + np.uint64(i + 1) * _GOLDEN)
            v32[o + i] = np.float64(r >> np.uint64(40)) * 5.9604644775390625e-08
    else:
        for i in range(n):
            r = _mix(key + np.uint64(i + 1) * _GOLDEN)
            v64[o + i] = np.float64(r >> np.uint64(11)) * 1.1102230246251565e-16


@njit(**_JIT)
def _run_float(code, v, hv, c, p, stop, check):
    """Run instructions from ``p`` on the float storage ``v`` (class ``c``: float64 or
    float32 — Numba compiles this once per array type, so a float32 op runs on float32
    data) for as long as they are plain ops of that class; ``hv`` is the float64 storage
    (the optimizer's hyperparameters). Returns ``(the next instruction, -1)``, or with
    ``check`` 1 ``(p, p)`` for the first instruction ``p`` whose output is not finite.

    The instructions' semantics live here, in the loop itself: a run of float64 (or
    float32) instructions is one call, and no per-instruction function boundary makes
    Numba count references to the storages on every instruction."""
    while p < stop:
        q = p * W
        kind = code[q + KIND]
        if code[q + STORAGE] != c or kind == K_CAST or kind == K_RANDOM or kind == K_TAKE:
            break
        op = code[q]
        o = code[q + 1]
        a = code[q + 2]
        n = code[q + SIZE]
        if kind == K_UNARY:
            if n == 1:
                v[o] = unary_t(op, v[a])
            else:
                _unary_loop(op, v[o:o + n], v[a:a + n])
        elif kind == K_BINARY:
            if n == 1:
                v[o] = binary(op, v[a], v[code[q + 3]])
            else:
                _binary(op, v, o, a, code[q + 3], n, code[q + 6], code[q + 4], code,
                        code[q + 5])
        elif kind == K_WHERE:
            _where_general(op, v[o:o + n], v[a:], v[code[q + 3]:], v[code[q + 4]:], code,
                           code[q + 5])
        elif kind == K_REDUCE:
            outer, m, inner = code[q + 3], code[q + 4], code[q + 5]
            if op == LOGSUMEXP:
                _logsumexp(v[o:o + n], v[a:a + outer * m * inner], outer, m, inner)
            elif op == ARGMAX or op == ARGMIN:
                _argreduce(op, v[o:o + n], v[a:a + outer * m * inner], outer, m, inner)
            else:
                _reduce(op, v[o:o + n], v[a:a + outer * m * inner], outer, m, inner)
        elif kind == K_MATMUL and code[q + 5] == 0:    # a stack of matrices: map in aux
            for t in range(code[code[q + 4] + 3]):
                _matmul(v, *_stacked(code, q, t, o, a, n))
        elif kind == K_MATMUL:
            m = code[q + 4]
            _matmul(v, o, a, code[q + 3], m, code[q + 5], n // m, code[q + 6])
        elif kind == K_LAYOUT and (op == TRANSPOSE or op == BROADCAST):
            _gather(v[o:o + n], v[a:], code, code[q + 3])
        elif kind == K_LAYOUT and op == SUMTO:
            _scatter_add(v[o:o + n], v[a:a + code[q + 4]], code, code[q + 3])
        elif kind == K_SELECT:
            k, cnt = code[q + 3], code[q + 5]
            if op == SCATTER and code[q + 4] == SEL_RUNS:
                _scatter_runs(v[o:o + n], v, code[k:k + 3 * cnt])
            elif op == SCATTER:
                _scatter_elements(v[o:o + n], v, code[k:k + 2 * cnt])
            elif code[q + 4] == SEL_RUNS:
                _take_runs(v[o:o + n], v, code[k:k + 3 * cnt])
            else:
                _take(v[o:o + n], v, code[k:k + n])
        elif kind == K_CONV:
            _conv(op, v, o, a, code[q + 3], code[code[q + 4]:code[q + 4] + CONV_GEOM])
        elif kind == K_SOFTMAX:
            _softmax(op, v[o:o + n], v[a:a + n], code[q + 3], code[q + 4], code[q + 5])
        elif kind == K_TICK:
            _tick(hv, o)
        elif kind == K_UPDATE:
            _update(op, v, o, a, code[q + 3], n, hv, code[q + 4])
        else:  # K_COPY, and RESHAPE (a layout that moves nothing)
            v[o:o + n] = v[a:a + n]
        if check == 1 and _any_bad(v, o, n):
            return p, p
        p += 1
    return p, -1


@njit(**_JIT)
def _take_rows(op, v, o, a, idx, outer, m, inner):
    """TAKE: out (outer, len(idx), inner) = x (outer, m, inner) at the indices along
    the middle axis; TAKEGRAD: out (outer, m, inner) = 0, then g (outer, len(idx),
    inner) added at the indices (repeats add up). ``v`` is the storage of the values,
    ``idx`` the checked indices."""
    cnt = idx.size
    if op == TAKEGRAD:
        v[o:o + outer * m * inner] = 0
    for r in range(outer):
        for j in range(cnt):
            near = a + (r * cnt + j) * inner          # g's row (TAKEGRAD)
            far = (r * m + idx[j]) * inner            # the row of the indexed values
            if op == TAKE:
                dst = v[o + (r * cnt + j) * inner:o + (r * cnt + j + 1) * inner]
                src = v[a + far:a + far + inner]
                for t in range(inner):
                    dst[t] = src[t]
            else:
                dst = v[o + far:o + far + inner]
                src = v[near:near + inner]
                for t in range(inner):
                    dst[t] += src[t]


@njit(**_JIT)
def _take_any(code, q, v64, v32, vi):
    """A take / take_grad instruction on the storage of its class, the indices read
    from the int64 storage at field b. Every index is checked first, so an index out of
    range writes nothing and returns False (run_all then stops)."""
    op, o, a = code[q], code[q + 1], code[q + 2]
    g = code[q + 4]
    outer, m, inner, cnt = code[g], code[g + 1], code[g + 2], code[g + 3]
    idx = vi[code[q + 3]:code[q + 3] + cnt]
    for j in range(cnt):
        if idx[j] < 0 or idx[j] >= m:
            return False
    c = code[q + STORAGE]
    if c == S_F32:
        _take_rows(op, v32, o, a, idx, outer, m, inner)
    elif c == S_F64:
        _take_rows(op, v64, o, a, idx, outer, m, inner)
    else:
        _take_rows(op, vi, o, a, idx, outer, m, inner)
    return True


@njit(inline="always", **_JIT)
def _bad_out(c, v64, v32, o, n):
    """Whether the output at ``o`` (``n`` values, storage class ``c``) is not finite
    (integers always are)."""
    return _any_bad(v32, o, n) if c == S_F32 else (_any_bad(v64, o, n) if c != S_I64
                                                   else False)


@njit(**_JIT)
def run_all(code, v64, v32, vi, start, stop, check):
    """Interpreter for programs with tensors, float32 or integer values: each
    instruction runs on the storage of its class (``STORAGE`` field: ``v64``, ``v32`` or
    ``vi``, the int64 storage of every integer dtype and bool).

    ``check`` 1: return the first instruction with a non-finite output; 0: return
    ``stop`` if any slot on the program's watch list (stored at the end of ``code``)
    is non-finite, else -1; 2: no checks. Integers are never checked (always finite).
    Whatever ``check``, an index out of range at a take instruction ``p`` stops the run
    there and returns ``BAD_INDEX - p`` (≤ -2).
    """
    p = start
    while p < stop:
        q = p * W
        c = code[q + STORAGE]
        kind = code[q + KIND]
        if kind == K_CAST:                  # into class c from the class in field b
            _cast_any(code, q, v64, v32, vi)
            bad = check == 1 and _bad_out(c, v64, v32, code[q + 1], code[q + SIZE])
        elif kind == K_RANDOM:              # reads the counter in its own class
            _random(code, q, v64, v32, vi)
            bad = False
        elif kind == K_TAKE:
            if not _take_any(code, q, v64, v32, vi):
                return BAD_INDEX - p
            bad = check == 1 and _bad_out(c, v64, v32, code[q + 1], code[q + SIZE])
        elif c == S_I64:
            _exec_int(code, q, vi)
            bad = False
        else:                               # a run of float instructions of class c
            p, at = (_run_float(code, v32, v64, c, p, stop, check) if c == S_F32 else
                     _run_float(code, v64, v64, c, p, stop, check))
            if at >= 0:
                return at
            continue
        if bad:
            return p
        p += 1
    if check == 0:
        w, n_watch = code[code.size - 2], code[code.size - 1]
        for i in range(n_watch):
            c, o, n = code[w + 3 * i], code[w + 3 * i + 1], code[w + 3 * i + 2]
            if c == S_I64:
                continue
            if _any_bad(v32, o, n) if c == S_F32 else _any_bad(v64, o, n):
                return stop
    return -1


@njit(**_JIT)
def run(code, v64, v32, start, stop, check):
    """:func:`run_all` for programs without integer values (float64 and float32
    storages only; e.g. nbbp.tf1's optimizer updates)."""
    return run_all(code, v64, v32, v64[:0].view(np.int64), start, stop, check)


@njit(inline="always", **_JIT)
def _any_bad(v, o, n):
    count = 0
    for i in range(o, o + n):
        count += 1 if v[i] - v[i] != 0.0 else 0
    return count > 0


@njit(**_JIT)
def train(code, v64, v32, vi, n_fb, n_all, steps, loss_at, hist, data64, data32, datai,
          batches, rows):
    """``steps`` training steps in one call: copy the minibatch rows in, run forward
    and backward (instructions ``[0, n_fb)``), record the loss, run the updates
    (``[n_fb, n_all)``). Returns the step whose loss was not finite, or whose forward
    and backward stopped on an index out of range (its update is not applied), or -1.

    ``loss_at`` is the loss's offset, in ``v32`` if negative (``-1 - offset``).
    ``batches`` = ``[count, batch size, (data offset, arena offset, row length,
    class)…]``; the data of each class is in ``data64`` / ``data32`` / ``datai`` (integer
    labels); ``rows`` holds
    the data rows of each step's minibatch, step after step.
    """
    nb = batches[0]
    b = batches[1]
    for s in range(steps):
        for k in range(nb):
            d, o, r = batches[2 + 4 * k], batches[3 + 4 * k], batches[4 + 4 * k]
            c = batches[5 + 4 * k]
            for j in range(b):
                row = rows[s * b + j]
                if c == S_F32:
                    v32[o + j * r:o + (j + 1) * r] = data32[d + row * r:d + (row + 1) * r]
                elif c == S_I64:
                    vi[o + j * r:o + (j + 1) * r] = datai[d + row * r:d + (row + 1) * r]
                else:
                    v64[o + j * r:o + (j + 1) * r] = data64[d + row * r:d + (row + 1) * r]
        if run_all(code, v64, v32, vi, 0, n_fb, 2) <= BAD_INDEX:
            return s                    # an index out of range: the caller diagnoses it
        loss = v32[-1 - loss_at] if loss_at < 0 else v64[loss_at]
        hist[s] = loss
        if loss - loss != 0.0:
            return s
        run_all(code, v64, v32, vi, n_fb, n_all, 2)
    return -1
