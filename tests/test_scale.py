"""The shortcuts that make large graphs cheap give what the general code gives: the
elementwise fast path of ``ops.apply`` (against the general rules, hypothesis over the
op table), the cell line each node records (against the cell's text), the packed
lowering and the one-gather reads of a picture (against reading node by node)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbbp
from nbbp.build import build_graph
from nbbp.core import ops
from nbbp.core.graph import Graph
from nbbp.core.isa import BINARY, UNARY
from nbbp.view.options import for_model
from nbbp.view.scene import Scene

ELEMENTWISE = sorted(name for name, op in ops.OPS.items()
                     if op.kind in (UNARY, BINARY) and not op.attrs)
SHAPES = [(), (3,), (2, 3), (1, 3)]
DTYPES = ["float64", "float32", "int32", "bool"]


NUMBERS = [0.5, -2.0, 1e-3, 0, 2, -3, True, np.float32(1.5)]
OPERAND = st.one_of(
    st.tuples(st.sampled_from(["param", "input", "const"]), st.sampled_from(DTYPES),
              st.sampled_from(SHAPES)),
    st.sampled_from(NUMBERS).map(lambda v: ("number", v)))


def _operand(spec: tuple, g: Graph):
    """The node (a param, input or const of a dtype and shape) or number ``spec`` says."""
    if spec[0] == "number":
        return spec[1]
    leaf, dtype, shape = spec
    if leaf == "param" and dtype not in ("float64", "float32"):
        leaf = "input"                       # params are floating
    with g:
        return getattr(nbbp, leaf)(np.ones(shape, dtype=dtype), dtype=dtype)


def _signature(g: Graph) -> list:
    return [(n.id, n.op, n.name, tuple(x.id for x in n.inputs), n.shape, n.dtype, n.role,
             dict(n.attrs), n.auto_named, None if n.value is None else
             (n.value.dtype.name, n.value.shape, n.value.tobytes())) for n in g.nodes]


def _apply_in(g: Graph, name: str, args: list, grad_role: bool, general: bool):
    """Apply op ``name`` in ``g``: (the graph's nodes after, the error text or None)."""
    saved = ops._elementwise_fast
    if general:
        ops._elementwise_fast = lambda *a: None
    try:
        # folding constants computes them (1 / 0 warns: the same in both paths)
        with g, g.role("grad" if grad_role else "forward"), np.errstate(all="ignore"):
            ops.apply(name, *args)
        err = None
    except nbbp.NbbpError as e:
        err = (type(e).__name__, str(e))
    finally:
        ops._elementwise_fast = saved
    return _signature(g), err


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(ELEMENTWISE), specs=st.lists(OPERAND, min_size=2, max_size=2),
       grad_role=st.booleans())
def test_fast_apply_builds_what_the_general_rules_build(name, specs, grad_role):
    """Same nodes (ops, names, inputs, shapes, dtypes, constants) or the same error."""
    results = []
    for general in (False, True):          # the same operands, in two fresh graphs
        g = Graph()
        args = [_operand(spec, g) for spec in specs[:ops.OPS[name].arity]]
        results.append(_apply_in(g, name, args, grad_role, general))
    assert results[0] == results[1]


@pytest.mark.parametrize("name", ["add", "mul", "sub", "div", "pow", "maximum"])
def test_fast_path_is_taken_for_the_common_case(name, monkeypatch):
    """Two float64 nodes of one shape, or a node and a number: the fast path answers
    (it is not dead code), with the general path's result."""
    taken = []
    real = ops._elementwise_fast

    def spy(*a):
        out = real(*a)
        taken.append(out is not None)
        return out
    monkeypatch.setattr(ops, "_elementwise_fast", spy)
    with Graph() as g:
        x, y = nbbp.param([1.0, 2.0], name="x"), nbbp.param([3.0, 4.0], name="y")
        ops.apply(name, x, y)
        ops.apply(name, x, 2.0)
    assert taken == [True, True]
    assert [(n.op, n.shape, n.dtype) for n in g.nodes[2:]] == [
        (name, (2,), "float64"), ("const", (), "float64"), (name, (2,), "float64")]


def test_fast_path_errors_read_as_before():
    """A float node with an int node is a one-line error naming both; a shape
    mismatch names the shapes; nothing half-built stays in the graph."""
    with Graph() as g:
        x = nbbp.param([1.0, 2.0], name="x")
        i = nbbp.input([1, 2], name="i", dtype="int32")
        y = nbbp.param([1.0, 2.0, 3.0], name="y")
        with pytest.raises(nbbp.BuildError, match=r"mul\(x, i\): i is int32 and x is float64"
                                                  r"; nbbp does not mix integers and floats"):
            x * i
        with pytest.raises(nbbp.ShapeError, match=r"x \+ y: shapes \(2,\) and \(3,\) do not "
                                                  r"broadcast"):
            x + y
        with pytest.raises(nbbp.BuildError, match="node name 'a b' is not valid"):
            ops.apply("mul", x, 2.0, name_="a b")
    assert [n.name for n in g.nodes] == ["x", "i", "y"]


# -- the cell line of each node ------------------------------------------------------
def _lines(source: str) -> dict[str, int | None]:
    g, _ = build_graph(source)
    return {n.name: n.line for n in g.nodes}


def test_each_node_records_the_cell_line_that_built_it():
    src = ("x = param(2.0)\n"
           "y = (sin(x) +\n"
           "     cos(x))\n"
           "for i in range(2):\n"
           "    x = x * 3.0\n")
    lines = _lines(src)
    text = src.splitlines()
    # the oracle: the line of the source that holds the node's expression
    for name, op in [("sin", "sin"), ("cos", "cos"), ("y", "+"), ("x_1", "*"), ("x_2", "*")]:
        assert op in text[lines[name] - 1], (name, lines[name])
    assert lines == {"x": 1, "sin": 2, "cos": 3, "y": 2, "const": 5, "x_1": 5,
                     "const_1": 5, "x_2": 5}


def test_a_cell_function_gives_its_own_line_then_the_caller_its_line():
    """Inside a function the cell defines, nodes record the function's line; what the
    caller builds after the call records the caller's line."""
    src = ("def f(a):\n"
           "    return sin(a) * 2.0\n"
           "x = param(1.0)\n"
           "z = f(x) + 1.0\n")
    g, _ = build_graph(src)
    by_op = [(n.op, n.line) for n in g.nodes]
    assert by_op == [("param", 3), ("sin", 2), ("const", 2), ("mul", 2), ("const", 4),
                     ("add", 4)]


def test_nodes_built_after_the_cell_have_no_line():
    m = nbbp.build("x = param(3.0)\nf = x * x")
    assert m.graph["f"].line == 2
    assert all(n.line is None for n in m.graph.nodes if n.role == "grad")
    with m.graph:
        assert m.graph.line is None
        assert (m.graph["f"] + 1.0).line is None


def test_a_cell_error_still_points_at_its_line():
    with pytest.raises(nbbp.BuildError) as e:
        nbbp.build("x = param([1.0, 2.0])\ny = param([1.0, 2.0, 3.0])\nz = x + y\n")
    assert e.value.line == 3 and "shapes (2,) and (3,) do not broadcast" in str(e.value)


# -- reading a model for its picture --------------------------------------------------
MIXED = ("x = param(0.5)\nw = param([[1.0, -2.0], [0.5, 3.0]])\n"
         "h = tanh(w * x) + 1.0\ni = input(2, dtype='int32')\n"
         "s = sum(h * cast(i, 'float64'))\nf = s * s + sin(x)\n")


@pytest.mark.parametrize("source,dtype", [(MIXED, None), (MIXED, "float32"),
                                          ("x = param(3.0)\ny = param(2.0)\n"
                                           "f = x*x*y + y + 1", None)])
@pytest.mark.parametrize("backward", [False, True])
def test_the_picture_reads_what_node_by_node_reads(source, dtype, backward):
    m = nbbp.build(source, dtype=dtype)
    sc = Scene(m, for_model(m, {"backward": backward}))
    got = (sc.value, sc.grad, sc.egrad, sc.contribs)
    sc._read_each()
    want = (sc.value, sc.grad, sc.egrad, sc.contribs)
    for a, b in zip(got, want):
        assert list(a) == list(b)          # the same keys, in the same order
        for k in a:
            assert type(a[k]) is type(b[k]) and np.array_equal(a[k], b[k]), k


def test_layout_read_many_is_read_of_each():
    m = nbbp.build(MIXED)
    lay, arena = m.compiled.layout, m.compiled.arena
    nodes = [n for n in m.graph.nodes if n.id < lay.n_nodes]
    many = lay.read_many(arena, nodes)
    for n, v in zip(nodes, many):
        one = lay.read(arena, n)
        assert type(v) is type(one) and np.array_equal(v, one), n.name
    assert lay.read_many(arena, []) == []


def test_a_large_chain_keeps_its_numbers():
    """The packed lowering and the fast paths on a chain long enough to use them all:
    value and gradient against NumPy (the chain rule carried forward) and a central
    difference."""
    def chain(x0: float) -> tuple[float, float]:
        v, dv = x0, 1.0
        for k in range(3000):
            if k % 3 == 0:
                v, dv = np.sin(v), np.cos(v) * dv
            elif k % 3 == 1:
                v, dv = v * 1.001, dv * 1.001
            else:
                v = v + 0.0005
        return v, dv

    with nbbp.Graph():
        x = nbbp.param(0.5, name="x")
        v = x
        for k in range(3000):
            v = nbbp.sin(v) if k % 3 == 0 else (v * 1.001 if k % 3 == 1 else v + 0.0005)
    value, grad = chain(0.5)
    h = 1e-4
    fd = (chain(0.5 + h)[0] - chain(0.5 - h)[0]) / (2 * h)
    assert grad == pytest.approx(fd, rel=1e-3)
    for engine in ("numba", "python"):
        m = nbbp.Model(v, engine=engine)
        assert m.value == pytest.approx(value, rel=1e-12)
        assert m["x"].grad == pytest.approx(grad, rel=1e-9)
