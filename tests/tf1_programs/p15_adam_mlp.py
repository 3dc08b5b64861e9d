"""A two-layer network trained with Adam on XOR (fixed initial weights): Adam's slots,
its first step, and training."""
import numpy as np

import nbbp.tf1 as tf

x_data = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
y_data = np.array([[0], [1], [1], [0]], dtype=np.float32)

X = tf.placeholder(tf.float32, [None, 2])
Y = tf.placeholder(tf.float32, [None, 1])
with tf.variable_scope("hidden"):
    W1 = tf.get_variable("W", initializer=tf.constant([[0.5, -0.4, 0.3], [-0.2, 0.6, 0.7]]))
    b1 = tf.get_variable("b", [3], initializer=tf.zeros_initializer())
    h = tf.nn.tanh(tf.matmul(X, W1) + b1)
with tf.variable_scope("out"):
    W2 = tf.get_variable("W", initializer=tf.constant([[0.3], [-0.5], [0.4]]))
    b2 = tf.get_variable("b", [1], initializer=tf.zeros_initializer())
    logits = tf.matmul(h, W2) + b2
loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=Y, logits=logits))
opt = tf.train.AdamOptimizer(learning_rate=0.1)
train = opt.minimize(loss)
print([v.name for v in tf.global_variables()][4:8])

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    g = sess.run(tf.gradients(loss, b2)[0], {X: x_data, Y: y_data})
    before = sess.run(b2)
    sess.run(train, {X: x_data, Y: y_data})
    # Adam's first step moves each weight by lr·g/(|g| + ε̂) ≈ 0.1 against its gradient
    print("first step on out/b: %.4f" % (sess.run(b2) - before)[0], "sign of grad:",
          int(np.sign(g[0])))
    start = sess.run(loss, {X: x_data, Y: y_data})
    for _ in range(100):
        _, last = sess.run([train, loss], {X: x_data, Y: y_data})
    print("loss went down:", last < start, "slots:", len(opt.variables()))

# Expected output (TensorFlow 1.15):
# $ python p15_adam_mlp.py
# > ['hidden/W/Adam:0', 'hidden/W/Adam_1:0', 'hidden/b/Adam:0', 'hidden/b/Adam_1:0']
# > first step on out/b: -0.1000 sign of grad: 1
# > loss went down: True slots: 10
