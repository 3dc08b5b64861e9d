"""trainable=False variables, tf.trainable_variables, tf.global_variables, and a
variables_initializer for only some of them."""
import nbbp.tf1 as tf

w = tf.Variable(1.0, name="w")
step = tf.Variable(0.0, trainable=False, name="step")
with tf.variable_scope("dense"):
    k = tf.get_variable("kernel", [2, 2], initializer=tf.ones_initializer())
print([v.name for v in tf.trainable_variables()])
print([v.name for v in tf.global_variables()])
print([v.op.name for v in tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope="dense")])

with tf.Session() as sess:
    sess.run(tf.variables_initializer([w, k]))
    print(sess.run(tf.reduce_sum(k) + w))
    try:
        sess.run(step)
    except tf.errors.FailedPreconditionError as e:
        print(str(e).split(". ")[0])

# Expected output (TensorFlow 1.15):
# $ python p23_trainable_and_collections.py
# > ['w:0', 'dense/kernel:0']
# > ['w:0', 'step:0', 'dense/kernel:0']
# > ['dense/kernel']
# > 5.0
# > Attempting to use uninitialized value step
