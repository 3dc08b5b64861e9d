"""float32 end to end: every op of the table run in float32 against float64, promotion,
training, feeding, files and errors.

Oracles: the same graph in float64 (from the same float32-rounded inputs, compared
within float32 tolerance), the NumPy reference engine, and a hand-written NumPy
float32 SGD step.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_ops import ALL_CASES, cases, sample

import nbbp
from nbbp.core.ops import OPS, apply
from nbbp.errors import BuildError, NumericError


def _case(name: str, k: int, dtype: str, engine: str):
    """f = sum(op(inputs) * R), inputs drawn as in test_ops and rounded to float32."""
    op = OPS[name]
    shapes, attrs = cases(op)[k]
    rng = np.random.default_rng(0)
    values = [sample(op, i, s, rng).astype(np.float32) for i, s in enumerate(shapes)]
    with nbbp.Graph():
        xs = [nbbp.param(v, name=f"x{i}", dtype=dtype) for i, v in enumerate(values)]
        y = apply(name, *xs, **dict(attrs))
        r = rng.uniform(0.5, 1.5, y.shape)       # a NumPy operand: adopts y's dtype
        f = nbbp.sum(y * r, name="f")
    return nbbp.Model(f, engine=engine), len(values)


# the ops whose values are floating (comparisons, logical ops, argmax and cast give
# other dtypes: tests/test_ints.py checks them)
# (and gather at run-time indices, whose indices are integers: tests/test_gather.py)
FLOAT_CASES = [c for c in ALL_CASES
               if OPS[c.values[0]].dtypes not in ("compare", "logical", "index", "cast",
                                                  "gather")]


@pytest.mark.parametrize("name,k", FLOAT_CASES)
def test_every_op_in_float32_matches_float64(name, k, engine):
    m32, n_in = _case(name, k, "float32", engine)
    m64, _ = _case(name, k, "float64", engine)
    assert all(n.dtype == "float32" for n in m32.graph.nodes)
    assert isinstance(m32.value, np.float32)
    scale = max(1.0, abs(m64.value))
    assert abs(float(m32.value) - m64.value) <= 2e-5 * scale + 1e-5
    for i in range(n_in):
        g32, g64 = m32.grads[f"x{i}"], m64.grads[f"x{i}"]
        assert np.asarray(g32).dtype == np.float32, f"{name}: grad of x{i} is not float32"
        np.testing.assert_allclose(np.asarray(g32, dtype=np.float64), g64, rtol=2e-4,
                                   atol=2e-4 * max(1.0, float(np.max(np.abs(g64)))),
                                   err_msg=f"{name} input {i}")


def test_values_and_grads_come_back_in_the_chosen_dtype():
    m = nbbp.build("x = param(3.0)\ny = param(2.0)\nf = x*x*y + y + 1", dtype="float32")
    assert {n.dtype for n in m.graph.nodes} == {"float32"}
    assert type(m.value) is np.float32 and m.value == np.float32(21.0)
    assert type(m.grads["x"]) is np.float32 and m.grads["x"] == 12.0
    assert type(m["y"].grad) is np.float32 and m["y"].grad == 10.0
    m64 = nbbp.build("x = param(3.0)\nf = x*x")
    assert type(m64.value) is float and repr(m64.value) == "9.0"


def test_tensors_come_back_as_float32_arrays(engine):
    X = np.arange(6.0).reshape(3, 2)
    m = nbbp.build("x = input(X)\nW = param(np.ones((2, 2)))\nh = tanh(x @ W)\n"
                   "loss = mean(softmax(h, axis=1))", namespace={"X": X},
                   dtype="float32", engine=engine)
    assert m.value_of("h").dtype == np.float32
    assert m.grads["W"].dtype == np.float32
    assert m.run("h", feed={"x": np.zeros((3, 2))}).dtype == np.float32
    np.testing.assert_allclose(m.value_of("h"), np.tanh(X @ np.ones((2, 2))), rtol=1e-6)


def test_promotion_follows_numpy_and_numbers_adopt_the_tensor_dtype():
    with nbbp.Graph():
        a = nbbp.param([1.0, 2.0], dtype="float32")
        b = nbbp.param(2.0)
        c = nbbp.const(3.0, dtype=np.float32)
        assert (a * b).dtype == "float64"            # float32 · float64 → float64
        assert (a * 2.0).dtype == "float32"          # a Python number adopts
        assert (2 * a).dtype == "float32"
        assert (a + np.ones(2)).dtype == "float32"   # so does an array operand
        assert (a - c).dtype == "float32"
        assert nbbp.where(b > 0, a, a).dtype == "float64"
        assert (b * 2.0).dtype == "float64"
    with nbbp.Graph(dtype="float32"):
        assert nbbp.param(1.0).dtype == "float32"
        assert nbbp.param(1.0, dtype="float64").dtype == "float64"


def test_mixed_float32_float64_graph_compiled_matches_python():
    src = ("x = param(X, dtype='float32')\nW = param(Wv)\nv = param(0.5, dtype='float32')\n"
           "h = tanh(x @ W) * v\nz = relu(x * 1.5 + v)\nloss = sum(h) + mean(z * x)")
    rng = np.random.default_rng(1)
    ns = {"X": rng.normal(size=(4, 3)), "Wv": rng.normal(size=(3, 3))}
    mc = nbbp.build(src, namespace=ns)
    mp = nbbp.build(src, namespace=ns, engine="python")
    assert mc.graph["h"].dtype == "float64" and mc.graph["z"].dtype == "float32"
    assert mc.value == pytest.approx(mp.value, rel=1e-6)
    for k in ("x", "W", "v"):
        gc, gp = np.asarray(mc.grads[k]), np.asarray(mp.grads[k])
        assert gc.dtype == gp.dtype
        np.testing.assert_allclose(gc, gp, rtol=1e-5, atol=1e-6)


def test_float64_values_fed_to_float32_inputs_are_converted(engine):
    m = nbbp.build("x = input(np.zeros(3))\nw = param(2.0)\nf = sum(x * w)",
                   dtype="float32", engine=engine)
    m.set(x=np.array([0.1, 0.2, 0.3]))               # float64 in
    assert m.value_of("x").dtype == np.float32
    assert m.value_of("x")[0] == np.float32(0.1)
    assert m.value == pytest.approx(1.2, rel=1e-6)
    out = m.run("f", feed={"x": np.array([1.0, 1.0, 1.0])})
    assert type(out) is np.float32 and out == 6.0


def test_a_float32_sgd_step_matches_a_hand_numpy_float32_step(engine):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(8, 3)).astype(np.float32)
    Y = rng.normal(size=(8, 1)).astype(np.float32)
    W0 = rng.normal(size=(3, 1)).astype(np.float32)
    b0 = np.zeros(1, dtype=np.float32)
    m = nbbp.build("x = input(X)\ny = input(Y)\nW = param(W0)\nb = param(b0)\n"
                   "loss = mean((x @ W + b - y) ** 2)",
                   namespace={"X": X, "Y": Y, "W0": W0, "b0": b0}, dtype="float32",
                   engine=engine)
    lr = np.float32(0.1)
    r = X @ W0 + b0 - Y
    d = np.float32(2.0) * r / np.float32(r.size)
    W1, b1 = W0 - lr * (X.T @ d), b0 - lr * d.sum(axis=0)
    assert W1.dtype == np.float32
    m.fit(steps=1, optimizer="sgd", lr=0.1, progress=False)
    assert m.params["W"].dtype == np.float32 and m.params["b"].dtype == np.float32
    np.testing.assert_allclose(m.params["W"], W1, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(m.params["b"], b1, rtol=1e-6, atol=1e-7)
    assert m.history.loss[0] == pytest.approx(float(np.mean(r ** 2)), rel=1e-6)


def test_float32_minibatch_training_compiled_matches_python():
    rng = np.random.default_rng(3)
    ns = {"X": rng.normal(size=(20, 2)), "Y": rng.normal(size=(20, 1)),
          "W0": rng.normal(size=(2, 4)), "V0": rng.normal(size=(4, 1))}
    src = ("x = input(X)\ny = input(Y)\nW = param(W0)\nV = param(V0)\n"
           "loss = mean((tanh(x @ W) @ V - y) ** 2)")
    got = {}
    for engine in ("numba", "python"):
        m = nbbp.build(src, namespace=ns, dtype="float32", engine=engine)
        m.fit(steps=5, optimizer=nbbp.optim.Adam(lr=0.05), batch_size=4, progress=False)
        got[engine] = m.params
        assert m.params["W"].dtype == np.float32
    for k in ("W", "V"):
        np.testing.assert_allclose(got["numba"][k], got["python"][k], rtol=2e-5, atol=2e-6)


def test_float32_nan_is_reported_by_node():
    m = nbbp.build("x = param(1.0)\ny = log(x)\nf = y * 2", dtype="float32")
    with pytest.raises(NumericError, match="'y'"):
        m.set(x=-1.0)


@pytest.mark.parametrize("bad", ["flaot32", "float16", "int32", "bool"])
def test_an_unaccepted_dtype_names_the_accepted_ones(bad):
    with nbbp.Graph(), pytest.raises(BuildError) as info:
        nbbp.param(1.0, dtype=bad)
    msg = str(info.value)
    assert "\n" not in msg and "float32" in msg and "float64" in msg and "param" in msg
    with pytest.raises(BuildError, match="float32"):
        nbbp.build("x = param(1.0)", dtype=bad)
    if bad == "flaot32":
        assert "did you mean 'float32'" in msg


def test_a_saved_float32_model_loads_back_float32(tmp_path):
    m = nbbp.build("x = param([1.5, 2.5])\nw = param(0.25, dtype='float64')\n"
                   "f = sum(x * x) * w", dtype="float32")
    path = tmp_path / "m.nbbp"
    m.save(path)
    back = nbbp.load(path)
    assert back.graph["x"].dtype == "float32" and back.graph["w"].dtype == "float64"
    assert back.value_of("x").dtype == np.float32
    assert back.value == m.value and back.grads["x"].dtype == np.float32


def test_a_file_without_dtypes_loads_as_float64(tmp_path):
    import json
    import zipfile
    m = nbbp.build("x = param(3.0)\nf = x * x")
    path = tmp_path / "old.nbbp"
    m.save(path)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    graph_member = next(n for n in members if n.endswith(".json"))
    doc = json.loads(members[graph_member])
    for e in doc["nodes"]:
        e.pop("dtype")
    members[graph_member] = json.dumps(doc).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    back = nbbp.load(path)
    assert {n.dtype for n in back.graph.nodes} == {"float64"} and back.value == 9.0


def test_float32_halves_the_arena():
    X = np.zeros((64, 784))
    src = "x = input(X)\nW = param(np.zeros((784, 128)))\nloss = sum(relu(x @ W))"
    a64 = nbbp.build(src, namespace={"X": X}).arena.nbytes
    a32 = nbbp.build(src, namespace={"X": X}, dtype="float32").arena.nbytes
    assert a32 <= a64 / 2 + 256
