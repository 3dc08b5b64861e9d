"""Names from older tutorials: TF 1.15 still has tf.initialize_all_variables (with a
warning on stderr); tf.mul, tf.sub, tf.neg were removed in TF 1.0."""
import nbbp.tf1 as tf

v = tf.Variable(2.0)
init = tf.initialize_all_variables()
with tf.Session() as sess:
    sess.run(init)
    print(sess.run(tf.multiply(v, 3.0)))
for old in ("mul", "sub", "neg", "select", "scalar_summary"):
    try:
        getattr(tf, old)
    except AttributeError as e:
        print(str(e).split("; ")[-1])
try:
    tf.train.SummaryWriter
except AttributeError as e:
    print(e)
print(hasattr(tf.nn, "conv3d"), hasattr(tf, "global_variables"))

# Expected output (TensorFlow 1.15):
# $ python p17_deprecated_and_removed_names.py
# > 6.0
# > use tf.multiply
# > use tf.subtract
# > use tf.negative
# > use tf.where
# > use tf.summary.scalar
# > tf.train.SummaryWriter was removed in TensorFlow 1.0 (TF 1.15 does not have it either); use tf.summary.FileWriter
# > False True
# stderr:
# ! WARNING:tensorflow:From
# ! initialize_all_variables (from tensorflow.python.ops.variables) is deprecated and will be removed after 2017-03-02.
# ! Instructions for updating:
# ! Use `tf.global_variables_initializer` instead.
