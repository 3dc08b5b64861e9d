"""tf.gradients of f = x²y + y + 2, gradients of gradients, tf.hessians."""
import nbbp.tf1 as tf

x = tf.Variable(3.0, name="x")
y = tf.Variable(4.0, name="y")
f = x * x * y + y + 2

grad_x, grad_y = tf.gradients(f, [x, y])
grad_xx = tf.gradients(grad_x, x)[0]

z = tf.placeholder(tf.float32, shape=[2])
g = tf.reduce_sum(z ** 3)
hess = tf.hessians(g, z)[0]

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    print(sess.run(f))
    print(sess.run([grad_x, grad_y]))
    print(sess.run(grad_xx))
    print(sess.run(hess, feed_dict={z: [1.0, 2.0]}))
print(tf.gradients(f, [tf.Variable(1.0)]))

# NumPy ≥ 2 prints a list's float32/int64 scalars as np.float32(…), np.int64(…).
# Expected output (TensorFlow 1.15):
# $ python p07_gradients_hessians.py
# > 42.0
# > [np.float32(24.0), np.float32(10.0)]
# > 8.0
# > [[ 6.  0.]
# >  [ 0. 12.]]
# > [None]
