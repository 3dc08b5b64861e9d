"""TensorFlow 1's "Getting Started" linear model: W·x + b by gradient descent."""
import nbbp.tf1 as tf

W = tf.Variable([.3], dtype=tf.float32)
b = tf.Variable([-.3], dtype=tf.float32)
x = tf.placeholder(tf.float32)
y = tf.placeholder(tf.float32)
linear_model = W * x + b
loss = tf.reduce_sum(tf.square(linear_model - y))
optimizer = tf.train.GradientDescentOptimizer(0.01)
train = optimizer.minimize(loss)

x_train = [1, 2, 3, 4]
y_train = [0, -1, -2, -3]

init = tf.global_variables_initializer()
sess = tf.Session()
sess.run(init)
print("initial loss: %.2f" % sess.run(loss, {x: x_train, y: y_train}))
sess.run([W.assign([-1.]), b.assign([1.])])
print("loss at W=-1, b=1: %.1f" % sess.run(loss, {x: x_train, y: y_train}))
sess.run(init)
for i in range(1000):
    sess.run(train, {x: x_train, y: y_train})

curr_W, curr_b, curr_loss = sess.run([W, b, loss], {x: x_train, y: y_train})
print("W: %.4f b: %.4f loss < 1e-8: %s" % (curr_W[0], curr_b[0], curr_loss < 1e-8))

# Expected output (TensorFlow 1.15):
# $ python p08_linear_regression.py
# > initial loss: 23.66
# > loss at W=-1, b=1: 0.0
# > W: -1.0000 b: 1.0000 loss < 1e-8: True
