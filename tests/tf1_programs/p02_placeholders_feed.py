"""Placeholders fed at run time (the classic feed_dict examples)."""
import numpy as np

import nbbp.tf1 as tf

input1 = tf.placeholder(tf.float32)
input2 = tf.placeholder(tf.float32)
output = tf.multiply(input1, input2)

x = tf.placeholder(tf.float32, shape=[None, 3], name="x")
row_sums = tf.reduce_sum(x, axis=1)
print(x.shape)

with tf.Session() as sess:
    print(sess.run(output, feed_dict={input1: [7.], input2: [2.]}))
    print(sess.run(row_sums, feed_dict={x: np.array([[1., 2., 3.], [4., 5., 6.]])}))
    try:
        sess.run(row_sums)
    except tf.errors.InvalidArgumentError as e:
        print(type(e).__name__ + ":", str(e).splitlines()[0].split(". ")[0])

# Expected output (TensorFlow 1.15):
# $ python p02_placeholders_feed.py
# > (?, 3)
# > [14.]
# > [ 6. 15.]
# > InvalidArgumentError: You must feed a value for placeholder tensor 'x' with dtype float and shape [?,3]
