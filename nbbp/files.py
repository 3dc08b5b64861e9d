"""The ``.nbbp`` file: a graph and its leaf values as plain data, never pickle.

:func:`write` stores the graph an output depends on; :func:`read` gives back the
plain parts (a new graph, its output, the saved name, engine and source) that
:func:`nbbp.io.load` and :func:`nbbp.load` wrap in a :class:`~nbbp.Model`. This
module knows nothing of models.

A ``.nbbp`` file is a zip archive holding two members:

``graph.json``
    ``{"format": "nbbp-model", "version": 1, "name", "engine", "output", "source",
    "nodes": [...]}`` — the model's forward nodes in build order, each with its
    ``op``, ``inputs`` (ids of earlier nodes), ``attrs``, ``name``, ``scope``,
    ``shape``, ``role``, ``trainable``, ``dtype`` (files without it are float64) and,
    for leaves, the key of its value.
``values.npz``
    The current value of every leaf (param, input, const) as an array of its dtype.

Loading reads JSON and ``np.load(..., allow_pickle=False)`` only — no code runs —
and rebuilds the graph with the op table (:func:`nbbp.core.ops.apply`), so every shape
is checked again. Gradient nodes are not stored: :class:`nbbp.Model` rebuilds
them. A truncated, tampered or foreign file raises
:class:`~nbbp.errors.FileFormatError` naming the file and the problem, before
anything is returned.

>>> import nbbp, tempfile, os
>>> m = nbbp.build("x = param(3.0)\\ny = param(2.0)\\nf = x*x*y + y + 1")
>>> path = os.path.join(tempfile.mkdtemp(), "f.nbbp")
>>> write(path, m.output, m.value_of, m.name, m.engine, m.source)
>>> saved = read(path)
>>> saved.output.name, [n.name for n in saved.graph.nodes]
('f', ['x', 'y', 'mul', 'mul_1', 'add', 'const', 'f'])
"""

from __future__ import annotations

import io as _io
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .core import ops
from .core.dtypes import float_dtype
from .core.graph import LEAF_OPS, MAX_NDIM, Graph, Node
from .errors import FileFormatError, NbbpError, suggest

FORMAT = "nbbp-model"
VERSION = 1
GRAPH_MEMBER, VALUES_MEMBER = "graph.json", "values.npz"
_NODE_KEYS = {"id", "op", "inputs", "attrs", "name", "scope", "shape", "role", "trainable"}


def write(path: str | os.PathLike, output: Node, value_of: Callable[[Node], Any],
          name: str, engine: str, source: str | None) -> None:
    """Write the graph ``output`` depends on, with each leaf's value ``value_of(leaf)``,
    to ``path``.

    The file is written next to its final place and then renamed, so a crash
    never leaves half a file under the name.
    """
    forward = output.graph.ancestors([output])
    index = {n.id: i for i, n in enumerate(forward)}
    nodes, values = [], {}
    for i, n in enumerate(forward):
        entry: dict[str, Any] = {
            "id": i, "op": n.op, "inputs": [index[x.id] for x in n.inputs],
            "attrs": {k: _encode_attr(n, k, v) for k, v in n.attrs.items()},
            "name": n.name, "scope": n.scope, "shape": list(n.shape), "role": n.role,
            "trainable": bool(n.trainable), "auto_named": bool(n.auto_named),
            "line": n.line, "dtype": n.dtype}
        if n.is_leaf:
            entry["value"] = key = f"n{i}"
            values[key] = np.array(value_of(n), dtype=n.dtype).reshape(n.shape)
        nodes.append(entry)
    doc = {"format": FORMAT, "version": VERSION, "name": name, "engine": engine,
           "output": index[output.id], "source": source, "nodes": nodes}
    buf = _io.BytesIO()
    np.savez(buf, **values)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".nbbp-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(GRAPH_MEMBER, json.dumps(doc, indent=1, allow_nan=False))
            z.writestr(VALUES_MEMBER, buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _encode_attr(n: Node, key: str, value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (tuple, list)) and all(isinstance(v, (int, np.integer)) for v in value):
        return [int(v) for v in value]
    raise NbbpError(f"cannot save node {n.name!r}: its attribute {key}={value!r} is not "
                    "plain data")


class Saved(NamedTuple):
    """What a file holds: a new graph, its output node and how the model was made."""

    graph: Graph
    output: Node
    name: str
    engine: str | None
    source: str | None


def read(path: str | os.PathLike) -> Saved:
    """Read a file written by :func:`write`: the graph rebuilt with the op table
    (every shape checked again), its output, and the saved name, engine and source.

    Raises :class:`FileFormatError` for a file that is not a valid ``.nbbp`` file.
    """
    path = os.fspath(path)
    doc, values = _read(path)
    graph, output, name = _rebuild(path, doc, values)
    return Saved(graph, output, name, doc.get("engine"), doc.get("source"))


def _bad(path: str, problem: str) -> FileFormatError:
    return FileFormatError(f"{path}: {problem}")


def _read(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON document and the arrays, or a FileFormatError saying what is wrong."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise _bad(path, "no such file") from None
    except OSError as exc:
        raise _bad(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        with zipfile.ZipFile(_io.BytesIO(raw)) as z:
            names = z.namelist()
            if GRAPH_MEMBER not in names:
                raise _bad(path, f"not an nbbp model file: the archive has no {GRAPH_MEMBER} "
                                 f"(it holds {', '.join(names[:5]) or 'nothing'})")
            if VALUES_MEMBER not in names:
                raise _bad(path, f"the archive has no {VALUES_MEMBER}: the file is "
                                 "incomplete; save the model again")
            text = z.read(GRAPH_MEMBER)
            blob = z.read(VALUES_MEMBER)
    except zipfile.BadZipFile:
        what = "truncated or damaged" if raw[:2] == b"PK" else "not an nbbp model file"
        raise _bad(path, f"{what} (not a readable zip archive; a .nbbp file is a zip "
                         f"holding {GRAPH_MEMBER} and {VALUES_MEMBER})") from None
    except (EOFError, zlib.error, OSError, ValueError, RuntimeError) as exc:
        raise _bad(path, f"truncated or damaged ({type(exc).__name__}: {exc})") from None
    try:
        doc = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise _bad(path, f"{GRAPH_MEMBER} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _bad(path, f"{GRAPH_MEMBER} is not valid JSON ({exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _bad(path, f"not an nbbp model file ({GRAPH_MEMBER} does not say "
                         f"\"format\": \"{FORMAT}\")")
    if doc.get("version") != VERSION:
        raise _bad(path, f"format version {doc.get('version')!r} is not supported: this "
                         f"nbbp reads version {VERSION}")
    try:
        with np.load(_io.BytesIO(blob), allow_pickle=False) as npz:
            values = {k: npz[k] for k in npz.files}
    except Exception as exc:     # numpy raises ValueError, OSError, EOFError, zip errors…
        raise _bad(path, f"{VALUES_MEMBER} cannot be read ({type(exc).__name__}: {exc})"
                   ) from None
    return doc, values


def _rebuild(path: str, doc: dict, values: dict[str, np.ndarray]) -> tuple[Graph, Node, str]:
    """A new graph from the document; nothing outside it is touched."""
    nodes = doc.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise _bad(path, "\"nodes\" must be a non-empty list")
    name = doc.get("name")
    if not isinstance(name, str):
        raise _bad(path, "\"name\" must be a string")
    if doc.get("source") is not None and not isinstance(doc["source"], str):
        raise _bad(path, "\"source\" must be text or null")
    g = Graph(name)
    built: list[Node] = []
    used: set[str] = set()
    for i, e in enumerate(nodes):
        built.append(_node(path, g, i, e, built, values, used))
    unused = sorted(set(values) - used)
    if unused:
        raise _bad(path, f"{VALUES_MEMBER} holds arrays no node uses: {', '.join(unused[:5])}")
    out = doc.get("output")
    if not _is_int(out) or not 0 <= out < len(built):
        raise _bad(path, f"\"output\" must be the id of a node (0..{len(built) - 1}), "
                         f"got {out!r}")
    return g, built[out], name


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _node(path: str, g: Graph, i: int, e: Any, built: list[Node],
          values: dict[str, np.ndarray], used: set[str]) -> Node:
    where = f"node {i}"
    if not isinstance(e, dict):
        raise _bad(path, f"{where} must be an object, got {type(e).__name__}")
    missing = _NODE_KEYS - set(e)
    if missing:
        raise _bad(path, f"{where} lacks {', '.join(sorted(missing))}")
    if e["id"] != i:
        raise _bad(path, f"{where} has id {e['id']!r}; ids must count 0, 1, 2, … in order")
    full = e["name"]
    if not isinstance(full, str) or not full:
        raise _bad(path, f"{where} has no valid name")
    where = f"node {i} ({full!r})"
    op = e["op"]
    if not isinstance(op, str) or op not in ops.OPS:
        raise _bad(path, f"{where} has unknown op {op!r}; "
                         + suggest(str(op), ops.OPS, "op"))
    spec = ops.OPS[op]
    shape = e["shape"]
    if not isinstance(shape, list) or len(shape) > MAX_NDIM or not all(
            _is_int(d) and d >= 0 for d in shape):
        raise _bad(path, f"{where} has an invalid shape {shape!r}")
    shape = tuple(shape)
    inputs = e["inputs"]
    if not isinstance(inputs, list) or not all(_is_int(k) for k in inputs):
        raise _bad(path, f"{where}: \"inputs\" must be a list of node ids")
    for k in inputs:
        if not 0 <= k < i:
            raise _bad(path, f"{where} takes input {k}, which is not an earlier node "
                             f"(inputs must refer to nodes 0..{i - 1})")
    if len(inputs) != spec.arity:
        raise _bad(path, f"{where}: op {op!r} takes {spec.arity} inputs, the file gives "
                         f"{len(inputs)}")
    attrs = e["attrs"]
    if not isinstance(attrs, dict) or not set(attrs) <= set(spec.attrs):
        raise _bad(path, f"{where}: attributes {attrs!r} do not fit op {op!r} (it takes "
                         f"{', '.join(spec.attrs) or 'none'})")
    attrs = {k: tuple(v) if isinstance(v, list) else v for k, v in attrs.items()}
    role, trainable = e["role"], e["trainable"]
    if not isinstance(role, str) or not isinstance(trainable, bool) or not isinstance(
            e["scope"], str):
        raise _bad(path, f"{where}: role and scope must be text, trainable true or false")
    try:     # files written before dtypes hold float64 values and no "dtype"
        dtype = float_dtype(e.get("dtype", "float64"), "\"dtype\"")
    except NbbpError as exc:
        raise _bad(path, f"{where}: {exc.message}") from None
    *parents, base = full.split("/")
    g._scopes = parents
    try:
        if op in LEAF_OPS:
            key = e.get("value")
            if not isinstance(key, str) or key not in values:
                raise _bad(path, f"{where}: its value {key!r} is missing from {VALUES_MEMBER}")
            arr = values[key]
            used.add(key)
            if arr.dtype != dtype or arr.shape != shape:
                raise _bad(path, f"{where}: its value has {arr.dtype} shape {arr.shape}, "
                                 f"but the node is {dtype} with shape {shape}")
            node = g.add_node(op, shape=shape, name=base, value=arr.copy(), role=role,
                              trainable=trainable, dtype=dtype)
        else:
            node = ops.apply(op, *(built[k] for k in inputs), name_=base, **attrs)
            if node.shape != shape:
                raise _bad(path, f"{where}: {op} of its inputs has shape {node.shape}, but "
                                 f"the file says {shape} (shape mismatch)")
            if node.dtype != dtype:
                raise _bad(path, f"{where}: {op} of its inputs is {node.dtype}, but the "
                                 f"file says {dtype} (dtype mismatch)")
            node.role, node.trainable = role, trainable
    except FileFormatError:
        raise
    except NbbpError as exc:
        raise _bad(path, f"{where} cannot be rebuilt: {exc.message}") from None
    except (TypeError, ValueError) as exc:     # e.g. an attribute of the wrong type
        raise _bad(path, f"{where} cannot be rebuilt: {type(exc).__name__}: {exc}") from None
    finally:
        g._scopes = []
    if node.name != full:
        raise _bad(path, f"{where}: the name is used twice or is not a valid name")
    node.scope = e["scope"]
    node.auto_named = bool(e.get("auto_named", False))
    line = e.get("line")
    node.line = line if _is_int(line) else None
    return node


__all__ = ["FORMAT", "VERSION", "Saved", "read", "write"]
