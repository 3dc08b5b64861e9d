"""What ``tf.X`` says when nbbp.tf1 has no ``X``: one line naming the TF 1 name, that
nbbp.tf1 does not have it, and the closest name it has — never a bare AttributeError.

Three fixed tables, checked against TensorFlow 1.15's API:

* ``REMOVED``: names TensorFlow 1.0 removed (``tf.mul`` → ``tf.multiply``); they fail
  in TF 1.15 too, so they fail here, with the name that replaced them;
* ``DEPRECATED``: names TF 1.15 still has with a deprecation warning
  (``tf.initialize_all_variables``); they work, and print TF's warning;
* ``TF115``: names TF 1.15 has that nbbp.tf1 does not (``tf.nn.conv2d``), so the
  message can say it is a real TF 1 name rather than a typo.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from typing import Any

from .errors import NotSupportedError

# namespace ("" is tf itself) → removed name → its replacement
REMOVED: dict[str, dict[str, str]] = {
    "": {"mul": "tf.multiply", "sub": "tf.subtract", "neg": "tf.negative",
         "select": "tf.where", "pack": "tf.stack", "unpack": "tf.unstack",
         "batch_matmul": "tf.matmul", "inv": "tf.reciprocal", "listdiff": "tf.setdiff1d",
         "complex_abs": "tf.abs", "scalar_summary": "tf.summary.scalar",
         "histogram_summary": "tf.summary.histogram", "image_summary": "tf.summary.image",
         "audio_summary": "tf.summary.audio", "merge_summary": "tf.summary.merge",
         "merge_all_summaries": "tf.summary.merge_all", "batch_matrix_inverse":
         "tf.matrix_inverse", "reverse_v2": "tf.reverse", "concat_v2": "tf.concat"},
    "train": {"SummaryWriter": "tf.summary.FileWriter"},
    "nn": {"rnn": "tf.nn.static_rnn", "seq2seq": "tf.contrib.legacy_seq2seq"},
}

# TF 1.15 names nbbp.tf1 does not provide (a fixed list of those tutorials use)
TF115: dict[str, set[str]] = {
    "": {"argmax", "argmin", "one_hot", "gather", "gather_nd", "slice", "concat", "stack",
         "unstack", "split", "tile", "pad", "cond", "case", "while_loop", "map_fn", "scan",
         "control_dependencies", "py_func", "numpy_function", "keras", "data",
         "estimator", "contrib", "image", "io", "gfile", "logging", "compat", "feature_column",
         "Print", "print", "enable_eager_execution", "executing_eagerly", "shape", "size",
         "rank", "uint16", "complex64", "floordiv",
         "floormod", "truncatediv", "mod", "round", "floor", "ceil", "logical_and",
         "logical_or", "logical_not", "boolean_mask", "reduce_prod", "reduce_all",
         "reduce_any", "cumsum", "cumprod", "einsum", "tensordot", "random_shuffle",
         "multinomial", "random_gamma", "to_int32", "to_int64", "to_float", "to_double",
         "SparseTensor", "sparse_placeholder", "assert_equal", "Assert", "device",
         "ConfigProto", "GPUOptions", "RunOptions", "RunMetadata", "import_graph_def",
         "train_and_evaluate", "saved_model", "sequence_mask", "reverse", "matrix_inverse",
         "diag", "trace", "unique", "setdiff1d", "meshgrid", "norm", "atan", "asin", "acos",
         "tan", "erf", "lgamma", "digamma", "local_variables_initializer",
         "tables_initializer", "local_variables", "model_variables", "get_collection",
         "add_to_collection", "is_variable_initialized", "report_uninitialized_variables",
         "placeholder_with_default", "variable_op_scope", "dynamic_partition",
         "dynamic_stitch", "scatter_update", "scatter_add", "count_nonzero", "nn", "losses",
         "metrics", "summary", "sets", "strings", "math", "linalg", "random", "distributions",
         "app", "flags", "sysconfig", "test", "lite", "quantization", "tpu", "xla", "bitcast",
         "clip_by_norm", "clip_by_global_norm", "global_norm", "segment_sum", "batch_to_space",
         "space_to_batch", "depth_to_space", "space_to_depth", "string_to_number",
         "as_string", "decode_csv", "decode_raw", "parse_example", "read_file", "write_file",
         "TFRecordReader", "FixedLenFeature", "VarLenFeature", "Summary", "Event"},
    "nn": {"conv1d", "conv3d", "conv2d_transpose", "depthwise_conv2d",
           "separable_conv2d", "atrous_conv2d", "max_pool_with_argmax",
           "weighted_cross_entropy_with_logits", "embedding_lookup", "moments",
           "batch_normalization", "fused_batch_norm", "local_response_normalization", "lrn",
           "l2_normalize", "rnn_cell", "dynamic_rnn", "static_rnn", "bidirectional_dynamic_rnn",
           "in_top_k", "top_k", "xw_plus_b", "selu", "swish", "crelu", "softsign",
           "log_poisson_loss", "nce_loss", "sampled_softmax_loss", "ctc_loss", "zero_fraction",
           "raw_rnn",
           "relu_layer", "sufficient_statistics", "normalize_moments", "weighted_moments",
           "pool", "convolution", "erosion2d", "dilation2d"},
    "train": {"piecewise_constant", "polynomial_decay", "inverse_time_decay",
              "natural_exp_decay", "cosine_decay", "linear_cosine_decay",
              "noisy_linear_cosine_decay", "AdadeltaOptimizer", "FtrlOptimizer",
              "ProximalGradientDescentOptimizer",
              "ProximalAdagradOptimizer", "AdagradDAOptimizer", "SyncReplicasOptimizer",
              "Coordinator", "start_queue_runners", "QueueRunner", "shuffle_batch", "batch",
              "string_input_producer", "slice_input_producer", "input_producer",
              "MonitoredTrainingSession", "MonitoredSession", "SingularMonitoredSession",
              "Scaffold", "SessionRunHook", "StopAtStepHook", "CheckpointSaverHook",
              "LoggingTensorHook", "SummarySaverHook", "NanTensorHook", "StepCounterHook",
              "ExponentialMovingAverage", "import_meta_graph", "export_meta_graph",
              "write_graph", "Server", "ClusterSpec", "NewCheckpointReader", "list_variables",
              "load_variable", "load_checkpoint", "init_from_checkpoint", "global_step",
              "summary_iterator", "replica_device_setter", "Example", "Features", "Feature",
              "BytesList", "FloatList", "Int64List", "Checkpoint", "CheckpointManager",
              "assert_global_step", "create_global_step", "get_checkpoint_mtimes",
              "update_checkpoint_state", "generate_checkpoint_state_proto", "SaverDef",
              "SessionManager", "Supervisor", "ChiefSessionCreator"},
    "summary": {"image", "audio", "text", "tensor_summary", "FileWriterCache",
                "get_summary_description", "SummaryDescription", "Event", "TaggedRunMetadata",
                "all_v2_summary_ops", "initialize", "summary_scope"},
    "layers": {"conv1d", "conv3d", "conv2d_transpose", "max_pooling1d",
               "batch_normalization", "separable_conv2d", "Dense", "Conv2D", "MaxPooling2D",
               "Flatten", "Dropout", "BatchNormalization", "Layer", "InputSpec"},
    "losses": {"absolute_difference", "cosine_distance", "hinge_loss", "huber_loss",
               "log_loss", "mean_pairwise_squared_error",
               "compute_weighted_loss", "get_losses", "get_regularization_loss",
               "get_total_loss", "add_loss", "Reduction"},
    "flags": {"DEFINE_enum", "DEFINE_list", "DEFINE_multi_string", "DEFINE_multi_integer",
              "mark_flag_as_required", "mark_flags_as_required", "register_validator",
              "FlagValues", "ArgumentParser"},
    "app": {"usage"},
}


def _namespace_names(ns: str) -> list[str]:
    mod = sys.modules.get("nbbp.tf1" + (f".{ns}" if ns else ""))
    names = getattr(mod, "__all__", None) or [n for n in vars(mod or object) if n[:1] != "_"]
    if not ns:
        names = list(names) + list(DEPRECATED)
    return sorted(set(names))


def _closest(ns: str, name: str) -> str:
    prefix = "tf." + (f"{ns}." if ns else "")
    close = difflib.get_close_matches(name, _namespace_names(ns), n=1, cutoff=0.5)
    if close:
        return f"did you mean {prefix}{close[0]}?"
    return "the names it has are listed in docs/tf1.md"


def missing(ns: str, name: str, hints: dict[str, str] | None = None) -> AttributeError:
    """The error for ``tf.<ns>.<name>`` that nbbp.tf1 does not have (raise it)."""
    if name.startswith("_"):
        return AttributeError(f"module 'nbbp.tf1{'.' + ns if ns else ''}' has no attribute "
                              f"{name!r}")
    full = "tf." + (f"{ns}." if ns else "") + name
    hint = (hints or {}).get(name)
    if name in REMOVED.get(ns, {}):
        new = REMOVED[ns][name]
        return NotSupportedError(f"{full} was removed in TensorFlow 1.0 (TF 1.15 does not have "
                                 f"it either); use {new}")
    if name in TF115.get(ns, set()) or hint:
        tail = hint or _closest(ns, name)
        return NotSupportedError(f"{full} is a TensorFlow 1.15 name that nbbp.tf1 does not "
                                 f"have; {tail}")
    module = "nbbp.tf1" + (f".{ns}" if ns else "")
    return NotSupportedError(f"module {module!r} has no attribute {name!r} ({full} is not one "
                             f"of the TensorFlow 1.15 names it knows either); "
                             f"{_closest(ns, name)}")


def module_getattr(ns: str, hints: dict[str, str] | None = None) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for the namespace ``tf.<ns>``."""
    def __getattr__(name: str) -> Any:
        raise missing(ns, name, hints)
    return __getattr__


# ---------------------------------------------------------------------------
# deprecated names TF 1.15 still has: they work, with TF's warning
# ---------------------------------------------------------------------------

_warned: set[str] = set()


def _deprecated(name: str, module: str, date: str | None, instead: str,
                target: Callable[[], Callable]) -> Callable:
    def call(*args: Any, **kwargs: Any) -> Any:
        if name not in _warned:       # TF warns once per function and process
            _warned.add(name)
            f = sys._getframe(1)
            when = f"after {date}" if date else "in a future version"
            print(f"WARNING:tensorflow:From {f.f_code.co_filename}:{f.f_lineno}: {name} "
                  f"(from {module}) is deprecated and will be removed {when}.\n"
                  f"Instructions for updating:\n{instead}", file=sys.stderr)
        return target()(*args, **kwargs)
    call.__name__ = name
    call.__doc__ = f"Deprecated in TF 1 ({instead}); works, with TF's warning."
    return call


def _tf(attr: str) -> Callable[[], Callable]:
    def get() -> Callable:
        import nbbp.tf1 as tf
        return getattr(tf, attr)
    return get


_VARS = "tensorflow.python.ops.variables"
DEPRECATED: dict[str, Callable] = {
    "initialize_all_variables": _deprecated(
        "initialize_all_variables", _VARS, "2017-03-02",
        "Use `tf.global_variables_initializer` instead.", _tf("global_variables_initializer")),
    "all_variables": _deprecated(
        "all_variables", _VARS, "2017-03-02", "Please use tf.global_variables instead.",
        _tf("global_variables")),
    "initialize_variables": _deprecated(
        "initialize_variables", _VARS, "2017-03-02",
        "Use `tf.variables_initializer` instead.", _tf("variables_initializer")),
}
