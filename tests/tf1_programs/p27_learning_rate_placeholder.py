"""A learning rate fed through a placeholder, changed during training."""
import nbbp.tf1 as tf

lr = tf.placeholder(tf.float32, shape=[], name="learning_rate")
w = tf.Variable(4.0)
loss = 0.5 * tf.square(w)                 # gradient: w
train = tf.train.GradientDescentOptimizer(lr).minimize(loss)

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for rate in [0.5, 0.5, 0.25, 0.0]:
        sess.run(train, feed_dict={lr: rate})
        print(rate, sess.run(w))
    try:
        sess.run(train)
    except tf.errors.InvalidArgumentError as e:
        print(str(e).split(". ")[0].split(" and shape")[0])

# w ← w·(1 − lr): 4 → 2 → 1 → 0.75 → 0.75
# Expected output (TensorFlow 1.15):
# $ python p27_learning_rate_placeholder.py
# > 0.5 2.0
# > 0.5 1.0
# > 0.25 0.75
# > 0.0 0.75
# > You must feed a value for placeholder tensor 'learning_rate' with dtype float
