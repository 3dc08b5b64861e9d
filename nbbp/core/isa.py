"""The instruction set of the compiled engine: every constant the lowering, the kernels
and the optimizers must agree on, in one place (pure Python, no Numba).

An instruction is ``W`` int64s::

    [opcode, out, a, b, c, x, y, n, kind, storage, wrap]

``out`` and ``a`` are offsets into a storage, ``n`` is the output's size; the fields
between depend on the kind (see :func:`nbbp.core.engine.lower`). ``storage`` is the
storage class of the instruction's output and operands (:data:`STORAGES`): each dtype
lives in its own aligned array, so a float32 op runs on float32 data. Operands of
another class are first copied into the output's class by a ``CAST`` instruction.
``kind`` says which family of kernel runs the instruction; the opcode then picks the
op inside it. The kernels branch on ``kind`` first, so how :mod:`nbbp.core.ops`
numbers its opcodes does not matter to them: an op's kind comes from its row in the
op table (``OPS[name].kind``), mapped to an id by :data:`KIND_ID`.

The optimizer update instructions and the hyper-parameter block they read (see
:mod:`nbbp.train.optim`) are part of the instruction set too, so they live here and the
training layer imports them (imports flow down the layers, never up).
"""

from __future__ import annotations

W = 11         # ints per instruction
KIND = 8       # the field holding the instruction's kind id
SIZE = 7       # the field holding the output's size
STORAGE = 9    # the field holding the storage class the instruction runs in
WRAP = 10      # integer outputs narrower than int64: the width to wrap them to (WRAP_OF)

# Storage classes: one aligned array per class, indexed by the class id. A node's
# dtype decides its class (STORAGE_OF); the kernels take the arrays in this order.
# Every integer dtype and bool live in the int64 class (bool as 0/1); after an op
# writing a narrower integer dtype, the kernels wrap the result to its width as NumPy's
# astype does (the instruction's WRAP field: bits, negative for unsigned, 0 for none).
S_F64, S_F32, S_I64 = 0, 1, 2
STORAGES = ("float64", "float32", "int64")         # the NumPy dtype of each class
STORAGE_OF: dict[str, int] = {"float64": S_F64, "float32": S_F32,
                              **{d: S_I64 for d in ("int64", "int32", "int16", "int8",
                                                    "uint8", "bool")}}
WRAP_OF: dict[str, int] = {"int32": 32, "int16": 16, "int8": 8, "uint8": -8}

# Op kinds, as the op table names them; they decide an op's shape rule and lowering.
UNARY, BINARY, WHERE, REDUCE, MATMUL, LAYOUT, SOFTMAX, LEAF = (
    "unary", "binary", "where", "reduce", "matmul", "layout", "softmax", "leaf")
# Selection ops: every output element is one element of one of the inputs (slicing,
# concat, stack, tile, pad, gather, …), and their adjoint, scatter. They lower to an
# index map in the auxiliary ints (see nbbp.core.engine.lower).
SELECT = "select"
# Convolution and pooling (NHWC, HWIO filters, TF1's padding): conv2d, its two VJPs,
# max_pool / avg_pool and theirs. Each instruction reads its geometry (``CONV_GEOM``
# ints) from the auxiliary ints and runs a direct loop kernel.
CONV = "conv"
# Counter-based random numbers (random_uniform): the output is a hash of (seed, the
# counter input's value, element index); the instruction reads the counter in its own
# storage class (field ``x``), so no shadow copy is made.
RANDOM = "random"
# Selections at run-time indices (gather with an integer node as its indices, and its
# VJP): the positions are read from the int64 storage when the instruction runs, each
# checked against the axis (an index out of range stops the run; see the kernels' run_all).
TAKE = "take"

# Kind ids in the instruction's KIND field: one per op kind that has kernels, and
# the internal families (a plain copy, the optimizer's step count and its updates).
K_UNARY, K_BINARY, K_WHERE, K_REDUCE, K_MATMUL, K_LAYOUT, K_SOFTMAX = 1, 2, 3, 4, 5, 6, 7
K_COPY, K_TICK, K_UPDATE = 8, 9, 10
K_SELECT = 11
K_CAST = 12
K_CONV = 13
K_RANDOM = 14
K_TAKE = 15

KIND_ID: dict[str, int] = {UNARY: K_UNARY, BINARY: K_BINARY, WHERE: K_WHERE,
                           REDUCE: K_REDUCE, MATMUL: K_MATMUL, LAYOUT: K_LAYOUT,
                           SOFTMAX: K_SOFTMAX, SELECT: K_SELECT, CONV: K_CONV,
                           RANDOM: K_RANDOM, TAKE: K_TAKE}

# Internal opcodes: instructions the lowering makes that are not graph ops. They must
# not collide with the op table's codes (nbbp.core.engine checks this on import).
COPY = 100      # a copy (also x ** 1, stop_gradient, size-1 reduces and layouts)
MASK = 101      # x where y > 0 else 0: relu's backward, g·step(x), in one pass
ADDRELU = 102   # max(x + y, 0): bias add and relu in one pass
CAST = 103      # out (in the instruction's storage) = a (in the storage of class b):
                # float→int truncates toward zero, then wraps (WRAP); WRAP == 1: != 0 (bool)
WRAP_BOOL = 1

# How a selection instruction's index map is stored (its ``y`` field): as runs
# ``(out position, source offset, length)`` when the map copies blocks, or element by
# element (a source offset per output element; for scatter, ``(out position, source
# offset)`` pairs) when it does not.
SEL_ELEMENTS, SEL_RUNS = 0, 1

# A conv/pool instruction's geometry in the auxiliary ints (at its ``c`` field):
# batch, input height, width, channels, output height, width, channels, window height,
# width, strides (2), dilations (2), padding before (top, left).
CONV_GEOM = 15
# A take instruction's geometry in the auxiliary ints (at its ``c`` field): the sizes
# before the axis, of the axis (in the params), after it, and the number of indices.
TAKE_GEOM = 4
# run_all's return value for an index out of range at instruction p: BAD_INDEX - p.
BAD_INDEX = -2

# Optimizer instructions, appended after the backward pass by the training loop.
TICK = 90                                        # count a step, set its learning rate
UPD_SGD, UPD_ADAGRAD, UPD_RMSPROP, UPD_ADAM = 91, 92, 93, 94   # one parameter's update
UPDATES = (UPD_SGD, UPD_ADAGRAD, UPD_RMSPROP, UPD_ADAM)

# The kind of every internal opcode.
INTERNAL_KIND: dict[int, int] = {COPY: K_COPY, MASK: K_BINARY, ADDRELU: K_BINARY,
                                 CAST: K_CAST,
                                 TICK: K_TICK, **{u: K_UPDATE for u in UPDATES}}

# The hyper-parameter block of an optimizer (float64s in the float64 storage, at the update
# instruction's ``c`` field): learning rate, β₁ / momentum, β₂ / α, ε, weight decay
# (L2), L1, step count, decay kind and its two constants, Nesterov flag, the current
# step's learning rate, the rule's form (0 PyTorch's, 1 TensorFlow 1's) and the running
# products β₁ᵗ, β₂ᵗ that TF 1's Adam keeps.
H_LR, H_B1, H_B2, H_EPS, H_WD, H_L1, H_T, H_DECAY, H_DA, H_DB, H_NESTEROV, H_LRT = range(12)
H_FORM, H_P1, H_P2 = 12, 13, 14
N_HYPER = 15
