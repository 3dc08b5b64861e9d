"""int8, int16 and uint8 tensors as TF 1 computes them: the arithmetic wraps around
(two's complement), casts truncate toward zero, and an image is converted to uint8
pixels and back."""
import numpy as np

import nbbp.tf1 as tf

a = tf.constant([100, 120, -128], dtype=tf.int8)
b = tf.constant([200, 250, 7], dtype=tf.uint8)
c = tf.constant([30000, -30000], dtype=tf.int16)
image = tf.placeholder(tf.float32, [2, 2])
pixels = tf.cast(image * 255.0, tf.uint8)
back = tf.cast(pixels, tf.float32) / 255.0

with tf.Session() as sess:
    print(a.dtype, b.dtype, c.dtype)
    print(sess.run(a + a))
    print(sess.run(b + b), sess.run(b // 3), sess.run(b % 3))
    print(sess.run(c * 2))
    print(sess.run(tf.reduce_sum(a)), sess.run(tf.argmax(b, 0)))
    p, r = sess.run([pixels, back], {image: [[0.0, 0.5], [0.999, 1.0]]})
    print(p, p.dtype)
    print(np.round(r, 4))

# Expected output (TensorFlow 1.15):
# $ python p31_small_integer_dtypes.py
# > <dtype: 'int8'> <dtype: 'uint8'> <dtype: 'int16'>
# > [-56 -16   0]
# > [144 244  14] [66 83  2] [2 1 1]
# > [-5536  5536]
# > 92 1
# > [[  0 127]
# >  [254 255]] uint8
# > [[0.     0.498 ]
# >  [0.9961 1.    ]]
