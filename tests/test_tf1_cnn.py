"""tf.nn.conv2d / max_pool / avg_pool / bias_add / sparse_softmax_cross_entropy_with_logits
and tf.layers against PyTorch (values and autograd gradients, TF 1's SAME padding
written out as an explicit pad) and TF 1.15's documented names, defaults and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbbp.tf1 as tf

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.fixture(autouse=True)
def fresh_default_graph():
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()


def _same_pad(n: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TF 1's SAME padding along one axis: (before, after), the smaller part before."""
    keff = (k - 1) * d + 1
    out = -(-n // s)
    total = max((out - 1) * s + keff - n, 0)
    return total // 2, total - total // 2


def _nchw(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.ascontiguousarray(a.transpose(0, 3, 1, 2)), dtype=torch.float64,
                        requires_grad=True)


def _pad(x: torch.Tensor, ks, ss, ds, padding: str, fill: float = 0.0) -> torch.Tensor:
    if padding == "VALID":
        return x
    (t, b), (left, r) = (_same_pad(x.shape[2], ks[0], ss[0], ds[0]),
                         _same_pad(x.shape[3], ks[1], ss[1], ds[1]))
    return F.pad(x, (left, r, t, b), value=fill)


def _tf_value_and_grads(build, arrays, dtype=tf.float64):
    """Value of ``build(*tensors)`` and the gradients of sum(out · R) (R fixed random)."""
    ts = [tf.constant(a, dtype=dtype) for a in arrays]
    out = build(*ts)
    r = np.random.default_rng(5).standard_normal(tuple(out.shape)).astype(dtype.name)
    grads = tf.gradients(tf.reduce_sum(out * r), ts)
    with tf.Session() as sess:
        value, *gs = sess.run([out] + grads)
    return value, gs, r


def _torch_value_and_grads(fn, arrays, r):
    xs = [_nchw(a) if a.ndim == 4 and i == 0 else torch.tensor(a, requires_grad=True)
          for i, a in enumerate(arrays)]
    out = fn(*xs)
    (out * torch.tensor(r.transpose(0, 3, 1, 2))).sum().backward()
    gx = xs[0].grad.numpy().transpose(0, 2, 3, 1)
    return out.detach().numpy().transpose(0, 2, 3, 1), [gx] + [x.grad.numpy() for x in xs[1:]]


CONVS = [((2, 7, 6, 3), (3, 3, 3, 4), (1, 1), (1, 1), "SAME"),
         ((2, 7, 6, 3), (3, 2, 3, 2), (2, 2), (1, 1), "SAME"),
         ((1, 8, 8, 2), (2, 2, 2, 3), (2, 3), (1, 1), "VALID"),
         ((1, 9, 9, 1), (3, 3, 1, 2), (1, 1), (2, 2), "SAME"),
         ((3, 5, 5, 2), (5, 5, 2, 1), (1, 1), (1, 1), "VALID")]


@pytest.mark.parametrize("xs,ws,strides,dil,padding", CONVS)
def test_conv2d_and_its_gradients_match_pytorch(xs, ws, strides, dil, padding):
    _check_conv(xs, ws, strides, dil, padding, 0)


def _check_conv(xs, ws, strides, dil, padding, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    value, (gx, gw), r = _tf_value_and_grads(
        lambda a, b: tf.nn.conv2d(a, b, strides=[1, *strides, 1], padding=padding,
                                  dilations=[1, *dil, 1]), [x, w])

    def conv(a, b):
        return F.conv2d(_pad(a, ws[:2], strides, dil, padding), b.permute(3, 2, 0, 1),
                        stride=strides, dilation=dil)
    ref, (rx, rw) = _torch_value_and_grads(conv, [x, w], r)
    np.testing.assert_allclose(value, ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gx, rx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-10)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(3, 9), w=st.integers(3, 9), cin=st.integers(1, 3),
       cout=st.integers(1, 3), kh=st.integers(1, 3), kw=st.integers(1, 3),
       step=st.integers(1, 3), dilate=st.booleans(), padding=st.sampled_from(["SAME", "VALID"]),
       seed=st.integers(0, 2**16))
def test_conv2d_matches_pytorch_on_random_geometries(h, w, cin, cout, kh, kw, step, dilate,
                                                     padding, seed):
    """TF 1 takes strides or dilations above 1, not both; VALID needs the window to fit."""
    strides, dil = ((1, 1), (step, step)) if dilate else ((step, step), (1, 1))
    if padding == "VALID" and ((kh - 1) * dil[0] + 1 > h or (kw - 1) * dil[1] + 1 > w):
        return
    tf.reset_default_graph()
    _check_conv((2, h, w, cin), (kh, kw, cin, cout), strides, dil, padding, seed)


POOLS = [((2, 6, 6, 3), (2, 2), (2, 2), "VALID"),
         ((2, 7, 5, 2), (2, 2), (2, 2), "SAME"),
         ((1, 7, 7, 1), (3, 3), (2, 2), "SAME"),
         ((1, 6, 5, 2), (3, 2), (1, 1), "SAME")]


@pytest.mark.parametrize("xs,ks,ss,padding", POOLS)
def test_max_pool_and_avg_pool_match_pytorch(xs, ks, ss, padding):
    x = np.random.default_rng(1).standard_normal(xs)
    for kind in ("max", "avg"):
        fn = tf.nn.max_pool if kind == "max" else tf.nn.avg_pool
        value, (gx,), r = _tf_value_and_grads(
            lambda a, fn=fn: fn(a, ksize=[1, *ks, 1], strides=[1, *ss, 1], padding=padding), [x])

        def pool(a, kind=kind):
            if kind == "max":
                return F.max_pool2d(_pad(a, ks, ss, (1, 1), padding, -np.inf), ks, ss)
            # TF 1 divides by the number of input values in the window (not the padding)
            total = F.avg_pool2d(_pad(a, ks, ss, (1, 1), padding), ks, ss) * (ks[0] * ks[1])
            ones = torch.ones((1, 1) + tuple(a.shape[2:]), dtype=a.dtype)
            count = F.avg_pool2d(_pad(ones, ks, ss, (1, 1), padding), ks, ss) * (ks[0] * ks[1])
            return total / count
        ref, (rx,) = _torch_value_and_grads(pool, [x], r)
        np.testing.assert_allclose(value, ref, rtol=1e-12, err_msg=kind)
        np.testing.assert_allclose(gx, rx, rtol=1e-12, atol=1e-12, err_msg=kind)


def test_pooling_and_conv_shapes_are_tf_1s_and_batch_may_be_unknown():
    x = tf.placeholder(tf.float32, [None, 28, 28, 1])
    c = tf.nn.conv2d(x, tf.ones([5, 5, 1, 32]), strides=[1, 1, 1, 1], padding="SAME")
    p = tf.nn.max_pool(c, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")
    v = tf.nn.avg_pool(p, 3, 2, "VALID")
    assert (str(c), str(p)) == ('Tensor("Conv2D:0", shape=(?, 28, 28, 32), dtype=float32)',
                                'Tensor("MaxPool:0", shape=(?, 14, 14, 32), dtype=float32)')
    assert v.shape.as_list() == [None, 6, 6, 32]
    assert tf.nn.conv2d(x, tf.ones([3, 3, 1, 2]), 2, "VALID").shape.as_list() == \
        [None, 13, 13, 2]


def test_conv_pool_and_bias_add_errors_say_what_and_how():
    x = tf.placeholder(tf.float32, [None, 8, 8, 3])
    w = tf.ones([3, 3, 3, 4])
    with pytest.raises(tf.errors.UsageError, match="NHWC tensor format on the CPU"):
        tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME", data_format="NCHW")
    with pytest.raises(tf.errors.UsageError, match="TF 1 spells it 'SAME'"):
        tf.nn.conv2d(x, w, [1, 1, 1, 1], "same")
    with pytest.raises(tf.errors.UsageError, match="batch and depth dimensions"):
        tf.nn.max_pool(x, [1, 2, 2, 1], [2, 2, 2, 1], "SAME")
    with pytest.raises(tf.errors.UsageError, match="length 1, 2 or 4 but was 3"):
        tf.nn.avg_pool(x, [2, 2, 2], [1, 1, 1, 1], "SAME")
    with pytest.raises(tf.errors.UsageError, match="needs input, filter, strides and padding"):
        tf.nn.conv2d(x, w)
    with pytest.raises(ValueError, match="input .* has 3 channels, filter .* expects 2"):
        tf.nn.conv2d(tf.ones([1, 8, 8, 3]), tf.ones([3, 3, 2, 4]), 1, "SAME")
    with pytest.raises(TypeError, match="'input' has DataType int32 not in list"):
        tf.nn.conv2d(tf.ones([1, 4, 4, 1], tf.int32), tf.ones([2, 2, 1, 1], tf.int32), 1,
                     "SAME")
    with pytest.raises(ValueError, match="Dimensions must be equal, but are 4 and 3"):
        tf.nn.bias_add(tf.nn.conv2d(x, w, 1, "SAME"), tf.zeros([3]))
    with pytest.raises(ValueError, match="Shape must be rank 1 but is rank 2"):
        tf.nn.bias_add(x, tf.zeros([1, 3]))
    with pytest.raises(ValueError, match="at least rank 2 but is rank 1"):
        tf.nn.bias_add(tf.zeros([3]), tf.zeros([3]))


def test_bias_add_on_images_adds_per_channel():
    x = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)
    y = tf.nn.bias_add(x, np.float32([10, 20, 30]))
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(y), x + [10, 20, 30])


def test_sparse_softmax_cross_entropy_matches_pytorch_and_its_gradient():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((6, 5))
    labels = np.array([0, 4, 2, 2, 1, 3])
    for ldt in (tf.int32, tf.int64):
        tf.reset_default_graph()
        logits = tf.placeholder(tf.float64, [None, 5])
        y = tf.placeholder(ldt, [None])
        xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        (g,) = tf.gradients(tf.reduce_mean(xent), [logits])
        assert str(xent) == ('Tensor("SparseSoftmaxCrossEntropyWithLogits:0", shape=(?,), '
                             'dtype=float64)')
        with tf.Session() as sess:
            got, grad = sess.run([xent, g], {y: labels, logits: z})
        zt = torch.tensor(z, requires_grad=True)
        ref = F.cross_entropy(zt, torch.tensor(labels), reduction="none")
        ref.mean().backward()
        np.testing.assert_allclose(got, ref.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_sparse_softmax_cross_entropy_errors_are_tf_1s():
    logits = tf.placeholder(tf.float32, [None, 3])
    with pytest.raises(tf.errors.UsageError, match="Only call `sparse_softmax_cross_entropy"
                                                   "_with_logits` with named arguments"):
        tf.nn.sparse_softmax_cross_entropy_with_logits([0], logits)
    with pytest.raises(ValueError, match=r"Rank mismatch: Rank of labels \(received 2\) "
                                         r"should equal rank of logits minus 1"):
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.ones([2, 3], tf.int32),
                                                       logits=logits)
    with pytest.raises(TypeError, match="'labels' has DataType float32 not in list of "
                                        "allowed values: int32, int64"):
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.ones([2]), logits=logits)
    w = tf.Variable(np.zeros((2, 3), np.float32))
    y = tf.placeholder(tf.int32, [2])
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=y, logits=tf.matmul(tf.ones([2, 2]), w)))
    train = tf.train.GradientDescentOptimizer(1.0).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"Received a label value of 3 which is outside the valid "
                                 r"range of \[0, 3\)\.  Label values: 1 3"):
            sess.run(train, {y: [1, 3]})
        np.testing.assert_array_equal(sess.run(w), 0.0)      # nothing was applied
        sess.run(train, {y: [1, 2]})
        assert sess.run(w)[0, 1] > 0


# ---------------------------------------------------------------------------
# tf.layers
# ---------------------------------------------------------------------------


def test_layers_names_shapes_and_defaults_are_tf_1_15s():
    x = tf.placeholder(tf.float32, [None, 28, 28, 1])
    c = tf.layers.conv2d(x, 32, 5, padding="same", activation=tf.nn.relu)
    p = tf.layers.max_pooling2d(c, pool_size=[2, 2], strides=2)
    a = tf.layers.average_pooling2d(p, 2, 2, padding="same")
    f = tf.layers.flatten(a)
    h = tf.layers.dense(f, 64, activation=tf.nn.relu)
    out = tf.layers.dense(h, 10, use_bias=False)
    assert [str(t) for t in (c, p, a, f, h, out)] == [
        'Tensor("conv2d/Relu:0", shape=(?, 28, 28, 32), dtype=float32)',
        'Tensor("max_pooling2d/MaxPool:0", shape=(?, 14, 14, 32), dtype=float32)',
        'Tensor("average_pooling2d/AvgPool:0", shape=(?, 7, 7, 32), dtype=float32)',
        'Tensor("flatten/Reshape:0", shape=(?, 1568), dtype=float32)',
        'Tensor("dense/Relu:0", shape=(?, 64), dtype=float32)',
        'Tensor("dense_1/MatMul:0", shape=(?, 10), dtype=float32)']
    assert [(v.name, v.shape.as_list()) for v in tf.trainable_variables()] == [
        ("conv2d/kernel:0", [5, 5, 1, 32]), ("conv2d/bias:0", [32]),
        ("dense/kernel:0", [1568, 64]), ("dense/bias:0", [64]),
        ("dense_1/kernel:0", [64, 10])]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        k, b = sess.run(["dense/kernel:0", "dense/bias:0"])
    # glorot-uniform: U(±sqrt(6 / (fan_in + fan_out))), variance limit² / 3; zero bias
    limit = np.sqrt(6.0 / (1568 + 64))
    assert k.dtype == np.float32 and np.abs(k).max() <= limit
    assert abs(k.var() / (limit ** 2 / 3) - 1) < 0.05 and abs(k.mean()) < 0.01 * limit
    np.testing.assert_array_equal(b, 0.0)


def test_dense_and_conv2d_layers_compute_what_numpy_and_pytorch_do():
    rng = np.random.default_rng(3)
    xv = rng.standard_normal((2, 5, 5, 3))
    x = tf.placeholder(tf.float64, [None, 5, 5, 3])
    c = tf.layers.conv2d(x, 2, (3, 2), strides=(2, 1), padding="valid",
                         kernel_initializer=tf.constant_initializer(0.5),
                         bias_initializer=tf.constant_initializer(0.25))
    d = tf.layers.dense(tf.layers.flatten(c), 3, activation=tf.nn.tanh,
                        kernel_initializer=tf.ones_initializer())
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        cv, dv = sess.run([c, d], {x: xv})
    ref = F.conv2d(torch.tensor(xv.transpose(0, 3, 1, 2)), torch.full((2, 3, 3, 2), 0.5, dtype=torch.float64),
                   stride=(2, 1)).numpy().transpose(0, 2, 3, 1) + 0.25
    np.testing.assert_allclose(cv, ref, rtol=1e-12)
    np.testing.assert_allclose(dv, np.tanh(ref.reshape(2, -1) @ np.ones((ref[0].size, 3))),
                               rtol=1e-12)
    assert c.dtype == tf.float64 and tf.trainable_variables()[0].dtype == tf.float64


def test_layers_share_variables_as_tf_1_does():
    x = tf.placeholder(tf.float32, [None, 4])

    def net(x):
        return tf.layers.dense(tf.layers.dense(x, 3, activation=tf.nn.relu), 1)

    with tf.variable_scope("model"):
        y1 = net(x)
    with tf.variable_scope("model", reuse=True):
        y2 = net(x)
    with tf.variable_scope("auto", reuse=tf.AUTO_REUSE):
        a1 = tf.layers.dense(x, 2, name="fc")
        a2 = tf.layers.dense(x, 2, name="fc")
    shared = tf.layers.dense(x, 2, name="top")
    again = tf.layers.dense(x, 2, name="top", reuse=True)
    assert [v.name for v in tf.global_variables()] == [
        "model/dense/kernel:0", "model/dense/bias:0", "model/dense_1/kernel:0",
        "model/dense_1/bias:0", "auto/fc/kernel:0", "auto/fc/bias:0", "top/kernel:0",
        "top/bias:0"]
    assert (y1.name, y2.name, a2.name, again.name) == (
        "model/dense_1/BiasAdd:0", "model_1/dense_1/BiasAdd:0", "auto/fc_1/BiasAdd:0",
        "top_1/BiasAdd:0")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        xv = np.random.default_rng(0).standard_normal((3, 4))
        v1, v2, w1, w2, s1, s2 = sess.run([y1, y2, a1, a2, shared, again], {x: xv})
    np.testing.assert_array_equal(v1, v2)
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(s1, s2)
    with pytest.raises(tf.errors.VariableScopeError, match="Variable fc/kernel already exists"):
        tf.layers.dense(x, 2, name="fc")
        tf.layers.dense(x, 2, name="fc")


def test_layers_errors_are_one_line_with_the_fix():
    with pytest.raises(tf.errors.UsageError, match="last dimension of the inputs to `Dense` "
                                                   "should be defined"):
        tf.layers.dense(tf.placeholder(tf.float32, [None, None]), 3)
    with pytest.raises(TypeError, match="Unable to build `Dense` layer with non-floating"):
        tf.layers.dense(tf.ones([2, 2], tf.int32), 3)
    img = tf.placeholder(tf.float32, [None, 8, 8, 1])
    with pytest.raises(tf.errors.UsageError, match="`padding` argument must be one of"):
        tf.layers.conv2d(img, 2, 3, padding="full")
    with pytest.raises(tf.errors.UsageError, match="channels_last"):
        tf.layers.max_pooling2d(img, 2, 2, data_format="channels_first")
    with pytest.raises(tf.errors.UsageError, match="kernel_regularizer=...\\) is not supported"):
        tf.layers.dense(tf.ones([2, 2]), 3, kernel_regularizer=tf.nn.l2_loss)
    with pytest.raises(tf.errors.NotSupportedError, match="tf.layers.batch_normalization is a "
                                                          "TensorFlow 1.15 name"):
        tf.layers.batch_normalization  # noqa: B018


def test_tf_losses_sparse_softmax_cross_entropy_is_the_mean_over_rows():
    z = np.random.default_rng(4).standard_normal((4, 3))
    loss = tf.losses.sparse_softmax_cross_entropy(labels=[2, 0, 1, 1], logits=z)
    with tf.Session() as sess:
        got = sess.run(loss)
    ref = F.cross_entropy(torch.tensor(z), torch.tensor([2, 0, 1, 1]))
    assert loss.name == "sparse_softmax_cross_entropy_loss/value:0"
    np.testing.assert_allclose(got, ref.item(), rtol=1e-12)


# ---------------------------------------------------------------------------
# dropout and tf.random_uniform: statistics (TF 1's numbers are Philox's and cannot be
# matched; what TF 1 documents is the distribution and the scaling)
# ---------------------------------------------------------------------------

N_DROP = 200_000


def _kept_fraction_ok(kept: float, keep_prob: float, n: int = N_DROP) -> bool:
    """Within 5 standard deviations of a Binomial(n, keep_prob) fraction."""
    return abs(kept - keep_prob) < 5 * np.sqrt(keep_prob * (1 - keep_prob) / n)


def test_nn_dropout_keeps_with_keep_prob_scales_and_redraws_every_run(capsys):
    x = tf.placeholder(tf.float32, [None, 1000])
    keep_prob = tf.placeholder(tf.float32)
    d = tf.nn.dropout(x, keep_prob)
    assert str(d) == 'Tensor("dropout/mul_1:0", shape=(?, 1000), dtype=float32)'
    err = capsys.readouterr().err
    assert "calling dropout (from tensorflow.python.ops.nn_ops) with keep_prob is " \
           "deprecated" in err and "rate = 1 - keep_prob" in err
    X = np.full((N_DROP // 1000, 1000), 3.0, np.float32)
    with tf.Session() as sess:
        runs = [sess.run(d, {x: X, keep_prob: kp}) for kp in (0.5, 0.5, 0.8)]
        test_time = sess.run(d, {x: X, keep_prob: 1.0})
    for out, kp in zip(runs, (0.5, 0.5, 0.8)):
        kept = out != 0
        assert _kept_fraction_ok(kept.mean(), kp)
        np.testing.assert_array_equal(out[kept], np.float32(3.0) / np.float32(kp))
    assert _kept_fraction_ok((runs[0] != runs[1]).mean(), 0.5)    # a new mask each run
    np.testing.assert_array_equal(test_time, X)                   # keep_prob 1: identity


def test_dropout_gradient_flows_through_the_kept_units_only():
    x = tf.Variable(np.linspace(1, 2, 600).reshape(6, 100))
    d = tf.nn.dropout(x, rate=0.3, seed=7)
    (g,) = tf.gradients(tf.reduce_sum(d), [x])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        out, grad = sess.run([d, g])
    np.testing.assert_allclose(grad, np.where(out != 0, 1 / 0.7, 0.0), rtol=1e-15)


def test_random_uniform_and_dropout_repeat_per_session_and_follow_seeds():
    def draws(graph_seed, op_seed):
        tf.reset_default_graph()
        if graph_seed is not None:
            tf.set_random_seed(graph_seed)
        u = tf.random_uniform([4], minval=-2.0, maxval=3.0, seed=op_seed)
        with tf.Session() as sess:
            first = [sess.run(u) for _ in range(3)]
        with tf.Session() as sess:
            again = [sess.run(u) for _ in range(3)]
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)                   # a new session repeats
        assert not np.array_equal(first[0], first[1])             # each run draws anew
        return np.array(first)

    a, b, c = draws(1, None), draws(1, None), draws(2, None)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(draws(1, 5), draws(1, 6))
    u = draws(None, None)
    assert u.dtype == np.float32 and (u >= -2).all() and (u < 3).all()


def test_random_uniform_statistics_and_runtime_shape():
    x = tf.placeholder(tf.float64, [None, 3])
    u = tf.random_uniform(tf.shape(x), minval=1.0, maxval=5.0, dtype=tf.float64, seed=3)
    assert str(u) == 'Tensor("random_uniform:0", shape=(?, 3), dtype=float64)'
    with tf.Session() as sess:
        v = sess.run(u, {x: np.zeros((N_DROP // 3, 3))})
        assert sess.run(u, {x: np.zeros((2, 3))}).shape == (2, 3)
    n = v.size
    assert v.shape == (N_DROP // 3, 3) and v.min() >= 1.0 and v.max() < 5.0
    assert abs(v.mean() - 3.0) < 5 * np.sqrt(16 / 12 / n)           # U(1, 5): var 16/12
    assert abs(v.var() - 16 / 12) < 5 * np.sqrt(4 ** 4 / 180 / n)   # var of (u−μ)²
    counts, _ = np.histogram(v, bins=8, range=(1, 5))
    assert (np.abs(counts - n / 8) < 5 * np.sqrt(n / 8)).all()


def test_layers_dropout_is_the_identity_unless_training():
    x = tf.placeholder(tf.float32, [None, 500])
    training = tf.placeholder(tf.bool)
    off = tf.layers.dropout(x, rate=0.4)
    on = tf.layers.dropout(x, rate=0.4, training=True)
    fed = tf.layers.dropout(x, rate=0.4, training=training)
    assert (off.name, on.name) == ("dropout/Identity:0", "dropout_1/dropout/mul_1:0")
    X = np.ones((N_DROP // 500, 500), np.float32)
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(off, {x: X}), X)
        np.testing.assert_array_equal(sess.run(fed, {x: X, training: False}), X)
        for out in (sess.run(on, {x: X}), sess.run(fed, {x: X, training: True})):
            assert _kept_fraction_ok((out != 0).mean(), 0.6)
            np.testing.assert_array_equal(out[out != 0], np.float32(1) / np.float32(0.6))


def test_dropout_errors_are_tf_1s():
    x = tf.placeholder(tf.float32, [None, 4])
    with pytest.raises(tf.errors.UsageError, match=r"rate must be a scalar tensor or a float "
                                                   r"in the range \[0, 1\), got 1"):
        tf.nn.dropout(x, keep_prob=0.0)
    with pytest.raises(tf.errors.UsageError, match="You must provide a rate to dropout"):
        tf.nn.dropout(x)
    with pytest.raises(tf.errors.UsageError, match="x has to be a floating point tensor"):
        tf.nn.dropout(tf.ones([2], tf.int32), rate=0.5)
    with pytest.raises(tf.errors.UsageError, match=r"a shape computed in the graph"):
        tf.random_uniform(tf.ones([2], tf.int32))
    with pytest.raises(tf.errors.UsageError, match="training must be a Python bool or a "
                                                   "scalar tf.bool tensor"):
        tf.layers.dropout(x, training=tf.placeholder(tf.float32))
    assert tf.nn.dropout(x, rate=0.0) is x            # TF 1 returns x itself


@pytest.mark.parametrize("sa,sb,ta,tb", [((2, 3, 4), (2, 4, 5), False, False),
                                         ((2, 3, 4), (4, 5), False, False),
                                         ((3, 1, 4, 2), (5, 3, 4), True, True),
                                         ((2, 4, 3), (1, 5, 4), True, True)])
def test_matmul_of_stacks_is_tf_1_15s_batch_matmul_and_matches_pytorch(sa, sb, ta, tb):
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    out = tf.matmul(a, b, transpose_a=ta, transpose_b=tb)
    assert out.op.type == "BatchMatMulV2"
    r = rng.standard_normal(tuple(out.shape))
    grads = tf.gradients(tf.reduce_sum(out * r), [out.op.inputs[0], out.op.inputs[1]])
    with tf.Session() as sess:
        value, ga, gb = sess.run([out] + grads)
    at, bt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ref = torch.matmul(at.transpose(-1, -2) if ta else at, bt.transpose(-1, -2) if tb else bt)
    (ref * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(value, ref.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ga, at.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gb, bt.grad.numpy(), rtol=1e-12)
    with pytest.raises(tf.errors.ShapeError, match="at least rank 2 but is rank 1"):
        tf.matmul(tf.ones([2, 3, 4]), tf.ones([4]))
