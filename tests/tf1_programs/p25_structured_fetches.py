"""sess.run with lists, tuples, dicts and namedtuples of fetches, and fetching by name."""
import collections

import nbbp.tf1 as tf

a = tf.constant(1.0, name="a")
b = tf.constant(2.0, name="b")
c = tf.add(a, b, name="c")
Pair = collections.namedtuple("Pair", ["x", "y"])

with tf.Session() as sess:
    print(sess.run([a, (b, c)]))
    print(sess.run({"sum": c, "parts": [a, b]}))
    print(sess.run(Pair(x=a, y=c)))
    print(sess.run("c:0"), sess.run(["a:0", "b:0"]))
    print(sess.run(tf.no_op()))

# NumPy ≥ 2 prints a list's float32/int64 scalars as np.float32(…), np.int64(…).
# Expected output (TensorFlow 1.15):
# $ python p25_structured_fetches.py
# > [np.float32(1.0), (np.float32(2.0), np.float32(3.0))]
# > {'sum': np.float32(3.0), 'parts': [np.float32(1.0), np.float32(2.0)]}
# > Pair(x=np.float32(1.0), y=np.float32(3.0))
# > 3.0 [np.float32(1.0), np.float32(2.0)]
# > None
