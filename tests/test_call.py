"""The call path: ``m.set`` with precomputed slots, and ``m.function(...)``, the
set + run + read in one call. Oracles: the worked examples' known numbers, closed-form
derivatives (hypothesis), NumPy, and the Python reference engine; errors are compared
with the text ``set`` gives for the same value."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nbbp

W1 = "x = param(3.0)\ny = param(2.0)\nf = x*x*y + y + 1"
W2 = """x1 = input(2.0); x2 = input(0.0)
w1 = param(-3.0); w2 = param(1.0); b = param(6.8813735870195432)
o = tanh(x1*w1 + x2*w2 + b)"""
MIXED = "x = param([1.0, 2.0])\nw = param(3.0)\nf = sum(x*x)*w"
finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False)


def _error(fn):
    with pytest.raises(nbbp.NbbpError) as info:
        fn()
    return type(info.value), str(info.value)


def test_function_gives_the_worked_examples():
    m = nbbp.build(W1)
    f = m.function("x", "y")
    assert f(3.0, 2.0) == (21.0, (12.0, 10.0))          # the article's numbers
    assert f(y=2.0, x=3.0) == (21.0, (12.0, 10.0))
    o = nbbp.build(W2).function()
    value, grads = o(2.0, 0.0, -3.0, 1.0, 6.8813735870195432)
    assert value == pytest.approx(math.sqrt(0.5), rel=1e-15)
    assert grads == pytest.approx((-1.5, 0.5, 1.0, 0.0, 0.5), rel=1e-12)  # x1 x2 w1 w2 b
    assert o.names == ("x1", "x2", "w1", "w2", "b")


@settings(max_examples=40, deadline=None)
@given(finite, finite)
def test_function_equals_set_then_read_and_the_closed_form(x, y):
    m, ref = nbbp.build(W1), nbbp.build(W1, engine="python")
    value, (gx, gy) = m.function("x", "y")(x, y)
    ref.set(x=x, y=y)
    assert (value, gx, gy) == (ref.value, ref.grads["x"], ref.grads["y"])
    assert (m.value, m.grads) == (ref.value, ref.grads)     # the model keeps the call
    assert value == pytest.approx(x * x * y + y + 1, rel=1e-12, abs=1e-12)
    assert (gx, gy) == pytest.approx((2 * x * y, x * x + 1), rel=1e-12, abs=1e-12)


def test_function_wrt_one_name_any_node_and_tensors():
    m = nbbp.build(MIXED)
    f = m.function("x", "w", wrt="x")
    value, gx = f(np.array([1.0, 2.0]), 2.0)
    assert value == 10.0 and np.array_equal(gx, [4.0, 8.0])     # 2·x·w
    g = m.function("w", wrt=("w", "x", "f"))
    assert g(1.0) == (5.0, (5.0, pytest.approx([2.0, 4.0]), 1.0))
    assert nbbp.build(W1).function("x", wrt=())(1.0) == (5.0, ())


def test_function_results_are_fresh_not_views_of_the_arena():
    m = nbbp.build(MIXED)
    f = m.function("x", "w")
    v1, (gx1, gw1) = f(np.array([1.0, 1.0]), 2.0)
    gx1[0] = 99.0                        # writing a result changes nothing inside
    v2, (gx2, gw2) = f(np.array([2.0, 1.0]), 2.0)
    assert (v1, gw1) == (4.0, 2.0) and (v2, gw2) == (10.0, 5.0)
    assert np.array_equal(gx2, [8.0, 4.0]) and gx1[1] == 4.0     # gx1 untouched by call 2
    assert np.array_equal(m.grad_of("x"), [8.0, 4.0])


@pytest.mark.parametrize("bad", ["a", "3.0", b"3", None, [1.0, 2.0], float("nan"),
                                 float("inf"), -float("inf"), np.ones(3), 1e400])
def test_function_errors_are_sets_and_leave_the_model_as_it_was(bad):
    m = nbbp.build(W1)
    f = m.function("x", "y")
    m.set(x=1.0)
    want = _error(lambda: m.set(x=bad, y=2.0))
    assert (m.value, m.grads) == (5.0, {"x": 4.0, "y": 2.0})
    assert _error(lambda: f(bad, 2.0)) == want
    assert _error(lambda: f(x=bad, y=2.0)) == want
    assert (m.value, m.grads) == (5.0, {"x": 4.0, "y": 2.0})     # restored


def test_a_refused_value_undoes_the_ones_written_before_it():
    m = nbbp.build(W1)
    with pytest.raises(nbbp.FeedError, match=r"set 'y': the value has shape \(2,\)"):
        m.function("x", "y")(1.0, [1.0, 2.0])
    with pytest.raises(nbbp.FeedError, match="set 'y': needs a number"):
        m.set(x=1.0, y="two")
    assert m["x"].value == 3.0 and m.value == 21.0


def test_function_argument_errors():
    m = nbbp.build(W1)
    f = m.function("x", "y")
    label = "model 'f' as a function of (x, y)"
    assert _error(lambda: f(1.0)) == (nbbp.FeedError, f"{label} needs a value for 'y' (a "
                                      "function takes every one of its arguments; "
                                      "m.set(...) changes some leaves only)")
    assert _error(lambda: f(1.0, 2.0, 3.0))[1] == f"{label} takes 2 values (x, y), got 3"
    assert _error(lambda: f(1.0, x=2.0))[1] == f"{label} got two values for 'x'"
    assert "has no argument 'yy'; did you mean 'y'" in _error(lambda: f(1.0, yy=2.0))[1]
    assert _error(lambda: m.function("f")) == _error(lambda: m.set(f=1.0))
    assert "cannot set 'f': it is a add node" in _error(lambda: m.function("f"))[1]
    assert "no node named 'z'" in _error(lambda: m.function("z"))[1]
    assert _error(lambda: m.function("x", "x"))[1] == \
        "function(...): 'x' is named twice; name each leaf once"


def test_function_nan_restores_and_names_the_node():
    m = nbbp.build("x = param(2.0)\nf = log(x)")
    f = m.function()
    with pytest.raises(nbbp.NumericError, match="node 'f' = log"):
        f(-1.0)
    assert m["x"].value == 2.0 and f(1.0) == (0.0, (1.0,))


def test_fast_set_path_keeps_every_check():
    m = nbbp.build(W1)
    assert m.set(x=1.0).grads == {"x": 4.0, "y": 2.0}          # floats: the fast path
    assert m.set(x=2, y=np.float32(1.0)).value == 6.0          # others: converted
    assert _error(lambda: m.set(x="3")) == (
        nbbp.FeedError, "set 'x': needs a number or an array of numbers, got str '3'")
    assert _error(lambda: m.set(x=[1.0, 2.0]))[1].startswith(
        "set 'x': the value has shape (2,), but 'x' has shape ()")
    assert "did you mean 'x'" in _error(lambda: m.set(xx=1.0))[1]
    assert _error(lambda: m.set({m["mul"].node: 1.0}))[1].startswith("cannot set 'mul'")
    with pytest.raises(nbbp.NumericError, match=r"mul\(x, x\) produced nan from x = nan"):
        m.set(x=float("nan"))
    assert (m.value, m.grads) == (6.0, {"x": 4.0, "y": 5.0})


def test_a_view_is_made_once_per_name_and_reads_the_current_values():
    m = nbbp.build(W1)
    x = m["x"]
    assert m["x"] is x and (x.value, x.grad) == (3.0, 12.0)
    m.set(x=1.0)
    assert (x.value, x.grad) == (1.0, 4.0) and m[x.node] is not x     # by node: a new view
    assert "no node named 'z'" in _error(lambda: m["z"])[1] and "z" not in m._views
    assert _error(lambda: m[["x"]])[1] == "nodes are named by strings, got list ['x']"
    m2 = copy.deepcopy(m)
    assert m2["x"]._m is m2 and m2["x"].value == 1.0


def test_fast_reads_match_the_reference_engine():
    for src in (W1, W2, MIXED):
        m, ref = nbbp.build(src), nbbp.build(src, engine="python")
        for name in m.grads:            # the slot read is the general reader's number
            node = m[name].node
            assert np.array_equal(m[name].grad, m.backprop.grad_of(node))
            assert type(m.grad_of(node)) is type(m.backprop.grad_of(node))
            assert np.allclose(m.grads[name], ref.grad_of(name), rtol=1e-14, atol=0)
        assert m.value == m.compiled.read(m.output)
        assert m.value == pytest.approx(ref.value, rel=1e-14)


def test_float32_model_goes_through_the_converting_path():
    m = nbbp.build("x = param(3.0)\nf = x * x", dtype="float32")
    value, (g,) = m.function()(2.0)
    assert (value, g) == (4.0, 4.0) and type(value) is np.float32


def test_a_deep_copy_has_its_own_memory():
    m = nbbp.build(W1)
    f = m.function("x", "y")
    m2, f2 = copy.deepcopy((m, f))
    assert f2(1.0, 2.0) == (5.0, (4.0, 2.0)) and m2.value == 5.0
    assert (m.value, m.grads) == (21.0, {"x": 12.0, "y": 10.0})    # the original untouched
    assert f(2.0, 1.0) == (6.0, (4.0, 5.0)) and m2.set(x=3.0).value == 21.0


class _Float(float):
    pass


def test_the_c_call_and_the_generic_call_agree_on_every_form():
    """Floats by position or every one by name take the call in C; ints, bools, NumPy
    scalars, float subclasses and mixes of positions and names take the generic one —
    every form gives the same numbers, and the reference engine (NumPy, its program
    called from the same C call) gives them to the last bits tanh rounds apart."""
    m = nbbp.build(W2)
    o = m.function()
    assert isinstance(o, nbbp.model.Function) and o._armed
    args = (2.0, 0.0, -3.0, 1.0, 6.8813735870195432)
    want = o(*args)
    ref = nbbp.build(W2, engine="python").function()
    rv, rg = ref(*args)
    assert rv == pytest.approx(want[0], rel=1e-15) and rg == pytest.approx(want[1], rel=1e-15)
    forms = [lambda: o(*args), lambda: o(**dict(zip(o.names, args))),
             lambda: o(2, 0, -3.0, 1.0, np.float64(args[4])),
             lambda: o(_Float(2.0), False, -3.0, True, args[4]),
             lambda: o(*args[:2], **dict(zip(o.names[2:], args[2:])))]
    for form in forms:
        assert form() == want
    assert "has no argument 'a0'" in _error(lambda: o(*args[:4], a0=1.0))[1]
    bad = (*args[:4], float("nan"))                              # nan in the last slot
    err = _error(lambda: m.set(**dict(zip(o.names, bad))))
    assert err[0] is nbbp.NumericError and "add(add, b) produced nan" in err[1]
    assert _error(lambda: o(*bad)) == err and m.value == want[0]     # restored
    assert o(*args) == want and nbbp.build(W1).function()(3.0, 2.0) == (21.0, (12.0, 10.0))



special = st.sampled_from([float("nan"), float("inf"), -float("inf"), -0.0, 1e308, 5e-324])


@settings(max_examples=60, deadline=None)
@given(st.one_of(finite, special), st.one_of(finite, special), st.booleans())
def test_set_in_c_equals_the_reference_engine_or_raises_its_error(x, y, by_dict):
    """``m.set`` of floats (in C) against the NumPy reference engine's ``set`` (the
    Python path): the same value and gradients, or the same error with every value
    as it was before."""
    m, ref = nbbp.build(W1), nbbp.build(W1, engine="python")
    for model in (m, ref):
        model.set(x=0.5, y=-1.5)
    before = (m.value, m.grads)

    def set_(model):
        return model.set({"x": x, "y": y}) if by_dict else model.set(x=x, y=y)

    try:
        set_(ref)
    except nbbp.NbbpError as e:
        assert _error(lambda: set_(m)) == (type(e), str(e))
        assert (m.value, m.grads) == before and (m["x"].value, m["y"].value) == (0.5, -1.5)
        return
    set_(m)
    assert (m.value, m.grads) == (ref.value, ref.grads)
    assert m.grads == pytest.approx({"x": 2 * x * y, "y": x * x + 1}, rel=1e-12, abs=1e-300)


def test_set_in_c_takes_floats_for_float64_scalars_only():
    m = nbbp.build(MIXED)
    assert m._fast is None                               # made on the first set or grads
    assert m._armed().grads() is None                    # x's gradient is an array
    assert m.set(w=2.0).value == 10.0 and m._fast.set({"w": 2.0})
    assert not m._fast.set({"x": 1.0}) and not m._fast.set({"w": 2})      # declined
    assert m.set(w=2, x=[2.0, 1.0]).grads["w"] == 5.0   # the Python path takes them
    assert _error(lambda: m.set(w="2.0")) == (
        nbbp.FeedError, "set 'w': needs a number or an array of numbers, got str '2.0'")
    assert "no node named 'v'" in _error(lambda: m.set(v=1.0))[1]
    assert m.value == 10.0


def test_the_c_call_keeps_no_reference_it_should_not():
    """75k calls of each C path leave no memory behind (every tuple, dict and float made is
    handed to the caller or freed), the arguments' reference counts are as before, and
    a function dropped with its model is collected (the arena's buffer released)."""
    import gc
    import sys
    import tracemalloc
    import weakref

    m = nbbp.build(W1)
    f, fy = m.function("x", "y"), m.function("x", "y", wrt="y")
    a, b = 1.25, 2.5
    counts = sys.getrefcount(a), sys.getrefcount(b)
    tracemalloc.start()
    for _ in range(3):
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(25_000):
            f(a, b)
            fy(x=a, y=b)
            m.set(x=a, y=b)
            m.set({"x": b, "y": a})
            _ = m.grads, m.value
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 10_000, f"{grown} bytes kept by 25k calls"
    assert (sys.getrefcount(a), sys.getrefcount(b)) == counts
    assert f(a, b) == (a * a * b + b + 1, (2 * a * b, a * a + 1))
    gone = weakref.ref(f)
    del f, fy, m
    gc.collect()
    assert gone() is None


def test_the_model_takes_set_value_and_grads_in_c_once_armed():
    """``ModelBase``: before the first ``set`` or ``grads`` nothing is armed and the
    Python paths answer; after it, the C paths give the same values (the closed form);
    ``set`` with a dict is taken in C too, a wrong call gets one clear line, and a deep
    copy starts unarmed and independent."""
    import copy

    m = nbbp.build(W1)
    assert m._fast is None and (m.value, m.grads) == (21.0, {"x": 12.0, "y": 10.0})
    assert m._fast is not None                           # grads armed it
    assert m.set({"x": 2.0}, y=1.0) is m and (m.value, m.grads) == (6.0, {"x": 4.0, "y": 5.0})
    assert m.set({"y": 3.0}).value == 2.0 * 2.0 * 3.0 + 3.0 + 1
    with pytest.raises(TypeError) as e:
        m.set({"x": 1.0}, {"y": 1.0})
    assert str(e.value) == "set() takes at most one positional argument (a dict of values), 2 given"
    assert "no node named 'z'" in _error(lambda: m.set({"z": 1.0}))[1]
    for a, b in ((1.0, 2.0), (-3.0, 0.5), (2.0, 1.0)):    # two call sites, names in
        assert m.set(x=a, y=b).grads == {"x": 2 * a * b, "y": a * a + 1}   # either order:
        assert m.set(y=a, x=b).grads == {"x": 2 * a * b, "y": b * b + 1}   # each its slots
        assert m.set(y=a).value == b * b * a + a + 1 and "no node named 'z'" in _error(
            lambda: m.set(z=1.0, x=a))[1]
    m.set(x=2.0, y=3.0)
    with pytest.raises(TypeError, match="_fast must be a FastSet or None"):
        m._fast = object()
    c = copy.deepcopy(m)
    assert c._fast is None and (c.value, c.grads) == (m.value, m.grads)
    c.set(x=1.0)
    assert (c.value, m.value) == (7.0, 16.0) and c.grads == {"x": 6.0, "y": 2.0}


MLP = """X = input(DATA)
W = param(W0)
b = param(B0)
h = tanh(matmul(X, W) + b)
loss = mean(h * h)"""


def _mlp(engine="numba"):
    rng = np.random.default_rng(3)
    ns = {"DATA": rng.normal(size=(5, 4)), "W0": rng.normal(size=(4, 3)),
          "B0": rng.normal(size=3)}
    return nbbp.build(MLP, namespace=ns, engine=engine), ns


@pytest.mark.parametrize("engine", ["numba", "python"])
def test_a_function_of_the_params_runs_only_their_part_of_the_backward_pass(engine):
    """``wrt`` the params: the gradients equal finite differences and the full run's;
    the input's gradient and the edges are left out of the call, and anything that
    reads them (grad_of, grads, edges, the picture) gets them complete."""
    from oracles import fd_grad
    m, ns = _mlp(engine)
    full, _ = _mlp(engine)
    f = m.function("W", "b", wrt=("W", "b"))
    assert f._pruned
    W = ns["W0"] + 0.1
    loss, (gW, gb) = f(W, ns["B0"])
    assert m.compiled.partial                               # dX not computed by the call

    def loss_of(Wv, bv):
        h = np.tanh(ns["DATA"] @ Wv + bv)
        return np.mean(h * h)

    assert loss == pytest.approx(loss_of(W, ns["B0"]), rel=1e-12)
    assert np.allclose(gW, fd_grad(lambda w: loss_of(w, ns["B0"]), W), rtol=1e-6, atol=1e-9)
    assert np.allclose(gb, fd_grad(lambda v: loss_of(W, v), ns["B0"]), rtol=1e-6, atol=1e-9)
    full.set(W=W)
    assert np.array_equal(gW, full.grad_of("W")) and np.array_equal(gb, full.grad_of("b"))
    assert np.array_equal(m.grad_of("X"), full.grad_of("X")) and not m.compiled.partial
    f(W, ns["B0"])
    assert m.to_dot() == full.to_dot()                      # the picture completes too
    f(W, ns["B0"])
    assert [e.grad is None or np.array_equal(e.grad, g.grad) or e.grad == g.grad
            for e, g in zip(m.edges, full.edges)] == [True] * len(m.edges)
    f(W, ns["B0"])
    assert m.grads.keys() == full.grads.keys() and all(
        np.array_equal(v, full.grads[k]) for k, v in m.grads.items())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("wrt", [None, ("W", "b"), "W"])
def test_the_array_lane_equals_set_s_path(dtype, wrt):
    """Arrays of each leaf's dtype and shape are copied straight into the arena and the
    gradients straight out; every other form goes through ``set``'s conversions — the
    same numbers, fresh arrays, and on a nan the same error with the values restored.
    Oracles: the reference engine's set + grad_of, and finite differences (f64)."""
    from oracles import fd_grad
    rng = np.random.default_rng(4)
    ns = {"DATA": rng.normal(size=(5, 4)), "W0": rng.normal(size=(4, 3)),
          "B0": rng.normal(size=3)}
    m = nbbp.build(MLP, namespace=ns, dtype=dtype)
    ref = nbbp.build(MLP, namespace=ns, dtype=dtype, engine="python")
    f = m.function("W", "b", wrt=wrt)
    assert f._views is not None and f._gviews is not None
    t = np.dtype(dtype).type
    W, b = (ns["W0"] + 0.3).astype(dtype), (ns["B0"] - 0.2).astype(dtype)
    loss, grads = f(W, b)
    ref.set(W=W, b=b)
    names = [wrt] if isinstance(wrt, str) else wrt or ("W", "b")
    want = [ref.grad_of(k) for k in names]
    got = [grads] if isinstance(wrt, str) else list(grads)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == "float64" else dict(rtol=2e-6, atol=1e-7)
    assert type(loss) is type(ref.value)
    np.testing.assert_allclose(loss, ref.value, **tol)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype == t and g.shape == w.shape
        np.testing.assert_allclose(g, w, **tol)
        assert not np.shares_memory(g, m.arena.stores[0]) and not np.shares_memory(
            g, m.arena.stores[1])
    if dtype == "float64" and wrt == ("W", "b"):
        def loss_of(Wv):
            h = np.tanh(ns["DATA"] @ Wv + b)
            return np.mean(h * h)
        np.testing.assert_allclose(got[0], fd_grad(loss_of, W), rtol=1e-6, atol=1e-9)
    for other in ([W.tolist(), b], [W.astype("float64" if dtype == "float32" else "float32"),
                                    b], [np.asfortranarray(W), b[::-1][::-1]]):
        lo, gr = f(*other)                     # lists, another dtype, other layouts
        assert lo == pytest.approx(loss, rel=1e-6)
        for g, w in zip([gr] if isinstance(wrt, str) else gr, got):
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)
    bad = W.copy()
    bad[0, 0] = np.nan
    err = _error(lambda: f(bad, b))
    assert err == _error(lambda: m.set(W=bad, b=b)) and err[0] is nbbp.NumericError
    assert np.array_equal(m["W"].value, W) and np.array_equal(m["b"].value, b)


def test_the_array_lane_is_off_for_scalar_leaves_and_mixed_dtypes():
    m = nbbp.build(MIXED)
    f = m.function("x", "w", wrt="x")
    assert f._views is None and f._gviews is not None     # w is a scalar: set's path
    value, gx = f(np.array([1.0, 2.0]), 2.0)
    assert value == 10.0 and np.array_equal(gx, [4.0, 8.0])
    g = m.function("x", wrt=("x", "w"))
    assert g._views is not None and g._gviews is None      # w's gradient is a float
    assert g(np.array([1.0, 1.0]))[1][1] == 2.0


def test_a_pruned_function_reports_nan_as_set_does():
    m, ns = _mlp()
    f = m.function("W", wrt="W")
    bad = ns["W0"].copy()
    bad[1, 2] = np.nan
    want = _error(lambda: m.set(W=bad))
    assert want[0] is nbbp.NumericError
    assert _error(lambda: f(bad)) == want and not m.compiled.partial
    assert np.array_equal(m["W"].value, ns["W0"])            # restored
    w1 = nbbp.build(W1)
    fx = w1.function("x", "y", wrt="x")                      # the fast lane, pruned
    assert fx._pruned and fx(1.0, 2.0) == (5.0, 4.0) and w1.compiled.partial
    assert w1.grads == {"x": 4.0, "y": 2.0} and not w1.compiled.partial
