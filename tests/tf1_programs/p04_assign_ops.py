"""assign, assign_add, assign_sub; a fetched assign returns the new value."""
import nbbp.tf1 as tf

v = tf.Variable([1.0, 2.0, 3.0], name="v")
add = v.assign_add([10.0, 10.0, 10.0])
sub = tf.assign_sub(v, [1.0, 1.0, 1.0])
reset = v.assign([0.5, 0.5, 0.5])

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    print(sess.run(add))
    print(sess.run(sub))
    print(sess.run(reset))
    print(v.eval())
    try:
        sess.run(v.assign([1.0, 2.0]))
    except ValueError as e:
        print("ValueError")

# Expected output (TensorFlow 1.15):
# $ python p04_assign_ops.py
# > [11. 12. 13.]
# > [10. 11. 12.]
# > [0.5 0.5 0.5]
# > [0.5 0.5 0.5]
# > ValueError
