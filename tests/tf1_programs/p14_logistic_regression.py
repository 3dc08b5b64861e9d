"""Logistic regression on a tiny fixed data set: sigmoid cross-entropy, gradient descent,
and the accuracy idiom with tf.equal / tf.cast / tf.reduce_mean."""
import numpy as np

import nbbp.tf1 as tf

X_data = np.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.], [2., 2.], [2., 3.]])
Y_data = np.array([[0.], [0.], [0.], [1.], [1.], [1.]])

X = tf.placeholder(tf.float32, shape=[None, 2])
Y = tf.placeholder(tf.float32, shape=[None, 1])
W = tf.Variable(tf.zeros([2, 1]), name="weight")
b = tf.Variable(tf.zeros([1]), name="bias")
logits = tf.matmul(X, W) + b
hypothesis = tf.sigmoid(logits)
cost = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=Y, logits=logits))
train = tf.train.GradientDescentOptimizer(learning_rate=0.5).minimize(cost)
predicted = tf.cast(hypothesis > 0.5, dtype=tf.float32)
accuracy = tf.reduce_mean(tf.cast(tf.equal(predicted, Y), dtype=tf.float32))

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    print("cost at start: %.6f" % sess.run(cost, feed_dict={X: X_data, Y: Y_data}))
    sess.run(train, feed_dict={X: X_data, Y: Y_data})
    print("W after one step:", np.round(sess.run(W).ravel(), 6),
          "|b| < 1e-6:", abs(sess.run(b)[0]) < 1e-6)
    for step in range(500):
        sess.run(train, feed_dict={X: X_data, Y: Y_data})
    h, acc = sess.run([hypothesis, accuracy], feed_dict={X: X_data, Y: Y_data})
    print("predictions:", (h.ravel() > 0.5).astype(int), "accuracy:", acc)

# cost at W = 0 is log 2; the first gradient is X^T(½ − Y)/6 = [-1/3, -5/12], ∂b = 0
# Expected output (TensorFlow 1.15):
# $ python p14_logistic_regression.py
# > cost at start: 0.693147
# > W after one step: [0.166667 0.208333] |b| < 1e-6: True
# > predictions: [0 0 0 1 1 1] accuracy: 1.0
