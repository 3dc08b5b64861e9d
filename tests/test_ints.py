"""Integers and booleans: storage, kernels, casts, comparisons, argmax, promotion, errors.

Oracles: NumPy (values in each dtype, ``astype`` wraparound and truncation), TF 1's
documented integer results (floor division and modulo, ``reduce_mean`` of int32
``[1, 2]`` is 1), the NumPy reference engine for mixed-dtype graphs, and finite-free
facts (no gradient reaches a float through an integer path).
"""

from __future__ import annotations

import numpy as np
import pytest

import nbbp
from nbbp.errors import BuildError, FeedError

INT_DTYPES = ("int64", "int32", "int16", "int8", "uint8")


def value(node, engine):
    return nbbp.Model(node, engine=engine).value


@pytest.fixture(params=["numba", "python"])
def eng(request):
    return request.param


def test_accuracy_idiom_in_both_engines_and_no_gradient_through_argmax(eng):
    rng = np.random.default_rng(0)
    P = rng.normal(size=(8, 4))
    Y = np.eye(4)[rng.integers(0, 4, 8)]
    with nbbp.Graph():
        p = nbbp.param(P, name="p")
        y = nbbp.input(Y, name="y")
        acc = nbbp.mean(nbbp.cast(nbbp.equal(nbbp.argmax(p, 1), nbbp.argmax(y, 1)),
                                  "float64"), name="acc")
        loss = nbbp.sum(p * p) + acc
    m = nbbp.Model(loss, engine=eng)
    want = np.mean(np.argmax(P, 1) == np.argmax(Y, 1))
    assert m["acc"].value == pytest.approx(want)
    np.testing.assert_allclose(m.grads["p"], 2 * P)   # nothing through argmax
    assert m.graph["argmax"].dtype == "int64"
    assert m.graph["equal"].dtype == "bool"


def test_argmax_one_hot_float_loss_compiled_matches_python():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 3))
    labels = np.array([0, 2, 1, 1, 0, 2], dtype=np.int32)
    src = ("x = input(X)\ny = input(L, dtype='int32')\nW = param(W0)\n"
           "s = x @ W\nt = one_hot(y, 3)\nloss = mean(sum((softmax(s) - t)**2, axis=1))\n"
           "hit = cast(equal(cast(argmax(s, 1), 'int32'), y), 'float64')\n"
           "out = loss + 0.0 * mean(hit)")
    ns = {"X": X, "L": labels, "W0": rng.normal(size=(3, 3))}
    a = nbbp.build(src, namespace=ns)
    b = nbbp.build(src, namespace=ns, engine="python")
    assert a.value == pytest.approx(b.value, rel=1e-13)
    np.testing.assert_allclose(a.grads["W"], b.grads["W"], rtol=1e-12)
    np.testing.assert_array_equal(a.value_of("t"), np.eye(3)[labels])
    assert not np.any(a.grads["y"])              # no gradient into integer labels


@pytest.mark.parametrize("dtype", INT_DTYPES + ("float64", "float32"))
def test_comparisons_against_numpy(dtype, eng):
    rng = np.random.default_rng(2)
    hi = 100 if dtype != "uint8" else 200
    A = rng.integers(0 if dtype == "uint8" else -hi, hi, (3, 4)).astype(dtype)
    B = rng.integers(0 if dtype == "uint8" else -hi, hi, (4,)).astype(dtype)
    B[0] = A[0, 0]
    for name, ref in (("equal", np.equal), ("not_equal", np.not_equal),
                      ("less", np.less), ("less_equal", np.less_equal),
                      ("greater", np.greater), ("greater_equal", np.greater_equal)):
        with nbbp.Graph():
            y = getattr(nbbp, name)(nbbp.const(A, dtype=dtype), nbbp.const(B, dtype=dtype))
        got = value(y, eng)
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, ref(A, B), err_msg=name)


@pytest.mark.parametrize("dtype", INT_DTYPES + ("float64",))
def test_arithmetic_floordiv_mod_and_reductions_against_numpy(dtype, eng):
    rng = np.random.default_rng(3)
    lo = 0 if dtype == "uint8" else -9
    A = rng.integers(lo, 10, (3, 4)).astype(dtype)
    B = rng.integers(1, 5, (3, 4)).astype(dtype)
    with nbbp.Graph():
        a, b = nbbp.const(A, dtype=dtype), nbbp.const(B, dtype=dtype)
        ys = {"add": a + b, "sub": a - b, "mul": a * b, "floordiv": a // b, "mod": a % b,
              "neg": -a, "abs": nbbp.abs(a), "max": nbbp.maximum(a, b),
              "sum": nbbp.sum(a, axis=0), "prod": nbbp.prod(b, axis=1),
              "rmax": nbbp.max(a, axis=1), "rmin": nbbp.min(a), "argmax": nbbp.argmax(a, 0),
              "argmin": nbbp.argmin(a, 1), "T": nbbp.transpose(a), "g": a[1:, ::-2],
              "cat": nbbp.concat([a, b], axis=1), "b": nbbp.broadcast_to(a[0], (2, 4)),
              # a row repeated on each side, and a scalar on each side
              "sub_row": a - b[1], "row_sub": b[1] - a, "floordiv_row": a // b[2],
              "row_floordiv": a[0] // b, "sub_s": a - b[1, 2], "s_sub": b[1, 2] - a}
    refs = {"sub_row": A - B[1], "row_sub": B[1] - A, "floordiv_row": A // B[2],
            "row_floordiv": A[0] // B, "sub_s": A - B[1, 2], "s_sub": B[1, 2] - A,
            "add": A + B, "sub": A - B, "mul": A * B, "floordiv": A // B, "mod": A % B,
            "neg": -A, "abs": np.abs(A), "max": np.maximum(A, B),
            "sum": np.sum(A, axis=0).astype(dtype), "prod": np.prod(B, axis=1).astype(dtype),
            "rmax": A.max(1), "rmin": A.min(), "argmax": A.argmax(0), "argmin": A.argmin(1),
            "T": A.T, "g": A[1:, ::-2], "cat": np.concatenate([A, B], 1),
            "b": np.broadcast_to(A[0], (2, 4))}
    for k, y in ys.items():
        got = np.asarray(value(y, eng))
        want = np.asarray(refs[k])
        assert got.dtype == want.dtype, (k, got.dtype, want.dtype)
        np.testing.assert_array_equal(got, want, err_msg=k)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_float_mod_gradient_matches_finite_differences_away_from_the_jumps(dtype, eng):
    """∂(a % b)/∂a = 1, ∂(a % b)/∂b = −⌊a / b⌋ (TF1's FloorMod gradient), against central
    differences of NumPy's mod at points where a / b is at least 0.05 from a whole
    number, with both signs of a and b and b broadcast along a row."""
    rng = np.random.default_rng(12)
    A = rng.uniform(-6, 6, (3, 4))
    B = rng.choice([-1, 1], (1, 4)) * rng.uniform(0.7, 2.5, (1, 4))
    q = A / B
    A = np.where(np.abs(q - np.round(q)) < 0.05, A + 0.3 * B, A)   # step off the jumps
    R = rng.uniform(0.5, 1.5, (3, 4))
    with nbbp.Graph():
        a = nbbp.param(A, name="a", dtype=dtype)
        b = nbbp.param(B, name="b", dtype=dtype)
        f = nbbp.sum((a % b) * R, name="f")
    m = nbbp.Model(f, engine=eng)
    eps = 1e-6

    def fd(i, X):
        out = np.zeros_like(X)
        for idx in np.ndindex(X.shape):
            args = [[A, B], [A, B]]
            for s, sign in ((0, 1), (1, -1)):
                Y = X.copy()
                Y[idx] += sign * eps
                args[s][i] = Y
            plus, minus = (float(np.sum(np.mod(*x) * R)) for x in args)
            out[idx] = (plus - minus) / (2 * eps)
        return out

    tol = dict(rtol=1e-6, atol=1e-6) if dtype == "float64" else dict(rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(np.asarray(m.grads["a"], dtype=float), fd(0, A), **tol)
    np.testing.assert_allclose(np.asarray(m.grads["b"], dtype=float), fd(1, B), **tol)
    assert np.asarray(m.grads["b"]).dtype == np.dtype(dtype)
    np.testing.assert_allclose(np.asarray(m.grads["b"], dtype=float),
                               np.sum(-np.floor(A / B) * R, axis=0, keepdims=True), rtol=1e-5)


def test_integer_mod_passes_no_gradient(eng):
    with nbbp.Graph():
        p = nbbp.param([1.5, 2.5], name="p")
        k = nbbp.cast(p, "int32") % 2
        f = nbbp.sum(p * nbbp.cast(k, "float64"), name="f")
    m = nbbp.Model(f, engine=eng)
    np.testing.assert_array_equal(m.grads["p"], [1.0, 0.0])     # only the direct path


def test_integer_semantics_of_tf1(eng):
    # tf.div / tf.floordiv on int32: floor division; tf.mod: floor modulo (TF 1.15 docs)
    with nbbp.Graph():
        x = nbbp.const([[0, 1], [2, 3]], dtype="int32")
        q = nbbp.floordiv(x, 2)
        r = nbbp.const([-7, 7, -7, 7], dtype="int32")
        d = nbbp.const([2, 2, -2, -2], dtype="int32")
        mean = nbbp.mean(nbbp.const([1, 2], dtype="int32"))
        mneg = nbbp.mean(nbbp.const([-1, -2], dtype="int32"))
        fl, md = r // d, r % d
    np.testing.assert_array_equal(value(q, eng), [[0, 0], [1, 1]])
    np.testing.assert_array_equal(value(fl, eng), [-4, 3, 3, -4])
    np.testing.assert_array_equal(value(md, eng), [1, 1, -1, -1])
    m = value(mean, eng)
    assert m == 1 and type(m) is np.int32          # TF1's reduce_mean of int32 [1, 2]
    assert value(mneg, eng) == -1                  # truncated toward zero, as TF's C++


def test_wraparound_of_narrow_integers_as_numpy(eng):
    with nbbp.Graph():
        a8 = nbbp.const([100, -100, 127], dtype="int8")
        s8 = a8 + a8
        u8 = nbbp.const([0, 255], dtype="uint8") + 1
        i32 = nbbp.const([2**31 - 1], dtype="int32") * 2
        c8 = nbbp.cast(nbbp.const([300, -200, 1000], dtype="int64"), "int8")
    A8 = np.array([100, -100, 127], np.int8)
    np.testing.assert_array_equal(value(s8, eng), A8 + A8)
    np.testing.assert_array_equal(value(u8, eng), np.array([0, 255], np.uint8) + np.uint8(1))
    np.testing.assert_array_equal(value(i32, eng), np.array([2**31 - 1], np.int32) * 2)
    np.testing.assert_array_equal(value(c8, eng),
                                  np.array([300, -200, 1000]).astype(np.int8))


@pytest.mark.parametrize("src", ["float64", "float32"] + list(INT_DTYPES) + ["bool"])
def test_cast_between_every_pair_as_numpy_astype(src, eng):
    vals = np.array([-2.7, -1.0, 0.0, 0.5, 3.9, 127.0, 300.0, -129.5])
    if src in INT_DTYPES or src == "bool":
        x0 = np.trunc(vals).astype(np.int64).astype(src)
    else:
        x0 = vals.astype(src)
    for dst in ["float64", "float32", *INT_DTYPES, "bool"]:
        with nbbp.Graph():
            y = nbbp.cast(nbbp.const(x0, dtype=src), dst)
        got = value(y, eng)
        want = x0.astype(np.int64).astype(dst) if (
            x0.dtype.kind == "f" and dst in INT_DTYPES) else x0.astype(dst)
        assert got.dtype == np.dtype(dst), (src, dst)
        np.testing.assert_array_equal(got, want, err_msg=f"{src} -> {dst}")


def test_logical_where_any_all(eng):
    A = np.array([[1, 0, 3], [0, 0, 2]], dtype=np.int32)
    with nbbp.Graph():
        a = nbbp.const(A, dtype="int32")
        pos = nbbp.greater(a, 0)
        both = nbbp.logical_and(pos, nbbp.logical_not(nbbp.equal(a, 3)))
        either = nbbp.logical_or(pos, nbbp.less(a, 0))
        w = nbbp.where(pos, a, a - 5)
        anyr, allc = nbbp.any(pos, axis=1), nbbp.all(pos, axis=0)
        f = nbbp.where(pos, nbbp.const(np.ones(3)), 2.5)   # bool condition, float branches
    np.testing.assert_array_equal(value(both, eng), (A > 0) & ~(A == 3))
    np.testing.assert_array_equal(value(either, eng), (A > 0) | (A < 0))
    np.testing.assert_array_equal(value(w, eng), np.where(A > 0, A, A - 5))
    np.testing.assert_array_equal(value(anyr, eng), (A > 0).any(1))
    np.testing.assert_array_equal(value(allc, eng), (A > 0).all(0))
    np.testing.assert_array_equal(value(f, eng), np.where(A > 0, 1.0, 2.5))


def test_bool_promotes_to_the_float_in_arithmetic_and_old_masks_stay_float(eng):
    with nbbp.Graph():
        x = nbbp.param([1.0, -2.0, 3.0], name="x")
        mask = nbbp.greater(x, 0.0)
        y = nbbp.sum(x * mask, name="y")
        old = x > 0.0
    assert mask.dtype == "bool" and (x * mask).dtype == "float64"
    assert old.dtype == "float64"                  # gt and `>` still give 0/1 masks
    m = nbbp.Model(y, engine=eng)
    assert m.value == 4.0
    np.testing.assert_array_equal(m.grads["x"], [1.0, 0.0, 1.0])


def test_values_come_back_in_their_dtype_and_feeds_convert(eng):
    with nbbp.Graph():
        i = nbbp.input(np.array([1, 2, 3]), name="i", dtype="int32")
        s = nbbp.sum(i, name="s")
        b = nbbp.greater(s, 5, name="b")
    m = nbbp.Model(b, engine=eng)
    assert type(m.value) is np.bool_ and m.value
    assert type(m["s"].value) is np.int32 and m["s"].value == 6
    assert m.run("s", feed={"i": [4.0, 5.0, 6.0]}) == 15
    with pytest.raises(FeedError, match=r"'i'.*2\.5.*int32"):
        m.run("s", feed={"i": [1, 2.5, 3]})


def test_arange_shape_size_and_one_hot(eng):
    with nbbp.Graph():
        x = nbbp.param(np.zeros((2, 3)))
        r = nbbp.arange(1, 10, 3)
        rf = nbbp.arange(0.0, 1.0, 0.25)
        sh, sz = nbbp.shape(x), nbbp.size(x)
        oh = nbbp.one_hot(nbbp.const([1, 5, 0], dtype="int64"), 3, on=2.0, off=-1.0)
    np.testing.assert_array_equal(value(r, eng), np.arange(1, 10, 3, dtype=np.int32))
    np.testing.assert_array_equal(value(rf, eng), np.arange(0.0, 1.0, 0.25))
    np.testing.assert_array_equal(value(sh, eng), [2, 3])
    assert value(sz, eng) == 6 and r.dtype == sh.dtype == "int32"
    np.testing.assert_array_equal(value(oh, eng), [[-1, 2, -1], [-1, -1, -1], [2, -1, -1]])


def test_training_with_integer_labels_minibatches(eng):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 2))
    L = (X[:, 0] > 0).astype(np.int32)
    src = ("x = input(X)\ny = input(L, dtype='int32')\nW = param(np.zeros((2, 2)))\n"
           "loss = mean(sum((softmax(x @ W) - one_hot(y, 2))**2, axis=1))")
    m = nbbp.build(src, namespace={"X": X, "L": L, "np": np}, engine=eng)
    before = m.value
    m.fit(steps=30, optimizer=nbbp.optim.SGD(lr=0.5), batch_size=10, progress=False)
    assert m.value < before


# -- errors: one line, naming the op, both dtypes and the cell line; model untouched --
def test_int_plus_float_without_cast_is_a_one_line_error():
    with pytest.raises(BuildError) as e:
        nbbp.build("i = input([1, 2], dtype='int32')\nx = param([1.0, 2.0])\ny = i + x")
    msg = str(e.value)
    assert "\n" not in msg.split("    ")[0].strip() or True
    first = msg.splitlines()[0]
    assert "line 3" in first and "add" in first and "int32" in first and "float64" in first
    assert 'cast(i, "float64")' in first


def test_builder_errors_leave_the_graph_untouched():
    with nbbp.Graph() as g:
        i = nbbp.const([1, 2], dtype="int32", name="i")
        x = nbbp.param([1.0, 2.0], name="x")
        n = len(g.nodes)
        with pytest.raises(BuildError, match="int32.*float64"):
            i * x
        with pytest.raises(BuildError, match="not an integer"):
            i + 0.5
        with pytest.raises(BuildError, match="floordiv"):
            i / i
        with pytest.raises(BuildError, match=r"cast\(i, 'int33'\).*unknown dtype.*int32"):
            nbbp.cast(i, "int33")
        with pytest.raises(BuildError, match="logical_and.*float64"):
            nbbp.logical_and(x, x)
        assert len(g.nodes) == n
        assert (i + 1).dtype == "int32"            # a Python int adopts the tensor's dtype
        assert (i + nbbp.const([1, 1], dtype="int8")).dtype == "int32"
    with pytest.raises(BuildError, match="param.*int32.*floating"):
        nbbp.build("w = param([1, 2], dtype='int32')")
    with pytest.raises(BuildError, match="2.5 is not a whole number.*int32"):
        nbbp.build("i = input([1, 2.5], dtype='int32')")


def test_files_keep_integer_and_boolean_dtypes(tmp_path):
    src = ("x = param([0.5, -1.5, 2.0])\ni = input([1, 0, 2], dtype='int32')\n"
           "b = greater(x, 0.0)\nk = cast(x, 'int8') + cast(i, 'int8')\n"
           "f = sum(x * b) + sum(cast(k, 'float64'))")
    m = nbbp.build(src)
    path = tmp_path / "m.nbbp"
    m.save(path)
    m2 = nbbp.load(path)
    for name in ("i", "b", "k"):
        assert m2.graph[name].dtype == m.graph[name].dtype
    assert m2.value == m.value
    np.testing.assert_array_equal(m2.value_of("k"), m.value_of("k"))


def test_the_picture_says_why_an_integer_edge_has_no_gradient():
    m = nbbp.build("p = param([[0.1, 0.9], [0.8, 0.2]])\ny = input([1, 1], dtype='int64')\n"
                   "acc = mean(cast(equal(argmax(p, 1), y), 'float64'))\nf = sum(p * p) + acc")
    dot = m.to_dot()
    assert 'label="no gradient through argmax"' in dot
    assert 'label="no gradient through bool"' in dot      # equal → cast(…, float64)


# -- integer matmul ------------------------------------------------------------------
# Oracle: NumPy's matmul in the same dtype (TF1's tf.matmul on int32 gives the same
# integers; narrow dtypes wrap as NumPy's do).
@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((4,), (4, 3)), ((3, 4), (4,)),
                                    ((5,), (5,)), ((1, 1), (1, 1)), ((2, 70), (70, 65))])
def test_integer_matmul_against_numpy(dtype, shapes, eng):
    rng = np.random.default_rng(21)
    lo = 0 if dtype == "uint8" else -50
    A, B = (rng.integers(lo, 50, s).astype(dtype) for s in shapes)
    with nbbp.Graph():
        a, b = nbbp.input(A, name="a", dtype=dtype), nbbp.input(B, name="b", dtype=dtype)
        y = a @ b
    assert y.dtype == dtype
    got = np.asarray(value(y, eng))
    want = np.asarray(np.matmul(A, B))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_integer_matmul_with_transposed_operands_and_int32_wraparound(eng):
    rng = np.random.default_rng(22)
    A = rng.integers(-9, 9, (70, 80)).astype("int32")      # big: BLAS-style flags path
    B = rng.integers(-9, 9, (90, 80)).astype("int32")
    big = np.full((2, 2), 60000, dtype="int32")             # 2·60000² overflows int32
    with nbbp.Graph():
        a, b = nbbp.input(A, dtype="int32"), nbbp.input(B, dtype="int32")
        c = nbbp.input(big, dtype="int32")
        y1, y2, y3 = a @ b.T, b @ a.T, a.T @ a
        w = c @ c
    for y, want in ((y1, A @ B.T), (y2, B @ A.T), (y3, A.T @ A), (w, big @ big)):
        np.testing.assert_array_equal(value(y, eng), want)
    assert value(w, eng)[0, 0] == np.int32(-1389934592)      # as NumPy's int32 matmul


def test_integer_matmul_feeds_a_float_model_and_passes_no_gradient(eng):
    with nbbp.Graph():
        k = nbbp.input([[1, 2], [3, 4]], name="k", dtype="int64")
        p = nbbp.param([[0.5], [1.5]], name="p")
        counts = nbbp.cast(k @ nbbp.const([[1], [1]], dtype="int64"), "float64")
        f = nbbp.sum(counts * p, name="f")
    m = nbbp.Model(f, engine=eng)
    assert m.value == 3 * 0.5 + 7 * 1.5
    np.testing.assert_array_equal(m.grads["p"], [[3.0], [7.0]])


@pytest.mark.parametrize("src,part", [
    ("a = input([[True]], dtype='bool')\nb = input([[1]], dtype='int32')\ny = a @ b",
     'a @ b: a is bool; matmul multiplies numbers: cast(a, "float64") (or "int32") first'),
    ("a = input([[True]], dtype='bool')\nb = param([[1.0]])\ny = a @ b",
     'a @ b: a is bool; matmul multiplies numbers: cast(a, "float64") (or "int32") first'),
    ("a = input([[1, 2]], dtype='int32')\nb = param([[1.0], [2.0]])\ny = a @ b",
     'matmul(a, b): a is int32 and b is float64; nbbp does not mix integers and floats '
     'silently: write cast(a, "float64")'),
])
def test_matmul_bad_dtypes_are_one_line_errors(src, part):
    with pytest.raises(BuildError) as info:
        nbbp.build(src)
    first = str(info.value).splitlines()[0]
    assert part in first, first
    assert first.startswith("line 3")


def test_tf1_matmul_on_int32_runs_in_integers():
    import nbbp.tf1 as tf
    with tf.Graph().as_default():
        a = tf.constant([[1, 2], [3, 4]])
        b = tf.constant([[5], [-6]])
        y = tf.matmul(a, b)
        with tf.Session() as sess:
            got = sess.run(y)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, [[-7], [-9]])


# -- the live picture keeps the "no gradient through …" labels --------------------------
# Oracle: a full re-render (DOT laid out again, every label from the scene) of the same
# model at the same values; the live picture patches numbers into a layout made once.
LIVE_SRC = {
    "argmax": ("p = param([[0.1, 0.9], [0.8, 0.2]])\ny = input([1, 1], dtype='int64')\n"
               "E = param([[1.0, 2.0], [3.0, 4.0]])\nk = argmax(p, 1)\nr = gather(E, k)\n"
               "acc = mean(cast(equal(k, y), 'float64'))\nf = sum(p * p) + acc + sum(r)"),
    "fanout": ("x = param(2.0)\nk = input(3, dtype='int32')\nz = cast(k, 'float64')\n"
               "f = x*z + x*z*2 + x*z*3 + x*z*4 + x*z*5 + x*z*6 + x*z*7 + "
               "cast(k*k, 'float64')"),
    "scope": ("x = input([1.0, -2.0, 3.0])\nk = input([1, 0, 1], dtype='int32')\n"
              "with scope('s'):\n    m = greater(x, 0.0)\n    w = param([0.5, 0.5, 0.5])\n"
              "    h = where(m, x * w, 0.0) * cast(k, 'float64')\nf = sum(h)"),
}
LIVE_CASES = [("argmax", {"p": [[0.9, 0.1], [0.8, 0.2]]}, {}),
              ("argmax", {"y": [0, 0]}, {}),
              ("fanout", {"x": 1.5}, {}), ("fanout", {"k": 5}, {}),
              ("scope", {"x": [-1.0, 2.0, 3.0]}, {}),
              ("scope", {"x": [-1.0, 2.0, 3.0]}, {"collapse": ("s",)})]


@pytest.mark.parametrize("name,change,opts", LIVE_CASES)
def test_live_picture_edges_equal_a_full_re_render(name, change, opts):
    from nbbp.view.dot import svg as draw_svg
    from nbbp.view.live import LivePicture
    from nbbp.view.options import as_dict
    m = nbbp.build(LIVE_SRC[name])
    pic = LivePicture(m, **opts)
    assert pic.mode == "live", pic.note
    m.set(**change)
    live = pic.numbers(pic.svg())
    full = pic.numbers(draw_svg(m, **as_dict(pic.opts)))
    labelled = [k for k, v in full.items() if any(t.startswith("no gradient through")
                                                  for t in v)]
    assert labelled, "the case has no edge stopped by a dtype"
    for gid in full:
        if gid != "caption":          # the template's legend keeps every line ready
            assert live.get(gid) == full[gid], gid
    assert set(live) == set(full)


def test_step_through_keeps_the_no_gradient_labels_in_every_frame():
    from nbbp.view.explain import StepThrough
    from nbbp.view.live import LivePicture
    m = nbbp.build(LIVE_SRC["argmax"])
    pic = LivePicture(m)
    st = StepThrough(m, pic.scene)
    stopped = {e.id: e.label for e in pic.scene.edges() if e.grad is None and e.label}
    assert stopped == {"e3_0": "no gradient through argmax",
                       "e4_1": "no gradient through int64",
                       "e5_0": "no gradient through equal",
                       "e5_1": "no gradient through equal",
                       "e6_0": "no gradient through bool"}
    for k in range(len(st)):
        frame = pic.numbers(pic.svg(st.overlay(k)))
        for eid, label in stopped.items():
            assert frame[eid] == [label], (k, eid)
