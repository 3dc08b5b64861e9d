"""TensorFlow's first get-started program: two constant matrices, one matmul, a session."""
import nbbp.tf1 as tf

matrix1 = tf.constant([[3., 3.]])
matrix2 = tf.constant([[2.], [2.]])
product = tf.matmul(matrix1, matrix2)
print(product.shape)

sess = tf.Session()
result = sess.run(product)
print(result)
sess.close()

with tf.Session() as sess:
    a = tf.constant(2.0)
    b = tf.constant(3.0)
    print("a + b =", sess.run(a + b))
    print("a * b =", sess.run(a * b))

# Expected output (TensorFlow 1.15):
# $ python p01_constants_session.py
# > (1, 1)
# > [[12.]]
# > a + b = 5.0
# > a * b = 6.0
