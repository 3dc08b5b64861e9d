"""InteractiveSession: Tensor.eval() and Operation.run() without passing the session."""
import nbbp.tf1 as tf

sess = tf.InteractiveSession()
x = tf.Variable([1.0, 2.0])
a = tf.constant([3.0, 3.0])
x.initializer.run()
sub = tf.subtract(x, a)
print(sub.eval())
print(tf.reduce_sum(x * a).eval())
x.load([5.0, 6.0])
print(sub.eval())
sess.close()
try:
    sub.eval(session=sess)
except RuntimeError as e:
    print(e)

# Expected output (TensorFlow 1.15):
# $ python p16_interactive_session.py
# > [-2. -1.]
# > 9.0
# > [2. 3.]
# > Attempted to use a closed Session.
