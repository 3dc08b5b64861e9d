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

Loading reads JSON and ``.npy`` arrays only (never a pickle, never an object array) —
no code runs — and rebuilds the graph with the op table (:func:`nbbp.core.ops.apply`),
so every shape is checked again. Gradient nodes are not stored: :class:`nbbp.Model`
rebuilds them. A truncated, tampered, crafted or foreign file raises
:class:`~nbbp.errors.FileFormatError` naming the file, the member and the problem,
before anything is returned; no other exception comes out of :func:`read`.

Limits, each checked before anything is allocated for what it limits:

* the file: at most ``MAX_FILE_BYTES`` (1 GiB) and ``MAX_MEMBERS`` (8) members
  (counted in the archive's directory before zipfile reads it), each name once, stored
  or deflated (no encryption); a member's declared size is checked against its limit
  and against its compressed size (at most ``MAX_RATIO``, 1100:1 — deflate cannot give
  more than 1032:1) before it is inflated, and reading stops at the declared size;
* ``graph.json``: at most ``MAX_JSON_BYTES`` (64 MiB), arrays and objects nested at
  most ``MAX_JSON_DEPTH`` (32) deep (counted before parsing, without recursion),
  integers of at most ``MAX_DIGITS`` (40) digits, no ``NaN``/``Infinity`` or floats
  that overflow, at most ``MAX_NODES`` (1,000,000) nodes, every field of the type it
  should have;
* ``values.npz``: at most ``MAX_VALUES_BYTES`` uncompressed and ``MAX_NODES`` arrays
  named ``<key>.npy``; each array's ``.npy`` header is read with
  :mod:`numpy.lib.format` first: numeric dtypes only, at most 4 dimensions, and
  shape × item size must equal the bytes the member holds;
* elements: at most ``MAX_ELEMENTS`` (2**26 = 67,108,864, 512 MiB of float64) in all
  arrays together, and the same in all forward nodes together (small leaves can
  broadcast to a huge node).

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
import math
import os
import re
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numpy.lib import format as npformat

from .core import ops
from .core.dtypes import DTYPES, FLOATS, dtype_of
from .core.graph import LEAF_OPS, MAX_NDIM, Graph, Node, valid_name
from .errors import FileFormatError, NbbpError, suggest

FORMAT = "nbbp-model"
VERSION = 1
GRAPH_MEMBER, VALUES_MEMBER = "graph.json", "values.npz"

# Limits on what a file may hold, checked before anything is allocated for it.
MAX_FILE_BYTES = 1 << 30            # the .nbbp file: 1 GiB
MAX_MEMBERS = 8                     # members of the outer archive
MAX_JSON_BYTES = 64 << 20           # graph.json: 64 MiB
MAX_JSON_DEPTH = 32                 # arrays/objects nested in graph.json
MAX_DIGITS = 40                     # digits of one JSON integer
MAX_NODES = 1_000_000               # nodes in graph.json; arrays in values.npz
MAX_ELEMENTS = 1 << 26              # elements in all forward nodes together (512 MiB of float64)
MAX_VALUES_BYTES = MAX_ELEMENTS * 8 + (64 << 20)    # values.npz, uncompressed
MAX_RATIO = 1100                    # a member's size / its compressed size (deflate: ≤ 1032)
_NODE_KEYS = {"id", "op", "inputs", "attrs", "name", "scope", "shape", "role", "trainable"}


def write(path: str | os.PathLike, output: Node, value_of: Callable[[Node], Any],
          name: str, engine: str, source: str | None) -> None:
    """Write the graph ``output`` depends on, with each leaf's value ``value_of(leaf)``,
    to ``path``.

    The file is written next to its final place and then renamed, so a crash
    never leaves half a file under the name.
    """
    graph = output.graph
    forward = graph.ancestors([output])
    # with the state updates of its leaves (batch norm's running averages, the random
    # counter), so that `fit` on the loaded model keeps updating them
    names = {n.name for n in forward}
    updates = [u for u in ops.state_updates(graph.nodes) if u.attrs["ref"] in names]
    if updates:
        forward = graph.ancestors([output, *updates])
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
    write_members(path, {GRAPH_MEMBER: json.dumps(doc, indent=1, allow_nan=False),
                         VALUES_MEMBER: buf.getvalue()})


def write_members(path: str | os.PathLike, members: dict[str, str | bytes]) -> None:
    """Write a zip of ``members`` (name → text or bytes) to ``path`` atomically: into a
    temporary file in the same folder, then renamed, so no reader sees half a file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".nbbp-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in members.items():
                z.writestr(name, data)
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


class _Reject(ValueError):
    """A JSON number outside the limits (raised from json's parse hooks)."""


def _read(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON document and the arrays, or a FileFormatError saying what is wrong."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise _bad(path, f"the file is {size:,} bytes; nbbp reads files of up to "
                                 f"{MAX_FILE_BYTES:,} bytes")
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise _bad(path, "no such file") from None
    except IsADirectoryError:
        raise _bad(path, "is a folder, not a file") from None
    except OSError as exc:
        raise _bad(path, f"cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _bad(path, f"the file is larger than {MAX_FILE_BYTES:,} bytes")
    _directory(path, raw, "the archive", MAX_MEMBERS)
    try:
        with zipfile.ZipFile(_io.BytesIO(raw)) as z:
            infos = _members(path, z, "the archive", MAX_MEMBERS)
            names = [i.filename for i in infos]
            if GRAPH_MEMBER not in names:
                raise _bad(path, f"not an nbbp model file: the archive has no {GRAPH_MEMBER} "
                                 f"(it holds {_clip(', '.join(names[:5])) or 'nothing'})")
            if VALUES_MEMBER not in names:
                raise _bad(path, f"the archive has no {VALUES_MEMBER}: the file is "
                                 "incomplete; save the model again")
            text = _member_bytes(path, z, infos[names.index(GRAPH_MEMBER)], "the archive",
                                 MAX_JSON_BYTES)
            blob = _member_bytes(path, z, infos[names.index(VALUES_MEMBER)], "the archive",
                                 MAX_VALUES_BYTES)
    except FileFormatError:
        raise
    except zipfile.BadZipFile as exc:
        if raw[:2] != b"PK":
            raise _bad(path, f"not an nbbp model file (not a readable zip archive; a .nbbp "
                             f"file is a zip holding {GRAPH_MEMBER} and {VALUES_MEMBER})"
                       ) from None
        raise _bad(path, f"truncated or damaged (not a readable zip archive: "
                         f"{_clip(str(exc), 80)}; a .nbbp file is a zip holding "
                         f"{GRAPH_MEMBER} and {VALUES_MEMBER})") from None
    except _ZIP_ERRORS as exc:
        raise _bad(path, f"truncated or damaged ({_exc(exc)})") from None
    doc = _json(path, text)
    values = _arrays(path, blob)
    return doc, values


# zipfile and zlib raise these for damaged archives (NotImplementedError: an unknown
# compression method; RuntimeError: an encrypted member; struct.error: short records)
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, OSError,
               ValueError, RuntimeError, NotImplementedError, struct.error, OverflowError,
               KeyError, IndexError)


def _directory(path: str, data: bytes, where: str, most: int) -> None:
    """Refuse an archive whose central directory lists more than ``most`` members
    *before* zipfile makes an object for each (a 1 GiB file can list 20 million). The
    directory is found as zipfile finds it: the end record (zip64's, if there is one) and
    the directory's size just before it; every member there starts with a signature."""
    at = len(data) - 22
    if not (at >= 0 and data[at:at + 4] == b"PK\x05\x06" and data[-2:] == b"\0\0"):
        at = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if at < 0 or len(data) - at < 22:
        return                  # no end record: zipfile says what is wrong
    size = struct.unpack_from("<I", data, at + 12)[0]
    z64 = at - 20 - 56
    if (z64 >= 0 and data[at - 20:at - 16] == b"PK\x06\x07"
            and data[z64:z64 + 4] == b"PK\x06\x06"):
        at, size = z64, struct.unpack_from("<Q", data, z64 + 40)[0]
    count = data.count(b"PK\x01\x02", max(0, at - size), at)
    if count > most:
        raise _bad(path, f"{where} holds {count:,} members; nbbp reads at most {most:,}")


def _members(path: str, z: zipfile.ZipFile, where: str, most: int) -> list[zipfile.ZipInfo]:
    """The archive's members, checked: how many, unique names, sizes as declared."""
    infos = z.infolist()
    if len(infos) > most:
        raise _bad(path, f"{where} holds {len(infos):,} members; nbbp reads at most {most:,}")
    seen: set[str] = set()
    for info in infos:
        if info.filename in seen:
            raise _bad(path, f"{where} holds {_short(info.filename)} twice")
        seen.add(info.filename)
    return infos


def _member_bytes(path: str, z: zipfile.ZipFile, info: zipfile.ZipInfo, where: str,
                  most: int) -> bytes:
    """One member's bytes, after checking its declared size and compression; the read
    is bounded by the declared size (zipfile checks the CRC at the end)."""
    name = info.filename
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _bad(path, f"{name} in {where} is compressed with method {info.compress_type}; "
                         "nbbp reads stored or deflated members only")
    if info.flag_bits & 0x1:
        raise _bad(path, f"{name} in {where} is encrypted")
    if info.file_size > most:
        raise _bad(path, f"{name} in {where} declares {info.file_size:,} bytes; nbbp reads "
                         f"at most {most:,}")
    if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > 1024:
        raise _bad(path, f"{name} in {where} declares {info.file_size:,} bytes from "
                         f"{info.compress_size:,} compressed (more than {MAX_RATIO}:1, "
                         "which deflate cannot give): the sizes are forged")
    with z.open(info) as f:
        data = f.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise _bad(path, f"{name} in {where} holds {len(data):,} bytes, not the "
                         f"{info.file_size:,} it declares: truncated or damaged")
    return data


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _depth(text: bytes) -> int:
    """How deep arrays and objects nest in JSON text, counted without recursion."""
    a = np.frombuffer(_STRING.sub(b'""', text), dtype=np.uint8)
    step = np.isin(a, (0x5B, 0x7B)).astype(np.int64) - np.isin(a, (0x5D, 0x7D))
    return int(np.cumsum(step).max()) if step.size else 0


def _number_int(s: str) -> int:
    if len(s.lstrip("-")) > MAX_DIGITS:
        raise _Reject(f"the number {s[:12]}… has more than {MAX_DIGITS} digits")
    return int(s)


def _number_float(s: str) -> float:
    x = float(s[:400]) if len(s) <= 400 else float("inf")
    if not math.isfinite(x):
        raise _Reject(f"the number {s[:24]} is too large")
    return x


def _constant(s: str) -> float:
    raise _Reject(f"{s} is not a number nbbp stores")


def _json(path: str, text: bytes) -> dict:
    where = GRAPH_MEMBER
    depth = _depth(text)
    if depth > MAX_JSON_DEPTH:
        raise _bad(path, f"{where} nests arrays and objects {depth:,} deep; an nbbp file "
                         f"nests at most {MAX_JSON_DEPTH} deep")
    try:
        doc = json.loads(text.decode("utf-8"), parse_int=_number_int,
                         parse_float=_number_float, parse_constant=_constant)
    except UnicodeDecodeError:
        raise _bad(path, f"{where} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _bad(path, f"{where} is not valid JSON ({exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno})") from None
    except _Reject as exc:
        raise _bad(path, f"{where}: {exc}") from None
    except RecursionError:      # the depth check above should make this unreachable
        raise _bad(path, f"{where} nests too deep") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _bad(path, f"not an nbbp model file ({where} does not say "
                         f"\"format\": \"{FORMAT}\")")
    if doc.get("version") != VERSION:
        raise _bad(path, f"format version {_short(doc.get('version'))} is not supported: this "
                         f"nbbp reads version {VERSION}")
    return doc


def _arrays(path: str, blob: bytes) -> dict[str, np.ndarray]:
    """The arrays of values.npz. Each member's ``.npy`` header is read first and its
    shape × item size checked against the member's size and the limits, so nothing is
    allocated that the file does not hold; pickles and object arrays are refused."""
    where = VALUES_MEMBER
    cannot = f"{where} cannot be read"
    values: dict[str, np.ndarray] = {}
    total = 0
    _directory(path, blob, where, MAX_NODES)
    try:
        with zipfile.ZipFile(_io.BytesIO(blob)) as z:
            for info in _members(path, z, where, MAX_NODES):
                name = info.filename
                if not name.endswith(".npy") or len(name) == 4 or "/" in name:
                    raise _bad(path, f"{cannot}: it holds {_short(name)}, but an npz holds only "
                                     "arrays named like 'n0.npy'")
                data = _member_bytes(path, z, info, where, MAX_VALUES_BYTES)
                arr = _npy(path, f"{cannot}: {name}", data, MAX_ELEMENTS - total)
                total += arr.size
                values[name[:-4]] = arr
    except FileFormatError:
        raise
    except _ZIP_ERRORS as exc:
        raise _bad(path, f"{cannot} ({_exc(exc)})") from None
    return values


def _npy(path: str, where: str, data: bytes, room: int) -> np.ndarray:
    """One ``.npy`` array from its bytes: header checked before anything is allocated."""
    f = _io.BytesIO(data)
    try:
        version = npformat.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(f)
        else:
            raise _bad(path, f"{where}: .npy format version {version} is not read")
    except FileFormatError:
        raise
    except Exception as exc:    # numpy's header parser raises ValueError, SyntaxError, …
        raise _bad(path, f"{where}: not a valid .npy header ({_exc(exc)})") from None
    if dtype.hasobject:
        raise _bad(path, f"{where} holds Python objects (a pickle); nbbp files hold "
                         "numbers only and never unpickle")
    if dtype.kind not in "biuf" or dtype.shape != ():
        raise _bad(path, f"{where} holds {dtype}; nbbp files hold numbers only")
    if not all(isinstance(d, int) and d >= 0 for d in shape) or len(shape) > MAX_NDIM:
        raise _bad(path, f"{where}: invalid shape {_short(shape)}")
    count = math.prod(shape)
    if count > room:
        raise _bad(path, f"{where} has shape {shape} ({count:,} elements): more than the "
                         f"{MAX_ELEMENTS:,} elements an nbbp file may hold in all")
    start = f.tell()
    if len(data) - start != count * dtype.itemsize:
        raise _bad(path, f"{where} has shape {shape} of {dtype}, which needs "
                         f"{count * dtype.itemsize:,} bytes; the member holds "
                         f"{len(data) - start:,}")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=start)
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def _rebuild(path: str, doc: dict, values: dict[str, np.ndarray]) -> tuple[Graph, Node, str]:
    """A new graph from the document; nothing outside it is touched."""
    nodes = doc.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise _bad(path, "\"nodes\" must be a non-empty list")
    if len(nodes) > MAX_NODES:
        raise _bad(path, f"{GRAPH_MEMBER} holds {len(nodes):,} nodes; nbbp reads at most "
                         f"{MAX_NODES:,}")
    name = doc.get("name")
    if not isinstance(name, str):
        raise _bad(path, "\"name\" must be a string")
    if doc.get("source") is not None and not isinstance(doc["source"], str):
        raise _bad(path, "\"source\" must be text or null")
    if doc.get("engine") is not None and not isinstance(doc["engine"], str):
        raise _bad(path, "\"engine\" must be text or null")
    g = Graph(name)
    built: list[Node] = []
    used: set[str] = set()
    total = 0
    for i, e in enumerate(nodes):
        node = _node(path, g, i, e, built, values, used)
        total += math.prod(node.shape)
        if total > MAX_ELEMENTS:
            raise _bad(path, f"{GRAPH_MEMBER}: node {i} ({_short(node.name)}) has shape "
                             f"{node.shape}: the nodes up to it hold {total:,} elements, more "
                             f"than the {MAX_ELEMENTS:,} an nbbp file may hold")
        built.append(node)
    unused = sorted(set(values) - used)
    if unused:
        raise _bad(path, f"{VALUES_MEMBER} holds arrays no node uses: {', '.join(unused[:5])}")
    out = doc.get("output")
    if not _is_int(out) or not 0 <= out < len(built):
        raise _bad(path, f"\"output\" must be the id of a node (0..{len(built) - 1}), "
                         f"got {_short(out)}")
    _check_updates(path, g)
    return g, built[out], name


def _check_updates(path: str, g: Graph) -> None:
    """Each state update writes a param of the file of its own dtype and shape (the
    training loop copies the update into it after every step)."""
    for u in ops.state_updates(g.nodes):
        ref = g.by_name.get(u.attrs.get("ref"))
        if ref is None or ref.op != "param" or ref.shape != u.shape or ref.dtype != u.dtype:
            raise _bad(path, f"{GRAPH_MEMBER}: the state update {u.name!r} writes "
                             f"{_short(u.attrs.get('ref'))}, which is not a param of the "
                             f"file with its dtype {u.dtype} and shape {u.shape}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _plain_attr(v: Any) -> bool:
    """An attribute as ops take them: null, true/false, a small int or a short list of
    small ints (axis, keepdims, perm, shape), or a short word or node name (a dtype's
    name for cast, ``"SAME"``/``"VALID"`` for convolution and pooling, the state a
    state update writes); the op's own rules check the value when the node is rebuilt,
    and :func:`_check_updates` the state's name."""
    def small(x: Any) -> bool:
        return _is_int(x) and abs(x) <= 1 << 31
    if v is None or isinstance(v, bool) or small(v) or (
            isinstance(v, str) and (v in DTYPES or (
                len(v) <= 200 and all(valid_name(p) for p in v.split("/"))))):
        return True
    return isinstance(v, list) and len(v) <= 2 * MAX_NDIM and all(small(x) for x in v)


def _exc(exc: BaseException) -> str:
    """An exception as a short single line (zipfile quotes whole headers, for example)."""
    return f"{type(exc).__name__}: {_clip(str(exc))}"


def _clip(text: str, most: int = 120) -> str:
    """Text from a file or a library, on one line and at most ``most`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= most else text[:most - 3] + "..."


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _node(path: str, g: Graph, i: int, e: Any, built: list[Node],
          values: dict[str, np.ndarray], used: set[str]) -> Node:
    where = f"{GRAPH_MEMBER}: node {i}"
    if not isinstance(e, dict):
        raise _bad(path, f"{where} must be an object, got {type(e).__name__}")
    missing = _NODE_KEYS - set(e)
    if missing:
        raise _bad(path, f"{where} lacks {', '.join(sorted(missing))}")
    if e["id"] != i:
        raise _bad(path, f"{where} has id {_short(e['id'])}; ids must count 0, 1, 2, … in order")
    full = e["name"]
    if not isinstance(full, str) or not full:
        raise _bad(path, f"{where} has no valid name")
    where = f"{GRAPH_MEMBER}: node {i} ({_short(full)})"
    op = e["op"]
    if not isinstance(op, str) or op not in ops.OPS:
        raise _bad(path, f"{where} has unknown op {_short(op)}; "
                         + suggest(str(op)[:40], ops.OPS, "op"))
    spec = ops.OPS[op]
    shape = e["shape"]
    if not isinstance(shape, list) or len(shape) > MAX_NDIM or not all(
            _is_int(d) and d >= 0 for d in shape):
        raise _bad(path, f"{where} has an invalid shape {_short(shape)}")
    shape = tuple(shape)
    inputs = e["inputs"]
    if not isinstance(inputs, list) or not all(_is_int(k) for k in inputs):
        raise _bad(path, f"{where}: \"inputs\" must be a list of node ids")
    for k in inputs:
        if not 0 <= k < i:
            raise _bad(path, f"{where} takes input {k}, which is not an earlier node "
                             f"(inputs must refer to nodes 0..{i - 1})")
    if not spec.takes(len(inputs)):
        takes = "one or more" if spec.variadic else str(spec.arity)
        raise _bad(path, f"{where}: op {op!r} takes {takes} inputs, the file gives "
                         f"{len(inputs)}")
    attrs = e["attrs"]
    if not isinstance(attrs, dict) or not set(attrs) <= set(spec.attrs):
        raise _bad(path, f"{where}: attributes {_short(attrs)} do not fit op {op!r} (it takes "
                         f"{', '.join(spec.attrs) or 'none'})")
    for k, v in attrs.items():
        if not _plain_attr(v):
            raise _bad(path, f"{where} cannot be rebuilt: attribute {k}={_short(v)} is not a "
                             "small integer, a list of them, a short word, true/false or null")
    attrs = {k: tuple(v) if isinstance(v, list) else v for k, v in attrs.items()}
    role, trainable = e["role"], e["trainable"]
    if not isinstance(role, str) or not isinstance(trainable, bool) or not isinstance(
            e["scope"], str):
        raise _bad(path, f"{where}: role and scope must be text, trainable true or false")
    if not isinstance(e.get("dtype", "float64"), str):
        raise _bad(path, f"{where}: \"dtype\" must be a dtype's name, got "
                         f"{_short(e['dtype'])}")
    try:     # files written before dtypes hold float64 values and no "dtype"
        dtype = dtype_of(e.get("dtype", "float64"))
    except NbbpError as exc:
        raise _bad(path, f"{where}: \"dtype\": {exc.message}") from None
    if op == "param" and dtype not in FLOATS and e["trainable"] is not False:
        raise _bad(path, f"{where}: a trainable param is {dtype}; trained params are "
                         f"floating ({', '.join(FLOATS)})")
    *parents, base = full.split("/")
    g._scopes = parents
    try:
        if op in LEAF_OPS:
            key = e.get("value")
            if not isinstance(key, str) or key not in values:
                raise _bad(path, f"{where}: its value {_short(key)} is missing from "
                                 f"{VALUES_MEMBER}")
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
        raise _bad(path, f"{where} cannot be rebuilt: {_clip(exc.message, 300)}") from None
    except (TypeError, ValueError, IndexError, KeyError, OverflowError) as exc:
        # e.g. an attribute of the wrong type or an axis out of range
        raise _bad(path, f"{where} cannot be rebuilt: {_exc(exc)}") from None
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
