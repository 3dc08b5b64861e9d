"""A script with tf.app.flags and tf.app.run(): flags from the command line."""
import nbbp.tf1 as tf

flags = tf.app.flags
flags.DEFINE_float("learning_rate", 0.01, "Initial learning rate.")
flags.DEFINE_integer("max_steps", 2000, "Number of steps to run trainer.")
flags.DEFINE_string("data_dir", "/tmp/data", "Directory for storing input data")
flags.DEFINE_boolean("fake_data", False, "If true, uses fake data for unit testing.")
flags.DEFINE_boolean("debug", True, "Print more.")
FLAGS = flags.FLAGS


def main(argv):
    print("argv:", argv[1:])
    print(FLAGS.learning_rate, FLAGS.max_steps, FLAGS.data_dir, FLAGS.fake_data, FLAGS.debug)
    w = tf.Variable(1.0)
    train = tf.train.GradientDescentOptimizer(FLAGS.learning_rate).minimize(tf.square(w))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(FLAGS.max_steps):
            sess.run(train)
        print("w = %.4f" % sess.run(w))


if __name__ == "__main__":
    tf.app.run()

# w ← w·(1 − 2·lr) per step: 0.5³ = 0.125; 0.8⁴ = 0.4096
# Expected output (TensorFlow 1.15):
# $ python p12_flags_app_run.py --learning_rate=0.25 --max_steps 3 --fake_data --nodebug extra
# > argv: ['extra']
# > 0.25 3 /tmp/data True False
# > w = 0.1250
# $ python p12_flags_app_run.py --max_steps=4 --learning_rate 0.1 --data_dir=/data
# > argv: []
# > 0.1 4 /data False True
# > w = 0.4096
