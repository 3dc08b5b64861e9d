"""The tensor ops real programs use: indexing and slicing, concat, stack, unstack, split,
tile, pad, squeeze, expand_dims, gather / embedding_lookup, clip, prod, logsumexp.

Oracles: NumPy for values, central finite differences of the NumPy expression for
gradients (and of the first derivative for second derivatives), TF1's documented
gradient rules (clip_by_value), and the Python reference engine for the kernels.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import fd_grad

import nbbp
from nbbp.core.engine import Layout, lower
from nbbp.core.isa import K_COPY, K_SELECT, KIND, SEL_ELEMENTS, SEL_RUNS, W


def model(f, engine):
    return nbbp.Model(f, engine=engine)



def check(build, numpy_fn, values, engine, rtol=1e-6):
    """``build(*params)`` and ``numpy_fn(*arrays)`` give the same tensor; the gradient
    of sum(y · r) matches finite differences of the NumPy expression."""
    rng = np.random.default_rng(7)
    with nbbp.Graph():
        ps = [nbbp.param(v, name=f"x{i}") for i, v in enumerate(values)]
        y = build(*ps)
        r = rng.uniform(0.5, 1.5, y.shape)
        f = nbbp.sum(y * r, name="f")
    m = model(f, engine)
    want = numpy_fn(*values)
    np.testing.assert_allclose(m.value_of(y), want, rtol=1e-14)
    for i, v in enumerate(values):
        def scalar(xi, i=i):
            vs = list(values)
            vs[i] = xi
            return float(np.sum(numpy_fn(*vs) * r))
        np.testing.assert_allclose(m.grads[f"x{i}"], fd_grad(scalar, v), rtol=rtol,
                                   atol=1e-7, err_msg=f"input {i}")
    return m


# -- indexing and slicing --------------------------------------------------------
def _slice_item(draw, size):
    start = draw(st.one_of(st.none(), st.integers(-size, size - 1)))
    stop = draw(st.one_of(st.none(), st.integers(-size - 1, size)))
    step = draw(st.one_of(st.none(), st.sampled_from([1, 2, 3, -1, -2])))
    return slice(start, stop, step)


@st.composite
def index_cases(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    key = []
    for size in shape:
        kind = draw(st.sampled_from(["int", "slice", "slice", "all"]))
        if kind == "int":
            key.append(draw(st.integers(-size, size - 1)))
        elif kind == "slice":
            key.append(_slice_item(draw, size))
        else:
            key.append(slice(None))
    if draw(st.booleans()) and len(shape) < 3:
        key.insert(draw(st.integers(0, len(key))), None)
    if draw(st.booleans()):               # an ellipsis standing for the trailing axes
        cut = draw(st.integers(0, len(key)))
        key = key[:cut] + [Ellipsis]
    return shape, tuple(key)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index_cases())
def test_getitem_values_and_gradients_match_numpy(case):
    shape, key = case
    x = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape) / 7.0
    want = x[key]
    if want.size == 0:
        with nbbp.Graph() as g, pytest.raises(nbbp.ShapeError, match="selects nothing"):
            nbbp.param(x)[key]
        assert len(g.nodes) == 1
        return
    r = np.linspace(0.5, 1.5, want.size).reshape(want.shape)
    with nbbp.Graph():
        p = nbbp.param(x, name="x")
        y = p[key]
        f = nbbp.sum(y * r)
    assert y.shape == want.shape
    for engine in ("numba", "python"):
        m = nbbp.Model(f, engine=engine)
        np.testing.assert_array_equal(m.value_of(y), want)
        expected = np.zeros_like(x)
        np.add.at(expected, key, r)      # the gradient: r scattered back
        np.testing.assert_array_equal(m.grads["x"], expected)


@pytest.mark.parametrize("key", [0, -1, (slice(None), slice(1, 3)), (1, slice(None, None, -2)),
                                 (Ellipsis, None), (slice(3, 0, -1), -2), (None, 2, 3)])
def test_slices_match_finite_differences(key, engine):
    x = np.random.default_rng(1).uniform(-2, 2, (4, 5))
    check(lambda p: p[key] * p[key], lambda a: a[key] * a[key], [x], engine)


def test_index_in_a_cell_source(engine):
    src = "v = param(np.array([[1.0, 2.0], [3.0, 4.0]]))\nrow = v[0]\nf = sum(row * v[1, ::-1])"
    m = nbbp.build(src, engine=engine)
    assert m.value == 1.0 * 4.0 + 2.0 * 3.0
    np.testing.assert_array_equal(m.grads["v"], [[4.0, 3.0], [2.0, 1.0]])
    assert m.graph["row"].op == "getitem"


# -- concat, stack, unstack, split -----------------------------------------------
@pytest.mark.parametrize("shapes,axis", [([(2, 3), (2, 1), (2, 4)], 1), ([(1, 2), (3, 2)], 0),
                                         ([(2, 2, 1), (2, 2, 3)], -1), ([(3,)] * 4, 0)])
def test_concat(shapes, axis, engine):
    rng = np.random.default_rng(2)
    values = [rng.uniform(-1, 1, s) for s in shapes]
    m = check(lambda *ps: nbbp.concat(list(ps), axis=axis) ** 2,
              lambda *vs: np.concatenate(vs, axis) ** 2, values, engine)
    assert m.graph["f"].inputs[0].inputs[0].inputs[0].op == "concat"


@pytest.mark.parametrize("shape,axis,k", [((3,), 0, 3), ((2, 3), 1, 4), ((2, 3), -1, 2),
                                          ((), 0, 5)])
def test_stack(shape, axis, k, engine):
    rng = np.random.default_rng(3)
    values = [rng.uniform(-1, 1, shape) for _ in range(k)]
    check(lambda *ps: nbbp.stack(list(ps), axis=axis) * nbbp.stack(list(ps), axis=axis),
          lambda *vs: np.stack(vs, axis) ** 2, values, engine)


def test_unstack_and_split_return_lists_of_nodes(engine):
    x = np.arange(24.0).reshape(2, 3, 4)
    with nbbp.Graph():
        p = nbbp.param(x, name="x")
        rows = nbbp.unstack(p, axis=1)
        a, b = nbbp.split(p, 2, axis=2)
        c, d, e = nbbp.split(p, [1, 2, 1], axis=-1)
        weights = {rows[2].id: 2.0, b.id: 3.0, d.id: 5.0}
        f = nbbp.sum(nbbp.concat([nbbp.reshape(n * weights.get(n.id, 0.0), (-1,))
                                  for n in rows + [a, b, c, d, e]], axis=0))
    m = model(f, engine)
    assert [r.shape for r in rows] == [(2, 4)] * 3 and a.shape == (2, 3, 2)
    for node, want in zip(rows + [a, b, c, d, e],
                          list(np.moveaxis(x, 1, 0)) + np.split(x, 2, axis=2)
                          + np.split(x, [1, 3], axis=2)):
        np.testing.assert_array_equal(m.value_of(node), want)
    grad = np.zeros_like(x)
    grad[:, 2] += 2.0
    grad[..., 2:] += 3.0
    grad[..., 1:3] += 5.0
    np.testing.assert_array_equal(m.grads["x"], grad)


# -- tile, pad, squeeze, expand_dims ---------------------------------------------
@pytest.mark.parametrize("shape,mult", [((2, 3), (2, 2)), ((3,), (4,)), ((2, 1, 2), (1, 3, 2))])
def test_tile(shape, mult, engine):
    x = np.random.default_rng(4).uniform(-1, 1, shape)
    check(lambda p: nbbp.tile(p, mult) ** 2, lambda a: np.tile(a, mult) ** 2, [x], engine)


@pytest.mark.parametrize("shape,pads", [((2, 3), [[1, 0], [2, 1]]), ((3,), [[0, 2]]),
                                        ((2, 2, 2), [[0, 0], [1, 1], [0, 3]])])
def test_pad_with_a_trainable_value(shape, pads, engine):
    rng = np.random.default_rng(5)
    x, v = rng.uniform(-1, 1, shape), np.array(0.3)
    check(lambda p, c: nbbp.pad(p, pads, c) ** 2,
          lambda a, c: np.pad(a, pads, constant_values=c) ** 2, [x, v], engine)


def test_pad_default_value_is_zero(engine):
    with nbbp.Graph():
        y = nbbp.pad(nbbp.param([1.0, 2.0]), [[1, 2]])
    np.testing.assert_array_equal(model(y, engine).value, [0, 1, 2, 0, 0])


def test_squeeze_and_expand_dims(engine):
    x = np.random.default_rng(6).uniform(-1, 1, (3, 1, 2, 1))
    check(lambda p: nbbp.squeeze(p) ** 3, lambda a: np.squeeze(a) ** 3, [x], engine)
    check(lambda p: nbbp.squeeze(p, axis=-1) ** 3, lambda a: np.squeeze(a, -1) ** 3, [x], engine)
    y = x[:, 0, :, 0]
    check(lambda p: nbbp.expand_dims(p, 1) ** 3, lambda a: np.expand_dims(a, 1) ** 3, [y], engine)
    check(lambda p: nbbp.expand_dims(p, -1) ** 3, lambda a: a[..., None] ** 3, [y], engine)


# -- gather ----------------------------------------------------------------------
def test_gather_with_repeated_indices_accumulates(engine):
    table = np.arange(12.0).reshape(4, 3)
    ids = np.array([[3, 0], [3, 3]])
    with nbbp.Graph():
        p = nbbp.param(table, name="E")
        y = nbbp.embedding_lookup(p, ids)
        f = nbbp.sum(y)
    m = model(f, engine)
    np.testing.assert_array_equal(m.value_of(y), table[ids])
    np.testing.assert_array_equal(m.grads["E"], [[1.0] * 3, [0.0] * 3, [0.0] * 3, [3.0] * 3])


@pytest.mark.parametrize("shape,indices,axis", [((5, 3), [4, 0, 4, 2], 0), ((2, 5), 3, 1),
                                                ((2, 3, 4), np.array([[0, 3], [3, 1]]), 2),
                                                ((6,), [5, 5, 5], 0)])
def test_gather_matches_finite_differences(shape, indices, axis, engine):
    x = np.random.default_rng(8).uniform(-1, 1, shape)
    check(lambda p: nbbp.gather(p, indices, axis=axis) ** 2,
          lambda a: np.take(a, indices, axis=axis) ** 2, [x], engine)


# -- clip, prod, logsumexp -------------------------------------------------------
def test_clip_values_and_tf1_gradient(engine):
    x = np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0])
    with nbbp.Graph():
        p, lo, hi = nbbp.param(x, name="x"), nbbp.param(-1.0, name="lo"), nbbp.param(1.0,
                                                                                     name="hi")
        f = nbbp.sum(nbbp.clip(p, lo, hi) * np.arange(1.0, 7.0))
    m = model(f, engine)
    assert m.value == float(np.sum(np.clip(x, -1, 1) * np.arange(1.0, 7.0)))
    # TF1's _ClipByValueGrad: 1 inside [lo, hi] (ends included), 0 outside
    np.testing.assert_array_equal(m.grads["x"], [0.0, 2.0, 3.0, 4.0, 5.0, 0.0])
    assert m.grads["lo"] == 1.0 and m.grads["hi"] == 6.0


@pytest.mark.parametrize("x", [[[1.5, -2.0, 0.5], [0.7, 1.1, -0.3]],     # no zeros
                               [[1.5, 0.0, 0.5], [0.7, 1.1, -0.3]],      # one zero in a row
                               [[0.0, 0.0, 0.5], [0.0, 1.1, -0.3]]])     # two zeros in a row
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_prod_gradient_is_right_with_zeros(x, axis, engine):
    x = np.array(x)
    check(lambda p: nbbp.prod(p, axis=axis) * 1.0, lambda a: np.prod(a, axis=axis), [x],
          engine)


def test_logsumexp_is_stable_for_large_values(engine):
    x = np.array([[1000.0, 1000.5, -1000.0], [-800.0, -800.0, -801.0]])
    with nbbp.Graph():
        p = nbbp.param(x, name="x")
        y = nbbp.logsumexp(p, axis=1)
        f = nbbp.sum(y * np.array([1.0, 2.0]))
    m = model(f, engine)
    want = np.array([1000.5 + np.log1p(np.exp(-0.5)), -800.0 + np.log(2 + np.exp(-1.0))])
    np.testing.assert_allclose(m.value_of(y), want, rtol=1e-15)
    sm = np.exp(x - want[:, None])
    np.testing.assert_allclose(m.grads["x"], sm * np.array([[1.0], [2.0]]), rtol=1e-12)
    small = np.random.default_rng(9).uniform(-2, 2, (3, 4))
    for axis, keep in ((0, False), (None, False), (-1, True)):
        check(lambda p: nbbp.logsumexp(p, axis=axis, keepdims=keep) ** 2,
              lambda a: np.log(np.sum(np.exp(a), axis=axis, keepdims=keep)) ** 2, [small],
              engine)


# -- second derivatives ----------------------------------------------------------
@pytest.mark.parametrize("label", ["slice", "concat", "prod", "gather", "pad", "tile"])
def test_second_derivatives_match_finite_differences_of_the_first(label, engine):
    """d/dx of sum(∂f/∂x · r) against central differences of the first gradient."""
    rng = np.random.default_rng(10)
    x0 = rng.uniform(0.5, 1.5, (3, 4))
    r = rng.uniform(-1, 1, (3, 4))
    body = {
        "slice": lambda p: nbbp.sum(p[1:, ::-2] ** 3) + nbbp.sum(p[0] * p[2]),
        "concat": lambda p: nbbp.sum(nbbp.concat([p, p[:, :1] * p[:, 1:2], p], axis=1) ** 3),
        "prod": lambda p: nbbp.sum(nbbp.prod(p, axis=1) ** 2),
        "gather": lambda p: nbbp.sum(nbbp.gather(p, [2, 2, 0], axis=0) ** 3),
        "pad": lambda p: nbbp.sum(nbbp.pad(p * p, [[1, 1], [0, 2]], 0.5) ** 2),
        "tile": lambda p: nbbp.sum(nbbp.tile(p, (2, 1)) ** 3),
    }[label]

    def first(x):
        with nbbp.Graph():
            p = nbbp.param(x, name="x")
            f = body(p)
        return np.asarray(model(f, engine).grads["x"])

    with nbbp.Graph():
        p = nbbp.param(x0, name="x")
        (g,) = nbbp.gradients(body(p), [p])
        h = nbbp.sum(g * r, name="h")
        (hx,) = nbbp.gradients(h, [p])
    m = nbbp.Model(hx, engine=engine)
    numeric = fd_grad(lambda x: float(np.sum(first(x) * r)), x0, eps=1e-5)
    np.testing.assert_allclose(m.value, numeric, rtol=1e-6, atol=1e-6)


# -- the compiled mechanism ------------------------------------------------------
def _instr(node):
    layout = Layout(node.graph)
    code, nodes = lower(layout, [n for n in node.graph.nodes if not n.is_leaf])
    rows = code[:len(nodes) * W].reshape(-1, W)
    return rows[[n.id for n in nodes].index(node.id)]


def test_selections_lower_to_block_copies_copies_or_element_maps():
    with nbbp.Graph():
        x = nbbp.param(np.zeros((64, 16)))
        rows = x[:, 2:10]                  # 64 runs of 8
        every_other = x[:, ::2]            # no runs: element by element
        squeezed = nbbp.squeeze(nbbp.expand_dims(x, 0))   # the same bytes: a copy
        joined = nbbp.concat([x, x], axis=0)              # 2 runs
    assert _instr(rows)[KIND] == K_SELECT and _instr(rows)[4] == SEL_RUNS
    assert _instr(rows)[5] == 64
    assert _instr(every_other)[4] == SEL_ELEMENTS
    assert _instr(squeezed)[KIND] == K_COPY
    assert _instr(joined)[4] == SEL_RUNS and _instr(joined)[5] == 2


def test_scalar_programs_run_selections_as_copies():
    with nbbp.Graph():
        x = nbbp.param([3.0], name="x")
        f = x[0] * nbbp.squeeze(x) + nbbp.concat([x], 0)[-1]
    m = nbbp.Model(f)
    assert m.value == 12.0 and m.grads["x"].tolist() == [7.0]


# -- mistakes: one line, naming the op and the shapes or values; nothing built -----
BAD = [
    ("x = param(np.ones((2, 3)))\ny = x[:, 3]", nbbp.ShapeError,
     "line 2, col 5: getitem x[:, 3]: index 3 is out of range for axis 1 of size 3 "
     "(valid: -3..2)"),
    ("x = param(np.ones(3))\ny = x[1.5]", nbbp.BuildError,
     "getitem x[1.5]: an index must be an int, a slice, None or ...; got float 1.5"),
    ("x = param(np.ones(3))\ny = x[0, 0]", nbbp.ShapeError, "too many indices for x of shape (3,)"),
    ("E = param(np.ones((5, 2)))\ny = gather(E, [1, 7])", nbbp.ShapeError,
     "gather(E, indices, axis=0): index 7 is out of range for axis 0 of E (shape (5, 2)): "
     "valid 0..4"),
    ("E = param(np.ones((5, 2)))\ny = embedding_lookup(E, [0.0, 1.5])", nbbp.BuildError,
     "gather(E, indices, axis=0): index 1.5 is not an integer (float64)"),
    ("a = param(np.ones((2, 3)))\nb = param(np.ones((3, 4)))\ny = concat([a, b], axis=1)",
     nbbp.ShapeError, "concat([a, b], axis=1): shapes (2, 3) (a) and (3, 4) (b) differ on axis 0"),
    ("a = param(np.ones((2, 3)))\nb = param(np.ones(3))\ny = stack([a, b])", nbbp.ShapeError,
     "stack([a, b], axis=0): shapes (2, 3) (a) and (3,) (b) differ"),
    ("x = param(np.ones((2, 5)))\nparts = split(x, 2, axis=1)", nbbp.ShapeError,
     "split(x, 2, axis=1): axis 1 of shape (2, 5) has 5 elements, which do not split into 2"),
    ("x = param(np.ones((2, 5)))\nparts = split(x, [2, 2], axis=1)", nbbp.ShapeError,
     "the sizes [2, 2] must be ≥ 1 and add up to 5"),
    ("x = param(np.ones((2, 3)))\ny = pad(x, [[1, -1], [0, 0]])", nbbp.ShapeError,
     "pad(x, [[1, -1], [0, 0]]): widths [1, -1] on axis 0 are negative"),
    ("x = param(np.ones((2, 3)))\ny = tile(x, (2,))", nbbp.ShapeError,
     "tile(x, (2,)): multiples needs one count ≥ 1 per axis of shape (2, 3)"),
    ("x = param(np.ones((2, 3)))\ny = squeeze(x, axis=0)", nbbp.ShapeError,
     "squeeze(x, axis=0): axis 0 of shape (2, 3) has size 2, not 1"),
    ("x = param(np.ones((2, 3)))\ny = prod(x, axis=2)", nbbp.ShapeError, "prod(x, axis=2)"),
]


@pytest.mark.parametrize("src,exc,part", BAD, ids=[b[2].split(":")[0][:30] for b in BAD])
def test_bad_input_is_one_line_naming_the_op(src, exc, part):
    with pytest.raises(exc) as info:
        nbbp.build(src)
    first = str(info.value).splitlines()[0]      # then the cell line and a caret
    assert part in first, first
    assert first.startswith("line ")


def test_a_failed_op_leaves_the_graph_untouched():
    with nbbp.Graph() as g:
        a = nbbp.param(np.ones((2, 3)), name="a")
        n = len(g.nodes)
        for bad in (lambda: a[5], lambda: nbbp.concat([a, np.ones((3, 3))], axis=1),
                    lambda: nbbp.gather(a, [0, 2]), lambda: nbbp.pad(a, [[0, 0]]),
                    lambda: nbbp.gather(a, a)):
            with pytest.raises(nbbp.NbbpError) as info:
                bad()
            assert "\n" not in str(info.value)
            assert len(g.nodes) == n and list(g.by_name) == ["a"]


def test_the_picture_of_a_node_with_many_inputs():
    src = ("a = param(np.ones((2, 2)))\nb = param(np.ones((2, 1)))\n"
           "j = concat([a, b, a, b], axis=1)\nf = sum(j[:, 1:4] * j[:, ::2])")
    m = nbbp.build(src, output="f")
    dot = m.to_dot()
    assert "(its argument x4)" in dot and "(its argument x1)" in dot
    assert "j[:, 1:4]" in dot and "j[:, ::2]" in dot
    assert nbbp.OPS["concat"].formula(3) == "∂L/∂x4 = g's part at its place"
    assert "scatter" in m.to_dot(backward=True)


def test_a_saved_concat_of_three_loads_back(tmp_path):
    """The file format checks an op's input count with the table's rule, so a variadic
    op with more inputs than its arity round-trips."""
    m = nbbp.build("a = param([1.0, 2.0])\nb = param([3.0])\nc = param([4.0, 5.0])\n"
                   "f = sum(concat([a, b, c], axis=0) ** 2)")
    path = tmp_path / "m.nbbp"
    m.save(path)
    back = nbbp.load(path)
    assert back.value == m.value == 55.0
    assert np.array_equal(back.grads["c"], [8.0, 10.0])


# -- erf ---------------------------------------------------------------------------
# Oracles: the tabulated erf values (Abramowitz & Stegun 7.1), PyTorch's erf and exact
# GELU with their autograd, and central finite differences of math.erf.
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_erf_values_against_tabulated_and_pytorch(dtype, engine):
    torch = pytest.importorskip("torch")
    x = np.array([-3.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0, 4.0])
    with nbbp.Graph():
        p = nbbp.param(x, name="x", dtype=dtype)
        y = nbbp.erf(p)
        f = nbbp.sum(y * np.linspace(0.5, 1.5, 9), name="f")
    m = model(f, engine)
    got = m.value_of(y)
    assert got.dtype == np.dtype(dtype)
    tol = dict(rtol=1e-15, atol=1e-16) if dtype == "float64" else dict(rtol=1e-6, atol=1e-7)
    # A&S 7.1: erf(0.5) = 0.5204998778, erf(1) = 0.8427007929, erf(2) = 0.9953222650
    np.testing.assert_allclose(got[[5, 6, 7]], [0.5204998778130465, 0.8427007929497149,
                                                0.9953222650189527], **tol)
    want = torch.special.erf(torch.tensor(x, dtype=getattr(torch, dtype))).numpy()
    np.testing.assert_allclose(got, want, **tol)
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    (torch.special.erf(t) * torch.tensor(np.linspace(0.5, 1.5, 9))).sum().backward()
    np.testing.assert_allclose(np.asarray(m.grads["x"], dtype=float), t.grad.numpy(),
                               rtol=1e-14 if dtype == "float64" else 2e-6, atol=1e-7)


def test_erf_gradient_matches_finite_differences_and_second_derivative(engine):
    import math
    x = np.random.default_rng(17).uniform(-2, 2, (2, 3))
    verf = np.vectorize(math.erf)
    check(lambda p: nbbp.erf(p) ** 2, lambda a: verf(a) ** 2, [x], engine)
    with nbbp.Graph():
        p = nbbp.param(x, name="x")
        (g,) = nbbp.gradients(nbbp.sum(nbbp.erf(p)), [p])
        (h,) = nbbp.gradients(nbbp.sum(g), [p])
    # d²erf/dx² = −2x · 2/√π · exp(−x²)
    np.testing.assert_allclose(nbbp.Model(h, engine=engine).value,
                               -2 * x * 2 / np.sqrt(np.pi) * np.exp(-x * x), rtol=1e-13)


def test_exact_gelu_from_erf_matches_pytorch(engine):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(18).uniform(-3, 3, (4, 5))
    with nbbp.Graph():
        p = nbbp.param(x, name="x")
        y = 0.5 * p * (1.0 + nbbp.erf(p / np.sqrt(2.0)))
        f = nbbp.sum(y * y, name="f")
    m = model(f, engine)
    t = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.gelu(t)           # approximate="none": the erf form
    (yt * yt).sum().backward()
    np.testing.assert_allclose(m.value_of(y), yt.detach().numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(m.grads["x"], t.grad.numpy(), rtol=1e-13, atol=1e-14)


def test_erf_of_an_integer_is_a_one_line_error():
    with pytest.raises(nbbp.BuildError) as info:
        nbbp.build("k = input([1, 2], dtype='int32')\ny = erf(k)")
    first = str(info.value).splitlines()[0]
    assert "erf(k): erf takes floating values, got int32" in first
    assert 'cast(k, "float64")' in first


def test_a_scalar_graph_with_erf_runs_on_the_tensor_interpreter(engine):
    """run_scalar leaves erf out (its code there slowed W1 and W2): a scalar graph with
    erf is lowered for run_all and still gives erf's value and derivative."""
    import math
    with nbbp.Graph() as g:
        x = nbbp.param(0.3, name="x")
        f = nbbp.erf(x) * x
    assert not Layout(g).scalar
    m = model(f, engine)
    assert m.value == pytest.approx(math.erf(0.3) * 0.3, rel=1e-15)
    assert m.grads["x"] == pytest.approx(math.erf(0.3) + 0.3 * 2 / math.sqrt(math.pi)
                                         * math.exp(-0.09), rel=1e-14)
    with nbbp.Graph() as g2:
        y = nbbp.param(0.3)
        nbbp.tanh(y) * y
    assert Layout(g2).scalar
