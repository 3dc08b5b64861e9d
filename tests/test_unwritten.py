"""Nodes the compiled program never writes (fused into another instruction, like relu's
backward ``g * step(y)`` → one ``mask``; or not kept) are computed when something reads
them: the picture, ``value_of``, ``m[name].value``, ``m.edges`` all show the NumPy
reference engine's numbers."""

from __future__ import annotations

import numpy as np
import pytest

import nbbp
from nbbp.view.dot import to_dot
from nbbp.view.options import for_model
from nbbp.view.scene import Scene

IMG = np.array([[0.3, -1.2, 2.0, 0.1], [1.5, 0.7, -0.4, 0.9],
                [-2.0, 0.2, 0.6, 1.1], [0.8, -0.3, 0.05, 0.4]]).reshape(1, 4, 4, 1)

# (cell, exact): exact cells compute to the same bits on both engines, so the whole
# picture is equal; the others are compared by value (clip's 0.0 / -0.0 may differ)
CELLS = {
    "relu": ("x = param(-0.5, name='x')\nw = param(2.0, name='w')\n"
             "y = relu(x * w + 1.5)\nf = y * y + relu(x)", True),
    "abs": ("x = param(-0.75, name='x')\nf = abs(x) * x + abs(x * 3.0)", True),
    "where": ("x = param(0.5, name='x')\ny = param(-2.0, name='y')\n"
              "f = where(x > y, x * y, y - x) * x", True),
    "clip": ("x = param(1.7, name='x')\nf = clip(x * 2.0, -1.0, 1.0) + clip(x, 0.0, 3.0) * x",
             False),
    "max_pool": ("x = param(IMG, name='x')\nf = sum(max_pool(relu(x), 2) * 3.0)", False),
    "relu_tensor": ("x = param(np.linspace(-1, 1, 6), name='x')\n"
                    "f = sum(relu(x * 2.0 - 0.5) * x)", True),
}


def build(cell: str, engine: str) -> nbbp.Model:
    with nbbp.Graph():
        ns = {**{k: getattr(nbbp, k) for k in dir(nbbp) if not k.startswith("_")},
              "np": np, "IMG": IMG}
        exec(cell, ns)
    return nbbp.Model(ns["f"], engine=engine)


def same(a, b) -> bool:
    return np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("backward", [False, True])
def test_every_drawn_node_has_the_reference_engines_value(name, backward):
    cell, exact = CELLS[name]
    fast, ref = build(cell, "numba"), build(cell, "python")
    sf = Scene(fast, for_model(fast, {"backward": backward}))
    sr = Scene(ref, for_model(ref, {"backward": backward}))
    assert [n.name for n in sf.nodes] == [n.name for n in sr.nodes]
    for n in sf.nodes:
        assert same(sf.value[n.id], sr.value[n.id]), n.name
        assert same(fast.value_of(n.name), ref.value_of(n.name)), n.name
    for key, g in sr.egrad.items():
        assert (g is None) == (sf.egrad[key] is None) and (g is None or same(sf.egrad[key], g))
    if exact:
        assert to_dot(fast, backward=backward) == to_dot(ref, backward=backward)


def test_relus_step_node_reads_one_not_the_zero_its_fused_slot_holds():
    fast = build(CELLS["relu"][0], "numba")
    step = next(n for n in fast.graph.nodes if n.op == "step"
                and n.inputs[0].inputs[0].op == "add")
    assert step.id in {n.id for n in fast.compiled.missing([step])}   # fused away
    assert fast.value_of(step) == 1.0                # x * w + 1.5 = 0.5 > 0
    assert fast[step.name].value == 1.0
    fast.set(x=-1.0)                                 # x * w + 1.5 = -0.5: the step is 0
    assert fast.value_of(step) == 0.0
    assert [e.grad for e in fast.edges] == [e.grad for e in build(
        CELLS["relu"][0].replace("-0.5", "-1.0"), "python").edges]


def test_a_pruned_function_run_is_completed_before_a_fused_node_is_read():
    fast, ref = build(CELLS["relu"][0], "numba"), build(CELLS["relu"][0], "python")
    fn = fast.function(wrt=["x"])                    # runs a pruned program on the arena
    fn(x=0.25, w=2.0)
    ref.set(x=0.25)
    step = next(n for n in fast.graph.nodes if n.op == "step"
                and n.inputs[0].inputs[0].op == "add")
    assert fast.value_of(step) == ref.value_of(step.name) == 1.0
    assert same(fast.compiled.view(step), 1.0)
    for n in fast.graph.nodes:
        assert same(fast.value_of(n), ref.value_of(n.name)), n.name


def test_a_node_outside_the_program_is_computed_and_a_nan_there_read_back_not_raised():
    with nbbp.Graph():
        x = nbbp.param(-1.0, name="x")
        unused = nbbp.sqrt(x)                   # nan, and nothing the output needs
        twice = nbbp.exp(x) * 2.0
        f = x * 3.0
    for engine in ("numba", "python"):
        m = nbbp.Model(f, engine=engine)
        assert np.isnan(m.value_of(unused)) and m.value == -3.0
        assert m.value_of(twice) == 2.0 * np.exp(-1.0)
        assert m.compiled.read_many([twice, f, x]) == [2.0 * np.exp(-1.0), -3.0, -1.0]


def test_a_fed_op_node_reads_the_value_it_was_fed():
    """Model.run feeding an op node (the gradient check feeds every node ± ε): the fed
    value is read back, not recomputed from the node's inputs."""
    for engine in ("numba", "python"):
        m = build(CELLS["relu"][0], engine)
        y = m.output.inputs[0].inputs[0]             # y = relu(x * w + 1.5)
        assert m.run(m.output, {m.output: 7.0}) == 7.0
        assert m.run([y, m.output], {y: 2.0}) == [2.0, 4.0 + m.value - m.value_of(y) ** 2]
