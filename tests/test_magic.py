"""``%%bpgraph`` through a real IPython shell: the model lands in the namespace, options
reach the picture, and every mistake is a one-line UsageError pointing into the cell."""

from __future__ import annotations

import re

import numpy as np
import pytest
from IPython.core.error import UsageError
from IPython.testing.globalipapp import get_ipython, start_ipython

from nbbp.magic import BpgraphMagics, Picture
from nbbp.view import graphviz as _renderers
from nbbp.view import render

ARTICLE = "x = param(3.0)\ny = param(2.0)\nf = x*x*y + y + 1"


@pytest.fixture(scope="module")
def ip():
    shell = start_ipython() or get_ipython()     # one shell per process, shared
    shell.run_line_magic("load_ext", "nbbp")
    return shell


@pytest.fixture(autouse=True)
def fresh(ip):
    """Default options and a clean namespace for every test."""
    ip.run_line_magic("config", "BpgraphMagics.engine = 'python'")
    yield
    for trait in ("rankdir", "precision", "backward", "grad", "formulas", "max_nodes",
                  "renderer"):
        ip.run_line_magic("config", f"BpgraphMagics.{trait} = "
                          f"{BpgraphMagics.class_traits()[trait].default_value!r}")
    for name in ("f", "g", "mlp", "X", "Y", "s"):
        ip.user_ns.pop(name, None)


def bpgraph(ip, line: str, cell: str):
    return ip.run_cell_magic("bpgraph", line, cell)


def test_cell_defines_the_model_and_shows_it(ip):
    pic = bpgraph(ip, "f", ARTICLE)
    m = ip.user_ns["f"]
    assert isinstance(pic, Picture) and pic.model is m
    assert m.value == 21.0 and m.grads == {"x": 12.0, "y": 10.0}
    dot = pic.to_dot()
    assert len(re.findall(r'-> n2 \[id="e2_[01]", label="6"', dot)) == 2
    assert 'id="e3_1", label="9"' in dot and 'id="e4_1", label="1"' in dot
    bundle = pic._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]


def test_default_engine_is_the_compiled_one(ip):
    ip.run_line_magic("config", "BpgraphMagics.engine = 'numba'")
    bpgraph(ip, "f", ARTICLE)
    assert ip.user_ns["f"].engine == "numba" and ip.user_ns["f"].value == 21.0


def test_notebook_names_are_in_reach(ip):
    rng = np.random.default_rng(0)
    ip.user_ns["X"] = rng.standard_normal((10, 2))
    ip.user_ns["Y"] = np.sign(rng.standard_normal((10, 1)))
    pic = bpgraph(ip, "mlp --collapse hidden", """
x = input(X); y = input(Y)
with scope("hidden"):
    W = param(randn(2, 4)); b = param(zeros(4))
    h = tanh(x @ W + b)
loss = mean(relu(1 - y * (h @ param(randn(4, 1)))))""")
    assert ip.user_ns["mlp"].inputs["x"].shape == (10, 2)
    assert "s_hidden [" in pic.to_dot() and "12 in 2 tensors" in pic.to_dot()


@pytest.mark.parametrize("line, check", [
    ("f --rankdir TB", lambda d: "rankdir=TB" in d),
    ("f --rankdir lr", lambda d: "rankdir=LR" in d),
    ("f --precision 2 --output mul_1", lambda d: "<B>f</B> = 18" in d and "∂mul_1/∂node" in d),
    ("f --backward", lambda d: "cluster_grad" in d and "b_seed" in d),
    ("f --no-grad", lambda d: "grad  <" not in d and 'label="6"' not in d),
    ("f --no-formulas", lambda d: 'POINT-SIZE="9">∂(a·b)' not in d and 'label="6"' in d),
    ("f --engine python", lambda d: 'label="9"' in d),
    ("f --max-nodes 3", lambda d: "earlier nodes not drawn" in d),
])
def test_options_reach_the_picture(ip, line, check):
    assert check(bpgraph(ip, line, ARTICLE).to_dot())


def test_defaults_come_from_config(ip):
    ip.run_line_magic("config", "BpgraphMagics.rankdir = 'TB'")
    ip.run_line_magic("config", "BpgraphMagics.backward = True")
    ip.run_line_magic("config", "BpgraphMagics.precision = 2")
    dot = bpgraph(ip, "f", "w = param(0.881373587)\nf = tanh(w)").to_dot()
    assert "rankdir=TB" in dot and "cluster_grad" in dot and ">0.88<" in dot
    assert "rankdir=LR" in bpgraph(ip, "f --rankdir LR --no-backward", ARTICLE).to_dot()


def test_the_model_remembers_its_picture_options(ip):
    bpgraph(ip, "f --rankdir TB --no-grad", ARTICLE)
    dot = render.to_dot(ip.user_ns["f"])
    assert "rankdir=TB" in dot and "grad  <" not in dot


BAD_CELLS = [
    pytest.param("f", "x = param(3.0)\ny = param(2.0\nf = x * y",
                 ["syntax error", "cell line 3", "y = param(2.0", "^"], id="syntax-error"),
    pytest.param("f", "x = param(3.0)\nf = tanhh(x)",
                 ["cell line 3", "unknown name 'tanhh'", "did you mean 'tanh'",
                  "f = tanhh(x)", "    ^"], id="unknown-op"),
    pytest.param("f", "a = param([1.0, 2.0, 3.0])\nb = param([1.0, 2.0])\nf = sum(a * b)",
                 ["cell line 4", "(3,) and (2,) do not broadcast", "f = sum(a * b)", "^"],
                 id="shape-mismatch"),
    pytest.param("f --colour red", ARTICLE, ["unrecognized arguments: --colour red"],
                 id="unknown-option"),
    pytest.param("f --rankdir XY", ARTICLE, ["rankdir must be", "'XY'"], id="bad-rankdir"),
    pytest.param("f --precision many", ARTICLE, ["--precision", "invalid int value"],
                 id="non-numeric-option"),
    pytest.param("f --engine jax", ARTICLE, ["--engine jax", "numba", "python"],
                 id="unknown-engine"),
    pytest.param("f --collapse hiden", 'with scope("hidden"):\n    x = param(1.0)\nf = x*x',
                 ["no such scope", "did you mean 'hidden'"], id="unknown-scope"),
    pytest.param("f", "\n   \n", ["the cell is empty"], id="empty-body"),
    pytest.param("", ARTICLE, ["the following arguments are required: name"],
                 id="no-name"),
    pytest.param("2f", ARTICLE, ["must be a Python variable name"], id="bad-name"),
    pytest.param("f --output g", ARTICLE, ["%%bpgraph f: output 'g' is not a node", "Valid node names"],
                 id="unknown-output"),
    pytest.param("f", "x = param(s)\nf = x * x",
                 ["cell line 2", "needs a number", "got str 'abc'", "x = param(s)"],
                 id="non-numeric-namespace-value"),
    pytest.param("f", "x = param(-1.0)\nf = log(x)",
                 ["cell line 3", "log", "produced nan"], id="nan"),
]


@pytest.mark.parametrize("line, cell, expected", BAD_CELLS)
def test_mistakes_are_usage_errors_and_keep_the_old_model(ip, line, cell, expected):
    ip.user_ns["s"] = "abc"
    bpgraph(ip, "f", ARTICLE)
    old = ip.user_ns["f"]
    with pytest.raises(UsageError) as info:
        bpgraph(ip, line, cell)
    message = str(info.value)
    for part in expected:
        assert part in message, message
    assert "Traceback" not in message
    assert ip.user_ns["f"] is old                      # NAME is untouched


def test_rerunning_a_cell_after_an_error(ip, capsys):
    ip.run_cell(f"%%bpgraph f\n{ARTICLE}")
    first = ip.user_ns["f"]
    result = ip.run_cell("%%bpgraph f\nx = param(3.0)\nf = x * y")
    assert isinstance(result.error_in_exec, UsageError)
    out, err = capsys.readouterr()
    shown = out + err
    assert "UsageError: cell line 3, col 9: unknown name 'y'" in shown
    assert "Traceback" not in shown and "site-packages" not in shown
    assert ip.user_ns["f"] is first
    result = ip.run_cell("%%bpgraph f\nx = param(3.0)\ny = param(1.0)\nf = x * y")
    assert result.success and ip.user_ns["f"] is not first and ip.user_ns["f"].value == 3.0


def test_cell_output_without_any_renderer(ip, monkeypatch, tmp_path):
    monkeypatch.delenv("NBBP_DOT", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(_renderers, "_graphviz_pure_paths", lambda: [])
    bundle = bpgraph(ip, "f", ARTICLE)._repr_mimebundle_()
    assert list(bundle) == ["text/plain"]
    assert "12 = 6 + 6" in bundle["text/plain"] and "pip install graphviz-pure" in \
        bundle["text/plain"]


def test_renderer_option(ip):
    ip.run_line_magic("config", "BpgraphMagics.renderer = 'graphviz-pure'")
    svg = bpgraph(ip, "f", ARTICLE)._repr_mimebundle_()["image/svg+xml"]
    assert "graphviz-pure" in svg
    assert list(bpgraph(ip, "f --renderer none", ARTICLE)._repr_mimebundle_()) == \
        ["text/plain"]


def test_the_manual(ip):
    doc = ip.find_cell_magic("bpgraph").__doc__
    for part in ("%%bpgraph", "name", "--output", "--rankdir", "--precision", "--backward",
                 "--collapse", "--no-grad", "--engine", "--max-nodes", "--renderer",
                 "--formulas", "Examples", "x*x*y + y + 1", "%config BpgraphMagics"):
        assert part in doc, part


def test_model_picture_methods(ip, tmp_path):
    """to_dot, svg, save and _repr_mimebundle_ delegate to nbbp.view.render; ``save``
    dispatches on the suffix: pictures to render.save, anything else to nbbp.io."""
    import nbbp

    bpgraph(ip, "f --rankdir TB", ARTICLE)
    m = ip.user_ns["f"]
    assert "rankdir=TB" in m.to_dot() and m.svg().count("<svg") == 1
    m.save(tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    m.save(tmp_path / "f.dot")
    assert (tmp_path / "f.dot").read_text(encoding="utf-8") == m.to_dot()
    data, _ = ip.display_formatter.format(m)
    assert "<svg" in data["image/svg+xml"] and data["text/plain"].startswith("<Model 'f'")
    m.save(tmp_path / "f.nbbp")
    assert nbbp.load(tmp_path / "f.nbbp").grads == m.grads


def test_load_ext_preloads_the_kernels_in_the_background(ip):
    """After %load_ext the kernels load in a thread; a model built meanwhile waits for
    the same load (one lock), never a second compile."""
    import threading

    from nbbp.core import engine
    thread = engine.preload(("run_scalar",))
    assert isinstance(thread, threading.Thread) and thread.daemon
    thread.join(timeout=60)
    assert not thread.is_alive() and "run_scalar" in engine._loaded


def test_dtype_option_makes_the_cells_leaves_and_numbers_float32(ip):
    bpgraph(ip, "f --dtype float32 --renderer none",
            "x = param(3.0)\nw = param(2.0, dtype='float64')\nf = x * x * 2.0")
    m = ip.user_ns["f"]
    assert m.graph["x"].dtype == "float32" and m.graph["w"].dtype == "float64"
    assert type(m.value) is np.float32 and m.value == 18.0


def test_an_unknown_dtype_option_is_a_usage_error_naming_the_accepted_ones(ip):
    with pytest.raises(UsageError, match="float32") as info:
        bpgraph(ip, "f --dtype flaot32", "x = param(3.0)\nf = x * x")
    assert "float64" in str(info.value) and "f" not in ip.user_ns
