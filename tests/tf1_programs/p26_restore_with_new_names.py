"""Restoring a checkpoint into renamed variables with a dict var_list (the transfer-
learning idiom), and restoring only some of the variables."""
import os

import nbbp.tf1 as tf

os.makedirs("ckpt", exist_ok=True)
with tf.Graph().as_default():
    w = tf.Variable([1.0, 2.0], name="old/w")
    b = tf.Variable(0.5, name="old/b")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        path = tf.train.Saver().save(sess, "ckpt/pretrained")

with tf.Graph().as_default():
    new_w = tf.Variable([0.0, 0.0], name="new/w")
    head = tf.Variable(9.0, name="new/head")
    restorer = tf.train.Saver({"old/w": new_w})
    with tf.Session() as sess:
        sess.run(head.initializer)
        restorer.restore(sess, path)
        print(sess.run(new_w), sess.run(head))
        print(sess.run(tf.reduce_sum(new_w) * head))

# Expected output (TensorFlow 1.15):
# $ python p26_restore_with_new_names.py
# > [1. 2.] 9.0
# > 27.0
