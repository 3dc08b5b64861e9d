"""TF 1's optimizers run nbbp's one optimizer implementation (``nbbp.train.optim``)
with TF 1's options. Oracles: TF 1.15's documented update rules (the ``Apply*``
kernels), worked in plain NumPy below — not the code under test."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nbbp
import nbbp.tf1 as tf
from nbbp.train import optim

W0 = np.array([0.5, -1.0, 2.0])
TARGET = np.array([3.0, 1.0, -2.0])
LRS = [0.1, 0.05, 0.2]             # a fed learning rate, different at every step


@pytest.fixture(autouse=True)
def _fresh_graph():
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()


def _grad(w):                     # of sum((w − target)²)
    return 2.0 * (w - TARGET)


def _run(make_opt, engine, steps=3, fed_lr=False):
    """Minimise sum((w − target)²) for ``steps`` steps; w after each step."""
    w = tf.Variable(W0, name="w")
    loss = tf.reduce_sum(tf.square(w - TARGET))
    lr = tf.placeholder(tf.float64, [], name="lr")
    train = make_opt(lr if fed_lr else LRS[0]).minimize(loss)
    out = []
    with tf.Session(engine=engine) as sess:
        sess.run(tf.global_variables_initializer())
        for s in range(steps):
            sess.run(train, {lr: LRS[s]} if fed_lr else None)
            out.append(sess.run(w))
    return np.array(out)


def test_adam_three_steps_follow_tf1_epsilon_hat_formula(engine):
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 0.1        # a large ε̂ shows where it is added
    w, m, v, want = W0.copy(), np.zeros(3), np.zeros(3), []
    b1p, b2p = b1, b2
    for _ in range(3):
        g = _grad(w)
        lr_t = lr * math.sqrt(1 - b2p) / (1 - b1p)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr_t * m / (np.sqrt(v) + eps)
        want.append(w)
        b1p, b2p = b1p * b1, b2p * b2
    got = _run(lambda r: tf.train.AdamOptimizer(r, b1, b2, eps), engine)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    # PyTorch's placement (ε added to √v̂) gives other numbers: the option matters
    torch_w = W0 - lr * _grad(W0) / (np.abs(_grad(W0)) + eps)      # m̂ = g, v̂ = g²
    assert not np.allclose(got[0], torch_w, rtol=1e-6)


def test_rmsprop_with_momentum_keeps_the_fed_learning_rate_in_its_buffer(engine):
    decay, mu, eps = 0.9, 0.5, 1e-10
    w, ms, mom, want = W0.copy(), np.ones(3), np.zeros(3), []
    for lr in LRS:
        g = _grad(w)
        ms = decay * ms + (1 - decay) * g * g
        mom = mu * mom + lr * g / np.sqrt(ms + eps)
        w = w - mom
        want.append(w)
    got = _run(lambda r: tf.train.RMSPropOptimizer(r, decay, momentum=mu), engine, fed_lr=True)
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_momentum_nesterov_and_adagrad_three_steps(engine):
    w, acc, want = W0.copy(), np.zeros(3), []
    for lr in LRS:
        g = _grad(w)
        acc = 0.9 * acc + g
        w = w - (lr * g + lr * 0.9 * acc)
        want.append(w)
    got = _run(lambda r: tf.train.MomentumOptimizer(r, 0.9, use_nesterov=True), engine,
               fed_lr=True)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    tf.reset_default_graph()
    w, acc, want = W0.copy(), np.full(3, 0.1), []
    for _ in range(3):
        g = _grad(w)
        acc = acc + g * g
        w = w - LRS[0] * g / np.sqrt(acc)
        want.append(w)
    got = _run(lambda r: tf.train.AdagradOptimizer(r), engine)
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_slots_hold_the_rule_state_after_a_step():
    w = tf.Variable(W0, name="w")
    opt = tf.train.RMSPropOptimizer(0.01, momentum=0.5)
    train = opt.minimize(tf.reduce_sum(tf.square(w - TARGET)))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train)
        g = _grad(W0)
        ms = 1.0 + (g * g - 1.0) * 0.1
        np.testing.assert_allclose(sess.run(opt.get_slot(w, "rms")), ms, rtol=1e-15)
        np.testing.assert_allclose(sess.run(opt.get_slot(w, "momentum")),
                                   0.01 * g / np.sqrt(ms + 1e-10), rtol=1e-15)


@pytest.mark.parametrize("opt", [
    optim.Adam(lr=0.02, betas=(0.8, 0.95), eps=0.01, form="tf1"),
    optim.Adam(lr=0.02, form="tf1", nesterov=True),
    optim.RMSProp(lr=0.01, alpha=0.9, momentum=0.5, eps=1e-6, form="tf1"),
    optim.TF1Momentum(lr=0.05, momentum=0.9, nesterov=True),
    optim.TF1Momentum(lr=0.05),
], ids=repr)
def test_tf1_forms_agree_between_kernel_and_step_numpy(opt, rng):
    src = ("x = input(X); y = input(Y)\nW = param(randn(3, 1) * 0.5)\n"
           "loss = mean((x @ W - y)**2)")
    ns = {"X": rng.normal(size=(8, 3)), "Y": rng.normal(size=(8, 1))}
    a = nbbp.build(src, namespace=ns)
    b = nbbp.build(src, namespace=ns, engine="python")
    ha = a.fit(20, opt, progress=False)
    hb = b.fit(20, opt, progress=False)
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-11)
    np.testing.assert_allclose(a["W"].value, b["W"].value, rtol=1e-11)


def test_momentum_zero_keeps_its_accumulator_and_a_negative_rate_ascends(engine):
    w = tf.Variable(W0, name="w")
    loss = tf.reduce_sum(tf.square(w - TARGET))
    opt = tf.train.MomentumOptimizer(0.1, 0.0)
    train = opt.minimize(loss)
    ascend = tf.train.GradientDescentOptimizer(-0.1).minimize(loss)
    with tf.Session(engine=engine) as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train)                   # ApplyMomentum: acc = acc·0 + g
        np.testing.assert_array_equal(sess.run(opt.get_slot(w, "momentum")), _grad(W0))
        w1 = sess.run(w)
        sess.run(ascend)
        np.testing.assert_allclose(sess.run(w), w1 + 0.1 * _grad(w1), rtol=1e-15)


def test_forms_are_checked_and_shown():
    assert repr(optim.Adam(lr=0.1, form="tf1")) == \
        "Adam(lr=0.1, betas=(0.9, 0.999), eps=1e-08, form='tf1')"
    with pytest.raises(nbbp.NbbpError, match="unknown form"):
        optim.RMSProp(form="keras")
    with pytest.raises(nbbp.NbbpError, match="needs form='tf1'"):
        optim.Adam(nesterov=True)


def test_values_set_between_runs_are_seen_by_every_plan(engine):
    """A run writes a variable (or an Adam slot) into its arena only when the session's
    value changed since that arena last held it; assign, load, a re-run initializer and
    another plan's update in between must all be seen. Oracle: TF 1's Adam by hand."""
    w = tf.Variable(W0, name="w")
    loss = tf.reduce_sum(tf.square(w - TARGET))
    opt = tf.train.AdamOptimizer(0.1)
    train = opt.minimize(loss)
    bump = w.assign_add(np.ones(3))
    m_slot = opt.get_slot(w, "m")

    def adam(w, m, v, t):       # TF 1.15's ApplyAdam, step t (1-based)
        g = _grad(w)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        lr = 0.1 * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        return w - lr * m / (np.sqrt(v) + 1e-8), m, v

    ref, m, v, t = W0.copy(), np.zeros(3), np.zeros(3), 0
    with tf.Session(engine=engine) as sess:
        sess.run(tf.global_variables_initializer())
        for action in ["train", "train+loss", "bump", "train", "load", "train+loss",
                       "init", "train", "train"]:
            if action.startswith("train"):
                sess.run(train if action == "train" else [train, loss])
                t += 1
                ref, m, v = adam(ref, m, v, t)
            elif action == "bump":
                sess.run(bump)
                ref = ref + 1.0
            elif action == "load":
                w.load(np.array([1.0, 2.0, 3.0]), sess)
                ref = np.array([1.0, 2.0, 3.0])
            else:
                sess.run(tf.global_variables_initializer())
                ref, m, v, t = W0.copy(), np.zeros(3), np.zeros(3), 0
            np.testing.assert_allclose(sess.run(w), ref, rtol=1e-12, err_msg=action)
            np.testing.assert_allclose(sess.run(m_slot), m, rtol=1e-12, err_msg=action)


def test_values_pass_between_plans_unread_and_a_fetched_value_stays(engine):
    """After a compiled update a variable's value stays in its plan's arena until read
    (``InArena``). Plans that take it from there without anyone reading it in between
    must see each other's steps, and an array a run returned must not change when
    training goes on. Oracle: plain SGD on sum((w − target)²) by hand."""
    w = tf.Variable(W0, name="w")
    loss = tf.reduce_sum(tf.square(w - TARGET))
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    double = w.assign(w * 2.0)
    ref = W0.copy()
    with tf.Session(engine=engine) as sess:
        sess.run(tf.global_variables_initializer())
        for action in ["train", "train+loss", "train", "double", "train+loss", "train"]:
            if action == "double":
                sess.run(double)
                ref = ref * 2.0
                continue
            got = sess.run(train if action == "train" else [train, loss])
            if action != "train":
                assert got[1] == pytest.approx(np.sum((ref - TARGET) ** 2), rel=1e-12)
            ref = ref - 0.1 * _grad(ref)
        first = sess.run(w)
        np.testing.assert_allclose(first, ref, rtol=1e-12)
        kept = first.copy()
        sess.run(train)
        np.testing.assert_array_equal(first, kept)       # not a view of the arena
        np.testing.assert_allclose(sess.run(w), ref - 0.1 * _grad(ref), rtol=1e-12)
