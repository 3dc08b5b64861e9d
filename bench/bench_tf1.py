"""W3's SGD step as a TensorFlow 1 program runs it: ``sess.run`` in a Python loop.

Run from the repository root: ``python bench/bench_tf1.py [--rounds 25]``.

A TF1 tutorial trains with ``sess.run(train, feed_dict)`` (or ``[train, loss]``)
once per step. This times that loop on W3 (``../shared/BENCHMARKS.md``: the 2-16-16-1
MLP, hinge loss + 1e-4·Σp², SGD lr 0.05, the 100 moons points fed every step) beside
the same model built with nbbp's own API and stepped by its training loop, one Python
call a step (``TrainLoop.run(1)``, the harness's "W3 SGD step" row), and 100 steps in
one compiled call (per step; what ``fit`` runs). The forms run interleaved, round by
round, samples of ~5 ms; median and minimum over the rounds.

Before timing, both programs take 50 steps from the same parameters and must agree
(rel 1e-12; the harness checks the nbbp loop against a hand NumPy step).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import workloads as wl  # noqa: E402
from bench.bench_call import _fmt, per_call  # noqa: E402
from bench.nbbp_side import _w3_model  # noqa: E402


def tf1_w3():
    """The W3 step as a TF1 program: (session, train op, loss, feed dict, variables)."""
    import nbbp.tf1 as tf

    X, y = wl.w3_data()
    p = wl.w3_init_params()
    tf.reset_default_graph()
    x = tf.placeholder(tf.float64, [None, 2], name="x")
    t = tf.placeholder(tf.float64, [None, 1], name="t")
    v = {k: tf.Variable(p[k], name=k) for k in wl.W3_PARAM_NAMES}
    h1 = tf.nn.relu(tf.matmul(x, v["W1"]) + v["b1"])
    h2 = tf.nn.relu(tf.matmul(h1, v["W2"]) + v["b2"])
    s = tf.matmul(h2, v["W3"]) + v["b3"]
    reg = tf.add_n([tf.reduce_sum(tf.square(w)) for w in v.values()])
    loss = tf.reduce_mean(tf.nn.relu(1.0 - t * s)) + wl.W3_ALPHA * reg
    train = tf.train.GradientDescentOptimizer(wl.W3_LR).minimize(loss)
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    return sess, train, loss, {x: X, t: y[:, None]}, v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=25)
    args = ap.parse_args(argv)
    sess, train, loss, feed, tvars = tf1_w3()
    m = _w3_model()
    step = m.train_loop("sgd", lr=wl.W3_LR)
    loop = m.train_loop("sgd", lr=wl.W3_LR)
    for _ in range(50):
        sess.run(train, feed)
    step.run(50)
    step.sync()
    for k, var in tvars.items():
        np.testing.assert_allclose(sess.run(var), m.value_of(k), rtol=1e-12, err_msg=k)

    forms = {
        "nbbp TrainLoop.run(1)": lambda: step.run(1),
        "tf1 sess.run(train, feed)": lambda: sess.run(train, feed),
        "tf1 sess.run([train, loss], feed)": lambda: sess.run([train, loss], feed),
    }
    print(f"load average before: {os.getloadavg()[0]:.1f}\n")
    print("| form | median per step | × TrainLoop.run(1) | minimum | × |")
    print("|---|---|---|---|---|")
    for fn in forms.values():
        fn()
    inner = {k: max(1, int(5e-3 / max(per_call(fn, 50), 1e-9))) for k, fn in forms.items()}
    times: dict[str, list[float]] = {k: [] for k in forms}
    compiled: list[float] = []
    for _ in range(args.rounds):
        for k, fn in forms.items():
            times[k].append(per_call(fn, inner[k]))
        compiled.append(per_call(lambda: loop.run(100), 5) / 100)
    times["nbbp TrainLoop.run(100), per step"] = compiled
    ref_med = statistics.median(times["nbbp TrainLoop.run(1)"])
    ref_min = min(times["nbbp TrainLoop.run(1)"])
    for k, ts in times.items():
        med, low = statistics.median(ts), min(ts)
        print(f"| {k} | {_fmt(med)} | {med / ref_med:.2f} | {_fmt(low)} | {low / ref_min:.2f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
