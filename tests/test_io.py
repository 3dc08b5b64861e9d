"""nbbp.io: exact round trips, and clear refusals of damaged or foreign files.

The oracle for a round trip is the model before saving: values, gradients and edge
gradients must be equal bit for bit after loading.
"""

from __future__ import annotations

import io as pyio
import json
import os
import zipfile

import numpy as np
import pytest

import nbbp
from nbbp import io
from nbbp.core import graph as nbbp_graph
from nbbp.errors import FileFormatError

MLP = """
x = input(X)
y = input(Y)
with scope("hidden"):
    W1 = param(randn(2, 5) * 0.5)
    b1 = param(zeros(5))
    h = tanh(x @ W1 + b1)
with scope("out"):
    W2 = param(randn(5, 3) * 0.5)
    s = h @ W2
p = log_softmax(s, axis=1)
t = transpose(reshape(p, (3, 4)), (1, 0))
loss = -mean(sum(t * t, axis=0)) + 1e-3 * sum(W1 ** 2) + mean(relu(1 - y * max(s, axis=1, keepdims=True)))
"""


def mlp_model(engine: str = "numba") -> nbbp.Model:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4, 2))
    Y = np.sign(rng.normal(size=(4, 1)))
    return nbbp.build(MLP, namespace={"X": X, "Y": Y}, engine=engine, seed=2)


def snapshot(m: nbbp.Model) -> dict:
    return {"value": m.value, "grads": m.grads, "params": m.params, "inputs": m.inputs,
            "edges": [(e.src, e.dst, e.pos, e.grad) for e in m.edges],
            "nodes": [(n.name, n.op, n.shape, n.node.scope, n.node.role) for n in m.nodes]}


def assert_identical(a, b):
    """Equal bit for bit: arrays by their bytes, floats by ==."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_identical(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_identical(x, y)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.shape == b.shape and a.tobytes() == b.tobytes()
    else:
        assert a == b and type(a) is type(b)


def test_the_seed_example_round_trips(tmp_path):
    m = nbbp.build("x = param(3.0)\ny = param(2.0)\nf = x*x*y + y + 1")
    path = tmp_path / "f.nbbp"
    assert io.save(m, path) is None
    m2 = io.load(path)
    assert (m2.value, m2.grads) == (21.0, {"x": 12.0, "y": 10.0})
    assert_identical(snapshot(m), snapshot(m2))
    assert m2.source == m.source and m2.name == "f"
    assert sorted(zipfile.ZipFile(path).namelist()) == ["graph.json", "values.npz"]
    assert os.listdir(tmp_path) == ["f.nbbp"]             # no temporary file left


def test_an_mlp_round_trips_bit_for_bit(tmp_path, engine):
    m = mlp_model(engine)
    m.set({"hidden/b1": np.linspace(-0.5, 0.5, 5)})        # values now differ from the initial
    path = tmp_path / "mlp.nbbp"
    io.save(m, path)
    m2 = io.load(path)
    assert m2.engine == engine
    assert_identical(snapshot(m), snapshot(m2))
    assert m2.params["hidden/b1"].tolist() == np.linspace(-0.5, 0.5, 5).tolist()
    # the loaded model is a live model: changing a leaf recomputes both the same way
    W2 = np.full((5, 3), 0.1)
    assert_identical(snapshot(m.set({"out/W2": W2})), snapshot(m2.set({"out/W2": W2})))
    assert m2["hidden/W1"].node.scope == "hidden" and m2["hidden/W1"].node.trainable


CNN = """
x = input(X)
K = param(0.3 * RNG.standard_normal((3, 3, 1, 2)))
h = relu(batch_norm(conv2d(x, K, strides=1, padding="SAME")))
p = max_pool(h, 2, padding="VALID")
q = avg_pool(dropout(p, 0.25), 2, padding="SAME")
loss = mean(flatten(q) ** 2)
"""


def test_a_cnn_round_trips_bit_for_bit(tmp_path):
    """Convolution and pooling (their padding words), batch norm's state and dropout's
    random numbers (the training flag, the counter) save and load; the loaded model
    computes the same in eval and in train mode."""
    rng = np.random.default_rng(3)
    m = nbbp.build(CNN, namespace={"X": rng.standard_normal((2, 6, 6, 1)), "RNG": rng})
    path = tmp_path / "cnn.nbbp"
    m.save(path)
    m2 = io.load(path)
    assert_identical(snapshot(m), snapshot(m2))
    assert_identical(snapshot(m.set_mode("train")), snapshot(m2.set_mode("train")))
    # the state updates travel too: training the loaded model moves the running
    # averages and the random counter exactly as training the original does
    before = m2.value_of("batch_norm/moving_mean")
    for model in (m, m2):
        model.set_mode("eval").fit(3, "sgd", lr=0.1, progress=False)
    assert not np.array_equal(m2.value_of("batch_norm/moving_mean"), before)
    assert m2.value_of("rng_counter") == m.value_of("rng_counter") == 3
    assert_identical(snapshot(m), snapshot(m2))


def test_a_state_update_must_write_a_param_of_its_shape(tmp_path):
    rng = np.random.default_rng(3)
    m = nbbp.build(CNN, namespace={"X": rng.standard_normal((2, 6, 6, 1)), "RNG": rng})
    path = tmp_path / "cnn.nbbp"
    m.save(path)
    # an input, a name no node has, a param of another dtype and shape
    for target in ("x", "batch_norm/gamma_", "rng_counter"):
        tampered = rewrite(path, lambda d, t=target: node_named(
            d, "batch_norm/update_mean")["attrs"].update(ref=t))
        with pytest.raises(FileFormatError) as e:
            io.load(tampered)
        assert (f"the state update 'batch_norm/update_mean' writes {target!r}, which is not a "
                "param of the file with its dtype float64 and shape (1, 1, 1, 2)") in str(e.value)


def test_engine_can_be_chosen_at_load(tmp_path):
    m = mlp_model("numba")
    io.save(m, tmp_path / "m.nbbp")
    m2 = io.load(tmp_path / "m.nbbp", engine="python")
    assert m2.engine == "python"
    np.testing.assert_allclose(m2.grads["hidden/W1"], m.grads["hidden/W1"], rtol=1e-13)


# ---------------------------------------------------------------------------
# damaged, tampered and foreign files
# ---------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.nbbp"
    io.save(mlp_model(), path)
    return path


def rewrite(path, edit_doc=None, edit_values=None, graph_text=None):
    """Write a copy of the saved file with its JSON or arrays changed."""
    with zipfile.ZipFile(path) as z:
        doc = json.loads(z.read("graph.json"))
        with np.load(pyio.BytesIO(z.read("values.npz"))) as npz:
            values = {k: npz[k] for k in npz.files}
    if edit_doc:
        edit_doc(doc)
    if edit_values:
        edit_values(values)
    buf = pyio.BytesIO()
    np.savez(buf, **values)
    out = path.with_name("tampered.nbbp")
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("graph.json", graph_text if graph_text is not None else json.dumps(doc))
        z.writestr("values.npz", buf.getvalue())
    return out


def node_named(doc, name):
    return next(n for n in doc["nodes"] if n["name"] == name)


def expect_error(path, *parts):
    with pytest.raises(FileFormatError) as info:
        io.load(path)
    msg = str(info.value)
    assert str(path) in msg
    for p in parts:
        assert p in msg, msg
    return msg


def test_truncated_file(saved):
    data = saved.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        bad = saved.with_name(f"cut{cut}.nbbp")
        bad.write_bytes(data[:cut])
        expect_error(bad, "truncated or damaged")


def test_unknown_op(saved):
    def edit(doc):
        node_named(doc, "hidden/h")["op"] = "tanhh"
    expect_error(rewrite(saved, edit), "'hidden/h'", "unknown op 'tanhh'", "did you mean 'tanh'")


def test_edge_to_a_later_node(saved):
    def edit(doc):
        h = node_named(doc, "hidden/h")
        h["inputs"] = [len(doc["nodes"]) - 1]
    expect_error(rewrite(saved, edit), "which is not an earlier node")


def test_shape_mismatch(saved):
    def edit(doc):
        node_named(doc, "hidden/h")["shape"] = [4, 6]
    expect_error(rewrite(saved, edit), "'hidden/h'", "shape mismatch", "(4, 5)", "(4, 6)")


def test_value_of_the_wrong_shape(saved):
    def edit(values):
        values["n2"] = np.zeros((3, 3))
    expect_error(rewrite(saved, edit_values=edit), "its value has float64 shape (3, 3)")


def test_bad_json_and_wrong_version(saved):
    expect_error(rewrite(saved, graph_text='{"format": "nbbp-model", '), "graph.json is not valid JSON")

    def v2(doc):
        doc["version"] = 2
    expect_error(rewrite(saved, v2), "format version 2 is not supported", "version 1")


@pytest.mark.parametrize("edit, message", [
    (lambda d: node_named(d, "hidden/h")["inputs"].append(0), "takes 1 inputs, the file gives 2"),
    (lambda d: node_named(d, "t").update(attrs={"perm": ["a", "b"]}), "cannot be rebuilt"),
    (lambda d: node_named(d, "t").update(attrs={"shape": [2, 2]}), "do not fit op 'transpose'"),
    (lambda d: d["nodes"][0].pop("shape"), "lacks shape"),
    (lambda d: d["nodes"][1].update(id=7), "ids must count"),
    (lambda d: d["nodes"][0].update(value=["n0"]), "is missing from values.npz"),
    (lambda d: d.update(output=999), '"output" must be the id of a node'),
    (lambda d: d.update(format="something-else"), "not an nbbp model file"),
    (lambda d: d["nodes"][3].update(name=d["nodes"][2]["name"]), "the name is used twice"),
    (lambda d: d.update(engine="gpu"), "does not rebuild"),
])
def test_tampered_documents(saved, edit, message):
    expect_error(rewrite(saved, edit), message)


def test_stray_and_pickled_arrays_are_refused(saved):
    def extra(values):
        values["zzz"] = np.zeros(2)
    expect_error(rewrite(saved, edit_values=extra), "holds arrays no node uses: zzz")

    def pickled(values):
        values["n0"] = np.array([{"a": 1}], dtype=object)
    expect_error(rewrite(saved, edit_values=pickled), "values.npz cannot be read")


def test_foreign_files(tmp_path):
    text = tmp_path / "notes.nbbp"
    text.write_text("hello")
    expect_error(text, "not an nbbp model file")
    arrays = tmp_path / "arrays.npz"
    np.savez(arrays, a=np.zeros(3))
    expect_error(arrays, "not an nbbp model file", "no graph.json", "a.npy")
    expect_error(tmp_path / "missing.nbbp", "no such file")


def test_loading_never_runs_code_and_a_failed_load_changes_nothing(saved):
    good = io.load(saved)
    before = snapshot(good)
    stack = list(nbbp_graph._building.graphs)

    def evil(doc):
        doc["source"] = "import nbbp; nbbp.PWNED = True"
        node_named(doc, "hidden/h")["op"] = "__import__('os').system('false')"
    expect_error(rewrite(saved, evil), "unknown op")
    ok = rewrite(saved, lambda d: d.update(source="import nbbp; nbbp.PWNED = True"))
    assert io.load(ok).value == good.value
    assert not hasattr(nbbp, "PWNED")
    assert nbbp_graph._building.graphs == stack
    assert_identical(snapshot(good), before)
    good.set({"out/W2": np.zeros((5, 3))})                  # the loaded model still works
