"""Checkpoints during training: global_step in the name, max_to_keep, latest_checkpoint,
resuming in a second process, and TF 1's errors for a graph that does not match."""
import os
import sys

import nbbp.tf1 as tf

w = tf.Variable(0.0, name="w")
step = tf.train.get_or_create_global_step()
loss = tf.square(w - 5.0)
train = tf.train.GradientDescentOptimizer(0.25).minimize(loss, global_step=step)
saver = tf.train.Saver(max_to_keep=2)

if sys.argv[1] == "train":
    os.makedirs("ckpt", exist_ok=True)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i in range(4):
            sess.run(train)
            print(saver.save(sess, "ckpt/model", global_step=step), sess.run(w))
    print(sorted(f for f in os.listdir("ckpt") if f.startswith("model")))
    print(open("ckpt/checkpoint").read().strip())
elif sys.argv[1] == "resume":
    with tf.Session() as sess:
        latest = tf.train.latest_checkpoint("ckpt")
        saver.restore(sess, latest)
        print(latest, sess.run([step, w]))
        sess.run(train)
        print(sess.run([step, w]))
else:
    tf.reset_default_graph()
    W = tf.Variable([1.0, 2.0], name="w")
    with tf.Session() as sess:
        try:
            tf.train.Saver().restore(sess, tf.train.latest_checkpoint("ckpt"))
        except tf.errors.InvalidArgumentError as e:
            print(type(e).__name__, str(e).splitlines()[-1].split(" (")[0])
    tf.reset_default_graph()
    other = tf.Variable(1.0, name="other")
    with tf.Session() as sess:
        try:
            tf.train.Saver().restore(sess, "ckpt/model-4")
        except tf.errors.NotFoundError as e:
            print(type(e).__name__, str(e).splitlines()[-1].split(" (")[0])
    print(tf.train.latest_checkpoint("nowhere"))

# w: 0 → 2.5 → 3.75 → 4.375 → 4.6875 (each step halves the distance to 5)
# NumPy ≥ 2 prints a list's float32/int64 scalars as np.float32(…), np.int64(…).
# Expected output (TensorFlow 1.15):
# $ python p10_checkpoints_training.py train
# > ckpt/model-1 2.5
# > ckpt/model-2 3.75
# > ckpt/model-3 4.375
# > ckpt/model-4 4.6875
# > ['model-3.nbbp-ckpt', 'model-4.nbbp-ckpt']
# > model_checkpoint_path: "model-4"
# > all_model_checkpoint_paths: "model-3"
# > all_model_checkpoint_paths: "model-4"
# $ python p10_checkpoints_training.py resume
# > ckpt/model-4 [np.int64(4), np.float32(4.6875)]
# > [np.int64(5), np.float32(4.84375)]
# $ python p10_checkpoints_training.py mismatch
# > InvalidArgumentError Assign requires shapes of both tensors to match. lhs shape= [2] rhs shape= []
# > NotFoundError Key other not found in checkpoint
# > None
