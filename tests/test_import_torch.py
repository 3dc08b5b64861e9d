"""nbbp.from_torch against PyTorch itself: the forward value, every param's gradient
(torch.autograd.grad) and every intermediate's gradient (a zero added to each value of
the exported program, differentiated by autograd), edge contributions summing to the
node's gradient at each fan-out, random functions from the covered ops (hypothesis),
and the unsupported-op error."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import nbbp
from nbbp.importers.torch import capture

torch.manual_seed(0)
D = torch.float64


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def intermediate_grads(ep, flat_args):
    """∂output/∂v for every value v of the exported program: a zero is added to each
    value as the program runs, and autograd differentiates the output by those zeros."""
    gm = ep.graph_module
    shapes = {}

    class Record(torch.fx.Interpreter):
        def run_node(self, n):
            r = super().run_node(n)
            if isinstance(r, torch.Tensor) and r.is_floating_point() and n.op == "call_function":
                shapes[n.name] = r.shape, r.dtype
            return r

    with torch.no_grad():
        Record(gm).run(*flat_args)
    deltas = {k: torch.zeros(s, dtype=dt, requires_grad=True) for k, (s, dt) in shapes.items()}

    class Perturb(torch.fx.Interpreter):
        def run_node(self, n):
            r = super().run_node(n)
            return r + deltas[n.name] if n.name in deltas else r

    out = Perturb(gm).run(*flat_args)
    out = out[0] if isinstance(out, (tuple, list)) else out
    names = list(deltas)
    grads = torch.autograd.grad(out.sum(), [deltas[k] for k in names], allow_unused=True)
    return {k: (np.zeros(tuple(deltas[k].shape)) if g is None else g.numpy())
            for k, g in zip(names, grads)}


def check(model, *inputs, params=None, atol=None):
    """Import ``model`` and compare everything with PyTorch; returns the nbbp model and
    how many fan-outs it has. Tolerance: 1e-12 in float64, 1e-5 in float32."""
    imp = capture(model, *inputs, params=params)
    if atol is None:
        atol = 1e-12 if imp.model.output.dtype == "float64" else 1e-5
    m, ep = imp.model, imp.program
    # the forward value
    ref = copy.deepcopy(model) if isinstance(model, nn.Module) else model
    leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    out = ref(*leaves)
    assert rel(m.value, out.detach().numpy()) < atol
    # every param's gradient
    if isinstance(ref, nn.Module):
        named = dict(ref.named_parameters())
        gs = torch.autograd.grad(out.sum(), list(named.values()), retain_graph=True)
        for k, g in zip(named, gs):
            assert rel(m.grads[k.replace(".", "/")], g.numpy()) < atol, k
    float_in = [x for x in leaves if x.is_floating_point()]
    if float_in:
        gs = torch.autograd.grad(out.sum(), float_in, allow_unused=True)
        names = [n for n, x in zip(nbbp.importers.torch._arg_names(
            model.forward if isinstance(model, nn.Module) else model, len(inputs)), leaves)
            if x.is_floating_point()]
        for n, g in zip(names, gs):
            if n not in m.grads:          # an input the output does not use
                assert g is None or not g.any()
                continue
            want = np.zeros(tuple(m[n].shape)) if g is None else g.numpy()
            assert rel(m.grads[n], want) < atol, n
    # every intermediate's gradient, by the program's node names
    flat = []
    from torch.export.graph_signature import InputKind
    k = 0
    for spec in ep.graph_signature.input_specs:
        if spec.kind == InputKind.USER_INPUT:
            flat.append(inputs[k]); k += 1
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            flat.append(ep.state_dict[spec.target])
        else:
            flat.append(ep.constants[spec.target])
    inter = intermediate_grads(ep, flat)
    checked = 0
    for name, g in inter.items():
        node = imp.nodes.get(name)
        if node is not None and node.op not in ("param", "input", "const"):
            assert rel(m.grad_of(node), g) < atol, name
            checked += 1
    assert checked >= 1
    # edge contributions at every fan-out sum to the node's gradient
    out_edges = {}
    for e in m.edges:
        if e.grad is not None:
            out_edges.setdefault(e.src, []).append(e.grad)
    fanouts = 0
    for src, gs in out_edges.items():
        if len(gs) > 1:
            fanouts += 1
            total = sum(np.asarray(g, dtype=float) for g in gs)
            assert rel(total, m[src].grad) < atol, src
    return m, fanouts


# -- the models --------------------------------------------------------------------------------
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(),
                                     nn.Dropout(0.2))
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        return self.head(self.encoder(x)).pow(2).mean()


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, y):
        return F.cross_entropy(self.fc(x), y)


class Norm(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(6)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        h = self.ln(x)
        return (torch.sigmoid(self.fc(h)) * h[:, :2]).sum()


class SelfAttention(nn.Module):
    def __init__(self, d=4):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.ln = nn.LayerNorm(d)

    def forward(self, x):                   # x: (batch, seq, d)
        q, k, v = self.q(x), self.k(x), self.v(x)
        att = torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1)
        y = self.ln(x + att @ v)
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return (y * z).sum() + F.gelu(y, approximate="tanh").mean()


class RNN(nn.Module):
    def __init__(self, n_in=3, n_h=5):
        super().__init__()
        self.cell = nn.RNNCell(n_in, n_h)
        self.out = nn.Linear(n_h, 1)

    def forward(self, xs):                  # xs: (steps, batch, n_in)
        h = torch.zeros(xs.shape[1], self.cell.hidden_size, dtype=xs.dtype)
        for t in range(xs.shape[0]):
            h = self.cell(xs[t], h)
        return self.out(h).sum()


class GRU(nn.Module):
    def __init__(self, n_in=3, n_h=4):
        super().__init__()
        self.cell = nn.GRUCell(n_in, n_h)

    def forward(self, xs):
        h = torch.zeros(xs.shape[1], self.cell.hidden_size, dtype=xs.dtype)
        for t in range(xs.shape[0]):
            h = self.cell(xs[t], h)
        return (h * h).sum()


def test_mlp_names_and_numbers():
    m, _ = check(MLP().double().eval(), torch.randn(5, 3, dtype=D))
    assert list(m.params) == ["encoder/0/weight", "encoder/0/bias", "encoder/2/weight",
                              "encoder/2/bias", "head/weight", "head/bias"]
    assert list(m.inputs) == ["x"]
    assert m["encoder/0/linear"].node.op == "add"       # linear = matmul + add, scoped


def test_linear_softmax_cross_entropy():
    m, _ = check(Classifier().double(), torch.randn(6, 4, dtype=D), torch.tensor([0, 2, 1, 1, 0, 2]))
    assert "log_softmax" in {n.op for n in m.forward}


def test_layer_norm():
    check(Norm().double(), torch.randn(3, 6, dtype=D))


def test_self_attention_with_fan_out():
    _, fanouts = check(SelfAttention().double(), torch.randn(2, 3, 4, dtype=D))
    assert fanouts > 3       # q, k, v and x feed several ops


def test_dot_T_as_people_write_attention():
    """``k.T`` (ATen's numpy_T) on a matrix transposes it."""
    def f(w, x):
        q, k = x @ w, x @ w.T
        scores = torch.softmax(q @ k.T / 2.0, dim=-1)
        return (scores @ x).sum()
    check(f, torch.randn(4, 4, dtype=D), torch.randn(3, 4, dtype=D), params=["w"])


def test_unrolled_tanh_rnn_cell():
    check(RNN().double(), torch.randn(4, 2, 3, dtype=D))


def test_unrolled_gru_cell():
    check(GRU().double(), torch.randn(3, 2, 3, dtype=D))


def test_function_with_params_argument():
    def f(w, b, x):
        return torch.log_softmax(torch.addmm(b, x, w), dim=1).sum() + torch.clamp(w, -0.5, 0.5).sum()
    w, b, x = torch.randn(3, 2, dtype=D), torch.randn(2, dtype=D), torch.randn(4, 3, dtype=D)
    m, _ = check(f, w, b, x, params=["w", "b"])
    assert list(m.params) == ["w", "b"] and list(m.inputs) == ["x"]


def test_the_model_trains_saves_and_checks(tmp_path):
    m = nbbp.from_torch(MLP().double().eval(), torch.randn(8, 3, dtype=D))
    nbbp.check_grads(m)
    before = m.value
    m.fit(20, "adam", lr=0.01, progress=False)
    assert m.value < before
    m.save(tmp_path / "mlp.nbbp")
    again = nbbp.load(tmp_path / "mlp.nbbp")
    assert again.value == pytest.approx(m.value, rel=1e-12)
    assert "encoder/0/weight" in m.to_dot()


class CNN(nn.Module):
    """The beginner tutorial's shape: conv → relu → max pool → batch norm → flatten →
    linear → cross-entropy (eval mode: running statistics, dropout the identity)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.BatchNorm2d(3), nn.Dropout(0.5))
        self.fc = nn.Linear(3 * 3 * 3, 4)
        with torch.no_grad():                   # running statistics that are not 0 and 1
            self.features[3].running_mean.uniform_(-0.5, 0.5)
            self.features[3].running_var.uniform_(0.5, 2.0)
            self.features[3].weight.uniform_(0.5, 1.5)

    def forward(self, x, y):
        return F.cross_entropy(self.fc(torch.flatten(self.features(x), 1)), y)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_small_cnn(dtype):
    net = CNN().to(dtype).eval()
    m, _ = check(net, torch.randn(2, 2, 6, 6, dtype=dtype), torch.tensor([1, 3]))
    assert m.output.dtype == str(dtype).removeprefix("torch.")
    assert list(m.params) == ["features/0/weight", "features/0/bias", "features/3/weight",
                              "features/3/bias", "fc/weight", "fc/bias"]
    consts = {n.name for n in m.forward if n.op == "const"}
    assert {"features/3/running_mean", "features/3/running_var"} <= consts
    ops_ = [n.op for n in m.forward]
    assert ops_.count("conv2d") == 1 and ops_.count("max_pool") == 1
    assert m["features/0/conv2d"].node.op == "transpose"   # back to NCHW, PyTorch's name
    assert m["features/0/weight"].grad.shape == (3, 2, 3, 3)  # OIHW, as the state_dict


def _conv(stride=1, padding=0, dilation=1, bias=True, dims=2):
    fn = F.conv2d if dims == 2 else F.conv1d

    def f(w, b, x):
        return torch.tanh(fn(x, w, b if bias else None, stride, padding, dilation)).sum()
    return f


# PyTorch warns that an even kernel with padding="same" may copy the input
EVEN_SAME = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


@pytest.mark.parametrize("kw, kernel", [
    ({}, (3, 3)), ({"stride": 2, "padding": 1}, (3, 3)), ({"stride": (2, 1)}, (2, 3)),
    ({"padding": "same"}, (3, 3)), pytest.param({"padding": "same"}, (2, 4), marks=EVEN_SAME),
    ({"padding": "same", "dilation": 2}, (3, 2)), ({"padding": "valid"}, (2, 2)),
    ({"padding": (2, 0), "bias": False}, (3, 3)), ({"dilation": (1, 2), "padding": 1}, (2, 2)),
])
def test_conv2d_geometry(kw, kernel):
    w = torch.randn(4, 3, *kernel, dtype=D)
    check(_conv(**kw), w, torch.randn(4, dtype=D), torch.randn(2, 3, 7, 6, dtype=D),
          params=["w", "b"])


def test_conv1d_and_unbatched_conv2d():
    check(_conv(stride=2, padding=1, dims=1), torch.randn(4, 3, 3, dtype=D),
          torch.randn(4, dtype=D), torch.randn(2, 3, 9, dtype=D), params=["w", "b"])
    check(_conv(padding="same"), torch.randn(4, 3, 3, 3, dtype=D), torch.randn(4, dtype=D),
          torch.randn(3, 5, 5, dtype=D), params=["w", "b"])


@pytest.mark.parametrize("pool", [
    lambda x: F.max_pool2d(x, 2),
    lambda x: F.max_pool2d(x, 3, stride=2, padding=1),
    lambda x: F.max_pool2d(x, (3, 2), stride=2, ceil_mode=True),
    lambda x: F.avg_pool2d(x, 2),
    lambda x: F.avg_pool2d(x, 3, stride=1, padding=1),                           # zeros counted
    lambda x: F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False),
    lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
    lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    lambda x: F.avg_pool2d(x, 2, divisor_override=3),
    lambda x: F.adaptive_avg_pool2d(x, 1),
    lambda x: F.adaptive_avg_pool2d(x, (3, None)),
    lambda x: F.max_pool2d(x[0], 2),                                             # unbatched
], ids=lambda f: __import__("inspect").getsource(f).split("lambda x: ")[1].strip().rstrip(","))
def test_pooling_matches_torch(pool):
    """The numbers count_include_pad and ceil_mode divide by are PyTorch's (zeros are
    counted in the padding, never in the overhang of ceil_mode)."""
    def f(x, w):
        return (pool(torch.sin(x) * w) ** 2).sum()
    check(f, torch.randn(2, 3, 6, 7, dtype=D), torch.randn(7, dtype=D), params=["w"])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_exact_gelu_and_erf(dtype):
    """GELU's default (exact) form is x·(1 + erf(x/√2))/2, drawn with the core's erf."""
    block = nn.Sequential(nn.Linear(3, 5), nn.GELU(), nn.Linear(5, 2)).to(dtype)

    def f(x):
        h = block(x)
        return (torch.erf(h) * torch.special.erfc(x[:, :2])).sum()
    m, _ = check(f, torch.randn(4, 3, dtype=dtype) * 2)
    assert [n.op for n in m.forward].count("erf") == 3


def test_float32_model_imports_as_float32():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))       # float32
    m, _ = check(lambda x: torch.log_softmax(net(x), 1).sum(), torch.randn(5, 3))
    assert m.value.dtype == np.float32 and m.grads["x"].dtype == np.float32


def test_mixed_dtypes_promote_as_torch_does():
    """A float32 module fed a float64 mask, and cast with .double(): float64 after."""
    net = nn.Linear(3, 2)

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x, scale):
            h = self.net(x)                          # float32
            return (h.double() * scale).sum() + (h * scale.float()).sum()
    m, _ = check(Mixed(), torch.randn(4, 3), torch.randn(4, 2, dtype=D), atol=1e-5)
    assert m.output.dtype == "float64" and m["net/weight"].node.dtype == "float32"
    assert m.grads["net/weight"].dtype == np.float32


def test_half_precision_is_refused_with_the_way_out():
    with pytest.raises(nbbp.NbbpError) as err:
        nbbp.from_torch(nn.Linear(2, 1).to(torch.bfloat16), torch.ones(1, 2, dtype=torch.bfloat16))
    assert str(err.value) == ("from_torch: weight is bfloat16; nbbp computes in float64 or "
                              "float32: convert the model and its inputs first (.float() or "
                              ".double() in PyTorch, .astype(jnp.float32) in JAX)")


# -- random functions from the covered ops -------------------------------------------------
def _image(op):
    """A (3, 4) matrix as a one-channel image through ``op``, back to (3, 4)."""
    return lambda a: op(a[None, None])[0, 0]


RUNNING = torch.tensor([0.3, -0.2, 0.1], dtype=D), torch.tensor([1.5, 0.5, 2.0], dtype=D)
UNARY = [torch.tanh, torch.sigmoid, torch.relu, torch.sin, lambda a: torch.exp(torch.tanh(a)),
         lambda a: F.gelu(a, approximate="tanh"), F.gelu, F.silu, lambda a: torch.softmax(a, dim=-1),
         lambda a: torch.log_softmax(a, dim=0), lambda a: a.mean(dim=0, keepdim=True).expand(3, 4),
         lambda a: F.layer_norm(a, (4,)), lambda a: torch.sqrt(a * a + 1.0),
         lambda a: a.t().reshape(3, 4), lambda a: torch.cat([a[:, 2:], a[:, :2]], dim=1),
         _image(lambda x: F.max_pool2d(x, 3, 1, 1)),
         _image(lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)),
         _image(lambda x: F.adaptive_avg_pool2d(x, 1).expand(1, 1, 3, 4)),
         lambda a: torch.flatten(a[:, None] * a[:, :, None], 1)[:, :4]]
BINARY = [torch.add, torch.sub, torch.mul, torch.maximum, lambda a, b: a / (1.0 + b * b),
          lambda a, b: torch.tanh(a @ b.t()) @ b, lambda a, b: torch.where(a > b, a, b * 2.0),
          lambda a, b: torch.stack([a, b]).sum(0),
          lambda a, b: F.conv2d(a[None, None], b[None, None, :3, :3], padding=1)[0, 0],
          lambda a, b: F.conv2d(a[None, None], b[None, None, :2, :2], padding="same")[0, 0],
          lambda a, b: F.batch_norm(a[None], *RUNNING, b[:, 0], b[:, 1], training=False)[0]]


@EVEN_SAME
@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 99), st.integers(0, 20), st.integers(0, 20)),
                min_size=1, max_size=6), st.integers(0, 2**16))
def test_random_functions_match_autograd(program, seed):
    def f(a, b):
        pool = [a, b]
        for binary, k, i, j in program:
            x, y = pool[i % len(pool)], pool[j % len(pool)]      # reuse: fan-out
            pool.append(BINARY[k % len(BINARY)](x, y) if binary else UNARY[k % len(UNARY)](x))
        return (pool[-1] * pool[-2]).sum()
    g = torch.Generator().manual_seed(seed)
    a, b = (torch.randn(3, 4, dtype=D, generator=g) for _ in range(2))
    check(f, a, b, params=[0], atol=1e-10)


# -- errors and the light import ---------------------------------------------------------------
class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, groups=2)

    def forward(self, x):
        h = self.conv(x)                                   # line of the conv
        return torch.cumsum(h, 1).sum() + torch.sort(h.flatten())[0].sum()


def test_unsupported_ops_are_named_with_their_line():
    import inspect
    lines, start = inspect.getsourcelines(Grouped.forward)
    with pytest.raises(nbbp.NbbpError) as err:
        nbbp.from_torch(Grouped().double(), torch.randn(1, 2, 5, 5, dtype=D))
    msg = str(err.value)
    here = f"test_import_torch.py:{start + 2}"
    assert msg == (f"from_torch: nbbp has no op for conv2d with groups=2 (nbbp's conv2d "
                   f"takes groups=1) at test_import_torch.py:{start + 1}; aten.cumsum at "
                   f"{here}; aten.sort at {here}. See docs/import.md for the ops that import.")


def test_batch_norm_while_training_is_refused():
    with pytest.raises(nbbp.NbbpError, match=r"batch_norm with batch statistics \(call "
                       r"model.eval\(\) before importing; track_running_stats=True\) at "
                       r"test_import_torch.py:\d+"):
        nbbp.from_torch(CNN().double().train(), torch.randn(2, 2, 6, 6, dtype=D),
                        torch.tensor([0, 1]))


def test_dropout_while_training_is_refused():
    with pytest.raises(nbbp.NbbpError, match=r"dropout in training mode \(call model.eval"):
        nbbp.from_torch(MLP().double().train(), torch.randn(5, 3, dtype=D))


def test_import_nbbp_stays_free_of_torch_and_jax():
    code = "import sys, nbbp; print(sorted(m for m in ('torch', 'jax') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
