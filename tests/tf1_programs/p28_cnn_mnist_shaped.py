"""A convolutional network in the style of the TF 1 example collections
(convolutional_network_raw.py): conv2d + bias_add + relu, max_pool, a dense layer with
dropout (keep_prob fed 0.75 in training, 1.0 in tests) and Adam, on MNIST-shaped images (scikit-learn's 8×8 digits, upscaled to 28×28: nothing
is downloaded). Checked: TF 1's shapes, ln 10 at the start (zero output layer), Adam's
first step (lr on every weight with a gradient), and that it learns."""
import numpy as np

import nbbp.tf1 as tf
from nbbp import datasets

X_train, y_train, X_test, y_test = datasets.digits(test=300, seed=0, dtype="float32")


def mnist_shaped(images):
    """8×8 → 24×24 (each pixel 3×3) → 28×28 (a 2-pixel border), as MNIST's digits."""
    big = np.kron(images[..., 0], np.ones((3, 3), np.float32))
    return np.pad(big, ((0, 0), (2, 2), (2, 2)))[..., None]


X_train, X_test = mnist_shaped(X_train), mnist_shaped(X_test)
Y_train, Y_test = np.eye(10, dtype=np.float32)[y_train], np.eye(10, dtype=np.float32)[y_test]

learning_rate = 0.001
num_steps = 100
batch_size = 64

X = tf.placeholder(tf.float32, [None, 28, 28, 1])
Y = tf.placeholder(tf.float32, [None, 10])
keep_prob = tf.placeholder(tf.float32)
tf.set_random_seed(1)


def conv2d(x, W, b, strides=1):
    x = tf.nn.conv2d(x, W, strides=[1, strides, strides, 1], padding="SAME")
    x = tf.nn.bias_add(x, b)
    return tf.nn.relu(x)


def maxpool2d(x, k=2):
    return tf.nn.max_pool(x, ksize=[1, k, k, 1], strides=[1, k, k, 1], padding="SAME")


weights = {
    "wc1": tf.Variable(tf.random_normal([5, 5, 1, 8], stddev=0.1)),
    "wc2": tf.Variable(tf.random_normal([5, 5, 8, 16], stddev=0.1)),
    "wd1": tf.Variable(tf.random_normal([7 * 7 * 16, 64], stddev=0.05)),
    "out": tf.Variable(tf.zeros([64, 10])),
}
biases = {
    "bc1": tf.Variable(tf.zeros([8])),
    "bc2": tf.Variable(tf.zeros([16])),
    "bd1": tf.Variable(tf.constant(0.1, shape=[64])),
    "out": tf.Variable(tf.zeros([10])),
}


def conv_net(x, dropout):
    conv1 = maxpool2d(conv2d(x, weights["wc1"], biases["bc1"]))
    conv2 = maxpool2d(conv2d(conv1, weights["wc2"], biases["bc2"]))
    print(conv1.shape, conv2.shape)
    fc1 = tf.reshape(conv2, [-1, weights["wd1"].get_shape().as_list()[0]])
    fc1 = tf.nn.relu(tf.add(tf.matmul(fc1, weights["wd1"]), biases["bd1"]))
    fc1 = tf.nn.dropout(fc1, dropout)
    return tf.add(tf.matmul(fc1, weights["out"]), biases["out"])


logits = conv_net(X, keep_prob)
loss_op = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=logits, labels=Y))
optimizer = tf.train.AdamOptimizer(learning_rate=learning_rate)
train_op = optimizer.minimize(loss_op)
correct_pred = tf.equal(tf.argmax(logits, 1), tf.argmax(Y, 1))
accuracy = tf.reduce_mean(tf.cast(correct_pred, tf.float32))
init = tf.global_variables_initializer()

with tf.Session() as sess:
    sess.run(init)
    first = {X: X_train[:batch_size], Y: Y_train[:batch_size], keep_prob: 0.75}
    print("initial loss: %.4f" % sess.run(loss_op, first))
    b0 = sess.run(biases["out"])
    sess.run(train_op, first)
    print("Adam's first step on the output bias: %.4f" % np.abs(sess.run(biases["out"]) - b0).max())
    rng = np.random.default_rng(0)
    for step in range(1, num_steps + 1):
        idx = rng.choice(len(X_train), batch_size, replace=False)
        sess.run(train_op, {X: X_train[idx], Y: Y_train[idx], keep_prob: 0.75})
    acc = sess.run(accuracy, {X: X_test, Y: Y_test, keep_prob: 1.0})
    print("Testing Accuracy above 0.8:", acc > 0.8, acc.dtype)

# Expected output (TensorFlow 1.15):
# $ python p28_cnn_mnist_shaped.py
# > (?, 14, 14, 8) (?, 7, 7, 16)
# > initial loss: 2.3026
# > Adam's first step on the output bias: 0.0010
# > Testing Accuracy above 0.8: True float32
# stderr:
# ! calling dropout (from tensorflow.python.ops.nn_ops) with keep_prob is deprecated
