"""TF 1's "Hello, TensorFlow!": string constants are tf.string tensors, and sess.run
returns bytes (an object array of bytes for a list), as TF 1 does under Python 3."""
import nbbp.tf1 as tf

hello = tf.constant("Hello, TensorFlow!")
print(hello)
sess = tf.Session()
print(sess.run(hello))
print(sess.run(hello).decode())

words = tf.constant([b"graph", b"session"], name="words")
same = tf.identity(words)
print(words.dtype, words.shape)
result = sess.run([words, same])
print(result[0], result[1].dtype, type(result[1][0]).__name__)
print(sess.run(tf.constant("grüß")))
try:
    hello + 1
except TypeError as e:
    print("TypeError:", e)
sess.close()

# Expected output (TensorFlow 1.15):
# $ python p30_string_constants.py
# > Tensor("Const:0", shape=(), dtype=string)
# > b'Hello, TensorFlow!'
# > Hello, TensorFlow!
# > <dtype: 'string'> (2,)
# > [b'graph' b'session'] object bytes
# > b'gr\xc3\xbc\xc3\x9f'
# > TypeError: Expected string, got 1 of type 'int' instead.
