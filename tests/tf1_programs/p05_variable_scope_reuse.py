"""Sharing variables: variable_scope, get_variable, reuse, AUTO_REUSE."""
import nbbp.tf1 as tf

with tf.variable_scope("foo"):
    v = tf.get_variable("v", [1], initializer=tf.constant_initializer(1.0))
with tf.variable_scope("foo", reuse=True):
    v1 = tf.get_variable("v", [1])
print(v1 is v, v.name)

with tf.variable_scope("foo"):
    with tf.variable_scope("bar"):
        w = tf.get_variable("w", [2, 3])
print(w.name, w.shape)


def layer(x):
    with tf.variable_scope("layer", reuse=tf.AUTO_REUSE):
        k = tf.get_variable("k", [], initializer=tf.constant_initializer(3.0))
    return x * k


y1 = layer(tf.constant(1.0))
y2 = layer(tf.constant(2.0))
print(len([x for x in tf.global_variables() if x.name.startswith("layer/")]))

try:
    with tf.variable_scope("foo"):
        tf.get_variable("v", [1])
except ValueError as e:
    print(str(e).split(". Did")[0])

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    print(sess.run([y1, y2]))

# NumPy ≥ 2 prints a list's float32/int64 scalars as np.float32(…), np.int64(…).
# Expected output (TensorFlow 1.15):
# $ python p05_variable_scope_reuse.py
# > True foo/v:0
# > foo/bar/w:0 (2, 3)
# > 1
# > Variable foo/v already exists, disallowed
# > [np.float32(3.0), np.float32(6.0)]
