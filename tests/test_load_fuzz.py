"""``nbbp.load`` on crafted and damaged files: only FileFormatError comes out.

A seeded random test feeds thousands of mutated files to ``nbbp.load`` — byte flips
and truncations of a real file, byte flips inside its members re-packed with valid
CRCs, JSON with every field replaced by hostile values (deep nesting, huge numbers,
wrong types), and npz members with huge shapes, object dtypes, pickles and wrong
names — and asserts each either loads or raises :class:`FileFormatError` naming the
file (a mutation may leave a valid file, e.g. a changed digit of a value). The
crafted cases the limits exist for are checked by their messages.
"""

from __future__ import annotations

import copy
import io as pyio
import json
import pickle
import random
import struct
import time
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbbp
from nbbp import files
from nbbp.errors import FileFormatError

SOURCE = """
x = input(randn(4, 3)); y = input(randn(4, 2))
with scope("hidden"):
    W = param(randn(3, 5) * 0.5); b = param(zeros(5))
    h = tanh(x @ W + b)
s = sum(h, axis=1, keepdims=True)
t = transpose(h)
loss = mean((s - y) ** 2) + 1e-3 * sum(t)
"""


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """The saved file's bytes, its JSON document and its arrays."""
    path = tmp_path_factory.mktemp("fuzz") / "good.nbbp"
    nbbp.build(SOURCE, seed=0).save(path)
    raw = path.read_bytes()
    with zipfile.ZipFile(pyio.BytesIO(raw)) as z:
        doc = json.loads(z.read("graph.json"))
        npz = z.read("values.npz")
    return raw, doc, npz


def pack(graph: bytes | str, values: bytes, extra: dict | None = None,
         method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = pyio.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr("graph.json", graph)
        z.writestr("values.npz", values)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def npz(members: dict[str, bytes]) -> bytes:
    buf = pyio.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def npy_header(shape, descr="<f8", fortran=False) -> bytes:
    """A version 1.0 ``.npy`` header for any shape, without the data."""
    buf = pyio.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": fortran, "shape": tuple(shape)})
    return buf.getvalue()


def npy(arr: np.ndarray) -> bytes:
    buf = pyio.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True)
    return buf.getvalue()


def attempt(tmp_path, data: bytes, name: str = "x.nbbp"):
    """Load ``data``: the Model, or the FileFormatError's message. Anything else fails."""
    path = tmp_path / name
    path.write_bytes(data)
    try:
        model = nbbp.load(path)
    except FileFormatError as exc:
        msg = str(exc)
        assert msg.startswith(str(path) + ": "), msg
        assert "\n" not in msg and len(msg) < 600, msg
        return msg
    return model


def expect(tmp_path, data: bytes, *parts: str) -> str:
    msg = attempt(tmp_path, data)
    assert isinstance(msg, str), "a crafted file loaded"
    for p in parts:
        assert p in msg, msg
    return msg


# ------------------------------------------------------------------ the random test
HOSTILE = [None, True, False, 0, -1, 1, 2**31, -2**63, 2**64, 10**39, 0.5, -1e308, 1e308,
           "", "x", "tanh", "a/b", "\u0000", "é" * 50, [], {}, [1], [-1], [0, 0, 0, 0, 0],
           [2**40, 2**40], [None], ["a"], {"a": 1}, [[[[]]]], [1.5, 2]]


def hostile(rng: random.Random):
    return copy.deepcopy(rng.choice(HOSTILE))


def json_paths(obj, prefix=()):
    """Every (container, key) in a JSON document."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield obj, k
            yield from json_paths(v)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield obj, i
            yield from json_paths(v)


def mutate_doc(doc: dict, rng: random.Random) -> str:
    doc = copy.deepcopy(doc)
    places = list(json_paths(doc))
    for _ in range(rng.randint(1, 3)):
        box, key = rng.choice(places)
        choice = rng.random()
        if choice < 0.7:
            box[key] = hostile(rng)
        elif choice < 0.85 and isinstance(box, dict):
            del box[key]
            places = list(json_paths(doc))
        else:
            box[key] = copy.deepcopy(rng.choice(places)[0])    # a subtree moved elsewhere
    text = json.dumps(doc)
    if rng.random() < 0.1:      # huge numbers and constants json.dumps would not write
        text = text.replace("0.5", rng.choice(["1e999", "-1e999", "NaN", "Infinity",
                                               "1" * 5000, "0.5e-99999"]), 1)
    return text


def flip(data: bytes, rng: random.Random, count: int) -> bytes:
    b = bytearray(data)
    for _ in range(count):
        i = rng.randrange(len(b))
        b[i] = rng.randrange(256) if rng.random() < 0.5 else b[i] ^ (1 << rng.randrange(8))
    return bytes(b)


def test_thousands_of_mutated_files_raise_only_file_format_error(good, tmp_path):
    raw, doc, values = good
    text = json.dumps(doc).encode()
    with zipfile.ZipFile(pyio.BytesIO(values)) as z:
        arrays = {n: z.read(n) for n in z.namelist()}
    rng = random.Random(16)
    outcomes = {"loaded": 0, "refused": 0}
    start, n = time.perf_counter(), 0
    while n < 2000 and time.perf_counter() - start < 15:
        kind = n % 6
        if kind == 0:           # the file's bytes
            data = flip(raw, rng, rng.randint(1, 8))
        elif kind == 1:         # cut short, or cut and flipped
            data = raw[:rng.randrange(len(raw))]
            if rng.random() < 0.3 and data:
                data = flip(data, rng, 1)
        elif kind == 2:         # graph.json's bytes, re-packed with a valid CRC
            data = pack(flip(text, rng, rng.randint(1, 4)), values)
        elif kind == 3:         # a field (or a few) replaced by a hostile value
            data = pack(mutate_doc(doc, rng), values)
        elif kind == 4:         # a .npy member's bytes (header or data), re-packed
            members = dict(arrays)
            key = rng.choice(sorted(members))
            cut = rng.random() < 0.2
            members[key] = (members[key][:rng.randrange(len(members[key]))] if cut
                            else flip(members[key][:128], rng, rng.randint(1, 3))
                            + members[key][128:])
            data = pack(text, npz(members))
        else:                   # values.npz's bytes
            data = pack(text, flip(values, rng, rng.randint(1, 6)), method=zipfile.ZIP_STORED)
        got = attempt(tmp_path, data)
        outcomes["refused" if isinstance(got, str) else "loaded"] += 1
        n += 1
    assert n >= 1000, f"only {n} files in the time allowed"
    assert outcomes["refused"] > n // 2, outcomes
    model = attempt(tmp_path, raw, "good.nbbp")            # the original still loads
    assert not isinstance(model, str), model
    assert model.value == pytest.approx(nbbp.build(SOURCE, seed=0).value)


@settings(max_examples=300, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8)
                    | st.floats(allow_nan=False, allow_infinity=False),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12),
       st.data())
def test_any_json_value_in_any_field_is_refused_or_loads(good, tmp_path, value, data):
    """Hypothesis puts arbitrary JSON into one field of the document."""
    _, doc, values = good
    doc = copy.deepcopy(doc)
    places = list(json_paths(doc))
    box, key = places[data.draw(st.integers(0, len(places) - 1))]
    box[key] = value
    attempt(tmp_path, pack(json.dumps(doc), values))


# ------------------------------------------------------------------ the limits, by name
def test_json_nested_100000_deep(good, tmp_path):
    _, doc, values = good
    text = json.dumps(doc).replace('"source"', '"deep": ' + "[" * 100_000 + "]" * 100_000
                                   + ', "source"', 1)
    expect(tmp_path, pack(text, values), "graph.json nests arrays and objects 100,001 deep",
           f"at most {files.MAX_JSON_DEPTH} deep")


def test_huge_numbers_in_json(good, tmp_path):
    _, doc, values = good
    text = json.dumps(doc)
    expect(tmp_path, pack(text.replace('"version": 1', '"version": ' + "9" * 5000), values),
           "graph.json: the number 999999999999", "more than 40 digits")
    expect(tmp_path, pack(text.replace('"version": 1', '"version": 1e999'), values),
           "graph.json: the number 1e999 is too large")
    expect(tmp_path, pack(text.replace('"version": 1', '"version": NaN'), values),
           "graph.json: NaN is not a number")


def test_stored_shape_of_100000_by_100000(good, tmp_path):
    """The header promises 74.5 GiB; nothing is allocated for it."""
    _, doc, _ = good
    huge = npz({"n0.npy": npy_header((100_000, 100_000)) + b"\0" * 64})
    start = time.perf_counter()
    expect(tmp_path, pack(json.dumps(doc), huge), "values.npz cannot be read: n0.npy",
           "shape (100000, 100000) (10,000,000,000 elements)", "67,108,864")
    assert time.perf_counter() - start < 1


def test_npy_header_larger_than_its_data(good, tmp_path):
    _, doc, _ = good
    short = npz({"n0.npy": npy_header((10, 10)) + b"\0" * 80})
    expect(tmp_path, pack(json.dumps(doc), short), "n0.npy has shape (10, 10) of float64",
           "needs 800 bytes; the member holds 80")


def test_object_arrays_pickles_and_wrong_names(good, tmp_path):
    _, doc, _ = good
    text = json.dumps(doc)
    objects = npz({"n0.npy": npy(np.array([{"a": 1}, None], dtype=object))})
    expect(tmp_path, pack(text, objects), "values.npz cannot be read: n0.npy",
           "holds Python objects (a pickle)")
    raw_pickle = npz({"n0.npy": pickle.dumps([1.0, 2.0])})
    expect(tmp_path, pack(text, raw_pickle), "values.npz cannot be read: n0.npy",
           "not a valid .npy header")
    expect(tmp_path, pack(text, npz({"evil.pkl": b"x"})), "values.npz cannot be read",
           "it holds 'evil.pkl'")
    expect(tmp_path, pack(text, npz({"n0.npy": npy(np.zeros(3, dtype="U3"))})),
           "holds <U3; nbbp files hold numbers only")


def test_member_count_duplicates_and_forged_sizes(good, tmp_path):
    _, doc, values = good
    text = json.dumps(doc)
    many = {f"m{i}": b"" for i in range(files.MAX_MEMBERS)}
    expect(tmp_path, pack(text, values, many), "the archive holds 10 members",
           f"at most {files.MAX_MEMBERS}")
    buf = pyio.BytesIO()
    with pytest.warns(UserWarning, match="Duplicate name"), \
            zipfile.ZipFile(buf, "w") as z:
        z.writestr("graph.json", text)
        z.writestr("values.npz", values)
        z.writestr("graph.json", text)
    expect(tmp_path, buf.getvalue(), "the archive holds 'graph.json' twice")
    forged = bytearray(pack(text, values, method=zipfile.ZIP_STORED))
    # the central directory's uncompressed size of graph.json: claim 2 GiB
    cd = struct.unpack_from("<I", forged, len(forged) - 22 + 16)[0]    # from the end record
    struct.pack_into("<I", forged, cd + 24, 2**31)
    expect(tmp_path, bytes(forged), "graph.json in the archive declares 2,147,483,648 bytes",
           f"at most {files.MAX_JSON_BYTES:,}")


def test_a_directory_of_many_members_is_refused_before_zipfile_reads_it(good, tmp_path,
                                                                        monkeypatch):
    _, doc, values = good
    many = {f"{i}": b"" for i in range(50_000)}
    data = pack(json.dumps(doc), values, many, method=zipfile.ZIP_STORED)
    opened = []
    real = zipfile.ZipFile
    monkeypatch.setattr(files.zipfile, "ZipFile",
                        lambda *a, **k: opened.append(1) or real(*a, **k))
    expect(tmp_path, data, "the archive holds 50,002 members; nbbp reads at most 8")
    assert opened == []


def test_a_zip_bomb_is_refused_before_it_is_inflated(good, tmp_path):
    _, doc, values = good
    # 65 MiB of blanks after the JSON, deflated to about 65 KiB: refused by its declared size
    text = json.dumps(doc).encode() + b" " * (65 << 20)
    data = pack(text, values)
    assert len(data) < 200_000
    start = time.perf_counter()
    expect(tmp_path, data, "graph.json in the archive declares 68,1", "bytes; nbbp reads at "
           "most 67,108,864")
    assert time.perf_counter() - start < 0.5


def test_too_many_elements_in_the_graph(good, tmp_path):
    """Small leaves whose broadcast sum would be huge are refused at that node."""
    m = nbbp.build("a = input(A)\nb = input(B)\nc = a + b",
                   namespace={"A": np.zeros((2, 1)), "B": np.zeros((1, 2))})
    path = tmp_path / "small.nbbp"
    m.save(path)
    with zipfile.ZipFile(path) as z:
        doc = json.loads(z.read("graph.json"))
    doc["nodes"][0]["shape"], doc["nodes"][1]["shape"] = [9000, 1], [1, 9000]
    doc["nodes"][2]["shape"] = [9000, 9000]
    values = pyio.BytesIO()
    np.savez(values, n0=np.zeros((9000, 1)), n1=np.zeros((1, 9000)))
    expect(tmp_path, pack(json.dumps(doc), values.getvalue()), "graph.json: node 2 ('c')",
           "shape (9000, 9000)", "81,018,000 elements", "more than the 67,108,864")
