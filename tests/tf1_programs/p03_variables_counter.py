"""The counter from TensorFlow's "Basic Usage": a variable, add, assign, a loop."""
import nbbp.tf1 as tf

state = tf.Variable(0.0, name="counter")
one = tf.constant(1.0)
new_value = tf.add(state, one)
update = tf.assign(state, new_value)

init_op = tf.global_variables_initializer()

with tf.Session() as sess:
    sess.run(init_op)
    print(sess.run(state))
    for _ in range(3):
        sess.run(update)
        print(sess.run(state))
print(state.name)

# Expected output (TensorFlow 1.15):
# $ python p03_variables_counter.py
# > 0.0
# > 1.0
# > 2.0
# > 3.0
# > counter:0
