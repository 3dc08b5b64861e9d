"""gather at run-time indices: an integer node (an int input, an argmax, a TF 1 int
placeholder) as the indices of gather / embedding_lookup.

Oracles: NumPy's ``take`` for values (each dtype of the values and of the indices),
``np.add.at`` and central finite differences in float64 for the gradient (repeats add
up), finite differences of the first derivative for the second, the same graph in
float64 for float32 (within float32 tolerance), the Python reference engine for the
kernels, and TF 1's documented behaviour (``tf.nn.embedding_lookup`` with fed ids;
an index outside ``[0, n)`` is an error, never a silently wrapped or zero row).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import fd_grad

import nbbp
from nbbp.errors import BuildError, NumericError


def build(table, ids, axis=0, dtype="float64", ids_dtype="int32", engine="numba"):
    """f = sum(gather(E, ids) ** 2 · R) with ids an integer input."""
    R = np.random.default_rng(1).uniform(0.5, 1.5,
                                         np.take(table, ids, axis=axis).shape)
    with nbbp.Graph():
        E = nbbp.param(table, name="E", dtype=dtype)
        k = nbbp.input(ids, name="ids", dtype=ids_dtype)
        y = nbbp.gather(E, k, axis=axis, name="y")
        f = nbbp.sum(y * y * R, name="f")
    return nbbp.Model(f, engine=engine), y, R


CASES = [((5, 3), [4, 0, 4, 2], 0), ((2, 5), [[3, 3], [0, 1]], 1), ((6,), 5, 0),
         ((2, 3, 4), [0, 3, 3], 2), ((4, 2), [1, 1, 1, 1, 1], 0)]


@pytest.mark.parametrize("shape,ids,axis", CASES)
@pytest.mark.parametrize("ids_dtype", ["int32", "int64", "uint8"])
def test_values_and_gradient_against_numpy_and_finite_differences(shape, ids, axis,
                                                                   ids_dtype, engine):
    table = np.random.default_rng(2).uniform(-1, 1, shape)
    m, y, R = build(table, ids, axis, ids_dtype=ids_dtype, engine=engine)
    assert y.op == "take" and y.dtype == "float64"
    want = np.take(table, ids, axis=axis)
    np.testing.assert_array_equal(m.value_of(y), want)
    assert m.value == pytest.approx(float(np.sum(want * want * R)), rel=1e-14)
    numeric = fd_grad(lambda t: float(np.sum(np.take(t, ids, axis=axis) ** 2 * R)), table)
    np.testing.assert_allclose(m.grads["E"], numeric, rtol=1e-7, atol=1e-8)
    # the oracle of repeats: np.add.at of the upstream gradient
    exact = np.zeros_like(np.moveaxis(table, axis, 0))
    g = 2 * want * R
    ids_a = np.asarray(ids)
    np.add.at(exact, ids_a, np.moveaxis(g, list(range(axis, axis + ids_a.ndim)),
                                        list(range(ids_a.ndim))))
    np.testing.assert_allclose(m.grads["E"], np.moveaxis(exact, 0, axis), rtol=1e-14)
    assert not np.any(m.grads["ids"])                  # integers carry no gradient


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool", "uint8"])
def test_gather_of_integer_and_boolean_values(dtype, engine):
    table = np.arange(12).reshape(4, 3) % 5
    vals = table.astype(dtype)
    with nbbp.Graph():
        E = nbbp.const(vals, dtype=dtype)
        k = nbbp.input([3, 0, 3], name="ids", dtype="int64")
        y = nbbp.gather(E, k)
    got = nbbp.Model(y, engine=engine).value
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, vals[[3, 0, 3]])


def test_float32_matches_float64(engine):
    table = np.random.default_rng(3).uniform(-1, 1, (6, 4)).astype(np.float32)
    ids = [[5, 0], [2, 5]]
    m32, y32, _ = build(table, ids, dtype="float32", engine=engine)
    m64, _, _ = build(table.astype(np.float64), ids, engine=engine)
    assert m32.value_of(y32).dtype == np.float32
    assert np.asarray(m32.grads["E"]).dtype == np.float32
    np.testing.assert_allclose(float(m32.value), m64.value, rtol=2e-6)
    np.testing.assert_allclose(m32.grads["E"], m64.grads["E"], rtol=2e-6, atol=1e-6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 4), st.integers(1, 3), st.lists(st.integers(0, 3), min_size=1,
                                                        max_size=7), st.integers(0, 1))
def test_compiled_kernel_matches_python_reference(rows, cols, raw, axis):
    shape = (4, cols) if axis == 0 else (rows, 4)
    table = np.random.default_rng(rows * 7 + cols).uniform(-2, 2, shape)
    a, ya, _ = build(table, raw, axis, engine="numba")
    b, yb, _ = build(table, raw, axis, engine="python")
    np.testing.assert_array_equal(a.value_of(ya), b.value_of(yb))
    np.testing.assert_allclose(a.grads["E"], b.grads["E"], rtol=1e-15, atol=0)


def test_indices_from_argmax_pick_the_best_row(engine):
    scores = np.array([[0.1, 0.9, 0.3], [0.8, 0.2, 0.5]])
    table = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    with nbbp.Graph():
        s = nbbp.param(scores, name="s")
        E = nbbp.param(table, name="E")
        best = nbbp.argmax(s, axis=1, name="best")
        rows = nbbp.gather(E, best, name="rows")
        f = nbbp.sum(rows * rows, name="f")
    m = nbbp.Model(f, engine=engine)
    np.testing.assert_array_equal(m.value_of(rows), table[[1, 0]])
    np.testing.assert_array_equal(m.grads["E"], [[2.0, 4.0], [6.0, 8.0], [0.0, 0.0]])
    assert not np.any(m.grads["s"])                    # no gradient through argmax
    m.set(s=scores[::-1])                              # the indices change at run time
    np.testing.assert_array_equal(m.value_of(rows), table[[0, 1]])
    np.testing.assert_array_equal(m.grads["E"], [[2.0, 4.0], [6.0, 8.0], [0.0, 0.0]])


def test_embedding_lookup_with_an_ids_node_in_a_cell(engine):
    src = ("E = param(np.arange(8.0).reshape(4, 2))\nids = input([[3, 1], [3, 3]], "
           "dtype='int32')\ne = embedding_lookup(E, ids)\nf = sum(e * e)")
    m = nbbp.build(src, namespace={"np": np}, engine=engine)
    table = np.arange(8.0).reshape(4, 2)
    np.testing.assert_array_equal(m.value_of("e"), table[[[3, 1], [3, 3]]])
    np.testing.assert_array_equal(m.grads["E"], [[0, 0], 2 * table[1], [0, 0], 6 * table[3]])
    m.set(ids=[[0, 0], [0, 2]])
    np.testing.assert_array_equal(m.grads["E"], [6 * table[0], [0, 0], 2 * table[2], [0, 0]])


def test_second_derivative_matches_finite_differences_of_the_first(engine):
    x0 = np.random.default_rng(4).uniform(0.5, 1.5, (4, 3))
    r = np.random.default_rng(5).uniform(-1, 1, (4, 3))
    ids = [2, 2, 0]

    def body(p, k):
        return nbbp.sum(nbbp.gather(p, k) ** 3)

    def first(x):
        with nbbp.Graph():
            p = nbbp.param(x, name="x")
            f = body(p, nbbp.input(ids, dtype="int64"))
        return np.asarray(nbbp.Model(f, engine=engine).grads["x"])

    with nbbp.Graph():
        p = nbbp.param(x0, name="x")
        (g,) = nbbp.gradients(body(p, nbbp.input(ids, dtype="int64")), [p])
        (hx,) = nbbp.gradients(nbbp.sum(g * r), [p])
    assert {n.op for n in hx.graph.nodes} >= {"take", "take_grad"}
    numeric = fd_grad(lambda x: float(np.sum(first(x) * r)), x0, eps=1e-5)
    np.testing.assert_allclose(nbbp.Model(hx, engine=engine).value, numeric, rtol=1e-6,
                               atol=1e-6)


def test_training_an_embedding_with_fed_ids_in_minibatches(engine):
    rng = np.random.default_rng(6)
    ids = rng.integers(0, 5, 40).astype(np.int32)
    target = np.linspace(-1, 1, 5)[ids]
    src = ("ids = input(I, dtype='int32')\nt = input(T)\nE = param(np.zeros(5))\n"
           "loss = mean((gather(E, ids) - t) ** 2)")
    m = nbbp.build(src, namespace={"I": ids, "T": target, "np": np}, engine=engine)
    m.fit(steps=200, optimizer=nbbp.optim.SGD(lr=0.5), batch_size=8, progress=False)
    np.testing.assert_allclose(m.params["E"], np.linspace(-1, 1, 5), atol=1e-3)


# -- an index out of range at run time ------------------------------------------------
SRC = ("E = param(np.arange(10.0).reshape(5, 2))\nids = input([1, 2, 3], dtype='int32')\n"
       "y = gather(E, ids)\nf = sum(y * y)")


@pytest.mark.parametrize("bad,where,value", [([1, 7, 3], "position 1", 7),
                                              ([-1, 0, 0], "position 0", -1),
                                              ([0, 0, 5], "position 2", 5)])
def test_set_out_of_range_is_one_line_and_leaves_the_model_as_it_was(bad, where, value,
                                                                     engine):
    m = nbbp.build(SRC, namespace={"np": np}, engine=engine)
    before = (m.value, m.grads["E"].copy(), m.value_of("ids").copy(), m.value_of("y").copy())
    with pytest.raises(NumericError) as info:
        m.set(ids=bad)
    text = str(info.value)
    assert "\n" not in text
    assert text == (f"line 3: node 'y' = gather(E, ids, axis=0): index {value} at {where} of "
                    "ids is out of range for axis 0 of E (shape (5, 2)): valid 0..4; give "
                    "indices in that range, or clip(ids, 0, 4)")
    assert info.value.node == "y"
    assert m.value == before[0]
    np.testing.assert_array_equal(m.grads["E"], before[1])
    np.testing.assert_array_equal(m.value_of("ids"), before[2])
    np.testing.assert_array_equal(m.value_of("y"), before[3])
    m.set(ids=[4, 4, 0])                               # and it goes on working
    np.testing.assert_array_equal(m.grads["E"][4], [32.0, 36.0])


def test_out_of_range_in_run_with_a_feed_and_at_build(engine):
    m = nbbp.build(SRC, namespace={"np": np}, engine=engine)
    with pytest.raises(NumericError, match=r"index 9 at position 0 of ids is out of range"):
        m.run("f", feed={"ids": [9, 0, 0]})
    assert m.run("f", feed={"ids": [0, 0, 0]}) == 3.0
    with pytest.raises(NumericError, match=r"index 6 at position \(1, 0\) of ids"):
        nbbp.build(SRC.replace("[1, 2, 3]", "[[1, 2], [6, 0]]"), namespace={"np": np},
                   engine=engine)


def test_out_of_range_in_training_stops_before_that_step_s_update(engine):
    """A minibatch with a bad id stops training before its update, as a nan loss
    does: the steps before it count, the model keeps their parameters."""
    good = np.array([0, 1, 2, 3, 1, 2, 0, 4], dtype=np.int32)
    src = ("ids = input(I, dtype='int32')\nE = param(np.ones(5))\n"
           "emb = gather(E, ids)\nloss = mean(emb ** 2)")
    m = nbbp.build(src, namespace={"I": good[:4], "np": np}, engine=engine)
    with pytest.raises(NumericError) as info:
        m.fit(steps=5, optimizer=nbbp.optim.SGD(lr=0.1), feed={"ids": np.full(8, 9)},
              batch_size=4, progress=False)
    first = str(info.value).splitlines()[0]
    assert first == ("line 3: node 'emb' = gather(E, ids, axis=0): index 9 at position 0 of "
                     "ids is out of range for axis 0 of E (shape (5,)): valid 0..4; give "
                     "indices in that range, or clip(ids, 0, 4)")
    np.testing.assert_array_equal(m.params["E"], np.ones(5))     # no step was applied
    np.testing.assert_array_equal(m.value_of("ids"), good[:4])
    m.fit(steps=3, optimizer=nbbp.optim.SGD(lr=0.1), feed={"ids": good}, batch_size=4,
          progress=False)                              # and training goes on
    assert m.params["E"][0] < 1.0


# -- build-time errors ----------------------------------------------------------------
@pytest.mark.parametrize("src,part", [
    ("E = param(np.ones((3, 2)))\nids = input([0.0, 1.0])\ny = gather(E, ids)",
     'gather(E, ids): the indices ids are float64 and E is float64; indices must be '
     'integers: cast(ids, "int32")'),
    ("E = param(np.ones((3, 2)), dtype='float32')\nids = input([0.0], dtype='float32')\n"
     "y = embedding_lookup(E, ids)",
     "gather(E, ids): the indices ids are float32 and E is float32"),
    ("E = param(np.ones((3, 2)))\nids = input([True], dtype='bool')\ny = gather(E, ids)",
     "the indices ids are bool and E is float64"),
    ("E = param(2.0)\nids = input([0], dtype='int32')\ny = gather(E, ids)",
     "gather(E, ids, axis=0): E is a scalar; gather picks along an axis"),
    ("E = param(np.ones((3, 2)))\nids = input([0], dtype='int32')\ny = gather(E, ids, axis=2)",
     "gather(E, ids, axis=2): axis 2 is out of range (valid: -2..1)"),
    ("E = param(np.ones((2, 2, 2, 2)))\nids = input(np.zeros((2, 2), int), dtype='int32')\n"
     "y = gather(E, ids, axis=1)",
     "the result would have shape (2, 2, 2, 2, 2) (E (2, 2, 2, 2), indices (2, 2)); at "
     "most 4"),
])
def test_bad_gathers_are_one_line_build_errors(src, part):
    with pytest.raises(BuildError) as info:
        nbbp.build(src, namespace={"np": np})
    first = str(info.value).splitlines()[0]
    assert first.startswith("line 3"), first
    assert part in first, first


def test_a_failed_gather_leaves_the_graph_untouched():
    with nbbp.Graph() as g:
        E = nbbp.param(np.ones((3, 2)), name="E")
        ids = nbbp.input([0.5], name="ids")
        n = len(g.nodes)
        with pytest.raises(BuildError):
            nbbp.gather(E, ids)
        assert len(g.nodes) == n


# -- TF 1 ------------------------------------------------------------------------------
def test_tf1_embedding_lookup_with_an_int_placeholder_and_its_gradient():
    import nbbp.tf1 as tf
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    with tf.Graph().as_default():
        E = tf.Variable(table, name="E")
        ids = tf.placeholder(tf.int32, [None], name="ids")
        e = tf.nn.embedding_lookup(E, ids)
        loss = tf.reduce_sum(e * e)
        (g,) = tf.gradients(loss, [E])
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            got, grad = sess.run([e, g], feed_dict={ids: [3, 0, 3]})
            np.testing.assert_array_equal(got, table[[3, 0, 3]])
            want = np.zeros_like(table)
            np.add.at(want, [3, 0, 3], 2 * table[[3, 0, 3]])
            np.testing.assert_array_equal(np.asarray(grad), want)
            with pytest.raises(nbbp.NbbpError, match=r"index 4 at position 1 of ids"):
                sess.run(e, feed_dict={ids: [0, 4]})


def test_a_saved_model_with_run_time_indices_loads_back(tmp_path, engine):
    m = nbbp.build(SRC, namespace={"np": np}, engine=engine)
    m.set(ids=[4, 0, 4])
    path = tmp_path / "g.nbbp"
    m.save(path)
    back = nbbp.load(path)
    assert back.graph["y"].op == "take" and back.graph["ids"].dtype == "int32"
    assert back.value == m.value
    np.testing.assert_array_equal(back.grads["E"], m.grads["E"])
