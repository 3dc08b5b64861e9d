"""MNIST-for-beginners' softmax regression, on a fixed 4-example, 3-class batch."""
import numpy as np

import nbbp.tf1 as tf

batch_xs = np.array([[1., 0., 0., 1.], [0., 1., 0., 1.], [0., 0., 1., 1.], [1., 1., 0., 0.]])
batch_ys = np.array([[1., 0., 0.], [0., 1., 0.], [0., 0., 1.], [1., 0., 0.]])

x = tf.placeholder(tf.float32, [None, 4])
W = tf.Variable(tf.zeros([4, 3]))
b = tf.Variable(tf.zeros([3]))
y = tf.matmul(x, W) + b
y_ = tf.placeholder(tf.float32, [None, 3])
cross_entropy = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y_, logits=y))
train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)

sess = tf.InteractiveSession()
tf.global_variables_initializer().run()
print("loss at W = 0: %.6f" % sess.run(cross_entropy, {x: batch_xs, y_: batch_ys}))
sess.run(train_step, feed_dict={x: batch_xs, y_: batch_ys})
print("b after one step:", np.round(b.eval(), 6))
for _ in range(200):
    sess.run(train_step, feed_dict={x: batch_xs, y_: batch_ys})
probs = sess.run(tf.nn.softmax(y), {x: batch_xs})
print("predicted classes:", probs.argmax(axis=1))

# ln 3 = 1.098612; ∂b = mean(softmax − y) = (1/3 − [2, 1, 1]/4) → b = −0.5·that
# Expected output (TensorFlow 1.15):
# $ python p18_softmax_regression.py
# > loss at W = 0: 1.098612
# > b after one step: [ 0.083333 -0.041667 -0.041667]
# > predicted classes: [0 1 2 0]
