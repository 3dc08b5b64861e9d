"""Dropout as TF 1 tutorials use it: keep_prob a placeholder fed 0.5 while training
and 1.0 when testing. TF 1's random numbers (Philox) cannot be matched bit for bit, so
this prints what TF 1 documents: the fraction kept, the scaling 1/keep_prob, a new
mask at every run, the identity at keep_prob 1, and the same draws in a new session
under tf.set_random_seed."""
import numpy as np

import nbbp.tf1 as tf

tf.set_random_seed(1234)
x = tf.placeholder(tf.float32, [None, 1000])
keep_prob = tf.placeholder(tf.float32)
h = tf.nn.dropout(x, keep_prob)
print(h)

X = np.full((100, 1000), 2.0, dtype=np.float32)
n = X.size
with tf.Session() as sess:
    a = sess.run(h, {x: X, keep_prob: 0.5})
    b = sess.run(h, {x: X, keep_prob: 0.5})
    test = sess.run(h, {x: X, keep_prob: 1.0})
kept = (a != 0).mean()
print("values:", sorted(set(a.ravel().tolist())))
print("kept fraction within 5 sigma of 0.5:", abs(kept - 0.5) < 5 * np.sqrt(0.25 / n))
print("mean within 5 sigma of 2.0:", abs(a.mean() - 2.0) < 5 * 2.0 * np.sqrt(1.0 / n))
print("new mask each run:", bool((a != b).any()))
print("keep_prob 1.0 is the identity:", bool((test == X).all()))
with tf.Session() as sess:
    print("a new session repeats the draws:",
          bool((sess.run(h, {x: X, keep_prob: 0.5}) == a).all()))

# Expected output (TensorFlow 1.15):
# $ python p32_dropout.py
# > Tensor("dropout/mul_1:0", shape=(?, 1000), dtype=float32)
# > values: [0.0, 4.0]
# > kept fraction within 5 sigma of 0.5: True
# > mean within 5 sigma of 2.0: True
# > new mask each run: True
# > keep_prob 1.0 is the identity: True
# > a new session repeats the draws: True
# stderr:
# ! calling dropout (from tensorflow.python.ops.nn_ops) with keep_prob is deprecated
