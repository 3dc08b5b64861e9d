"""Op names under tf.name_scope, made unique as TensorFlow 1 makes them."""
import nbbp.tf1 as tf

with tf.name_scope("layer"):
    a = tf.constant(1.0, name="a")
    b = tf.add(a, 2.0)
with tf.name_scope("layer"):
    c = tf.multiply(a, 3.0)
d = tf.add(b, c, name="out")
print(a.name, b.name, c.name, d.name)
print(a.op.name, a.op.type, d.op.type)
print(tf.get_default_graph().get_tensor_by_name("out:0") is d)
tf.reset_default_graph()
print(len(tf.get_default_graph().get_operations()))

# Expected output (TensorFlow 1.15):
# $ python p06_name_scope.py
# > layer/a:0 layer/Add:0 layer_1/Mul:0 out:0
# > layer/a Const Add
# > True
# > 0
