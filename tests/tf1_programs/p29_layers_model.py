"""A tf.layers model (the TF 1 "layers" tutorial's shape, on scikit-learn's 8×8
digits): conv2d, max_pooling2d, flatten, dense, integer labels with
sparse_softmax_cross_entropy_with_logits, Adam. Checked: TF 1.15's variable names and
shapes, its glorot-uniform bound and zero biases, the loss as the mean of the
per-example cross-entropies, and that the model learns."""
import numpy as np

import nbbp.tf1 as tf
from nbbp import datasets

X_train, y_train, X_test, y_test = datasets.digits(test=300, seed=1, dtype="float32")

tf.set_random_seed(0)
images = tf.placeholder(tf.float32, [None, 8, 8, 1], name="images")
labels = tf.placeholder(tf.int64, [None], name="labels")

conv1 = tf.layers.conv2d(images, filters=16, kernel_size=[3, 3], padding="same",
                         activation=tf.nn.relu)
pool1 = tf.layers.max_pooling2d(conv1, pool_size=[2, 2], strides=2)
flat = tf.layers.flatten(pool1)
dense = tf.layers.dense(flat, units=64, activation=tf.nn.relu)
logits = tf.layers.dense(dense, units=10)
xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
loss = tf.reduce_mean(xent)
train_op = tf.train.AdamOptimizer(0.01).minimize(loss)
accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), labels), tf.float32))

print(conv1)
print(pool1)
print(flat)
print(logits)
for v in tf.trainable_variables():
    print(v.name, v.shape)

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    k, b = sess.run(["dense/kernel:0", "dense/bias:0"])
    print("glorot bound holds:", np.abs(k).max() <= np.sqrt(6 / (256 + 64)),
          "biases zero:", not b.any())
    feed = {images: X_train[:100], labels: y_train[:100]}
    per_example, mean = sess.run([xent, loss], feed)
    print("per-example losses:", per_example.shape, "mean matches:",
          np.isclose(per_example.mean(), mean, rtol=1e-6))
    start = mean
    rng = np.random.default_rng(0)
    for step in range(80):
        idx = rng.choice(len(X_train), 64, replace=False)
        sess.run(train_op, {images: X_train[idx], labels: y_train[idx]})
    print("loss went down:", sess.run(loss, feed) < start)
    print("test accuracy above 0.9:", sess.run(accuracy, {images: X_test,
                                                           labels: y_test}) > 0.9)

# Expected output (TensorFlow 1.15):
# $ python p29_layers_model.py
# > Tensor("conv2d/Relu:0", shape=(?, 8, 8, 16), dtype=float32)
# > Tensor("max_pooling2d/MaxPool:0", shape=(?, 4, 4, 16), dtype=float32)
# > Tensor("flatten/Reshape:0", shape=(?, 256), dtype=float32)
# > Tensor("dense_1/BiasAdd:0", shape=(?, 10), dtype=float32)
# > conv2d/kernel:0 (3, 3, 1, 16)
# > conv2d/bias:0 (16,)
# > dense/kernel:0 (256, 64)
# > dense/bias:0 (64,)
# > dense_1/kernel:0 (64, 10)
# > dense_1/bias:0 (10,)
# > glorot bound holds: True biases zero: True
# > per-example losses: (100,) mean matches: True
# > loss went down: True
# > test accuracy above 0.9: True
