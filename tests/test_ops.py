"""Walk the op table: every op against finite differences, its formula, and its kernel.

The oracles are independent of nbbp's autodiff: central finite differences of the
op's NumPy implementation, and the display formula evaluated with NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest

import nbbp
from nbbp.core.ops import (
    BINARY,
    CONV,
    FORMULA_NS,
    LAYOUT,
    LEAF,
    MATMUL,
    OPS,
    RANDOM,
    REDUCE,
    SELECT,
    SOFTMAX,
    UNARY,
    WHERE,
    apply,
)
from nbbp.core.ops import _index_spec as index_spec

OP_NAMES = [name for name, op in OPS.items() if op.kind != LEAF]


def cases(op) -> list[tuple[tuple[tuple[int, ...], ...], dict]]:
    """Input shapes and attributes each op is tested with (broadcasting included)."""
    if op.name == "cast":
        return [(((),), dict(dtype="float64")), (((3, 2),), dict(dtype="int32")),
                (((3, 2),), dict(dtype="bool")), (((3, 2),), dict(dtype="int8"))]
    if op.name == "assign_state":      # the state it writes is named; the op copies
        return [(((),), dict(ref="x0")), (((3, 2),), dict(ref="x0"))]
    if op.kind == UNARY:
        return [(((),), {}), (((3, 2),), {})]
    if op.kind == BINARY:
        return [(((), ()), {}), (((3, 2), (3, 2)), {}), (((3, 2), ()), {}),
                (((), (4,)), {}), (((3, 1), (1, 4)), {}), (((2, 3, 4), (3, 1)), {}),
                (((3, 4), (4,)), {}), (((4,), (3, 4)), {})]   # a row repeated, each side
    if op.kind == WHERE:
        return [(((3,), (3,), (3,)), {}), (((2, 1), (1, 3), ()), {})]
    if op.kind == REDUCE:
        return [(((3, 4),), dict(axis=None, keepdims=False)),
                (((3, 4),), dict(axis=0, keepdims=False)),
                (((3, 4),), dict(axis=1, keepdims=True)),
                (((2, 3, 4),), dict(axis=-2, keepdims=False)), (((5,),), dict(axis=None))]
    if op.kind == MATMUL:
        return [(((3, 4), (4, 2)), {}), (((4,), (4, 2)), {}), (((3, 4), (4,)), {}),
                (((4,), (4,)), {}), (((1, 1), (1, 1)), {})]
    if op.kind == SOFTMAX:
        return [(((3, 4),), dict(axis=1)), (((3, 4),), dict(axis=0)), (((5,),), dict(axis=-1))]
    if op.name == "transpose":
        return [(((3, 4),), dict(perm=None)), (((2, 3, 4),), dict(perm=(1, 2, 0)))]
    if op.name == "reshape":
        return [(((3, 4),), dict(shape=(2, 6))), (((2, 3, 2),), dict(shape=(-1,)))]
    if op.name == "broadcast_to":
        return [(((3,),), dict(shape=(2, 3))), (((2, 1),), dict(shape=(2, 4))),
                (((),), dict(shape=(3,)))]
    if op.name == "sum_to":
        return [(((2, 3),), dict(shape=(3,))), (((2, 4),), dict(shape=(2, 1))),
                (((2, 3),), dict(shape=()))]
    if op.kind == SELECT:
        return SELECT_CASES[op.name]
    if op.kind == CONV:
        return CONV_CASES[op.name]
    if op.kind == RANDOM:       # the counter, and optionally a tensor giving the shape
        return [(((),), dict(shape=(3, 2), seed=1)), (((), (2, 3)), dict(shape=None, seed=7))]
    if op.name in TAKE_CASES:
        return TAKE_CASES[op.name]
    raise AssertionError(f"no test cases for op {op.name!r}: add them here")


def ix(shape, key) -> tuple[int, ...]:
    """getitem's index attribute for ``x[key]`` on a tensor of ``shape``."""
    class X:
        name, ndim = "x", len(shape)
    X.shape = shape
    return index_spec(X, key)


def scatter_attrs(of, arg, shapes, **fwd):
    attrs = dict.fromkeys(("index", "axis", "multiples", "paddings", "indices",
                           "indices_shape"))
    attrs.update(fwd, of=of, arg=arg, shapes=tuple(v for s in shapes for v in (len(s), *s)))
    return attrs


SELECT_CASES = {
    "getitem": [(((3, 4),), dict(index=ix((3, 4), 1))),
                (((3, 4),), dict(index=ix((3, 4), (slice(None), slice(1, 3))))),
                (((2, 3, 4),), dict(index=ix((2, 3, 4), (-1, slice(None, None, -2), None)))),
                (((5,),), dict(index=ix((5,), slice(4, 0, -2))))],
    "concat": [(((2, 3), (2, 1)), dict(axis=1)), (((2,), (3,)), dict(axis=0))],
    "stack": [(((3,), (3,)), dict(axis=0)), (((2, 2), (2, 2)), dict(axis=-1))],
    "tile": [(((2, 3),), dict(multiples=(2, 1))), (((3,),), dict(multiples=(3,)))],
    "pad": [(((2, 3), ()), dict(paddings=(1, 0, 0, 2))), (((3,), ()), dict(paddings=(0, 0)))],
    "squeeze": [(((3, 1, 2),), dict(axis=(1,))), (((1, 4),), dict(axis=None))],
    "expand_dims": [(((3,),), dict(axis=0)), (((2, 3),), dict(axis=-1))],
    "gather": [(((4, 3),), dict(indices=(3, 0, 3), indices_shape=(3,), axis=0)),
               (((2, 5),), dict(indices=(1, 1, 4, 0), indices_shape=(2, 2), axis=1))],
    "scatter": [(((4,),), scatter_attrs("getitem", 0, ((3, 4),), index=ix((3, 4), 1))),
                (((3, 3),), scatter_attrs("gather", 0, ((4, 3),), indices=(3, 0, 3),
                                          indices_shape=(3,), axis=0)),
                (((2, 4),), scatter_attrs("pad", 1, ((2, 3), ()), paddings=(0, 0, 0, 1)))],
    "flatten": [(((2, 3, 2),), {}), (((3, 1, 2, 2),), {})],
}


# gather at run-time indices: the second input is drawn in 0..3.99 and cast to int64
# (as_operands; the impls truncate the same floats), so every axis indexed has size ≥ 4
TAKE_CASES = {
    "take": [(((4, 3), (5,)), dict(axis=0)), (((2, 5), (2, 2)), dict(axis=1)),
             (((6,), ()), dict(axis=0))],
    "take_grad": [(((5, 3), (5,)), dict(shape=(4, 3), axis=0)),
                  (((2, 2, 2), (2, 2)), dict(shape=(2, 4), axis=1))],
}


def conv_attrs(s=1, p="SAME", d=1, **more):
    return dict(strides=(s, s), padding=p, dilation=(d, d), **more)


def pool_attrs(k=2, s=2, p="VALID", **more):
    return dict(ksize=(k, k), strides=(s, s), padding=p, **more)


# x (2, 5, 4, 3), filter (3, 2, 3, 2): SAME stride 1 → (2, 5, 4, 2); VALID stride 2 →
# (2, 2, 2, 2); SAME dilation 2 → (2, 5, 4, 2). Pools: 2×2/2 VALID → (2, 2, 2, 3),
# 3×3/2 SAME → (2, 3, 2, 3).
X4, F4 = (2, 5, 4, 3), (3, 2, 3, 2)
CONV_CASES = {
    "conv2d": [((X4, F4), conv_attrs()), ((X4, F4), conv_attrs(2, "VALID")),
               ((X4, F4), conv_attrs(1, "SAME", 2))],
    "conv2d_backprop_input": [
        (((2, 5, 4, 2), F4), conv_attrs(input_sizes=(5, 4))),
        (((2, 2, 2, 2), F4), conv_attrs(2, "VALID", input_sizes=(5, 4)))],
    "conv2d_backprop_filter": [
        ((X4, (2, 5, 4, 2)), conv_attrs(filter_sizes=(3, 2))),
        ((X4, (2, 5, 4, 2)), conv_attrs(1, "SAME", 2, filter_sizes=(3, 2))),
        ((X4, (2, 2, 2, 2)), conv_attrs(2, "VALID", filter_sizes=(3, 2)))],
    "max_pool": [((X4,), pool_attrs()), ((X4,), pool_attrs(3, 2, "SAME"))],
    "avg_pool": [((X4,), pool_attrs()), ((X4,), pool_attrs(3, 2, "SAME"))],
    "max_pool_grad": [((X4, (2, 2, 2, 3)), pool_attrs()),
                      ((X4, (2, 3, 2, 3)), pool_attrs(3, 2, "SAME"))],
    "max_pool_gradgrad": [((X4, X4), pool_attrs()), ((X4, X4), pool_attrs(3, 2, "SAME"))],
    "avg_pool_grad": [(((2, 2, 2, 3),), pool_attrs(input_sizes=(5, 4))),
                      (((2, 3, 2, 3),), pool_attrs(3, 2, "SAME", input_sizes=(5, 4)))],
}


def sample(op, i: int, shape, rng) -> np.ndarray:
    lo, hi = op.domain[i] if i < len(op.domain) else (-2.0, 2.0)
    x = rng.uniform(lo, hi, shape)
    if op.name == "where" and i == 0 or op.dtypes == "logical":
        x = np.round(x)               # a condition with zeros and ones
    for p in op.avoid:
        near = np.abs(x - p) < 0.2
        x = np.where(near, x + np.sign(x - p + 1e-9) * 0.4, x)
    return np.asarray(x, dtype=float)


ALL_CASES = [pytest.param(name, k, id=f"{name}-{k}")
             for name in OP_NAMES for k in range(len(cases(OPS[name])))]


def build_case(name: str, k: int, engine: str, seed: int = 0):
    """f = sum(op(inputs) * R) for a random R, so every output element matters."""
    op = OPS[name]
    shapes, attrs = cases(op)[k]
    rng = np.random.default_rng(seed)
    values = [sample(op, i, s, rng) for i, s in enumerate(shapes)]
    with nbbp.Graph():
        leaves = [nbbp.param(v, name=f"x{i}") for i, v in enumerate(values)]
        y = apply(name, *as_operands(op, leaves), **dict(attrs))
        r = rng.uniform(0.5, 1.5, y.shape)
        f = nbbp.sum(as_float(y) * r, name="f")
    return nbbp.Model(f, engine=engine), values, attrs, r


def as_operands(op, leaves):
    """The float leaves as the op's operands: booleans (x ≠ 0) for a logical op, the
    indices of a gather at run-time indices as int64."""
    if op.dtypes == "gather":
        return [leaves[0], nbbp.cast(leaves[1], "int64"), *leaves[2:]]
    return [nbbp.cast(x, "bool") for x in leaves] if op.dtypes == "logical" else leaves


def as_float(y):
    """An integer or boolean result as float64, to weigh it with floats."""
    return y if y.dtype in ("float64", "float32") else nbbp.cast(y, "float64")


def impl_sum(op, values, attrs, r) -> float:
    kw = {a: attrs.get(a, -1 if a == "axis" and op.kind == SOFTMAX else None)
          for a in op.attrs}
    if op.kind == REDUCE:
        kw["keepdims"] = attrs.get("keepdims", False)
    if op.name == "transpose" and kw["perm"] is None:
        kw["perm"] = None
    return float(np.sum(np.asarray(op.impl(*values, **kw)) * r))


@pytest.mark.parametrize("name,k", ALL_CASES)
def test_vjp_matches_finite_differences(name, k, engine):
    op = OPS[name]
    m, values, attrs, r = build_case(name, k, engine)
    assert m.value == pytest.approx(impl_sum(op, values, attrs, r), rel=1e-12, abs=1e-12)
    eps = 1e-6
    for i, v in enumerate(values):
        analytic = np.asarray(m.grads[f"x{i}"])
        if op.d[i] is None if i < len(op.d) else True:
            assert not np.any(analytic), f"{name}: no gradient should reach input {i}"
            continue
        numeric = np.zeros_like(v)
        for idx in np.ndindex(v.shape):
            vp = [x.copy() for x in values]
            vm = [x.copy() for x in values]
            vp[i][idx] += eps
            vm[i][idx] -= eps
            numeric[idx] = (impl_sum(op, vp, attrs, r) - impl_sum(op, vm, attrs, r)) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7,
                                   err_msg=f"{name} input {i}")


ELEMENTWISE = [n for n in OP_NAMES if OPS[n].kind in (UNARY, BINARY, WHERE)]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_displayed_formula_is_the_local_derivative(name):
    op = OPS[name]
    rng = np.random.default_rng(1)
    values = [sample(op, i, (6,), rng) for i in range(op.arity)]
    with nbbp.Graph():
        leaves = [nbbp.param(v, name=f"x{i}") for i, v in enumerate(values)]
        y = apply(name, *as_operands(op, leaves))
        f = nbbp.sum(as_float(y), name="f")
    m = nbbp.Model(f)
    env = dict(FORMULA_NS, y=m.value_of(y), **dict(zip(op.args, values)))
    for i, d in enumerate(op.d):
        text = op.formula(i)
        assert text.startswith("∂") and ("= 0 (no gradient)" in text) == (d is None)
        if d is None:
            continue
        local = np.broadcast_to(np.asarray(eval(d, {}, env), dtype=float), (6,))
        np.testing.assert_allclose(m.grads[f"x{i}"], local, rtol=1e-12, err_msg=text)


ELEMENTWISE_CASES = [c for c in ALL_CASES
                     if OPS[c.values[0]].kind in (UNARY, BINARY) and c.values[1] < 2
                     and OPS[c.values[0]].dtypes != "logical" and c.values[0] != "cast"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name,k", ELEMENTWISE_CASES)
def test_a_non_finite_input_gives_what_the_reference_gives(name, k, bad):
    """Every elementwise op on a scalar and on an array with one input nan or ±inf:
    the kernels give the NumPy reference engine's outcome — the same NumericError
    text, or the same values (a kernel that turned nan into a number would hide it)."""
    def outcome(engine):
        m, values, *_ = build_case(name, k, engine, seed=5)
        v = np.array(values[0], dtype=float)
        v.flat[0] = bad
        try:
            m.set(x0=v)
        except nbbp.NumericError as e:
            return str(e)
        return m.value, m.grads

    want, got = outcome("python"), outcome("numba")
    if isinstance(want, str) or isinstance(got, str):
        # both name the node; "nan" or "inf" may differ where NumPy's power takes its
        # square-root shortcut (power(-inf, 0.5) is nan, C's pow gives inf)
        assert isinstance(got, str) and got.replace("inf", "nan") == want.replace("inf", "nan")
    else:
        np.testing.assert_allclose(got[0], want[0], rtol=1e-13, atol=1e-15)
        for key in want[1]:
            np.testing.assert_allclose(got[1][key], want[1][key], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name,a,b", [
    ("pow", -0.0, -3.0), ("pow", -0.0, -2.0), ("pow", 0.0, -1.5), ("pow", -3.0, np.inf),
    ("pow", -0.5, np.inf), ("pow", -np.inf, 1.9967), ("pow", -np.inf, -0.3661),
    ("pow", -np.inf, -3.0), ("pow", -8.0, 1 / 3), ("pow", np.nan, 0.0),
    ("floordiv", -3.0, np.inf), ("floordiv", 3.0, -np.inf), ("floordiv", -7.0, 2.0),
    ("floordiv", 7.5, -2.0), ("floordiv", np.inf, 2.0), ("floordiv", np.nan, 2.0),
    ("floordiv", 1.0, 0.0), ("floordiv", 0.0, 0.0), ("floordiv", -0.0, 5.0),
    ("floordiv", 1e308, 1e-308), ("mod", -3.0, np.inf), ("mod", 7.5, -2.0),
    ("mod", np.inf, 2.0), ("relu", np.nan, None), ("relu", -0.0, None),
    ("relu", -np.inf, None)])
def test_edge_values_are_numpys(name, a, b):
    """IEEE edge cases of the kernels' scalar ops (the functions the interpreters
    inline, called directly) against NumPy's own function: the same value, sign of
    zero included, or nan where NumPy gives nan. (NumPy's power(-inf, 0.5) is nan, by
    its square-root shortcut, where C's pow and NumPy's power at other exponents give
    inf; the kernels follow C there.)"""
    from nbbp.core import kernels as k

    code = OPS[name].code
    with np.errstate(all="ignore"):
        if b is None:
            want, got = float(np.maximum(a, 0.0)), k.unary(code, a)
        else:
            fn = {"pow": np.power, "floordiv": np.floor_divide, "mod": np.mod}[name]
            want, got = float(fn(a, b)), k.binary(code, a, b)
    assert type(got) is float
    if np.isnan(want):
        assert np.isnan(got)
    else:
        assert got == want and np.signbit(got) == np.signbit(want)


@pytest.mark.parametrize("name,k", ALL_CASES)
def test_compiled_kernel_matches_python_reference(name, k):
    a, *_ = build_case(name, k, "numba", seed=3)
    b, *_ = build_case(name, k, "python", seed=3)
    # conv's kernels sum through BLAS in another order than NumPy's: a few ulps of the
    # terms where they cancel
    tol = dict(rtol=1e-12, atol=1e-13) if OPS[name].kind == CONV else dict(rtol=1e-13,
                                                                            atol=1e-15)
    np.testing.assert_allclose(a.value, b.value, **tol)
    for key in a.grads:
        np.testing.assert_allclose(a.grads[key], b.grads[key], **tol)


def test_every_op_has_cases_domain_and_display():
    for name in OP_NAMES:
        op = OPS[name]
        assert cases(op), name
        assert op.expr and len(op.d) == op.arity, name
        assert (op.vjp is None) == all(d is None for d in op.d), name
        assert callable(nbbp.__dict__[name]), f"nbbp.{name} missing"
    codes = [op.code for op in OPS.values()]
    assert len(set(codes)) == len(codes)


def test_formula_text_examples():
    assert OPS["mul"].formula(0) == "∂(a·b)/∂a = b"
    assert OPS["tanh"].formula(0) == "∂tanh(a)/∂a = 1 − y²"
    assert OPS["matmul"].formula(1) == "∂L/∂b = aᵀ @ g"
    assert OPS["step"].formula(0).endswith("= 0 (no gradient)")
    assert OPS["where"].formula(1) == "∂where(c, a, b)/∂a = c ≠ 0"


@pytest.mark.parametrize("kind", [LAYOUT])
def test_layout_ops_compose(kind, engine):
    src = "x = param(reshape_src)\ny = transpose(reshape(x, (3, 4)))\nf = sum(broadcast_to(y, (2, 4, 3)) * w)"
    w = np.arange(24.0).reshape(2, 4, 3)
    m = nbbp.build(src, namespace={"reshape_src": np.arange(12.0), "w": w}, engine=engine)
    want = (w.sum(axis=0)).T.reshape(12)
    np.testing.assert_array_equal(m.grads["x"], want)


def test_an_op_without_a_kernel_is_refused_by_the_compiled_engine(monkeypatch):
    from nbbp.core import ops
    cube = ops.Op("cube", 199, 1, UNARY, lambda a: a ** 3, lambda g, y: (g * 3.0 * y.inputs[0] ** 2,),
                  "a³", ("3*a**2",), ((-2.0, 2.0),))
    monkeypatch.setitem(ops.OPS, "cube", cube)
    with nbbp.Graph():
        x = nbbp.param(2.0, name="x")
        y = apply("cube", x, name_="y")
    assert nbbp.Model(y, engine="python").value == 8.0
    with pytest.raises(nbbp.NbbpError, match=r"op 'cube' \(node 'y'\) has no compiled kernel.*engine='python'"):
        nbbp.Model(y)


def test_an_assignment_names_a_gradient_node():
    m = nbbp.build("x = param(2.0)\ny = x ** 3\nd1 = grad(y, x)\nd2 = grad(d1, x)", output="y")
    assert m.run("d1") == 12.0 and m.run("d2") == 12.0
