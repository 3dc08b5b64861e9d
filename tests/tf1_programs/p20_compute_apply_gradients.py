"""compute_gradients / apply_gradients with gradients clipped in between."""
import numpy as np

import nbbp.tf1 as tf

x = tf.Variable([3.0, -4.0], name="x")
loss = tf.reduce_sum(x * x)
opt = tf.train.GradientDescentOptimizer(0.1)
grads_and_vars = opt.compute_gradients(loss)
clipped = [(tf.clip_by_value(g, -1.0, 1.0), v) for g, v in grads_and_vars]
train = opt.apply_gradients(clipped)

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    print(sess.run(grads_and_vars[0][0]))
    for _ in range(2):
        sess.run(train)
        print(np.round(sess.run(x), 4))

# Expected output (TensorFlow 1.15):
# $ python p20_compute_apply_gradients.py
# > [ 6. -8.]
# > [ 2.9 -3.9]
# > [ 2.8 -3.8]
