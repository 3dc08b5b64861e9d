"""Learning-rate decay driven by global_step (tf.train.exponential_decay)."""
import nbbp.tf1 as tf

global_step = tf.Variable(0, trainable=False, name="global_step")
starter_learning_rate = 0.1
learning_rate = tf.train.exponential_decay(starter_learning_rate, global_step,
                                           3, 0.5, staircase=True)
smooth = tf.train.exponential_decay(starter_learning_rate, global_step, 4, 0.5)
w = tf.Variable(10.0)
loss = 0.5 * tf.square(w)
step = tf.train.GradientDescentOptimizer(learning_rate).minimize(loss, global_step=global_step)

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for i in range(7):
        lr, s, sm = sess.run([learning_rate, global_step, smooth])
        sess.run(step)
        print("step %d lr %.4f smooth %.4f" % (s, lr, sm))
    print("w = %.6f" % sess.run(w))

# staircase: 0.1 for steps 0-2, 0.05 for 3-5, 0.025 from 6; smooth: 0.1·0.5^(s/4)
# w ← w·(1 − lr): 10·0.9³·0.95³·0.975
# Expected output (TensorFlow 1.15):
# $ python p13_exponential_decay.py
# > step 0 lr 0.1000 smooth 0.1000
# > step 1 lr 0.1000 smooth 0.0841
# > step 2 lr 0.1000 smooth 0.0707
# > step 3 lr 0.0500 smooth 0.0595
# > step 4 lr 0.0500 smooth 0.0500
# > step 5 lr 0.0500 smooth 0.0420
# > step 6 lr 0.0250 smooth 0.0354
# > w = 6.094007
