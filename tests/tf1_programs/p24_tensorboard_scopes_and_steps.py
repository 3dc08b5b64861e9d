"""TensorBoard with a name-scoped model, summaries written every other step against
global_step, the graph added with add_graph, and a second run directory."""
import os

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import nbbp.tf1 as tf

x = tf.placeholder(tf.float32, [None], name="x")
y = tf.placeholder(tf.float32, [None], name="y")
with tf.name_scope("model"):
    a = tf.Variable(0.0, name="a")
    pred = a * x
with tf.name_scope("train"):
    loss = tf.reduce_mean(tf.square(pred - y))
    step = tf.train.get_or_create_global_step()
    opt = tf.train.GradientDescentOptimizer(0.05).minimize(loss, global_step=step)
tf.summary.scalar("mse", loss)
tf.summary.scalar("a", a)
merged = tf.summary.merge_all()

feed = {x: [1.0, 2.0, 3.0], y: [2.0, 4.0, 6.0]}
with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    train_writer = tf.summary.FileWriter("runs/train")
    train_writer.add_graph(sess.graph)
    test_writer = tf.summary.FileWriter("runs/test")
    for i in range(6):
        if i % 2 == 0:
            s, g = sess.run([merged, step], feed)
            train_writer.add_summary(s, g)
            test_writer.add_summary(sess.run(merged, {x: [1.0], y: [2.0]}), g)
        sess.run(opt, feed)
    train_writer.close()
    test_writer.close()

print(sorted(os.listdir("runs")))
for run in ("train", "test"):
    acc = EventAccumulator(os.path.join("runs", run))
    acc.Reload()
    print(run, [(e.step, round(e.value, 4)) for e in acc.Scalars("a")], acc.Tags()["graph"])

# mse gradient in a: 2·mean((a·x − y)·x) = (28/3)(a − 2); a ← a − 0.05·(28/3)(a − 2)
# a: 0 → 0.9333 → 1.4311 → 1.6966 → 1.8382 → …
# Expected output (TensorFlow 1.15):
# $ python p24_tensorboard_scopes_and_steps.py
# > ['test', 'train']
# > train [(0, 0.0), (2, 1.4311), (4, 1.8382)] True
# > test [(0, 0.0), (2, 1.4311), (4, 1.8382)] False
