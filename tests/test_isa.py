"""The instruction set: kernels dispatch on the op table's kinds, never on opcode ranges.

The oracle for the dispatch is the op table itself (each lowered instruction's kind
field against ``OPS[...].kind``) and the Python reference engine (every op, and a graph
using all of them with their fused forms, run compiled and compared).
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys

import numpy as np
import pytest
from test_ops import as_float, as_operands

import nbbp
from nbbp.core import engine, isa
from nbbp.core import graph as graph_module
from nbbp.core.ops import LEAF, OPS, apply, defop


def _every_op_graph():
    """A graph applying every op of the table, in the shapes that pick each kernel
    path (same size, scalar and row broadcasting, axis reductions, BLAS matmul), plus
    the shapes the lowering fuses (relu(a + b), relu's backward, x ** 2, x ** 1)."""
    rng = np.random.default_rng(1)
    g = nbbp.Graph()
    with g:
        x = nbbp.param(rng.uniform(0.5, 1.5, (3, 4)), name="x")
        s = nbbp.param(0.7, name="s")
        v = nbbp.param(rng.uniform(0.5, 1.5, 4), name="v")
        outs = []
        for op in OPS.values():
            xx, ss, vv = as_operands(op, [x, s, v])
            if op.kind == isa.UNARY:
                outs.append(apply(op.name, xx, **({"ref": "x"} if op.attrs == ("ref",)
                                                    else {})))
            elif op.kind == isa.BINARY:
                outs += [apply(op.name, xx, vv), apply(op.name, xx, ss),
                         apply(op.name, ss, ss), apply(op.name, xx, xx)]
            elif op.kind == isa.REDUCE:
                outs += [apply(op.name, xx, axis=0), apply(op.name, xx)]
            elif op.kind == isa.SOFTMAX:
                outs.append(apply(op.name, x, axis=1))
        outs += [nbbp.where(x > 1.0, x, s), x @ v, x.T @ x, s ** 1.0, x ** 2.0,
                 nbbp.relu(x + x), nbbp.reshape(x, (12,)), nbbp.broadcast_to(v, (3, 4)),
                 nbbp.sum_to(x, (1, 4)), nbbp.sum_to(x, (3, 1)), nbbp.transpose(x),
                 nbbp.gather(x, nbbp.argmax(x, axis=0), axis=1)]    # run-time indices
        outs.append(nbbp.random_uniform(x, seed=2) * x)      # kind random
        outs = [as_float(o) for o in outs]
        loss = nbbp.sum(outs[0])
        for o in outs[1:]:
            loss = loss + nbbp.sum(o)
        grads = nbbp.gradients(loss, [x, s, v])
    return g, loss, grads


def _kind_by_code(code: int) -> int:
    if code in isa.INTERNAL_KIND:
        return isa.INTERNAL_KIND[code]
    (op,) = [op for op in OPS.values() if op.code == code]
    return isa.KIND_ID[op.kind]


def test_every_lowered_instruction_carries_its_ops_kind_from_the_table():
    g, loss, grads = _every_op_graph()
    todo = [n for n in g.nodes if not n.is_leaf]
    code, nodes = engine.lower(engine.Layout(g), todo)
    rows = code[:len(nodes) * isa.W].reshape(len(nodes), isa.W)
    seen = set()
    for row, n in zip(rows, nodes):
        opcode, kind = int(row[0]), int(row[isa.KIND])
        assert kind == _kind_by_code(opcode), (n, opcode, kind)
        if opcode == OPS[n.op].code:         # not rewritten: the node's own row
            assert kind == isa.KIND_ID[OPS[n.op].kind], n
        seen.add(kind)
        seen.add(opcode)
    # every kernel family, and every internal instruction, was exercised
    assert set(isa.KIND_ID.values()) | {isa.K_COPY} <= seen
    assert {isa.COPY, isa.MASK, isa.ADDRELU} <= seen


def test_a_graph_of_every_op_and_fusion_matches_the_python_reference():
    g, loss, grads = _every_op_graph()
    a = nbbp.Model(loss, engine="numba")
    b = nbbp.Model(loss, engine="python")
    np.testing.assert_allclose(a.value, b.value, rtol=1e-12)
    for key in b.grads:
        np.testing.assert_allclose(a.grads[key], b.grads[key], rtol=1e-12, atol=1e-14)


def test_update_instructions_get_their_kind_and_unknown_ones_are_refused():
    with nbbp.Graph() as g:
        x = nbbp.param(1.0)
        y = x * x
    lay = engine.Layout(g)
    extra = [[isa.TICK, 0, 0, 0, 0, 0, 0, 0]] + [[u, 0, 0, 0, 0, 0, 0, 1] for u in isa.UPDATES]
    code, nodes = engine.lower(lay, [y], extra=extra)
    rows = code[:(len(nodes) + len(extra)) * isa.W].reshape(-1, isa.W)
    assert [int(r[isa.KIND]) for r in rows[1:]] == [isa.K_TICK] + [isa.K_UPDATE] * 4
    with pytest.raises(nbbp.NbbpError, match="opcode 12345"):
        engine.lower(lay, [y], extra=[[12345, 0, 0, 0, 0, 0, 0, 1]])


def test_every_op_in_the_table_has_a_kernel_and_internal_codes_are_not_op_codes():
    from nbbp.core.kernels import SUPPORTED
    assert SUPPORTED == {op.name for op in OPS.values() if op.kind != LEAF}
    assert not set(isa.INTERNAL_KIND) & {op.code for op in OPS.values()}
    with pytest.raises(ValueError, match="defined twice"):
        defop("my_copy", isa.COPY, 1, isa.UNARY, np.copy, None, "a", (None,))
    assert "my_copy" not in OPS


def test_the_optimizers_use_the_instruction_sets_constants():
    from nbbp.train import optim
    assert (optim.TICK, optim.SGD_CODE, optim.ADAM_CODE) == (isa.TICK, isa.UPD_SGD, isa.UPD_ADAM)
    assert optim.N_HYPER == isa.N_HYPER and optim.H_LRT == isa.H_LRT


def test_the_graph_module_does_not_import_the_op_table():
    tree = ast.parse(inspect.getsource(graph_module))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in names if m.endswith("ops")], names
    with nbbp.Graph():
        x = nbbp.param(np.ones((2, 3)), name="x")
        y = -(2 * x + x / 2 - 1) ** 2 @ x.T
        z = x > 0.5
    assert y.op == "matmul" and y.inputs[0].op == "neg" and y.inputs[1].op == "transpose"
    assert z.op == "gt" and (2 - x).op == "sub" and (2 - x).inputs[0].op == "const"


def test_graph_context_managers_tag_nodes_and_restore_on_errors():
    g = nbbp.Graph()
    with g:
        x = nbbp.param(1.0, name="x")
        assert g.current_role == "forward" and g.line is None
        with pytest.raises(RuntimeError):
            with g.role("grad"), g.at_line(7), g.at_scope("grad/a/b"):
                y = x + 1
                raise RuntimeError
        assert (y.role, y.line, y.name) == ("grad", 7, "grad/a/b/add")
        assert g.current_role == "forward" and g.line is None and g.scope == ""
        (dx,) = nbbp.gradients(x * x, [x])
        assert dx.role == "grad" and dx.line is None and g.current_role == "forward"


def test_import_nbbp_does_not_load_numba():
    out = subprocess.run([sys.executable, "-c", "import sys, nbbp; "
                          "print(sorted(m for m in sys.modules if m.startswith('numba')))"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cached_kernels_compiled_with_other_constants_are_detected_and_dropped(tmp_path):
    """Numba's cache is keyed on kernels.py alone; an edit of isa.py (or of an op's
    code) must not run stale compiled code. Here on a copy of the cache, as if
    isa.MASK had been renumbered after the kernels were cached."""
    import os
    import shutil

    from nbbp.core import kernels
    engine.kernels()
    assert kernels.compiled_stamp() == kernels.STAMP
    root = os.environ.get("NUMBA_CACHE_DIR")
    if not root:
        pytest.skip("needs NUMBA_CACHE_DIR to copy the cache")
    shutil.copytree(root, tmp_path / "numba")
    script = ("import glob, os\n"
              "import nbbp.core.isa as isa\n"
              "isa.MASK = 555\n"
              "from nbbp.core import kernels, loader\n"
              "assert kernels.compiled_stamp() != kernels.STAMP\n"
              "loader._drop_stale_cache(kernels)\n"
              "path = kernels.run._cache._cache_path\n"
              "print(len(glob.glob(os.path.join(path, 'kernels.*'))))\n")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, check=True)
    assert done.stdout.strip() == "0"
    assert "instruction set changed" in done.stderr
