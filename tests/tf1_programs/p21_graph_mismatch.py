"""Graphs: a tensor built in the default graph cannot run in another graph's session
(the mistake in many tutorials), and how to do it right."""
import nbbp.tf1 as tf

graph = tf.Graph()
a = tf.constant(2.0)
b = tf.constant(3.0)
c = a * b
print(c.graph is tf.get_default_graph(), c.graph is graph)
try:
    tf.Session(graph=graph).run(c)
except ValueError as e:
    print(str(e).split(" dtype")[0], "cannot be interpreted as a Tensor" in str(e),
          "is not an element of this graph" in str(e))

with graph.as_default():
    d = tf.constant(4.0) * tf.constant(5.0)
    print(d.graph is graph)
with tf.Session(graph=graph) as sess:
    print(sess.run(d))
with tf.Session(graph=c.graph) as sess:
    print(sess.run(c))

# Expected output (TensorFlow 1.15):
# $ python p21_graph_mismatch.py
# > True False
# > Fetch argument <tf.Tensor 'mul:0' shape=() True True
# > True
# > 20.0
# > 6.0
