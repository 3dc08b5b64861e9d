"""nbbp.tf1's dtypes and tensor vocabulary against TensorFlow 1's documented rules.

Oracles: TF 1's dtype inference and error texts (tensorflow/python/framework/
op_def_library.py, tensor_util.py, math_ops.py of TF 1.15), NumPy for values (in
the tensor's dtype), NumPy float32 for a float32 training loop.
"""

from __future__ import annotations

import numpy as np
import pytest

import nbbp.tf1 as tf
from nbbp.core.isa import STORAGE_OF
from nbbp.errors import NbbpError

F32 = float(np.finfo(np.float32).eps)
NATIVE_INTS = "int32" in STORAGE_OF        # the core stores integers (branch wt-ints)


@pytest.fixture(autouse=True)
def _fresh_graph():
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()


def _run(t, feed=None, engine="numba"):
    with tf.Session(engine=engine) as sess:
        return sess.run(t, feed)


# ---------------------------------------------------------------------------
# dtype inference
# ---------------------------------------------------------------------------


def test_constants_take_tf1s_dtypes():
    assert tf.constant(2.0).dtype == tf.float32
    assert tf.constant(2).dtype == tf.int32
    assert tf.constant([1, 2.5]).dtype == tf.float32
    assert tf.constant(True).dtype == tf.bool
    assert tf.constant(2 ** 40).dtype == tf.int64            # too large for int32
    assert tf.constant(np.array([1.0])).dtype == tf.float64  # NumPy keeps its dtype
    assert tf.constant(np.int64(3)).dtype == tf.int64
    assert tf.constant(2, dtype=tf.float64).dtype == tf.float64
    assert tf.placeholder(tf.float32).dtype == tf.float32
    assert tf.placeholder(tf.float64).dtype == tf.float64
    assert tf.placeholder("int32").dtype == tf.int32
    for t in (tf.zeros([2]), tf.ones([2]), tf.random_normal([2]), tf.random_uniform([2]),
              tf.truncated_normal([2]), tf.eye(2), tf.fill([2], 1.5), tf.range(0.0, 2.0)):
        assert t.dtype == tf.float32, t
    assert tf.zeros([2], tf.int32).dtype == tf.int32 and tf.range(3).dtype == tf.int32
    assert tf.fill([2], 7).dtype == tf.int32
    assert repr(tf.constant(2.0, name="c")) == "<tf.Tensor 'c:0' shape=() dtype=float32>"


def test_variables_take_their_initial_values_dtype():
    assert tf.Variable(3.0).dtype == tf.float32
    assert tf.Variable(3).dtype == tf.int32
    assert tf.Variable(np.zeros(2)).dtype == tf.float64
    assert tf.Variable(1, dtype=tf.float64).dtype == tf.float64
    assert tf.get_variable("W", [2, 2]).dtype == tf.float32
    assert tf.get_variable("V", [2], dtype=tf.float64).dtype == tf.float64
    w = tf.Variable(1.0, name="v1")
    assert repr(w) == "<tf.Variable 'v1:0' shape=() dtype=float32_ref>"
    with pytest.raises(TypeError, match="Expected float32, got 'a'"):
        w.assign("a")
    with pytest.raises(TypeError, match="Input 'value' of 'Assign' Op has type float64"):
        w.assign(tf.constant(1.0, tf.float64))


def test_python_numbers_adopt_the_tensors_dtype():
    x32 = tf.placeholder(tf.float32)
    x64 = tf.placeholder(tf.float64)
    i32 = tf.constant([1, 2])
    assert (x32 * 2).dtype == tf.float32 and (2 * x32).dtype == tf.float32
    assert (x64 + 1).dtype == tf.float64 and (i32 + 1).dtype == tf.int32
    assert tf.maximum(x32, 0).dtype == tf.float32
    assert (x32 * np.float64(2.0)).dtype == tf.float32      # NumPy values are cast, as TF does
    assert _run(x32 * 2, {x32: 1.5}) == np.float32(3.0)


# ---------------------------------------------------------------------------
# dtype errors: TF 1's exact texts
# ---------------------------------------------------------------------------


def test_mixing_dtypes_raises_tf1s_type_error():
    x32, x64 = tf.constant(1.0), tf.constant(1.0, tf.float64)
    with pytest.raises(TypeError) as info:
        x32 * x64
    assert str(info.value).startswith(
        "Input 'y' of 'Mul' Op has type float64 that does not match type float32 of "
        "argument 'x'.")
    assert isinstance(info.value, NbbpError) and isinstance(info.value, tf.errors.DTypeError)
    with pytest.raises(TypeError, match=r"^Input 'y' of 'Mul' Op has type float32 that does not "
                                        r"match type float64 of argument 'x'\.$"):
        tf.multiply(x64, x32)
    with pytest.raises(TypeError, match=r"^Input 'y' of 'Add' Op has type int32 that does not "
                                        r"match type float32 of argument 'x'\.$"):
        tf.add(x32, tf.constant(1))
    # an op function converts a leading number on its own: 2 is int32 (TF 1's behaviour)
    with pytest.raises(TypeError, match="Input 'y' of 'Maximum' Op has type float32 that does "
                                        "not match type int32 of argument 'x'"):
        tf.maximum(0, x32)
    with pytest.raises(TypeError, match=r"^x and y must have the same dtype, got tf.float32 != "
                                        r"tf.float64$"):
        x32 / x64
    with pytest.raises(TypeError, match="Input 'b' of 'MatMul' Op has type float64"):
        tf.matmul(tf.ones([1, 1]), tf.ones([1, 1], tf.float64))


def test_a_number_that_does_not_fit_the_tensors_dtype():
    i32 = tf.constant([1, 2])
    with pytest.raises(TypeError, match=r"^Expected int32, got 2\.5 of type 'float' instead\.$"):
        i32 * 2.5
    with pytest.raises(TypeError, match=r"^Expected int32, got 2\.0 of type 'float' instead\.$"):
        2.0 + i32
    with pytest.raises(TypeError, match=r"^Expected int32 passed to parameter 'y' of op 'Mul', "
                                        r"got 2\.5 of type 'float' instead\.$"):
        tf.multiply(i32, 2.5)
    with pytest.raises(TypeError, match=r"^Expected int32, got 1\.5 of type 'float' instead\.$"):
        tf.constant(1.5, dtype=tf.int32)


def test_ops_refuse_dtypes_outside_their_list():
    with pytest.raises(TypeError, match=r"^Value passed to parameter 'x' has DataType int32 not "
                                        r"in list of allowed values: float16, float32, float64"):
        tf.sqrt(tf.constant(4))
    with pytest.raises(TypeError, match="Value passed to parameter 'x' has DataType float32 not "
                                        "in list of allowed values: bool"):
        tf.logical_not(tf.constant(1.0))
    with pytest.raises(TypeError, match="Input 'condition' of 'Select' Op has type float32 that "
                                        "does not match expected type of bool"):
        tf.where(tf.constant([1.0]), tf.constant([1.0]), tf.constant([2.0]))
    with pytest.raises(TypeError, match="parameter 'indices' has DataType float32"):
        tf.gather(tf.constant([1.0, 2.0]), tf.constant([0.0]))
    before = len(tf.get_default_graph().get_operations())
    with pytest.raises(TypeError):
        tf.constant(1.0) + tf.constant(1)
    # the failed op left nothing behind
    assert len(tf.get_default_graph().get_operations()) == before + 2


# ---------------------------------------------------------------------------
# values come back in the tensor's dtype; float32 runs in float32
# ---------------------------------------------------------------------------


def test_sess_run_returns_numpy_values_of_the_dtype(engine):
    x = tf.Variable(3.0, name="x")
    y = tf.Variable(2.0, name="y")
    f = x * x * y + y + 1
    gx, gy = tf.gradients(f, [x, y])
    with tf.Session(engine=engine) as sess:
        sess.run(tf.global_variables_initializer())
        out = sess.run([f, gx, gy])
        assert out == [21.0, 12.0, 10.0] and all(type(v) is np.float32 for v in out)
        v = sess.run(tf.constant(83.0) / 12)
        assert type(v) is np.float32 and v == np.float32(83.0) / np.float32(12.0)
        assert repr(v) == "np.float32(6.9166665)"
        d = sess.run(tf.constant(83.0, tf.float64) / 12)
        assert type(d) is np.float64 and d == 83.0 / 12
        i = sess.run(tf.constant([1, 2]) * 3)
        assert i.dtype == np.int32 and i.tolist() == [3, 6]
        assert sess.run(tf.constant(2) > 1).dtype == np.bool_


def test_float32_is_computed_in_float32_not_rounded_at_the_end(engine):
    # (1 + 1e-8) - 1 is 0 in float32 (1e-8 is lost when added) but 1e-8 in float64
    x = tf.placeholder(tf.float32)
    d = (x + 1e-8) - x
    x64 = tf.placeholder(tf.float64)
    d64 = (x64 + 1e-8) - x64
    assert _run(d, {x: 1.0}, engine) == 0.0
    assert _run(d64, {x64: 1.0}, engine) == pytest.approx(1e-8, rel=1e-7)
    s = tf.reduce_sum(tf.fill([3], 0.1))
    assert _run(s, engine=engine) == pytest.approx(0.3, rel=F32) and \
        type(_run(s, engine=engine)) is np.float32


def test_feeds_are_converted_to_the_placeholders_dtype():
    x = tf.placeholder(tf.float32, [2])
    out = _run(tf.identity(x), {x: np.array([0.1, 0.2])})
    assert out.dtype == np.float32 and out.tolist() == np.float32([0.1, 0.2]).tolist()


# ---------------------------------------------------------------------------
# casts and division
# ---------------------------------------------------------------------------


def test_cast_and_to_float():
    x = tf.constant([0.1, -2.0, 0.0])
    b = tf.constant([True, False])
    i = tf.constant([1, 2])
    out = _run([tf.cast(x, tf.float64), tf.cast(b, tf.float32), tf.cast(x, tf.bool),
                tf.to_float(i), tf.cast(i, tf.int64), tf.to_double(i)])
    assert out[0].dtype == np.float64 and out[0].tolist() == np.float32([0.1, -2, 0]).astype(
        np.float64).tolist()
    assert out[1].tolist() == [1.0, 0.0] and out[1].dtype == np.float32
    assert out[2].tolist() == [True, True, False]
    assert out[3].dtype == np.float32 and out[3].tolist() == [1.0, 2.0]
    assert out[4].dtype == np.int64 and out[5].dtype == np.float64
    assert tf.cast(x, tf.float32) is x
    if NATIVE_INTS:
        assert _run(tf.to_int32(tf.constant([1.7, -1.7]))).tolist() == [1, -1]
    else:
        with pytest.raises(tf.errors.NotSupportedError, match="truncating toward zero"):
            tf.to_int32(x)


def test_truediv_of_integers_is_float64_as_in_tf1():
    a = tf.constant([7, -7])
    for t in (tf.truediv(a, 2), a / 2, tf.divide(a, 2)):
        assert t.dtype == tf.float64
        out = _run(t)
        assert out.dtype == np.float64 and out.tolist() == [3.5, -3.5]
    assert tf.div(tf.constant(7.0), 2.0).dtype == tf.float32
    assert _run(tf.div(tf.constant(7.0), 2.0)) == 3.5


def test_integer_division_floors_as_tf1_does():
    a = tf.constant([[0, 1], [2, 3]])
    b = tf.constant([-7, 7])
    if not NATIVE_INTS:
        # no silently wrong float answer: refused until the core stores integers
        for build in (lambda: a // 2, lambda: tf.div(a, 2), lambda: b % 2,
                      lambda: tf.floordiv(b, 2), lambda: tf.floormod(b, 2)):
            with pytest.raises(tf.errors.NotSupportedError, match="no floordiv op|no mod op"):
                build()
        return
    assert _run(tf.div(a, 2)).tolist() == [[0, 0], [1, 1]]
    assert _run(a // 2).tolist() == [[0, 0], [1, 1]]
    assert _run(b // 2).tolist() == [-4, 3] and _run(tf.floordiv(b, 2)).dtype == np.int32
    assert _run(b % 3).tolist() == [2, 1] and _run(tf.floormod(b, -3)).tolist() == [-1, -2]


def test_integer_reductions_stay_integer():
    i = tf.constant([1, 2])
    out = _run([tf.reduce_sum(i), tf.reduce_max(i), tf.reduce_prod(tf.constant([2, 3]))])
    assert [type(v) for v in out] == [np.int32] * 3 and [int(v) for v in out] == [3, 2, 6]
    if NATIVE_INTS:
        m = _run(tf.reduce_mean(i))
        assert m == 1 and type(m) is np.int32          # TF 1: integer mean floors
    else:
        with pytest.raises(tf.errors.DTypeError, match="Mean on int32"):
            tf.reduce_mean(i)


# ---------------------------------------------------------------------------
# comparisons, argmax, the accuracy idiom
# ---------------------------------------------------------------------------


def test_comparisons_and_logical_ops_give_bools():
    a = tf.constant([1.0, 2.0, 3.0])
    cases = [(tf.equal(a, 2.0), [False, True, False]), (tf.not_equal(a, 2.0), [True, False, True]),
             (tf.less(a, 2.0), [True, False, False]), (a <= 2.0, [True, True, False]),
             (tf.greater(a, 2.0), [False, False, True]), (a >= 2.0, [False, True, True]),
             (tf.logical_and(a > 1.0, a < 3.0), [False, True, False]),
             (tf.logical_or(a < 2.0, a > 2.0), [True, False, True]),
             (tf.logical_not(a > 1.0), [True, False, False]), (~(a > 1.0), [True, False, False]),
             ((a > 1.0) & (a < 3.0), [False, True, False])]
    outs = _run([t for t, _ in cases])
    for (t, want), got in zip(cases, outs):
        assert t.dtype == tf.bool and got.dtype == np.bool_ and got.tolist() == want, t


def test_argmax_and_argmin(engine):
    x = np.array([[1.0, 5.0, 5.0], [7.0, -1.0, 2.0]], dtype=np.float32)
    t = tf.constant(x)
    mx, mn, m0 = tf.argmax(t, 1), tf.argmin(t, axis=1), tf.argmax(t, 0, output_type=tf.int32)
    assert mx.dtype == tf.int64 and m0.dtype == tf.int32 and mx.shape == (2,)
    out = _run([mx, mn, m0, tf.argmax(tf.constant([3, 9, 1]), 0)], engine=engine)
    assert out[0].tolist() == [1, 0] and out[0].dtype == np.int64      # the first of ties
    assert out[1].tolist() == [0, 1] and out[2].tolist() == [1, 0, 0]
    assert out[2].dtype == np.int32 and out[3] == 1


def test_the_accuracy_idiom_matches_numpy(engine):
    rng = np.random.default_rng(3)
    L = rng.normal(size=(40, 5)).astype(np.float32)
    Y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 40)]
    logits = tf.placeholder(tf.float32, [None, 5])
    y = tf.placeholder(tf.float32, [None, 5])
    correct = tf.equal(tf.argmax(logits, 1), tf.argmax(y, 1))
    acc = tf.reduce_mean(tf.cast(correct, tf.float32))
    got = _run(acc, {logits: L, y: Y}, engine)
    want = np.mean(L.argmax(1) == Y.argmax(1)).astype(np.float32)
    assert type(got) is np.float32 and got == want and 0 < want < 1


def test_no_gradient_through_integer_and_boolean_ops():
    x = tf.Variable([[1.0, 3.0], [2.0, 0.0]], name="x")
    i = tf.argmax(x, 1)
    assert tf.gradients(tf.cast(i, tf.float32), x) == [None]
    assert tf.gradients(tf.cast(x > 1.0, tf.float32), x) == [None]
    assert tf.gradients(tf.reduce_sum(tf.one_hot(i, 2)), x) == [None]


# ---------------------------------------------------------------------------
# the tensor vocabulary, against NumPy
# ---------------------------------------------------------------------------


def test_tensor_ops_match_numpy(engine):
    a = np.arange(12, dtype=np.float32).reshape(3, 4) - 5
    x = tf.constant(a)
    cases = [
        (x[0], a[0]), (x[:, 1:3], a[:, 1:3]), (x[-1, ::-2], a[-1, ::-2]),
        (x[..., tf.newaxis], a[..., None]), (x[1:, -1], a[1:, -1]),
        (tf.concat([x, x], 1), np.concatenate([a, a], 1)), (tf.stack([x, x]), np.stack([a, a])),
        (tf.stack([x[0], x[1]], axis=1), np.stack([a[0], a[1]], 1)),
        (tf.tile(x, [2, 1]), np.tile(a, [2, 1])),
        (tf.pad(x, [[1, 0], [0, 2]]), np.pad(a, [[1, 0], [0, 2]])),
        (tf.pad(x, [[0, 1], [1, 1]], constant_values=7.0),
         np.pad(a, [[0, 1], [1, 1]], constant_values=7.0)),
        (tf.squeeze(tf.expand_dims(x, 0)), a), (tf.expand_dims(x, -1), a[..., None]),
        (tf.clip_by_value(x, -2.0, 3.0), np.clip(a, -2, 3)),
        (tf.reduce_prod(x[:, :2] + 6.0, axis=1), np.prod(a[:, :2] + 6, 1)),
        (tf.reduce_any(x > 5.0, axis=0), np.any(a > 5, 0)), (tf.reduce_all(x > -6.0), True),
        (tf.reduce_logsumexp(x, axis=1), np.log(np.exp(a.astype(np.float64)).sum(1))),
        (tf.gather(x, [2, 0]), a[[2, 0]]), (tf.gather(x, [3, 1], axis=1), a[:, [3, 1]]),
        (tf.nn.embedding_lookup(x, [1, 1]), a[[1, 1]]),
        (tf.one_hot([0, 2, 5], 3), np.eye(3, dtype=np.float32)[[0, 2]].tolist() + [[0, 0, 0]]),
        (tf.one_hot([1], 2, on_value=5, off_value=-1), [[-1, 5]]),
        (tf.shape(x), [3, 4]), (tf.size(x), 12), (tf.range(2, 8, 2), [2, 4, 6]),
    ]
    outs = _run([t for t, _ in cases], engine=engine)
    for (t, want), got in zip(cases, outs):
        np.testing.assert_allclose(got, np.asarray(want, dtype=np.float64), rtol=F32,
                                   err_msg=t.name)
        assert np.asarray(got).dtype == t.dtype.as_numpy_dtype, t
    parts = tf.unstack(x)
    halves = tf.split(x, 2, axis=1)
    sized = tf.split(x, [1, 3], 1)
    out = _run(parts + halves + sized, engine=engine)
    for got, want in zip(out, list(a) + np.split(a, 2, 1) + [a[:, :1], a[:, 1:]]):
        np.testing.assert_array_equal(got, want)


def test_shape_and_size_follow_the_feed():
    x = tf.placeholder(tf.float32, [None, 2])
    n = tf.shape(x)[0]
    assert n.dtype == tf.int32
    assert _run([n, tf.size(x)], {x: np.zeros((5, 2))}) == [5, 10]


def test_gradients_flow_through_slicing_gather_and_concat():
    w = tf.Variable([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], name="w", dtype=tf.float64)
    y = tf.reduce_sum(tf.concat([w[:, 1:] * 2.0, tf.gather(w, [1, 1])], 1) ** 2)
    (g,) = tf.gradients(y, w)
    with tf.Session() as sess:
        sess.run(w.initializer)
        got = sess.run(g)
    W = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    want = np.zeros_like(W)
    want[:, 1:] = 8 * W[:, 1:]
    want[1] += 4 * W[1]
    np.testing.assert_allclose(got, want, rtol=1e-15)


def test_index_errors_name_the_problem():
    x = tf.constant([1.0, 2.0])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"indices = 5 is not in \[0, 2\)"):
        tf.gather(x, [0, 5])
    with pytest.raises(tf.errors.ShapeError):
        x[3]
    with pytest.raises(tf.errors.ShapeError):
        tf.concat([tf.ones([2, 2]), tf.ones([3, 3])], 0)


# ---------------------------------------------------------------------------
# training in float32
# ---------------------------------------------------------------------------


def _logistic_reference(X, Y, lr, steps):
    """Logistic regression by gradient descent, in NumPy float32 throughout."""
    W = np.zeros((X.shape[1], 1), np.float32)
    b = np.zeros(1, np.float32)
    lr = np.float32(lr)
    for _ in range(steps):
        z = X @ W + b
        p = np.float32(1) / (np.float32(1) + np.exp(-z))
        d = (p - Y) / np.float32(len(X))
        W = W - lr * (X.T @ d)
        b = b - lr * d.sum(0)
    return W, b


def test_float32_logistic_regression_matches_a_numpy_float32_loop(engine):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(64, 3)).astype(np.float32)
    Y = (X @ np.float32([[1.5], [-2.0], [0.5]]) > 0).astype(np.float32)
    x = tf.placeholder(tf.float32, [None, 3])
    y = tf.placeholder(tf.float32, [None, 1])
    W = tf.Variable(tf.zeros([3, 1]), name="W")
    b = tf.Variable(tf.zeros([1]), name="b")
    logits = tf.matmul(x, W) + b
    loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits))
    train = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
    with tf.Session(engine=engine) as sess:
        sess.run(tf.global_variables_initializer())
        losses = [sess.run([train, loss], {x: X, y: Y})[1] for _ in range(100)]
        w, bias = sess.run([W, b])
    assert w.dtype == np.float32 and bias.dtype == np.float32
    assert all(type(v) is np.float32 for v in losses) and losses[-1] < losses[0] / 3
    rw, rb = _logistic_reference(X, Y, 0.5, 100)
    # float32 sums in another order differ in the last bits; 100 steps stay within 1e-5
    np.testing.assert_allclose(w, rw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, rb, rtol=1e-5, atol=1e-6)


def test_float32_adam_matches_tf1s_float32_update():
    # one step from w = 0 of (w − 3)²: TF 1 computes it in float32, lr etc. cast to float32
    w = tf.Variable(0.0, name="w")
    opt = tf.train.AdamOptimizer(0.1)
    train = opt.minimize(tf.square(w - 3.0))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train)
        got = sess.run(w)
        powers = sess.run(opt.variables()[:2])
    f = np.float32
    g = f(-6.0)
    m = (g - f(0)) * (f(1) - f(0.9))
    v = (g * g) * (f(1) - f(0.999))
    lr_t = f(0.1) * np.sqrt(f(1) - f(0.999)) / (f(1) - f(0.9))
    want = f(0) - lr_t * m / (np.sqrt(v) + f(1e-8))
    assert type(got) is np.float32 and got == pytest.approx(want, rel=2 * F32)
    assert powers == [f(0.9) * f(0.9), f(0.999) * f(0.999)]


def test_integer_variables_and_casts_carry_no_gradient():
    n = tf.Variable(3, name="n")
    w = tf.Variable(2.0, name="w")
    y = tf.cast(n, tf.float32) * w
    assert tf.gradients(y, [n, w])[0] is None
    (gw,) = tf.gradients(y, [w])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(gw) == 3.0
    with pytest.raises(ValueError, match=r"Invalid type tf.int32 for n:0"):
        tf.train.GradientDescentOptimizer(0.1).compute_gradients(y, [n, w])


def test_int32_overflow_wraps_as_tf1_or_is_refused():
    big = tf.constant(2 ** 31 - 1)
    assert _run(big + 1 - 1) == 2 ** 31 - 1      # modular arithmetic: TF gives this too
    if NATIVE_INTS:
        out = _run(big + 1)
        assert out == -2 ** 31 and type(out) is np.int32          # TF 1 wraps around
    else:
        with pytest.raises(tf.errors.OpError, match="outside the int32 range"):
            _run(big + 1)


def test_gradients_at_ties_follow_tf1():
    # TF 1's Maximum/Minimum gradients go wholly to x at a tie (x >= y, x <= y);
    # Relu6's and Elu's gradients at 0 and 6 are TF's (0, 1 and 0); reduce_max over
    # several axes splits among all ties of the block
    x = tf.Variable([0.0, 6.0, 2.0], name="x", dtype=tf.float64)
    m = tf.Variable([[1.0, 1.0], [1.0, 0.0]], name="m", dtype=tf.float64)
    cases = [(tf.maximum(x, 0.0), [1, 1, 1]), (tf.minimum(x, 6.0), [1, 1, 1]),
             (tf.maximum(0.0 * x, x), [0, 1, 1]), (tf.nn.relu6(x), [0, 0, 1]),
             (tf.nn.elu(x), [1, 1, 1]), (tf.clip_by_value(x, 0.0, 6.0), [1, 1, 1])]
    grads = [tf.gradients(tf.reduce_sum(t), x)[0] for t, _ in cases]
    (gm,) = tf.gradients(tf.reduce_max(m, axis=[0, 1]), m)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got = sess.run(grads + [gm])
    for (t, want), g in zip(cases, got):
        assert g.tolist() == want, t
    np.testing.assert_allclose(got[-1], [[1 / 3, 1 / 3], [1 / 3, 0]], rtol=1e-15)


def test_log1p_is_accurate_for_tiny_arguments():
    x = tf.constant([1e-10, 1e-5, 0.5, -0.5, 3.0])
    got = _run(tf.log1p(x))
    want = np.log1p(np.float32([1e-10, 1e-5, 0.5, -0.5, 3.0]).astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=4 * F32)


# ---------------------------------------------------------------------------
# int8, int16, uint8 and tf.string constants
# ---------------------------------------------------------------------------


def test_small_integer_dtypes_wrap_as_tf_1s_kernels_do(engine):
    a = tf.constant([100, 120, -128], tf.int8)
    b = tf.constant([250, 3], tf.uint8)
    c = tf.constant([30000, -7], tf.int16)
    got = _run([a + a, b + b, c * 2, c // 2, tf.reduce_sum(a), tf.cast(a, tf.float32),
                tf.argmax(b, 0)], engine=engine)
    # NumPy's integer arithmetic wraps as TF's kernels (C++ two's complement) do
    want = [np.int8([100, 120, -128]) * np.int8(2), np.uint8([250, 3]) * np.uint8(2),
            np.int16([30000, -7]) * np.int16(2), np.int16([15000, -4]),
            np.int8(np.int8([100, 120, -128]).sum(dtype=np.int8)),
            np.float32([100, 120, -128]), np.int64(0)]
    for g, w in zip(got, want):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_array_equal(g, w)
    with pytest.raises(tf.errors.DTypeError, match=r"-1 does not fit in uint8 \(0\.\.255\)"):
        tf.constant(-1, tf.uint8)
    with pytest.raises(TypeError, match="Input 'y' of 'Add' Op has type int16 that does not "
                                        "match type int8"):
        tf.add(a, tf.constant([1, 2, 3], tf.int16))
    assert (tf.as_dtype("uint8"), tf.int8.is_integer, str(a)) == (
        tf.uint8, True, 'Tensor("Const:0", shape=(3,), dtype=int8)')


def test_string_constants_print_and_fetch_as_tf_1_does():
    h = tf.constant("Hello, TensorFlow!")
    ab = tf.constant([b"a", b"b"])
    u = tf.identity(tf.constant([["héllo"], ["w"]]), name="u")
    assert (str(h), repr(ab), repr(tf.string), tf.string.as_numpy_dtype) == (
        'Tensor("Const:0", shape=(), dtype=string)',
        "<tf.Tensor 'Const_1:0' shape=(2,) dtype=string>", "tf.string", object)
    with tf.Session() as sess:
        hv, abv, (uv, six) = sess.run(h), sess.run(ab), sess.run([u, tf.constant(2.0) * 3])
        d = sess.run({"h": h})
    assert hv == b"Hello, TensorFlow!" and type(hv) is bytes and d == {"h": hv}
    assert abv.dtype == object and abv.tolist() == [b"a", b"b"] and str(abv) == "[b'a' b'b']"
    assert uv.shape == (2, 1) and uv[0, 0] == "héllo".encode() and six == np.float32(6.0)


def test_string_ops_other_than_constants_and_identity_fail_in_one_line():
    h = tf.constant("a")
    n = len(tf.get_default_graph().get_operations())
    with pytest.raises(tf.errors.NotSupportedError, match=r"^Add on tf\.string tensors is not "
                                                          r"supported by nbbp\.tf1 \(op 'add'\)"):
        h + h  # noqa: B018
    with pytest.raises(tf.errors.NotSupportedError, match=r"tf\.placeholder\(tf\.string\)"):
        tf.placeholder(tf.string)
    with pytest.raises(tf.errors.NotSupportedError, match="of tf.string is not supported"):
        tf.Variable("x")
    with pytest.raises(TypeError, match="Expected string, got 1 of type 'int' instead."):
        tf.constant(1, dtype=tf.string)
    with pytest.raises(TypeError, match="Expected float32, got 'x' of type 'str' instead."):
        tf.constant("x", dtype=tf.float32)
    assert len(tf.get_default_graph().get_operations()) == n      # nothing left behind
