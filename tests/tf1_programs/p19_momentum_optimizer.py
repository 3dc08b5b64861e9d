"""MomentumOptimizer's accumulator slot, step by step (TF 1's update rule)."""
import nbbp.tf1 as tf

w = tf.Variable(1.0, name="w")
loss = tf.square(w)                      # gradient 2w
opt = tf.train.MomentumOptimizer(learning_rate=0.1, momentum=0.9)
train = opt.minimize(loss)
acc = opt.get_slot(w, "momentum")
print(acc.name, opt.get_slot_names())

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for _ in range(3):
        sess.run(train)
        print("w = %.4f  accumulator = %.4f" % tuple(sess.run([w, acc])))

# acc = 0.9·acc + 2w; w −= 0.1·acc: (1 → acc 2, w 0.8), (acc 3.4, w 0.46), (acc 3.98, w 0.062)
# Expected output (TensorFlow 1.15):
# $ python p19_momentum_optimizer.py
# > w/Momentum:0 ['momentum']
# > w = 0.8000  accumulator = 2.0000
# > w = 0.4600  accumulator = 3.4000
# > w = 0.0620  accumulator = 3.9800
