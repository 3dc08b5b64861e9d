"""Random graphs with shared sub-expressions, against HIPS autograd.

Fan-out (a node used by several consumers, or twice by one) is where hand-written
engines go wrong: hypothesis draws programs whose steps reuse earlier results.
"""

from __future__ import annotations

import warnings

import autograd
import autograd.numpy as anp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbbp

LEAF_SHAPES = [(), (), (3,), (2, 3)]


def _backend(lib):
    """The same ops on nbbp nodes and on autograd arrays."""
    if lib == "nbbp":
        ops = nbbp
        summ, mean, mm = nbbp.sum, nbbp.mean, nbbp.matmul
    else:
        ops = anp
        summ, mean, mm = anp.sum, anp.mean, anp.matmul
    sigmoid = nbbp.sigmoid if lib == "nbbp" else (lambda x: 0.5 * (anp.tanh(0.5 * x) + 1))
    softplus = nbbp.softplus if lib == "nbbp" else (lambda x: anp.logaddexp(x, 0.0))
    return {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / (1.0 + b * b),
        "tanh": lambda a, b: ops.tanh(a),
        "sin": lambda a, b: ops.sin(a),
        "sigmoid": lambda a, b: sigmoid(a),
        "softplus": lambda a, b: softplus(a),
        "explog": lambda a, b: ops.log(1.0 + ops.exp(ops.tanh(a)) * b * b),
        "sqrt": lambda a, b: ops.sqrt(1.0 + a * a),
        "maximum": lambda a, b: ops.maximum(a, b * 0.5),
        "square": lambda a, b: a ** 2,
        "sum": lambda a, b: summ(a),
        "mean0": lambda a, b: mean(a, axis=0) if np.ndim(a) == 2 or _is2d(a) else mean(a),
        "matvec": lambda a, b: mm(a, b),
    }


def _is2d(x):
    return isinstance(x, nbbp.Node) and x.ndim == 2


OPS = sorted(_backend("nbbp"))


def _shape_after(op, sa, sb):
    if op in ("sum",):
        return ()
    if op == "mean0":
        return sa[1:] if len(sa) == 2 else ()
    if op == "matvec":
        return (sa[0],) if len(sa) == 2 and sb == (sa[1],) else None
    if op in ("tanh", "sin", "sigmoid", "softplus", "sqrt", "square"):
        return sa
    try:
        return tuple(np.broadcast_shapes(sa, sb))
    except ValueError:
        return None


@st.composite
def programs(draw):
    shapes = list(LEAF_SHAPES)
    steps = []
    for _ in range(draw(st.integers(3, 12))):
        op = draw(st.sampled_from(OPS))
        # prefer recent nodes, but reuse old ones too: shared sub-expressions
        i = draw(st.integers(0, len(shapes) - 1))
        j = draw(st.integers(0, len(shapes) - 1))
        out = _shape_after(op, shapes[i], shapes[j])
        if out is None:
            continue
        steps.append((op, i, j))
        shapes.append(out)
    values = [draw(st.floats(-1.5, 1.5).map(lambda v: np.full(s, v)).map(
        lambda a, s=s: a + np.linspace(-0.3, 0.3, max(a.size, 1))[:a.size].reshape(s)))
        for s in LEAF_SHAPES]
    return steps, values


def _run(lib, steps, leaves):
    fns = _backend(lib)
    nodes = list(leaves)
    for op, i, j in steps:
        nodes.append(fns[op](nodes[i], nodes[j]))
    # the output uses every node once more: fan-out everywhere
    out = 0.0
    for k, n in enumerate(nodes[len(leaves):] or nodes):
        out = out + (nbbp.sum(n) if lib == "nbbp" else anp.sum(n)) * (0.5 + 0.1 * k)
    return out


def _model(steps, values):
    """The program as an nbbp model, and its leaves."""
    with nbbp.Graph():
        leaves = [nbbp.param(v, name=f"p{k}") for k, v in enumerate(values)]
        out = _run("nbbp", steps, leaves)
    return nbbp.Model(out), leaves


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_random_graph_matches_autograd(prog):
    steps, values = prog
    m, leaves = _model(steps, values)
    out = m.output

    def f(*xs):
        return _run("autograd", steps, list(xs))

    want = f(*values)
    np.testing.assert_allclose(m.value, want, rtol=1e-11, atol=1e-12)
    for k in range(len(values)):
        with warnings.catch_warnings():   # autograd warns when p_k is unused
            warnings.filterwarnings("ignore", "Output seems independent of input")
            g = autograd.grad(f, k)(*values)
        np.testing.assert_allclose(m.grad_of(leaves[k]), g, rtol=1e-10, atol=1e-11,
                                   err_msg=f"grad of p{k} in {steps}")
    # and the engine's two paths agree
    mp = nbbp.Model(out, engine="python")
    np.testing.assert_allclose(mp.value, m.value, rtol=1e-13, atol=1e-14)


@settings(max_examples=40, deadline=None)
@given(programs())
def test_edges_sum_to_node_gradients(prog):
    m, _ = _model(*prog)
    for node in m.forward:
        if node.op == "const" or node is m.output:
            continue
        contribs = [e.grad for e in m.edges if e.src == node.name and e.grad is not None]
        total = sum(np.asarray(c) for c in contribs) if contribs else 0.0
        np.testing.assert_allclose(total, m.grad_of(node), rtol=1e-12, atol=1e-13)


@settings(max_examples=40, deadline=None)
@given(programs())
def test_the_program_computes_every_ancestor_of_its_targets(prog):
    """Backprop compiles the forward nodes and the transform's new nodes without
    walking the graph again: that list is exactly the ancestors of every value the
    picture shows (the walk it replaced)."""
    m, _ = _model(*prog)
    bp = m.backprop
    targets = bp.forward + list(bp.grads.total.values()) + list(bp.grads.edge.values())
    walked = [n for n in m.graph.ancestors(targets) if not n.is_leaf]
    start = min(g.id for g in bp.grads.total.values())      # the seed, built first
    built = bp.forward + m.graph.nodes[start:]
    assert [n.id for n in walked] == [n.id for n in built if not n.is_leaf]
