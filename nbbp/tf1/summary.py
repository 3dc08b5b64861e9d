"""``tf.summary``: TensorBoard logs, written with the ``tensorboard`` package's own
writer and protocol buffers (``pip install nbbp[tensorboard]``; no TensorFlow).

``tf.summary.scalar(name, t)`` and ``histogram(name, t)`` are ops whose fetched
value is a serialized ``Summary`` proto (bytes), as in TF 1; ``merge``/``merge_all``
join several into one. ``tf.summary.FileWriter(logdir, graph)`` writes an
``events.out.tfevents.*`` file holding the graph (a ``GraphDef`` TensorBoard draws)
and, by ``add_summary(summary, step)``, the fetched summaries. Open it with
``tensorboard --logdir <logdir>``.

``import nbbp.tf1`` does not import tensorboard: only running a summary op or
making a FileWriter does.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from ._core import Graph, Operation, Tensor, convert_to_tensor, get_default_graph, graph_of
from ._fetchers import FETCHERS
from ._names import missing
from .errors import InvalidArgumentError, UsageError

SUMMARIES = "summaries"      # tf.GraphKeys.SUMMARIES


def _pb():
    """TensorBoard's protos, imported on first use (never by ``import nbbp.tf1``)."""
    try:
        from tensorboard.compat.proto import event_pb2, graph_pb2, summary_pb2
    except ImportError:
        raise UsageError("tf.summary writes TensorBoard files with the tensorboard package, "
                         "which is not installed: pip install 'nbbp[tensorboard]' "
                         "(or pip install tensorboard==2.21.0)") from None
    return summary_pb2, event_pb2, graph_pb2


# ---------------------------------------------------------------------------
# summary ops
# ---------------------------------------------------------------------------


def _summary_op(type: str, name: str, inputs: list[Tensor], collections: Any) -> Tensor:
    g = graph_of(inputs, f"tf.summary ({type})")
    full = g.unique_name(name)
    op = g._add_op(type, tuple(inputs), {"tag": full}, full, ())
    for key in (SUMMARIES,) if collections is None else collections:
        g.add_to_collection(key, op.outputs[0])
    return op.outputs[0]


def scalar(name: str, tensor: Any, collections: list[str] | None = None,
           family: str | None = None) -> Tensor:
    """A ``Summary`` holding the scalar ``tensor`` under the tag ``name`` (made unique
    and prefixed by the name scope, as in TF 1)."""
    t = convert_to_tensor(tensor)
    if t._shape is not None and len(t._shape) != 0:
        raise InvalidArgumentError(f"tags and values not the same shape: [] != "
                                   f"{list(t._shape)} (tag '{name}'); tf.summary.scalar takes "
                                   "a scalar — reduce it first (tf.reduce_mean)")
    return _summary_op("ScalarSummary", f"{family}/{name}" if family else name, [t],
                       collections)


def histogram(name: str, values: Any, collections: list[str] | None = None,
              family: str | None = None) -> Tensor:
    """A ``Summary`` holding a histogram of ``values`` (TF 1's buckets)."""
    return _summary_op("HistogramSummary", f"{family}/{name}" if family else name,
                       [convert_to_tensor(values)], collections)


def merge(inputs: list[Tensor], collections: list[str] | None = None,
          name: str | None = None) -> Tensor:
    """One ``Summary`` holding the values of all ``inputs`` (summary tensors)."""
    for t in inputs:
        if not (isinstance(t, Tensor) and t.op.type in FETCHERS):
            raise UsageError(f"tf.summary.merge takes summary tensors (from tf.summary.scalar, "
                             f"histogram or merge), got {t!r}")
    return _summary_op("MergeSummary", name or "Merge/MergeSummary", list(inputs),
                       collections if collections is not None else [])


def merge_all(key: str = SUMMARIES, scope: str | None = None, name: str | None = None
              ) -> Tensor | None:
    """Merge every summary of the default graph's collection ``key``; None if there is
    none (as TF 1 returns)."""
    found = get_default_graph().get_collection(key, scope)
    return merge(found, name=name) if found else None


def _scalar_value(op: Operation, values: list) -> bytes:
    summary_pb2, _, _ = _pb()
    v = np.asarray(values[0], dtype=np.float64)
    s = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=op.attrs["tag"],
                                                             simple_value=float(v))])
    return s.SerializeToString()


def _default_buckets() -> np.ndarray:
    """TF's histogram bucket limits: ±1e-12·1.1ᵏ up to 1e20, 0 and ±DBL_MAX."""
    pos, v = [], 1.0e-12
    while v < 1.0e20:
        pos.append(v)
        v *= 1.1
    pos.append(sys.float_info.max)
    return np.array([-x for x in reversed(pos)] + [0.0] + pos)


_BUCKETS: list[np.ndarray] = []


def histogram_proto(values: Any):
    """TF 1's ``HistogramProto`` of ``values``: runs of empty buckets collapsed."""
    summary_pb2, _, _ = _pb()
    x = np.asarray(values, dtype=np.float64).ravel()
    if not _BUCKETS:
        _BUCKETS.append(_default_buckets())
    limits = _BUCKETS[0]
    counts = np.bincount(np.searchsorted(limits, x, side="right"), minlength=len(limits))
    counts = counts[:len(limits)]
    h = summary_pb2.HistogramProto(min=float(x.min()) if x.size else 0.0,
                                   max=float(x.max()) if x.size else 0.0, num=float(x.size),
                                   sum=float(x.sum()), sum_squares=float((x * x).sum()))
    i, n = 0, len(limits)
    while i < n:
        end, count = limits[i], counts[i]
        i += 1
        if count <= 0:
            while i < n and counts[i] <= 0:
                end, count = limits[i], counts[i]
                i += 1
        h.bucket_limit.append(float(end))
        h.bucket.append(float(count))
    return h


def _histogram_value(op: Operation, values: list) -> bytes:
    summary_pb2, _, _ = _pb()
    x = np.asarray(values[0], dtype=np.float64)
    if np.isnan(x).any() or np.isinf(x).any():
        raise InvalidArgumentError(f"{'Nan' if np.isnan(x).any() else 'Infinity'} in summary "
                                   f"histogram for: {op.attrs['tag']}")
    s = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=op.attrs["tag"],
                                                             histo=histogram_proto(x))])
    return s.SerializeToString()


def _merge_value(op: Operation, values: list) -> bytes:
    summary_pb2, _, _ = _pb()
    out = summary_pb2.Summary()
    for blob in values:
        out.value.extend(summary_pb2.Summary.FromString(blob).value)
    return out.SerializeToString()


FETCHERS.update(ScalarSummary=_scalar_value, HistogramSummary=_histogram_value,
                MergeSummary=_merge_value)


# ---------------------------------------------------------------------------
# the writer
# ---------------------------------------------------------------------------


def to_graph_def(graph: Graph):
    """The ``GraphDef`` proto of ``graph``: one ``NodeDef`` per op (name, type, inputs
    as ``op`` / ``op:i``, control inputs as ``^op``), which TensorBoard draws."""
    _, _, graph_pb2 = _pb()
    from tensorboard.compat.proto import node_def_pb2

    gd = graph_pb2.GraphDef()
    for op in graph.get_operations():
        node = node_def_pb2.NodeDef(name=op.name, op=op.type)
        for t in op.inputs:
            node.input.append(t.op.name if t.value_index == 0 else t.name)
        for c in op.control_inputs:
            node.input.append("^" + c.name)
        gd.node.append(node)
    gd.versions.producer = 134        # TF 1.15's GraphDef version
    return gd


class FileWriter:
    """Writes TensorBoard event files to ``logdir`` (TF 1's ``tf.summary.FileWriter``).

    ``graph`` (e.g. ``sess.graph``) is written at once, as by ``add_graph``.
    """

    def __init__(self, logdir: str, graph: Graph | None = None, max_queue: int = 10,
                 flush_secs: float = 120, graph_def: Any = None,
                 filename_suffix: str | None = None, session: Any = None) -> None:
        _pb()
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._writer = EventFileWriter(str(logdir), max_queue_size=max_queue,
                                       flush_secs=flush_secs,
                                       filename_suffix=filename_suffix or "")
        self._closed = False
        if graph is not None or graph_def is not None:
            self.add_graph(graph, graph_def=graph_def)

    def __repr__(self) -> str:
        return f"<tf.summary.FileWriter {self.get_logdir()!r}>"

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_logdir(self) -> str:
        return self._writer.get_logdir()

    def add_event(self, event: Any) -> None:
        if self._closed:
            raise UsageError("this FileWriter is closed; call reopen() or make a new one")
        self._writer.add_event(event)

    def _event(self, step: Any = None, **fields: Any) -> None:
        _, event_pb2, _ = _pb()
        e = event_pb2.Event(wall_time=time.time(), **fields)
        if step is not None:
            e.step = int(step)
        self.add_event(e)

    def add_graph(self, graph: Graph | None, global_step: Any = None, graph_def: Any = None
                  ) -> None:
        """Write ``graph`` (an nbbp.tf1 Graph) for TensorBoard's Graphs tab."""
        if graph is not None and not isinstance(graph, Graph):
            raise UsageError(f"add_graph takes a tf.Graph (e.g. sess.graph), got {graph!r}")
        gd = graph_def if graph_def is not None else to_graph_def(graph)
        self._event(global_step, graph_def=gd.SerializeToString())

    def add_summary(self, summary: Any, global_step: Any = None) -> None:
        """Write a summary: the bytes ``sess.run`` returned for a summary op, or a
        ``Summary`` proto."""
        summary_pb2, _, _ = _pb()
        if isinstance(summary, bytes):
            summary = summary_pb2.Summary.FromString(summary)
        if not isinstance(summary, summary_pb2.Summary):
            raise UsageError(f"add_summary takes what sess.run returns for a summary op "
                             f"(bytes) or a Summary proto, got {type(summary).__name__}")
        self._event(global_step, summary=summary)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        if not self._closed:
            self._writer.close()
            self._closed = True

    def reopen(self) -> None:
        if self._closed:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
            self._writer = EventFileWriter(self.get_logdir())
            self._closed = False


def _summary_proto():
    return _pb()[0].Summary


def __getattr__(name: str) -> Any:
    if name == "Summary":          # tf.Summary / tf.summary.Summary: the proto class
        return _summary_proto()
    raise missing("summary", name)


__all__ = ["FileWriter", "to_graph_def", "histogram", "histogram_proto", "merge", "merge_all",
           "scalar"]
