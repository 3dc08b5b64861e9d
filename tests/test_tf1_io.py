"""nbbp.tf1's program-level pieces: flags and tf.app.run, tf.train.Saver, tf.summary
(read back with TensorBoard's own loader), exponential_decay, and the one-line errors
for TF 1 names nbbp.tf1 does not have."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import nbbp.tf1 as tf
from nbbp.errors import FileFormatError
from nbbp.tf1 import _names, flags, saver

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()


# ---------------------------------------------------------------------------
# flags and tf.app.run
# ---------------------------------------------------------------------------


def _flags() -> flags.FlagValues:
    fv = flags.FlagValues()
    flags.DEFINE_string("name", "x", "a string", flag_values=fv)
    flags.DEFINE_integer("steps", 10, "an int", flag_values=fv)
    flags.DEFINE_float("lr", 0.5, "a float", flag_values=fv)
    flags.DEFINE_boolean("debug", True, "a bool", flag_values=fv)
    flags.DEFINE_bool("fast", False, "a bool", flag_values=fv)
    return fv


def test_flags_parse_every_form_absl_accepts_and_leave_the_rest():
    fv = _flags()
    rest = fv(["prog", "--name=abc", "--steps", "3", "-lr=0.25", "--nodebug", "--fast",
               "file.txt", "--unknown=1", "--", "--steps=99"])
    assert rest == ["prog", "file.txt", "--unknown=1", "--steps=99"]
    assert (fv.name, fv.steps, fv.lr, fv.debug, fv.fast) == ("abc", 3, 0.25, False, True)
    assert isinstance(fv.steps, int) and isinstance(fv.lr, float)
    fv(["prog", "--debug=false", "--fast=1"])
    assert (fv.debug, fv.fast) == (False, True)
    assert fv.flag_values_dict()["name"] == "abc"


def test_flags_refuse_bad_values_and_second_definitions():
    fv = _flags()
    with pytest.raises(flags.IllegalFlagValueError, match=r"--steps=abc: invalid literal"):
        fv(["prog", "--steps=abc"])
    with pytest.raises(flags.Error, match="--lr must have a value"):
        fv(["prog", "--lr"])
    with pytest.raises(flags.DuplicateFlagError, match="The flag 'name' is defined twice"):
        flags.DEFINE_string("name", "y", "again", flag_values=fv)
    with pytest.raises(AttributeError, match="did you mean FLAGS.steps"):
        fv.step  # noqa: B018
    fv.steps = "7"
    assert fv.steps == 7


def test_app_run_calls_main_with_the_leftover_argv_and_exits_with_its_status():
    seen = []

    def main(argv):
        seen.append(argv)
        return 3

    with pytest.raises(SystemExit) as exit_:
        tf.app.run(main=main, argv=["prog", "--not_a_defined_flag_here=1", "pos"])
    assert exit_.value.code == 3
    assert seen == [["prog", "--not_a_defined_flag_here=1", "pos"]]


def test_a_bad_flag_value_stops_the_script_with_absls_message(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import nbbp.tf1 as tf\n"
                      "tf.app.flags.DEFINE_integer('steps', 1, 'how many')\n"
                      "def main(_):\n    print('ran', tf.app.flags.FLAGS.steps)\n"
                      "tf.app.run()\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ok = subprocess.run([sys.executable, str(script), "--steps", "4"], env=env,
                        capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stdout) == (0, "ran 4\n")
    bad = subprocess.run([sys.executable, str(script), "--steps=four"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "FATAL Flags parsing error: flag --steps=four: invalid literal" in bad.stderr


# ---------------------------------------------------------------------------
# Saver
# ---------------------------------------------------------------------------


def _two_vars():
    W = tf.Variable([[1.0, 2.0]], name="W")
    with tf.variable_scope("layer"):
        b = tf.get_variable("b", initializer=tf.constant([3.0]))
    return W, b


def test_save_and_restore_round_trip_names_and_steps(tmp_path):
    W, b = _two_vars()
    s = tf.train.Saver()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(W.assign([[5.0, 6.0]]))
        path = s.save(sess, str(tmp_path / "m"), global_step=7)
    assert path == str(tmp_path / "m-7")
    assert tf.train.latest_checkpoint(str(tmp_path)) == path
    assert (tmp_path / "checkpoint").read_text() == (
        'model_checkpoint_path: "m-7"\nall_model_checkpoint_paths: "m-7"\n')
    with zipfile.ZipFile(path + ".nbbp-ckpt") as z:
        assert sorted(z.namelist()) == ["checkpoint.json", "values.npz"]
    with tf.Session() as sess:
        s.restore(sess, path)
        np.testing.assert_array_equal(sess.run(W), [[5.0, 6.0]])
        assert sess.run(b).tolist() == [3.0]
    # a dict var_list saves under the names given
    other = tf.train.Saver({"weights": W})
    with tf.Session() as sess:
        s.restore(sess, path)
        p2 = other.save(sess, str(tmp_path / "d"))
    assert set(saver._read(p2 + ".nbbp-ckpt")) == {"weights"}


def test_a_checkpoint_keeps_each_variables_dtype_and_every_digit(tmp_path):
    """An int64 step past 2**53 and a float32 weight come back bit for bit (a float64
    file would round the step to an even number), and the file holds their dtypes."""
    step = tf.Variable(np.int64(2**53 + 1), name="step")
    w = tf.Variable(np.float32(0.1), name="w")
    s = tf.train.Saver()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        path = s.save(sess, str(tmp_path / "m"))
    saved = saver._read(path + ".nbbp-ckpt")
    assert {k: v.dtype.name for k, v in saved.items()} == {"step": "int64", "w": "float32"}
    with tf.Session() as sess:
        s.restore(sess, path)
        got = sess.run([step, w])
    assert int(got[0]) == 2**53 + 1 and got[1] == np.float32(0.1) and got[1].dtype == np.float32


def test_max_to_keep_deletes_older_files(tmp_path):
    v = tf.Variable(0.0, name="v")
    s = tf.train.Saver(max_to_keep=2)
    with tf.Session() as sess:
        sess.run(v.initializer)
        for step in range(4):
            s.save(sess, str(tmp_path / "m"), global_step=step)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "m-2.nbbp-ckpt", "m-3.nbbp-ckpt"]
    assert s.last_checkpoints == [str(tmp_path / "m-2"), str(tmp_path / "m-3")]
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert state.all_model_checkpoint_paths == s.last_checkpoints


def test_latest_checkpoint_reads_a_checkpoint_file_as_tf1_writes_it(tmp_path):
    v = tf.Variable(1.0, name="v")
    with tf.Session() as sess:
        sess.run(v.initializer)
        tf.train.Saver().save(sess, str(tmp_path / "model.ckpt-20"), write_state=False)
    # TF 1 (save_relative_paths=False) writes absolute paths
    (tmp_path / "checkpoint").write_text(
        f'model_checkpoint_path: "{tmp_path}/model.ckpt-20"\n'
        f'all_model_checkpoint_paths: "{tmp_path}/model.ckpt-10"\n'
        f'all_model_checkpoint_paths: "{tmp_path}/model.ckpt-20"\n')
    assert tf.train.latest_checkpoint(str(tmp_path)) == f"{tmp_path}/model.ckpt-20"
    assert tf.train.latest_checkpoint(str(tmp_path / "none")) is None
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "gone-5"\n')
    assert tf.train.latest_checkpoint(str(tmp_path)) is None


def test_restoring_into_a_different_graph_gives_tf1s_errors(tmp_path):
    W, b = _two_vars()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        path = tf.train.Saver().save(sess, str(tmp_path / "m"))
    tf.reset_default_graph()
    tf.Variable([1.0, 2.0, 3.0], name="W")
    with tf.Session() as sess, pytest.raises(tf.errors.InvalidArgumentError) as e:
        tf.train.Saver().restore(sess, path)
    assert "Assign requires shapes of both tensors to match. lhs shape= [3] rhs shape= [1,2]" \
        in str(e.value)
    tf.reset_default_graph()
    tf.Variable(1.0, name="V")
    with tf.Session() as sess, pytest.raises(tf.errors.NotFoundError) as e:
        tf.train.Saver().restore(sess, path)
    assert "Key V not found in checkpoint" in str(e.value)
    assert "W, layer/b" in str(e.value)
    with tf.Session() as sess:
        with pytest.raises(ValueError, match="The passed save_path is not a valid checkpoint"):
            tf.train.Saver().restore(sess, str(tmp_path / "nope"))
        with pytest.raises(ValueError, match="Can't load save_path when it is None"):
            tf.train.Saver().restore(sess, None)


def test_saving_an_uninitialised_variable_and_an_empty_saver_fail_as_in_tf1(tmp_path):
    with pytest.raises(ValueError, match="No variables to save"):
        tf.train.Saver()
    tf.Variable(1.0, name="v")
    with tf.Session() as sess, pytest.raises(tf.errors.FailedPreconditionError,
                                             match="uninitialized value v"):
        tf.train.Saver().save(sess, str(tmp_path / "m"))


def test_a_checkpoint_holding_a_pickle_or_damage_is_refused(tmp_path):
    v = tf.Variable([1.0], name="v")
    path = str(tmp_path / "bad.nbbp-ckpt")
    buf = io.BytesIO()
    np.savez(buf, v0=np.array([object()], dtype=object))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("checkpoint.json", '{"format": "nbbp-tf1-checkpoint", "version": 1, '
                   '"variables": [{"name": "v", "key": "v0", "shape": [1]}]}')
        z.writestr("values.npz", buf.getvalue())
    with tf.Session() as sess:
        with pytest.raises(FileFormatError, match="never unpickle"):
            tf.train.Saver().restore(sess, path[:-len(".nbbp-ckpt")])
        Path(path).write_bytes(b"PK\x03\x04 not really a zip")
        with pytest.raises(FileFormatError, match="damaged"):
            tf.train.Saver().restore(sess, path[:-len(".nbbp-ckpt")])
    assert v.name == "v:0"


# ---------------------------------------------------------------------------
# tf.summary and TensorBoard
# ---------------------------------------------------------------------------


def test_import_nbbp_tf1_does_not_import_tensorboard():
    code = "import sys, nbbp.tf1; print('tensorboard' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         capture_output=True, text=True, timeout=60)
    assert out.stdout == "False\n", out.stderr


def test_event_files_hold_the_graph_and_the_scalars_tensorboard_reads(tmp_path):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    x = tf.placeholder(tf.float32, name="x")
    w = tf.Variable(1.0, name="w")
    with tf.name_scope("loss"):
        loss = tf.square(w * x - 4.0)
    tf.summary.scalar("cost", loss)
    tf.summary.histogram("w_hist", w)
    merged = tf.summary.merge_all()
    train = tf.train.GradientDescentOptimizer(0.125).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        with tf.summary.FileWriter(str(tmp_path), sess.graph) as writer:
            for step in range(3):
                summary, _ = sess.run([merged, train], {x: 1.0})
                assert isinstance(summary, bytes)
                writer.add_summary(summary, step * 10)
    acc = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    acc.Reload()
    # (w − 4)² with w = 1 → 1.75 → 2.3125 (w += 0.125·2·(4 − w))
    assert [(e.step, e.value) for e in acc.Scalars("cost")] == [
        (0, 9.0), (10, 5.0625), (20, 2.84765625)]
    names = {n.name: n for n in acc.Graph().node}
    assert {"x", "w", "w/Assign", "loss/mul", "loss/Square", "cost", "w_hist"} <= set(names)
    assert list(names["loss/mul"].input) == ["w", "x"]
    assert names["loss/Square"].op == "Square"
    assert [h.histogram_value.sum for h in acc.Histograms("w_hist")][-1] == 2.3125


def test_histograms_use_tf1s_buckets():
    from nbbp.tf1.summary import histogram_proto
    values = np.array([-3.0, 0.0, 1.0, 1.0, 2.5, 1e3])
    h = histogram_proto(values)
    assert (h.min, h.max, h.num, h.sum) == (-3.0, 1e3, 6.0, values.sum())
    assert h.sum_squares == (values ** 2).sum()
    assert sum(h.bucket) == 6
    # each non-empty bucket's values lie below its limit and at or above the previous one
    limits = list(h.bucket_limit)
    for i, count in enumerate(h.bucket):
        if count:
            low = limits[i - 1] if i else -np.inf
            assert count == ((values >= low) & (values < limits[i])).sum()
    assert 1.1 ** 289 * 1e-12 < limits[list(h.bucket).index(2.0)] < 1.1 ** 291 * 1e-12


def test_summary_misuse_is_explained():
    with pytest.raises(tf.errors.InvalidArgumentError, match="tags and values not the same "
                       r"shape: \[\] != \[2\]"):
        tf.summary.scalar("v", tf.constant([1.0, 2.0]))
    assert tf.summary.merge_all() is None
    with pytest.raises(tf.errors.UsageError, match="takes summary tensors"):
        tf.summary.merge([tf.constant(1.0)])


# ---------------------------------------------------------------------------
# exponential_decay
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("decay_steps", [1, 3, 7, 100])
def test_exponential_decay_matches_its_formula(decay_steps):
    step = tf.placeholder(tf.float32)
    smooth = tf.train.exponential_decay(0.5, step, decay_steps, 0.9)
    stair = tf.train.exponential_decay(0.5, step, decay_steps, 0.9, staircase=True)
    steps = np.arange(0, 3 * decay_steps + 2)
    with tf.Session() as sess:
        got = np.array([sess.run([smooth, stair], {step: s}) for s in steps])
    # TF 1 computes in the learning rate's dtype: float32 for a Python number
    f32 = np.float32
    smooth_ref = f32(0.5) * f32(0.9) ** (steps.astype(f32) / f32(decay_steps))
    stair_ref = f32(0.5) * f32(0.9) ** np.floor(steps.astype(f32) / f32(decay_steps))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[:, 0], smooth_ref, rtol=4 * np.finfo(f32).eps)
    np.testing.assert_allclose(got[:, 1], stair_ref, rtol=4 * np.finfo(f32).eps)


# ---------------------------------------------------------------------------
# names nbbp.tf1 does not have
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("ns,name,new", [(ns, n, new) for ns, table in _names.REMOVED.items()
                                         for n, new in table.items()])
def test_names_removed_in_tf_1_0_name_their_replacement(ns, name, new):
    module = tf if not ns else getattr(tf, ns)
    with pytest.raises(tf.errors.NotSupportedError) as e:
        getattr(module, name)
    assert str(e.value).endswith(f"use {new}") and "\n" not in str(e.value)
    assert "removed in TensorFlow 1.0" in str(e.value)


@pytest.mark.parametrize("ns", ["", "nn", "train", "summary", "losses", "flags", "app"])
def test_every_namespace_answers_a_missing_name_in_one_line(ns):
    module = tf if not ns else getattr(tf, ns)
    for name in sorted(_names.TF115.get(ns, ()))[:40] + ["no_such_name_at_all"]:
        if hasattr(module, name):
            continue
        with pytest.raises(tf.errors.NotSupportedError) as e:
            getattr(module, name)
        msg = str(e.value)
        assert "\n" not in msg and f"tf.{ns + '.' if ns else ''}{name}" in msg
        assert ("TensorFlow 1.15 name that nbbp.tf1 does not have" in msg) == (
            name != "no_such_name_at_all")
    with pytest.raises(AttributeError):
        module.__wrapped__  # noqa: B018


def test_closest_names_are_suggested():
    with pytest.raises(AttributeError, match=r"did you mean tf\.train\.AdamOptimizer\?"):
        tf.train.AdamOptimiser  # noqa: B018
    with pytest.raises(AttributeError, match=r"did you mean tf\.nn\.softmax\?"):
        tf.nn.softmaxx  # noqa: B018
    with pytest.raises(AttributeError, match=r"use tf\.multiply$"):
        tf.mul  # noqa: B018


def test_deprecated_names_tf_1_15_still_has_work_with_its_warning(capsys):
    _names._warned.clear()
    v = tf.Variable(2.0)
    init = tf.initialize_all_variables()
    err = capsys.readouterr().err
    assert "initialize_all_variables (from tensorflow.python.ops.variables) is deprecated and " \
           "will be removed after 2017-03-02.\nInstructions for updating:\nUse " \
           "`tf.global_variables_initializer` instead." in err
    assert f"From {__file__}:" in err
    assert tf.all_variables() == [v]
    assert "Please use tf.global_variables instead." in capsys.readouterr().err
    with tf.Session() as sess:
        sess.run(init)
        assert sess.run(v) == 2.0
    tf.initialize_all_variables()
    assert capsys.readouterr().err == ""          # once per process, as TF warns
