"""nbbp.tf1 against TensorFlow 1's documented behaviour and hand-computed numbers.

The article's programs (docs: /work/shared/article) run as in TF 1 where they are
correct and fail as TF 1 fails where they are not; error messages are asserted by
content. Optimizer steps are checked against TF 1's update formulas worked by hand.
"""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest

import nbbp
import nbbp.tf1 as tf
from nbbp.errors import FeedError, NbbpError, ShapeError


@pytest.fixture(autouse=True)
def fresh_default_graph():
    tf.reset_default_graph()
    yield
    assert tf.get_default_session() is None, "a test left a default session behind"
    tf.reset_default_graph()


# ---------------------------------------------------------------------------
# the article's programs
# ---------------------------------------------------------------------------


def test_article_graphs_and_their_operations():
    a = tf.constant(2.0)
    b = tf.constant(3.0)
    c = a * b
    graph = tf.Graph()
    with graph.as_default():
        d = tf.constant(10.0)
        e = tf.constant(15.0)
        f = d + e
    assert tf.get_default_graph() is a.graph is c.graph
    assert [op.name for op in tf.get_default_graph().get_operations()] == ["Const", "Const_1", "mul"]
    assert [op.name for op in graph.get_operations()] == ["Const", "Const_1", "add"]
    assert repr(graph.get_operations()[2]) == "<tf.Operation 'add' type=Add>"
    assert d.graph is graph
    with tf.Session(graph=graph) as sess:
        assert sess.run(f) == 25.0
        assert sess.graph is graph
        assert tf.get_default_graph() is graph     # entering a session enters its graph
    with tf.Session() as sess:
        assert sess.run(c) == 6.0


def test_article_runs_a_tensor_in_a_session_of_another_graph():
    a = tf.constant(2.0)
    b = tf.constant(3.0)
    c = a * b
    graph = tf.Graph()
    with graph.as_default():
        tf.constant(10.0)
    with tf.Session(graph=graph) as sess:
        with pytest.raises(tf.errors.GraphMismatchError) as info:
            sess.run(c)
    msg = str(info.value)
    assert "Fetch argument <tf.Tensor 'mul:0' shape=() dtype=float32> cannot be interpreted as a Tensor" in msg
    assert 'Tensor Tensor("mul:0", shape=(), dtype=float32) is not an element of this graph' in msg
    assert "process-wide default graph" in msg and "tf.Session(graph=" in msg
    assert isinstance(info.value, ValueError) and isinstance(info.value, NbbpError)


def test_article_static_graph_prints_like_tf1():
    a = tf.constant(1)
    b = tf.constant(2)
    c = tf.add(a, b)
    # TF 1: tf.constant(1) is int32, and so is their sum
    assert str(c) == 'Tensor("Add:0", shape=(), dtype=int32)'
    assert repr(c) == "<tf.Tensor 'Add:0' shape=() dtype=int32>"
    assert repr(a * b) == "<tf.Tensor 'mul:0' shape=() dtype=int32>"
    with tf.Session() as sess:
        out = sess.run(c)
        assert out == 3 and type(out) is np.int32


def test_article_dynamic_graph_with_a_placeholder(engine):
    def dynamic_graph(x):
        return tf.multiply(x, 2)

    with tf.Session(engine=engine) as sess:
        x = tf.placeholder(dtype=tf.float32)
        result = dynamic_graph(x)
        out = sess.run(result, {x: [1, 2, 3]})
        np.testing.assert_array_equal(out, [2.0, 4.0, 6.0])
        assert out.dtype == np.float32          # the placeholder's dtype, as in TF 1
        # the same graph takes other shapes: a placeholder without shape accepts any
        assert sess.run(result, {x: 5}) == 10.0
        np.testing.assert_array_equal(sess.run(result, {x: [[1], [2]]}), [[2], [4]])
    assert x.graph is tf.get_default_graph()
    assert repr(result) == "<tf.Tensor 'Mul:0' shape=<unknown> dtype=float32>"


def test_article_autodiff_gradients_12_and_10(engine):
    x = tf.Variable(3.0, name="x")
    y = tf.Variable(2.0, name="y")
    f = x * x * y + y + 1
    with tf.Session(engine=engine) as sess:
        init = tf.global_variables_initializer()
        sess.run(init)
        grad_x, grad_y = tf.gradients(ys=f, xs=[x, y])
        assert repr(grad_x) == "<tf.Tensor 'gradients/x_grad:0' shape=() dtype=float32>"
        assert sess.run([grad_x, grad_y]) == [12.0, 10.0]
        assert sess.run(f) == 21.0


def test_article_variable_initialize_then_assign_fives():
    W = tf.Variable(tf.random_normal([2, 2]), name="weight")
    b = tf.Variable(tf.zeros([2]), name="bias")
    init = tf.global_variables_initializer()
    assign_op = W.assign(tf.ones([2, 2]) * 5)
    with tf.Session() as sess:
        sess.run(init)
        before = sess.run(W)
        assert before.shape == (2, 2) and not np.all(before == 5.0)
        np.testing.assert_array_equal(sess.run(b), [0.0, 0.0])
        np.testing.assert_array_equal(sess.run(assign_op), np.full((2, 2), 5.0))
        np.testing.assert_array_equal(sess.run(W), np.full((2, 2), 5.0))
    assert repr(W) == "<tf.Variable 'weight:0' shape=(2, 2) dtype=float32_ref>"


def test_article_second_get_variable_in_a_scope_is_refused():
    with tf.variable_scope("scope"):
        W1 = tf.get_variable("W", shape=[1, 2], initializer=tf.constant_initializer(1))
        n_ops = len(tf.get_default_graph().get_operations())
        with pytest.raises(tf.errors.VariableScopeError) as info:
            tf.get_variable("W", shape=[1, 3], initializer=tf.constant_initializer(2))
    msg = str(info.value)
    assert msg.startswith("Variable scope/W already exists, disallowed. Did you mean to set "
                          "reuse=True or reuse=tf.AUTO_REUSE in VarScope?")
    assert "tf.variable_scope('scope', reuse=True)" in msg and "another name" in msg
    assert isinstance(info.value, ValueError)
    assert len(tf.get_default_graph().get_operations()) == n_ops   # nothing half-built
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_array_equal(sess.run(W1), [[1.0, 1.0]])


def test_article_get_variable_outside_the_scope_is_a_new_uninitialized_variable():
    with tf.variable_scope("scope"):
        W1 = tf.get_variable("W", shape=[1, 2], initializer=tf.constant_initializer(1))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        other = tf.get_variable("W", shape=[1, 2])
        assert other is not W1 and other.op.name == "W"
        with pytest.raises(tf.errors.FailedPreconditionError) as info:
            sess.run(other)
    msg = str(info.value)
    assert msg.startswith("Attempting to use uninitialized value W.")
    assert "tf.global_variables_initializer()" in msg


# ---------------------------------------------------------------------------
# errors TF 1 raises, with their messages
# ---------------------------------------------------------------------------


def test_uninitialized_variable_names_its_scope():
    with tf.variable_scope("scope"):
        W = tf.get_variable("W", [2], initializer=tf.ones_initializer())
    loss = tf.reduce_sum(W * 2.0)
    with tf.Session() as sess:
        with pytest.raises(tf.errors.FailedPreconditionError,
                           match="Attempting to use uninitialized value scope/W"):
            sess.run(loss)
        sess.run(W.initializer)
        assert sess.run(loss) == 4.0
    with tf.Session() as other:          # values live in the session, not the graph
        with pytest.raises(tf.errors.FailedPreconditionError):
            other.run(W)


@pytest.mark.parametrize("dtype, shape, expected", [
    (tf.float32, None, "with dtype float"),
    (tf.float32, [None, 2], "with dtype float and shape [?,2]"),
    (tf.float64, [3], "with dtype double and shape [3]"),
])
def test_unfed_placeholder(dtype, shape, expected):
    x = tf.placeholder(dtype, shape)
    y = tf.reduce_sum(x * 2.0)
    with tf.Session() as sess:
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            sess.run(y)
    msg = str(info.value)
    assert f"You must feed a value for placeholder tensor 'Placeholder' {expected}" in msg
    assert "Placeholder → mul → Sum" in msg and "feed_dict" in msg


def test_only_the_part_the_fetches_need_runs():
    x = tf.placeholder(tf.float32, name="x")
    v = tf.Variable(1.0, name="v")          # never initialised
    c = tf.constant(3.0) * 2.0
    unused = x * v
    with tf.Session() as sess:
        assert sess.run(c) == 6.0           # neither x nor v is needed
        assert sess.run(unused, {x: 2.0, v: 4.0}) == 8.0    # any tensor can be fed
        with pytest.raises(tf.errors.FailedPreconditionError, match="value v"):
            sess.run(unused, {x: 2.0})


def test_feed_of_the_wrong_shape():
    x = tf.placeholder(tf.float32, [None, 2], name="x")
    with tf.Session() as sess:
        with pytest.raises(tf.errors.FeedShapeError) as info:
            sess.run(x * 2.0, {x: [1.0, 2.0, 3.0]})
        assert sess.run(tf.reduce_sum(x), {x: np.ones((5, 2))}) == 10.0
    msg = str(info.value)
    assert "Cannot feed value of shape (3,) for Tensor 'x:0', which has shape '(?, 2)'" in msg
    assert isinstance(info.value, FeedError) and isinstance(info.value, ValueError)


def test_fed_shapes_that_do_not_fit_fail_at_run_time_with_both_shapes():
    p, q = tf.placeholder(tf.float64), tf.placeholder(tf.float64)
    s = p + q
    with tf.Session() as sess:
        with pytest.raises(tf.errors.ShapeError) as info:
            sess.run(s, {p: [1.0, 2.0], q: [1.0, 2.0, 3.0]})
        np.testing.assert_array_equal(sess.run(s, {p: [1.0, 2.0], q: 1.0}), [2.0, 3.0])
    assert "(2,) and (3,) do not broadcast" in str(info.value)


def test_shapes_are_checked_when_an_op_is_built():
    before = len(tf.get_default_graph().get_operations())
    with pytest.raises(tf.errors.ShapeError) as info:
        tf.matmul(tf.ones([2, 3]), tf.ones([2, 3]))
    assert "(2, 3) @ (2, 3)" in str(info.value) and "inner dimensions 3 and 2" in str(info.value)
    assert isinstance(info.value, ShapeError) and isinstance(info.value, ValueError)
    with pytest.raises(tf.errors.ShapeError, match="Shape must be rank 2 but is rank 1"):
        tf.matmul(tf.ones([3]), tf.ones([3, 1]))
    with pytest.raises(tf.errors.ShapeError, match=r"\(2,\) and \(3,\)"):
        tf.constant([1.0, 2.0]) + [1.0, 2.0, 3.0]
    # the failed ops left their inputs (the ones) but not the consts they lifted
    names = [op.name for op in tf.get_default_graph().get_operations()[before:]]
    assert all(n.startswith("ones") or n == "Const" for n in names), names


def test_partially_known_shapes_are_inferred():
    x = tf.placeholder(tf.float32, [None, 2])
    W = tf.Variable(tf.zeros([2, 3]))
    h = tf.nn.relu(tf.matmul(x, W) + tf.zeros([3]))
    assert h.shape == (None, 3) and h.shape.as_list() == [None, 3]
    assert repr(h) == "<tf.Tensor 'Relu:0' shape=(?, 3) dtype=float32>"
    assert tf.reduce_sum(h, axis=1).shape == (None,)
    assert tf.reduce_mean(h).shape == ()
    assert tf.reshape(h, [-1]).shape == (None,)


def test_assign_shape_is_checked():
    v = tf.Variable(tf.zeros([2, 2]), name="v")
    with pytest.raises(tf.errors.UsageError, match=r"variable 'v' has shape \[2,2\].*shape \[3\]"):
        v.assign([1.0, 2.0, 3.0])
    p = tf.placeholder(tf.float32)
    a = v.assign(p)
    with tf.Session() as sess:
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"lhs shape= \[2,2\] rhs shape= \[3\]"):
            sess.run(a, {p: [1.0, 2.0, 3.0]})


def test_bad_fetches_and_feeds():
    x = tf.placeholder(tf.float32, name="x")
    y = tf.Variable(1.0, name="y")
    (g,) = tf.gradients(x * 2.0, [y])
    assert g is None                      # y does not affect the output
    other = tf.Graph()
    with other.as_default():
        z = tf.placeholder(tf.float32, name="z")
    with tf.Session() as sess:
        with pytest.raises(tf.errors.FetchError) as info:
            sess.run(g)
        assert "Fetch argument None has invalid type <class 'NoneType'>" in str(info.value)
        assert "tf.gradients returns None" in str(info.value)
        assert isinstance(info.value, TypeError)
        with pytest.raises(tf.errors.GraphMismatchError,
                           match="Cannot interpret feed_dict key as Tensor"):
            sess.run(x, {z: 1.0})
        with pytest.raises(tf.errors.FetchError, match="cannot be a tf.Tensor"):
            sess.run(x, {x: y})
        with pytest.raises(tf.errors.UsageError, match="did you mean 'x'"):
            sess.run("xx:0")


def test_closed_session_and_missing_default_session():
    c = tf.constant(1.0)
    sess = tf.Session()
    sess.close()
    with pytest.raises(tf.errors.ClosedSessionError, match="Attempted to use a closed Session"):
        sess.run(c)
    with pytest.raises(tf.errors.UsageError, match="No default session is registered"):
        c.eval()


def test_reset_default_graph_inside_a_graph_block_is_refused():
    with tf.Graph().as_default():
        with pytest.raises(tf.errors.UsageError, match="Do not use tf.reset_default_graph"):
            tf.reset_default_graph()
    g = tf.get_default_graph()
    tf.reset_default_graph()
    assert tf.get_default_graph() is not g


def test_a_tensor_has_no_truth_value_and_unsupported_names_explain_themselves():
    x = tf.constant(1.0)
    with pytest.raises(tf.errors.UsageError, match="as a Python bool"):
        if x:
            pass
    with pytest.raises(tf.errors.NotSupportedError, match="tf.where"):
        tf.cond  # noqa: B018
    assert not hasattr(tf, "while_loop")
    with pytest.raises(AttributeError, match="did you mean tf.reduce_sum"):
        tf.reduce_summ  # noqa: B018
    with pytest.raises(tf.errors.UsageError, match="named arguments"):
        tf.nn.softmax_cross_entropy_with_logits(x, x)


# ---------------------------------------------------------------------------
# sessions: fetch structures, caching, eval, InteractiveSession
# ---------------------------------------------------------------------------


def test_fetch_structures():
    a = tf.constant(1.0, name="a")
    b = tf.constant([1.0, 2.0], name="b")
    Pair = collections.namedtuple("Pair", "x y")
    with tf.Session() as sess:
        assert sess.run([a, (a, {"k": a})]) == [1.0, (1.0, {"k": 1.0})]
        out = sess.run({"a": a, "b": b})
        assert out["a"] == 1.0 and out["b"].tolist() == [1.0, 2.0]
        assert sess.run(Pair(a, a)) == Pair(1.0, 1.0)
        assert sess.run("a:0") == 1.0 and sess.run(["a:0", "b"])[1] is None   # an op
        assert sess.run(tf.no_op()) is None
        assert type(sess.run(a)) is np.float32          # TF 1 returns NumPy scalars
        assert isinstance(sess.run(tf.constant(1.0, tf.float64)), float)


def test_plans_are_cached_per_fetches_and_feed_shapes():
    x = tf.placeholder(tf.float32)
    y = tf.reduce_sum(x * x)
    with tf.Session() as sess:
        for _ in range(3):
            assert sess.run(y, {x: [1.0, 2.0]}) == 5.0
        assert len(sess._plans) == 1
        assert sess.run(y, {x: [1.0, 2.0, 2.0]}) == 9.0
        assert len(sess._plans) == 2


def test_eval_run_and_interactive_session():
    v = tf.Variable(2.0)
    y = v * 3.0
    sess = tf.InteractiveSession()
    try:
        v.initializer.run()
        assert y.eval() == 6.0
        v.load(5.0)
        assert y.eval() == 15.0
    finally:
        sess.close()
    assert tf.get_default_session() is None
    with tf.Session() as s2:
        with pytest.raises(tf.errors.FailedPreconditionError):
            y.eval()
        v.initializer.run(session=s2)
        assert y.eval(session=s2) == 6.0


def test_sessions_keep_their_own_variable_values():
    v = tf.Variable(1.0)
    inc = v.assign_add(1.0)
    s1, s2 = tf.Session(), tf.Session()
    s1.run(v.initializer)
    s2.run(v.initializer)
    assert [s1.run(inc) for _ in range(3)] == [2.0, 3.0, 4.0]
    assert s2.run(v) == 1.0
    assert s1.run(v.assign_sub(0.5)) == 3.5


def test_assign_initialises_and_assign_add_needs_a_value():
    v = tf.Variable(0.0, name="v")
    with tf.Session() as sess:
        with pytest.raises(tf.errors.FailedPreconditionError, match="uninitialized value v"):
            sess.run(v.assign_add(1.0))
        assert sess.run(tf.assign(v, 4.0)) == 4.0     # assigning needs no old value
        assert sess.run(tf.assign_add(v, 1.0)) == 5.0


# ---------------------------------------------------------------------------
# names and scopes
# ---------------------------------------------------------------------------


def test_names_are_unique_as_in_tf1():
    a = tf.add(1.0, 2.0)
    b = tf.constant(1.0) + 2.0                 # TF compares names case-insensitively
    c = tf.multiply(a, 2.0, name="twice")
    d = tf.multiply(a, 2.0, name="twice")
    assert [a.name, b.name, c.name, d.name] == ["Add:0", "add_1:0", "twice:0", "twice_1:0"]
    assert tf.get_default_graph().get_tensor_by_name("add_1/y:0").op.type == "Const"
    with tf.name_scope("layer"):
        m = tf.matmul(tf.ones([1, 2]), tf.ones([2, 1]))
    with tf.name_scope("layer") as scope:
        m2 = tf.matmul(tf.ones([1, 2]), tf.ones([2, 1]))
    assert (m.name, m2.name, scope) == ("layer/MatMul:0", "layer_1/MatMul:0", "layer_1/")


def test_variable_scopes_reuse_and_name_scopes():
    with tf.variable_scope("net"):
        W = tf.get_variable("W", [2, 3])
        c = tf.constant(0.0)
    with tf.variable_scope("net", reuse=True):
        assert tf.get_variable("W") is W
        assert tf.get_variable("W", [2, 3]) is W
        c2 = tf.constant(0.0)
        with tf.variable_scope("inner"):
            assert tf.get_variable_scope().reuse is True      # inherited
        with pytest.raises(tf.errors.VariableScopeError) as info:
            tf.get_variable("b", [3])
        with pytest.raises(tf.errors.VariableScopeError) as info2:
            tf.get_variable("W", [3, 2])
    assert (W.op.name, c.name, c2.name) == ("net/W", "net/Const:0", "net_1/Const:0")
    assert str(info.value).startswith("Variable net/b does not exist, or was not created with "
                                      "tf.get_variable(). Did you mean to set "
                                      "reuse=tf.AUTO_REUSE in VarScope?")
    assert str(info2.value).startswith("Trying to share variable net/W, but specified shape "
                                       "(3, 2) and found shape (2, 3).")
    with tf.variable_scope("auto", reuse=tf.AUTO_REUSE):
        a1 = tf.get_variable("a", [1])
        assert tf.get_variable("a", [1]) is a1
    with tf.variable_scope("net") as vs:
        pass
    with tf.variable_scope(vs, reuse=True):
        assert tf.get_variable("W") is W
    vs.reuse_variables()
    assert vs.reuse is True


def test_get_variable_uses_the_scope_initializer_and_needs_a_shape():
    with tf.variable_scope("s", initializer=tf.constant_initializer(7.0)):
        v = tf.get_variable("v", [2])
        with pytest.raises(tf.errors.UsageError, match=r"Shape of a new variable \(s/w\) must be "
                                                       "fully defined"):
            tf.get_variable("w")
        u = tf.get_variable("u", initializer=np.array([1.0, 2.0]))
    assert v.initial_value.op.name == "s/v/Initializer/Const"
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(v).tolist() == [7.0, 7.0]
        assert sess.run(u).tolist() == [1.0, 2.0]
    assert {x.op.name for x in tf.global_variables()} == {"s/v", "s/u"}
    assert tf.trainable_variables() == [v, u]


# ---------------------------------------------------------------------------
# random tensors and initializers
# ---------------------------------------------------------------------------


def _init_values(seed=None):
    tf.reset_default_graph()
    if seed is not None:
        tf.set_random_seed(seed)
    r = tf.random_normal([3])
    with tf.Session() as sess:
        return sess.run(r), sess.run(r)


def test_random_tensors_are_redrawn_each_run_and_repeat_across_sessions():
    first, second = _init_values()
    assert not np.array_equal(first, second)                 # a new sample per run
    again = _init_values()
    np.testing.assert_array_equal(first, again[0])           # deterministic by default
    np.testing.assert_array_equal(second, again[1])
    seeded = _init_values(seed=1)
    assert not np.array_equal(seeded[0], first)
    np.testing.assert_array_equal(seeded[0], _init_values(seed=1)[0])


def test_random_distributions():
    tf.set_random_seed(0)
    n = tf.random_normal([20000], mean=1.0, stddev=2.0)
    u = tf.random_uniform([20000], minval=-1.0, maxval=3.0)
    t = tf.truncated_normal([20000], stddev=0.5)
    with tf.Session() as sess:
        nv, uv, tv = sess.run([n, u, t])
    assert abs(nv.mean() - 1.0) < 0.05 and abs(nv.std() - 2.0) < 0.05
    assert uv.min() >= -1.0 and uv.max() < 3.0 and abs(uv.mean() - 1.0) < 0.05
    assert np.abs(tv).max() <= 1.0                            # within 2 stddev
    # a normal truncated to ±2σ has std 0.8796σ
    assert abs(tv.std() - 0.5 * 0.87962566103423978) < 0.01


def test_initializers():
    z = tf.get_variable("z", [2, 3], initializer=tf.zeros_initializer())
    o = tf.get_variable("o", [2], initializer=tf.ones_initializer())
    c = tf.get_variable("c", [2, 2], initializer=tf.constant_initializer([[1, 2], [3, 4]]))
    g = tf.get_variable("g", [200, 300])                      # default: glorot uniform
    n = tf.get_variable("n", [400, 50], initializer=tf.random_normal_initializer(0.0, 0.1, seed=3))
    u = tf.get_variable("u", [1000], initializer=tf.random_uniform_initializer(2.0, 4.0))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        zv, ov, cv, gv, nv, uv = sess.run([z, o, c, g, n, u])
    assert zv.tolist() == [[0.0] * 3] * 2 and ov.tolist() == [1.0, 1.0]
    assert cv.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    limit = math.sqrt(6.0 / (200 + 300))
    assert np.abs(gv).max() <= limit and np.abs(gv).max() > 0.99 * limit
    assert abs(gv.std() - limit / math.sqrt(3.0)) < 0.002
    assert abs(nv.std() - 0.1) < 0.003
    assert uv.min() >= 2.0 and uv.max() < 4.0


def test_variables_initializer_covers_only_its_list():
    a = tf.Variable(1.0, name="a")
    b = tf.Variable(2.0, name="b")
    with tf.Session() as sess:
        sess.run(tf.variables_initializer([a]))
        assert sess.run(a) == 1.0
        with pytest.raises(tf.errors.FailedPreconditionError, match="value b"):
            sess.run(b)


# ---------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------


def test_gradients_options(engine):
    x = tf.Variable([1.0, 2.0], name="x")
    y = x * 3.0
    z = tf.reduce_sum(y * x)                        # 3 Σ x²
    g_plain, = tf.gradients(z, x)
    g_stop, = tf.gradients(z, x, stop_gradients=[y])          # y held constant: 3x
    g_sg, = tf.gradients(tf.reduce_sum(tf.stop_gradient(y) * x), x)
    g_w, = tf.gradients(y, x, grad_ys=[[1.0, -1.0]])          # weights on the ys
    g_mid, = tf.gradients(z, y)                                 # w.r.t. an intermediate
    (unconnected,) = tf.gradients(z, tf.constant(1.0))
    (zero,) = tf.gradients(z, tf.constant([1.0, 1.0]), unconnected_gradients="zero")
    with tf.Session(engine=engine) as sess:
        sess.run(x.initializer)
        out = sess.run([g_plain, g_stop, g_sg, g_w, g_mid, zero])
    assert [v.tolist() for v in out] == [[6.0, 12.0], [3.0, 6.0], [3.0, 6.0], [3.0, -3.0],
                                         [1.0, 2.0], [0.0, 0.0]]
    assert unconnected is None


def test_second_derivatives_and_hessians(engine):
    x = tf.Variable(2.0)
    y = x ** 3
    (d1,) = tf.gradients(y, x)
    (d2,) = tf.gradients(d1, x)
    (d3,) = tf.gradients(d2, x)
    v = tf.Variable([1.0, 2.0])
    A = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    q = tf.reduce_sum(v * tf.reshape(tf.matmul(A, tf.reshape(v, [2, 1])), [2]))   # vᵀAv
    H, Hv_none = tf.hessians(q, [v, tf.constant(1.0)])
    (Hlin,) = tf.hessians(tf.reduce_sum(v * 2.0), v)
    with tf.Session(engine=engine) as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run([d1, d2, d3]) == [12.0, 12.0, 6.0]      # 3x², 6x, 6
        np.testing.assert_array_equal(sess.run(H), [[2.0, 5.0], [5.0, 8.0]])   # A + Aᵀ
        np.testing.assert_array_equal(sess.run(Hlin), np.zeros((2, 2)))
    assert H.shape == (2, 2) and Hv_none is None


def test_gradient_through_a_fed_placeholder_and_unknown_shapes():
    x = tf.placeholder(tf.float32)
    y = tf.reduce_sum(tf.exp(x))
    (g,) = tf.gradients(y, x)
    assert g.shape.ndims is None
    with tf.Session() as sess:
        out = sess.run(g, {x: [0.0, 1.0]})
        assert out.dtype == np.float32               # float32 in, float32 exp (TF 1)
        np.testing.assert_allclose(out, [1.0, math.e], rtol=F32)
        assert sess.run(g, {x: 0.0}) == 1.0


def test_to_model_bridges_to_nbbp_models():
    x = tf.placeholder(tf.float64, [None, 2], name="x")      # float64: checked by
    W = tf.Variable([[1.0], [2.0]], name="W", dtype=tf.float64)   # finite differences
    loss = tf.reduce_mean(tf.square(tf.matmul(x, W)))
    (gW,) = tf.gradients(loss, W)
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with tf.Session() as sess:
        sess.run(W.initializer)
        m = sess.to_model(loss, {x: X})
        expected = sess.run(gW, {x: X})
    assert isinstance(m, nbbp.Model)
    assert m.value == pytest.approx((1 + 4 + 9) / 3, rel=1e-15)
    np.testing.assert_allclose(m.grads["W"], expected, rtol=1e-15)
    assert {"x", "W", "MatMul", "Square", "Mean"} <= {n.name for n in m.nodes}
    nbbp.check_grads(m, order=1)


# ---------------------------------------------------------------------------
# ops against numpy oracles
# ---------------------------------------------------------------------------


F32 = float(np.finfo(np.float32).eps)      # float32's relative precision


def _run(t, feed=None):
    with tf.Session() as sess:
        return sess.run(t, feed)


def test_elementwise_and_reductions_match_numpy():
    a = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    x = tf.constant(a)
    cases = [
        (tf.square(x), a ** 2), (tf.exp(x), np.exp(a)), (tf.tanh(x), np.tanh(a)),
        (tf.sigmoid(x), 1 / (1 + np.exp(-a))), (tf.nn.relu(x), np.maximum(a, 0)),
        (tf.nn.leaky_relu(x), np.where(a > 0, a, 0.2 * a)), (tf.abs(x), np.abs(a)),
        (tf.nn.elu(x), np.where(a > 0, a, np.expm1(a))), (tf.nn.relu6(x * 4), np.clip(4 * a, 0, 6)),
        (tf.sqrt(tf.abs(x)), np.sqrt(np.abs(a))), (tf.log(tf.abs(x)), np.log(np.abs(a))),
        (tf.subtract(x, 1.0), a - 1), (tf.divide(x, 2.0), a / 2), (x / x, np.ones_like(a)),
        (tf.pow(tf.abs(x), 0.5), np.abs(a) ** 0.5), (tf.maximum(x, 0.3), np.maximum(a, 0.3)),
        (tf.squared_difference(x, 1.0), (a - 1) ** 2), (-x, -a),
        (tf.where(x > 0, x, tf.zeros_like(x)), np.where(a > 0, a, 0)),
        (tf.cast(x >= 0.5, tf.float32), (a >= 0.5).astype(float)),
        (tf.clip_by_value(x, -0.5, 1.0), np.clip(a, -0.5, 1.0)),
        (tf.reduce_sum(x), a.sum()), (tf.reduce_sum(x, axis=0), a.sum(0)),
        (tf.reduce_mean(x, axis=1, keepdims=True), a.mean(1, keepdims=True)),
        (tf.reduce_max(x, axis=[0, 1]), a.max()), (tf.reduce_min(x, 0), a.min(0)),
        (tf.reduce_sum(x, reduction_indices=[1], keep_dims=True), a.sum(1, keepdims=True)),
        (tf.reduce_logsumexp(x, axis=1), np.log(np.exp(a).sum(1))),
        (tf.transpose(x), a.T), (tf.reshape(x, [3, -1]), a.reshape(3, 2)),
        (tf.expand_dims(tf.reduce_sum(x, 0), 0), a.sum(0)[None]),
        (tf.squeeze(tf.reshape(x, [1, 6, 1])), a.ravel()),
        (tf.matmul(x, x, transpose_b=True), a @ a.T), (tf.matmul(x, x, transpose_a=True), a.T @ a),
        (tf.add_n([x, x, x]), 3 * a), (tf.nn.bias_add(x, [1.0, 2.0, 3.0]), a + [1, 2, 3]),
        (tf.nn.l2_loss(x), (a ** 2).sum() / 2), (tf.norm(x), np.linalg.norm(a)),
        (tf.nn.softmax(x), np.exp(a) / np.exp(a).sum(1, keepdims=True)),
        (tf.nn.log_softmax(x, axis=0), a - np.log(np.exp(a).sum(0, keepdims=True))),
        (tf.ones_like(x), np.ones_like(a)), (tf.fill([2], 3.0), [3.0, 3.0]),
        (tf.eye(2), np.eye(2)), (tf.range(3), [0.0, 1.0, 2.0]),
    ]
    outs = _run([t for t, _ in cases])
    for (t, want), got in zip(cases, outs):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15, err_msg=t.name)


def test_softmax_cross_entropy_values_and_gradients():
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]])
    labels = np.array([[1.0, 0.0, 0.0], [0.2, 0.7, 0.1]])
    lse = np.log(np.exp(logits).sum(1, keepdims=True))
    want = -(labels * (logits - lse)).sum(1)
    softmax = np.exp(logits - lse)
    z = tf.constant(logits)
    y = tf.constant(labels)
    xent = tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z)
    xent2 = tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=z)
    gz, gy = tf.gradients(tf.reduce_sum(xent), [z, y])
    gz2, gy2 = tf.gradients(tf.reduce_sum(xent2), [z, y])
    assert xent.shape == (2,) and gy is None             # v1: no gradient into labels
    out = _run([xent, xent2, gz, gz2, gy2])
    np.testing.assert_allclose(out[0], want, rtol=1e-14)
    np.testing.assert_allclose(out[1], want, rtol=1e-14)
    np.testing.assert_allclose(out[2], softmax - labels, rtol=1e-13, atol=1e-15)   # rows sum to 1
    np.testing.assert_allclose(out[3], softmax - labels, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(out[4], -(logits - lse), rtol=1e-14)


def test_sigmoid_cross_entropy_is_stable_and_right():
    x = np.array([-100.0, -2.0, 0.0, 3.0, 100.0])
    z = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    sig = 1 / (1 + np.exp(-x[1:4]))
    want_mid = -(z[1:4] * np.log(sig) + (1 - z[1:4]) * np.log(1 - sig))
    logits = tf.constant(x)
    loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.constant(z), logits=logits)
    (g,) = tf.gradients(tf.reduce_sum(loss), logits)
    got, grad = _run([loss, g])
    np.testing.assert_allclose(got[1:4], want_mid, rtol=1e-13)
    assert got[0] == pytest.approx(100.0) and got[4] == pytest.approx(100.0)
    np.testing.assert_allclose(grad, 1 / (1 + np.exp(-x)) - z, rtol=1e-12, atol=1e-15)


def test_losses_namespace():
    p = tf.constant([1.0, 2.0, 4.0])
    t = tf.constant([1.0, 0.0, 1.0])
    assert _run(tf.losses.mean_squared_error(t, p)) == pytest.approx((0 + 4 + 9) / 3)
    logits = tf.constant([[0.0, 0.0]])
    assert _run(tf.losses.softmax_cross_entropy([[1.0, 0.0]], logits)) == pytest.approx(math.log(2))
    assert _run(tf.losses.sigmoid_cross_entropy([1.0], tf.constant([0.0]))) == pytest.approx(math.log(2))


# ---------------------------------------------------------------------------
# training: TF 1's update formulas, worked by hand
# ---------------------------------------------------------------------------


def _quadratic(opt, steps, w0=0.0, dtype=tf.float64):
    """Minimise (w − 3)²; the gradient is 2(w − 3). Returns w after each step.

    float64 by default, so the hand-worked formulas are checked to 1e-14; the float32
    updates (TF 1's default dtype) are checked against a float32 reference below."""
    w = tf.Variable(w0, name="w", dtype=dtype)
    loss = tf.square(w - 3.0)
    train = opt.minimize(loss)
    out = []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(steps):
            sess.run(train)
            out.append(sess.run(w))
    return out


def test_gradient_descent_steps():
    # g = -6 at w = 0: w = 0.6; g = -4.8: w = 0.6 + 0.48 = 1.08
    assert _quadratic(tf.train.GradientDescentOptimizer(0.1), 2) == pytest.approx([0.6, 1.08], rel=1e-15)


def test_momentum_steps():
    # acc1 = -6, w1 = 0.6; g2 = -4.8, acc2 = 0.9*-6 - 4.8 = -10.2, w2 = 0.6 + 1.02 = 1.62
    assert _quadratic(tf.train.MomentumOptimizer(0.1, 0.9), 2) == pytest.approx([0.6, 1.62], rel=1e-15)


def test_nesterov_momentum_steps():
    # acc1 = -6, w1 = 0 - (-6*0.1 + -6*0.9*0.1) = 1.14
    # g2 = 2(1.14 - 3) = -3.72, acc2 = -5.4 - 3.72 = -9.12, w2 = 1.14 + 0.372 + 0.8208 = 2.3328
    got = _quadratic(tf.train.MomentumOptimizer(0.1, 0.9, use_nesterov=True), 2)
    assert got == pytest.approx([1.14, 2.3328], rel=1e-14)


def test_adam_steps_with_tf1_epsilon_hat():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    # step 1: g = -6; m = 0.1*-6 = -0.6; v = 0.001*36 = 0.036
    lr1 = lr * math.sqrt(1 - b2) / (1 - b1)
    w1 = 0.0 - lr1 * -0.6 / (math.sqrt(0.036) + eps)
    # step 2: g = 2(w1 - 3); m = 0.9*-0.6 + 0.1 g; v = 0.999*0.036 + 0.001 g²
    g2 = 2 * (w1 - 3)
    m2, v2 = 0.9 * -0.6 + 0.1 * g2, 0.999 * 0.036 + 0.001 * g2 * g2
    lr2 = lr * math.sqrt(1 - b2 ** 2) / (1 - b1 ** 2)
    w2 = w1 - lr2 * m2 / (math.sqrt(v2) + eps)
    assert w1 == pytest.approx(0.1, rel=1e-6)          # Adam's first step is ≈ lr
    got = _quadratic(tf.train.AdamOptimizer(lr, b1, b2, eps), 2)
    assert got == pytest.approx([w1, w2], rel=1e-14)


def test_adam_with_a_large_epsilon_uses_the_epsilon_hat_form():
    # with ε̂ = 1: w1 = lr_t * 0.6 / (sqrt(0.036) + 1), lr_t = 0.1*sqrt(0.001)/0.1
    lr_t = math.sqrt(0.001)
    got = _quadratic(tf.train.AdamOptimizer(0.1, epsilon=1.0), 1)
    assert got == pytest.approx([lr_t * 0.6 / (math.sqrt(0.036) + 1.0)], rel=1e-14)


def test_adagrad_and_rmsprop_steps():
    # Adagrad: acc = 0.1 + 36 = 36.1; w = 0.5*6/sqrt(36.1)
    assert _quadratic(tf.train.AdagradOptimizer(0.5), 1) == pytest.approx([3 / math.sqrt(36.1)], rel=1e-15)
    tf.reset_default_graph()
    # RMSProp: ms starts at 1: ms = 1 + (36 - 1)*0.1 = 4.5; mom = 0.01*6/sqrt(4.5 + 1e-10)
    got = _quadratic(tf.train.RMSPropOptimizer(0.01), 1)
    assert got == pytest.approx([0.06 / math.sqrt(4.5 + 1e-10)], rel=1e-14)


def test_update_rules_are_plain_functions():
    w, acc = tf.train.momentum_update(np.array([1.0]), np.array([2.0]), np.array([0.5]), 0.1, 0.9)
    assert acc.tolist() == [2.3] and w.tolist() == pytest.approx([1.0 - 0.23])
    assert tf.train.sgd_update(np.array(1.0), np.array(2.0), 0.25) == 0.5


def test_slots_are_variables_named_as_in_tf1_and_need_initialising():
    w = tf.Variable([1.0, 2.0], name="w")
    loss = tf.reduce_sum(w * w)
    init_too_early = tf.global_variables_initializer()
    opt = tf.train.AdamOptimizer(0.1)
    train = opt.minimize(loss)
    names = sorted(v.op.name for v in opt.variables())
    assert names == ["beta1_power", "beta2_power", "w/Adam", "w/Adam_1"]
    assert opt.get_slot(w, "m").op.name == "w/Adam"
    assert not opt.get_slot(w, "v").trainable and tf.trainable_variables() == [w]
    with tf.Session() as sess:
        sess.run(init_too_early)
        with pytest.raises(tf.errors.FailedPreconditionError,
                           match="Attempting to use uninitialized value w/Adam"):
            sess.run(train)
        sess.run(tf.global_variables_initializer())
        sess.run(train)
        assert sess.run(opt.variables()[0]) == pytest.approx(0.9 * 0.9)   # beta1_power


def test_minimize_fits_a_line_from_fed_batches(engine):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 1))
    Y = 2.0 * X + 1.0
    x = tf.placeholder(tf.float32, [None, 1], name="x")
    y = tf.placeholder(tf.float32, [None, 1], name="y")
    W = tf.get_variable("W", [1, 1], initializer=tf.zeros_initializer())
    b = tf.get_variable("b", [1], initializer=tf.zeros_initializer())
    loss = tf.reduce_mean(tf.square(tf.matmul(x, W) + b - y))
    lr = tf.placeholder(tf.float32, [], name="lr")
    step = tf.train.get_or_create_global_step()
    train = tf.train.GradientDescentOptimizer(lr).minimize(loss, global_step=step)
    with tf.Session(engine=engine) as sess:
        sess.run(tf.global_variables_initializer())
        losses = [sess.run([train, loss], {x: X, y: Y, lr: 0.2})[1] for _ in range(200)]
        assert sess.run(step) == 200.0
        w, bias = sess.run([W, b])
    assert losses[-1] < 1e-12 < losses[0]
    assert w.item() == pytest.approx(2.0, abs=1e-6) and bias.item() == pytest.approx(1.0, abs=1e-6)


def test_compute_and_apply_gradients_by_hand():
    w = tf.Variable([1.0, -2.0], name="w")
    loss = tf.reduce_sum(w * w)
    opt = tf.train.GradientDescentOptimizer(0.5)
    pairs = opt.compute_gradients(loss)
    assert [v for _, v in pairs] == [w]
    clipped = [(tf.clip_by_value(g, -1.0, 1.0), v) for g, v in pairs]
    train = opt.apply_gradients(clipped)
    with tf.Session() as sess:
        sess.run(w.initializer)
        sess.run(train)
        assert sess.run(w).tolist() == [0.5, -1.5]      # gradient (2, -4) clipped to (1, -1)


def test_minimize_without_gradients_is_refused():
    w = tf.Variable(1.0, name="w")
    loss = tf.stop_gradient(w) * 2.0
    with pytest.raises(tf.errors.UsageError, match="No gradients provided for any variable"):
        tf.train.GradientDescentOptimizer(0.1).minimize(loss)


def test_group_runs_its_assignments_and_a_finalized_graph_is_read_only():
    a = tf.Variable(0.0, name="a")
    b = tf.Variable(0.0, name="b")
    both = tf.group(a.assign(1.0), b.assign_add(2.0), name="both")
    with tf.Session() as sess:
        sess.run(b.initializer)
        assert sess.run(both) is None
        assert sess.run([a, b]) == [1.0, 2.0]
    tf.get_default_graph().finalize()
    with pytest.raises(tf.errors.UsageError, match="Graph is finalized"):
        tf.constant(1.0)


def test_feeding_an_intermediate_tensor_cuts_the_graph_there():
    # a documented difference from TF 1 (docs/tf1.md): the fed tensor is a leaf for that run
    x = tf.Variable(2.0, name="x")
    y = x * x
    z = y * 3.0
    (g,) = tf.gradients(z, x)
    with tf.Session() as sess:
        sess.run(x.initializer)
        assert sess.run([z, g]) == [12.0, 12.0]
        assert sess.run([z, g], {y: 5.0}) == [15.0, 0.0]
