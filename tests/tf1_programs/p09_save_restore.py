"""Save variables in one process, restore them in another (TF 1's Saver guide).

Run ``python p09_save_restore.py save`` then ``python p09_save_restore.py restore``.
"""
import os
import sys

import nbbp.tf1 as tf

v1 = tf.get_variable("v1", shape=[3], initializer=tf.zeros_initializer)
v2 = tf.get_variable("v2", shape=[5], initializer=tf.zeros_initializer)
inc_v1 = v1.assign(v1 + 1)
dec_v2 = v2.assign(v2 - 1)
saver = tf.train.Saver()

if sys.argv[1] == "save":
    os.makedirs("tmp", exist_ok=True)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        inc_v1.op.run()
        dec_v2.op.run()
        save_path = saver.save(sess, "tmp/model.ckpt")
        print("Model saved in path: %s" % save_path)
else:
    with tf.Session() as sess:
        saver.restore(sess, "tmp/model.ckpt")
        print("Model restored.")
        print("v1 : %s" % v1.eval())
        print("v2 : %s" % v2.eval())

# Expected output (TensorFlow 1.15):
# $ python p09_save_restore.py save
# > Model saved in path: tmp/model.ckpt
# $ python p09_save_restore.py restore
# > Model restored.
# > v1 : [1. 1. 1.]
# > v2 : [-1. -1. -1. -1. -1.]
