"""tf.losses.mean_squared_error with Adagrad and RMSProp: one step each, by TF 1's rules."""
import numpy as np

import nbbp.tf1 as tf

labels = tf.constant([1.0, 2.0])
for name, opt in [("adagrad", tf.train.AdagradOptimizer(0.1)),
                  ("rmsprop", tf.train.RMSPropOptimizer(0.01)),
                  ("sgd", tf.train.GradientDescentOptimizer(0.25))]:
    with tf.variable_scope(name):
        w = tf.get_variable("w", initializer=tf.constant([0.0, 0.0]))
    loss = tf.losses.mean_squared_error(labels, w)
    train = opt.minimize(loss, var_list=[w])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        print(name, "loss %.3f" % sess.run(loss), end=" ")
        sess.run(train)
        print(np.round(sess.run(w), 4))

# gradient of mean((w − y)²) at w = 0: (w − y) = [-1, -2]
# Adagrad: acc = 0.1 + g²; w −= 0.1·g/√acc → 0.1·[1/√1.1, 2/√4.1]
# RMSProp: ms = 1 + 0.1·(g² − 1); w −= 0.01·g/√(ms + 1e-10) → 0.01·[1/√1, 2/√1.3]
# SGD: w −= 0.25·g
# Expected output (TensorFlow 1.15):
# $ python p22_losses_and_optimizers.py
# > adagrad loss 2.500 [0.0953 0.0988]
# > rmsprop loss 2.500 [0.01   0.0175]
# > sgd loss 2.500 [0.25 0.5 ]
