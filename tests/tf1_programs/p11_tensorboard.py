"""TensorBoard logging: the graph, a scalar and a histogram per step; then the event
file is read back with TensorBoard's own loader (what `tensorboard --logdir logs`
shows)."""
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import nbbp.tf1 as tf

x = tf.placeholder(tf.float32, name="x")
with tf.name_scope("model"):
    W = tf.Variable(2.0, name="W")
    y = W * x
with tf.name_scope("loss"):
    loss = tf.reduce_mean(tf.square(y - 3.0))
tf.summary.scalar("loss", loss)
tf.summary.histogram("weights", W)
merged = tf.summary.merge_all()
train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    writer = tf.summary.FileWriter("logs/train", sess.graph)
    for step in range(3):
        summary, _ = sess.run([merged, train], feed_dict={x: 1.0})
        writer.add_summary(summary, step)
    writer.close()
print(type(summary).__name__)

acc = EventAccumulator("logs/train", size_guidance={"histograms": 0, "scalars": 0})
acc.Reload()
print(acc.Tags()["scalars"], acc.Tags()["histograms"])
print([(e.step, round(e.value, 4)) for e in acc.Scalars("loss_1")])
print([round(h.histogram_value.sum, 4) for h in acc.Histograms("weights")])
names = [n.name for n in acc.Graph().node]
print("model/W" in names, "loss/Mean" in names, len(names) > 10)

# loss = (W - 3)²: W = 2 → 2.2 → 2.36 (W += 0.2·(3 − W))
# Expected output (TensorFlow 1.15):
# $ python p11_tensorboard.py
# > bytes
# > ['loss_1'] ['weights']
# > [(0, 1.0), (1, 0.64), (2, 0.4096)]
# > [2.0, 2.2, 2.36]
# > True True True
