"""Models built in threads at once: each thread's ``with Graph()`` (and TF 1's
``as_default()`` graph and session) holds in that thread only.

Before, the stack of graphs being built was one per process: a thread's new leaf went
into whichever graph another thread had entered last (a BuildError, or a model with
another thread's nodes in its graph). Oracle: the same builds run one after another.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import nbbp
import nbbp.tf1 as tf

N = 4


@pytest.fixture
def often():
    """Switch threads every 10 µs, so builds interleave inside a few lines."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def in_threads(work, n: int = N, repeats: int = 3) -> list:
    """Run ``work(k)`` for k < n in n threads started together, ``repeats`` times each;
    results (or the exception raised) by k."""
    out: list = [[] for _ in range(n)]
    bar = threading.Barrier(n)

    def run(k: int) -> None:
        bar.wait()
        for _ in range(repeats):
            try:
                out[k].append(work(k))
            except Exception as e:   # noqa: BLE001 — reported by the test
                out[k].append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _mid_build_leaves(k: int):
    """A chain that makes a new param at every step, so leaves are made (and the graph
    being built looked up) all through the build."""
    with nbbp.Graph() as g:
        v = first = nbbp.param(0.1 * k + 0.2)
        for _ in range(150):
            w = nbbp.param(1.0 + 0.001 * k)
            v = nbbp.sin(v) * w + 0.0005
    m = nbbp.Model(v)
    return m.value, m.grad_of(first), len(g.nodes)


def test_graphs_built_in_threads_equal_sequential_builds(often):
    want = [_mid_build_leaves(k) for k in range(N)]
    for k, results in enumerate(in_threads(_mid_build_leaves)):
        for got in results:
            assert not isinstance(got, Exception), got
            assert got == want[k]


def test_cells_built_in_threads_equal_sequential_builds(often):
    src = ("x = param(X0)\nv = x\nfor i in range(60):\n"
           "    w = param(1.01)\n    v = tanh(v * w) + 0.01\nf = v")

    def build(k: int):
        m = nbbp.build(src, namespace={"X0": 0.3 * k - 0.5})
        return m.value, m.grads["x"], len(m.graph.nodes)

    want = [build(k) for k in range(N)]
    for k, results in enumerate(in_threads(build)):
        assert results == [want[k]] * 3


def _tf1_program(k: int):
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float64, [None, 2], name="x")
        w = tf.Variable(np.full((2, 1), 0.5 + k), name="w")
        loss = tf.reduce_mean(tf.square(tf.matmul(x, w) - 1.0))
        train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
        with tf.Session() as sess:
            assert tf.get_default_session() is sess
            sess.run(tf.global_variables_initializer())
            for _ in range(5):
                sess.run(train, {x: [[1.0, 2.0], [3.0, -1.0]]})
            return sess.run(w).ravel().tolist(), tf.get_default_graph() is g


def test_tf1_graphs_and_sessions_in_threads_equal_sequential_runs(often):
    want = [_tf1_program(k) for k in range(N)]
    for k, results in enumerate(in_threads(_tf1_program)):
        assert results == [want[k]] * 3


def test_tf1_defaults_are_per_thread_and_the_global_graph_is_shared():
    """TF 1's rule: ``as_default()`` and a ``with`` session hold in their thread; a new
    thread sees the process-wide default graph and no default session."""
    tf.reset_default_graph()
    c = tf.constant(2.0, name="shared")
    seen = {}
    g = tf.Graph()
    with g.as_default(), tf.Session() as sess:
        def look() -> None:
            seen["graph"] = tf.get_default_graph()
            seen["session"] = tf.get_default_session()
        t = threading.Thread(target=look)
        t.start()
        t.join()
        assert tf.get_default_graph() is g and tf.get_default_session() is sess
    assert seen["graph"] is c.graph
    assert seen["session"] is None


def test_the_collector_pause_holds_while_any_thread_builds_and_ends_after_the_last():
    """``paused_gc`` blocks in threads share one pause: one thread's block ending must
    not turn the collector on under another's build, and after the last the collector
    is on again (each block keeping its own "was it on" could leave it off for good)."""
    import gc

    from nbbp.core.compiled import paused_gc
    assert gc.isenabled()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a() -> None:
        with paused_gc():
            a_in.set()
            b_in.wait()
        a_out.set()

    def b() -> None:
        a_in.wait()
        with paused_gc():
            b_in.set()
            a_out.wait()
            seen["during b, after a"] = gc.isenabled()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen["during b, after a"] is False
    assert gc.isenabled()
