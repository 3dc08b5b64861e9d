"""The picture: DOT content (no renderer needed), rendering with system dot and with
graphviz-pure, and the text fallback when neither is there."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nbbp
from nbbp.core.ops import OPS
from nbbp.errors import NbbpError
from nbbp.view import graphviz as _renderers
from nbbp.view import render
from nbbp.view.render import fmt

ARTICLE = "x = param(3.0)\ny = param(2.0)\nf = x*x*y + y + 1"
MLP = """
x = input(X); y = input(Y)
with scope("hidden"):
    W1 = param(randn(2, 16) * 0.5); b1 = param(zeros(16))
    h = tanh(x @ W1 + b1)
with scope("out"):
    W2 = param(randn(16, 1) * 0.5); b2 = param(zeros(1))
    s = h @ W2 + b2
loss = mean(relu(1 - y * s)) + 1e-4 * sum(W1**2)
"""


def article(engine: str = "python"):
    return nbbp.build(ARTICLE, engine=engine, name="f")


def mlp():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((20, 2)), np.sign(rng.standard_normal((20, 1)))
    return nbbp.build(MLP, namespace={"X": X, "Y": Y}, engine="python", name="mlp")


def edge_attrs(dot: str, edge_id: str) -> str:
    m = re.search(rf'-> n\d+ \[id="{edge_id}"(.*)\]$', dot, re.M)
    assert m, f"no edge {edge_id}"
    return m.group(1)


def label(dot: str, edge_id: str) -> str | None:
    m = re.search(r', label="([^"]*)"', edge_attrs(dot, edge_id))
    return m and m.group(1)


# -- DOT content ----------------------------------------------------------------------
def test_article_edges_carry_the_contributions(engine):
    dot = render.to_dot(article(engine))
    # x → mul twice (x*x): 6 and 6; y → mul_1 (…*y): 9; y → add (+ y): 1
    assert label(dot, "e2_0") == label(dot, "e2_1") == "6"
    assert label(dot, "e3_1") == "9"
    assert label(dot, "e4_1") == "1"
    assert re.search(r"n0 -> n2 \[id=\"e2_0\"", dot) and "n1 -> n3 [id=\"e3_1\"" in dot
    # a node used twice shows its gradient as the visible sum of its contributions
    assert "12 = 6 + 6" in dot and "10 = 9 + 1" in dot


def test_nodes_show_name_op_value_grad_and_formula():
    dot = render.to_dot(article())
    n3 = re.search(r"^\s*n3 \[.*$", dot, re.M).group(0)
    assert "<B>mul_1</B>" in n3 and "mul * y" in n3
    assert 'value  </FONT></TD><TD ALIGN="RIGHT">18</TD>' in n3
    assert 'grad  </FONT></TD><TD ALIGN="RIGHT"><FONT COLOR="#08519c">1</FONT>' in n3
    assert 'tooltip="mul_1 = mul(mul, y)\\nline 3: f = x*x*y + y + 1\\nvalue: 18.0' in n3
    for pos in (0, 1):
        assert OPS["mul"].formula(pos) in n3           # ∂(a·b)/∂a = b, ∂(a·b)/∂b = a
    assert "<B>f</B> = 21" in dot                      # the caption


def test_literal_numbers_are_shown_in_their_consumer():
    dot = render.to_dot(article())
    assert "add + 1" in dot                            # f = add + 1: the 1 is inline
    assert "n5 [" not in dot and "e6_1" not in dot     # no node, no edge for it


def test_named_constants_are_small_text():
    m = nbbp.build("x = param(2.0)\nc = const(3.0)\nf = x * c", engine="python")
    dot = render.to_dot(m)
    const = re.search(r"^\s*n1 \[.*$", dot, re.M).group(0)
    assert "shape=plaintext" in const and 'label="c = 3"' in const and "TABLE" not in const
    assert "x * c" in dot and "label=" not in edge_attrs(dot, "e2_1")


def test_dot_is_deterministic_and_in_build_order():
    a, b = render.to_dot(article()), render.to_dot(article())
    assert a == b
    ids = [int(i) for i in re.findall(r"^\s*n(\d+) \[id=", a, re.M)]
    assert ids == sorted(ids) == [0, 1, 2, 3, 4, 6]     # n5 is the literal 1


def test_tensors_show_shape_summary_and_full_tooltip():
    m = mlp()
    dot = render.to_dot(m, thumbnails=False)      # pictures: tests/test_thumbnails.py
    w1 = m.graph["hidden/W1"]
    stmt = re.search(rf"^\s*n{w1.id} \[.*$", dot, re.M).group(0)
    assert "param · 2×16" in stmt and "mean " in stmt and "±" in stmt
    first, last = fmt(m.value_of(w1)[0, 0], 6), fmt(m.value_of(w1)[1, 15], 6)
    assert "value: shape (2, 16)" in stmt and first in stmt and last in stmt
    assert re.search(r'label="‖[0-9.e-]+‖"', dot)      # tensor edges carry a norm


def test_scopes_are_clusters_and_collapse_to_one_node():
    m = mlp()
    dot = render.to_dot(m)
    assert 'subgraph cluster_hidden { id="cluster_hidden"; label="hidden"' in dot
    assert "subgraph cluster_out" in dot
    c = render.to_dot(m, collapse=["hidden"])
    assert "cluster_hidden" not in c and "subgraph cluster_out" in c
    node = re.search(r"^\s*s_hidden \[.*$", c, re.M).group(0)
    assert "48 in 2 tensors" in node                   # 2×16 + 16 parameters
    assert "‖params‖" in node and "‖∂loss/∂params‖" in node
    assert re.search(r"n\d+ -> s_hidden", c) and re.search(r"s_hidden -> n\d+", c)


def test_nested_scopes_nest_clusters():
    m = nbbp.build('with scope("a"):\n    with scope("b"):\n        x = param(2.0)\n'
                   '    y = x * 3\nf = y + 1', engine="python")
    dot = render.to_dot(m)
    outer, inner = dot.index("subgraph cluster_a {"), dot.index("subgraph cluster_a__b {")
    assert outer < inner < dot.index("}", inner)
    assert "s_a" in render.to_dot(m, collapse="a") and "cluster_a" not in render.to_dot(
        m, collapse="a")


def test_unknown_collapse_scope_suggests():
    with pytest.raises(NbbpError, match=r"no such scope; did you mean 'hidden'"):
        render.to_dot(mlp(), collapse=["hiden"])


@pytest.mark.parametrize("bad, match", [
    (dict(rankdir="XY"), "rankdir must be"), (dict(precision=0), "precision must be"),
    (dict(max_nodes=-1), "max_nodes must be"), (dict(rankdr="LR"), "did you mean .rankdir."),
])
def test_bad_options_explain(bad, match):
    with pytest.raises(NbbpError, match=match):
        render.to_dot(article(), **bad)


def test_big_graphs_collapse_scopes_automatically():
    src = ["h = param(0.5)"] + [f'with scope("block{i}"):\n    for k in range(10):\n'
                                f'        h = sin(h) * 0.9' for i in range(40)] + ["f = h"]
    m = nbbp.build("\n".join(src), engine="python")
    assert len(m.forward) > 150
    dot = render.to_dot(m)
    assert "Collapsed to fit 150 nodes" in dot and "max_nodes=0" in dot
    assert len(re.findall(r"^\s*s_block\d+ \[", dot, re.M)) >= 1
    assert len(re.findall(r"^\s*(?:n\d+|s_\w+) \[id=", dot, re.M)) <= 150
    full = render.to_dot(m, max_nodes=0)
    assert "s_block" not in full and "Collapsed" not in full


def test_big_flat_graphs_keep_the_nodes_near_the_output():
    m = nbbp.build("h = param(0.5)\nfor k in range(200):\n    h = sin(h)\nf = h",
                   engine="python")
    dot = render.to_dot(m, max_nodes=50)
    assert "rest [id=\"rest\"" in dot and "earlier nodes not drawn" in dot
    assert f"n{m.output.id} [" in dot and "n0 [" not in dot
    assert len(re.findall(r"^\s*(?:n\d+|rest) \[id=", dot, re.M)) == 50


def test_vanishing_and_exploding_are_marked_and_explained():
    m = nbbp.build("x = param(1.0)\na = x * 1e-9\nb = x * 1e4\nf = a + b", engine="python")
    dot = render.to_dot(m)
    assert f'color="{render.RED}"' in edge_attrs(dot, "e4_0")     # x → b carries 1e4
    assert "style=dashed" in edge_attrs(dot, "e2_0")              # x → a carries 1e-9
    assert "vanishing, below 1e-6" in dot and "exploding, above 1e3" in dot
    quiet = render.to_dot(article())
    assert "vanishing" not in quiet and "exploding" not in quiet


def test_no_grad_shows_values_only():
    dot = render.to_dot(article(), grad=False)
    assert "grad  <" not in dot and "label=\"6\"" not in dot and "∂" not in dot
    assert "value  <" in dot and ">21<" in dot


def test_backward_draws_the_gradient_graph():
    m = article()
    dot = render.to_dot(m, backward=True)
    assert "subgraph cluster_grad" in dot and "backward pass" in dot
    dx = m.grad_node("x")
    stmt = re.search(rf"^\s*n{dx.id} \[.*$", dot, re.M).group(0)
    assert ">12<" in stmt and "= ∂f/∂x" in stmt
    assert f'n{m.output.id} -> n{m.grad_node(m.output).id} [id="b_seed"' in dot
    assert "b_seed" not in render.to_dot(m)


def test_rankdir_auto_and_explicit():
    assert "rankdir=LR" in render.to_dot(article())            # shallow: left to right
    assert "rankdir=TB" in render.to_dot(article(), rankdir="tb")
    assert "rankdir=TB" in render.to_dot(mlp())                # deep: top to bottom


def test_precision():
    m = nbbp.build("w = param(0.881373587)\nf = tanh(w)", engine="python")
    assert ">0.8814<" in render.to_dot(m) and ">0.88<" in render.to_dot(m, precision=2)


def test_remembered_options_are_the_defaults():
    m = article()
    render.remember(m, rankdir="TB", grad=False)
    assert "rankdir=TB" in render.to_dot(m) and "grad  <" not in render.to_dot(m)
    assert "rankdir=LR" in render.to_dot(m, rankdir="LR")


@pytest.mark.parametrize("v, p, text", [
    (6.0, 4, "6"), (21.0, 4, "21"), (0.8813735870195432, 4, "0.8814"), (-1.5, 4, "-1.5"),
    (12345.6, 4, "1.235e4"), (1e-9, 3, "1e-9"), (0.0, 4, "0"), (-0.0, 4, "0"),
    (float("nan"), 4, "nan"), (float("inf"), 4, "inf"), (float("-inf"), 4, "-inf"),
])
def test_number_format(v, p, text):
    assert fmt(v, p) == text


def test_listing_has_values_and_edge_gradients():
    text = render.listing(article())
    assert "12 = 6 + 6" in text and "10 = 9 + 1" in text
    assert re.search(r"y\s+→\s+mul_1\s+9", text) and re.search(r"x\s+→\s+mul\s+6", text)


# -- renderers ---------------------------------------------------------------------------
GP = next(iter(_renderers._graphviz_pure_paths()), None)


@pytest.fixture(params=["dot", "graphviz-pure"])
def renderer(request) -> str:
    path = shutil.which("dot") if request.param == "dot" else GP
    assert path, f"{request.param} must be installed for these tests (CI installs it)"
    return request.param


def test_svg_with_each_renderer(renderer, capfd):
    m = article()
    svg = render.svg(m, renderer=renderer)
    assert svg.count("<svg") == 1 and 'style="max-width:100%;height:auto"' in svg
    assert '<g id="e2_0" class="edge">' in svg and '<g id="n6" class="node">' in svg
    assert re.search(r'<g id="e3_1" class="edge">.*?>9</text>', svg, re.S)
    out, err = capfd.readouterr()
    assert out == err == ""          # the renderer's warnings (∂ widths) never leak


def test_save_svg_png_dot(renderer, tmp_path):
    m = article()
    assert render.save(m, tmp_path / "g.svg", renderer=renderer).read_text().count("<svg")
    png = render.save(m, tmp_path / "g.png", renderer=renderer).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert (render.save(m, tmp_path / "g.dot").read_text(encoding="utf-8")
            == render.to_dot(m))
    with pytest.raises(NbbpError, match=r"\.svg, \.png or \.dot"):
        render.save(m, tmp_path / "g.pdf")


def test_graphviz_pure_svg_is_byte_stable():
    assert GP, "graphviz-pure must be installed (pip install graphviz-pure==0.2.2)"
    a = render.svg(article(), renderer="graphviz-pure")
    b = render.svg(article(), renderer="graphviz-pure")
    assert a == b and "graphviz-pure" in a


def test_mimebundle_has_svg_and_text():
    bundle = render.mimebundle(article())
    assert set(bundle) == {"image/svg+xml", "text/plain"}
    assert bundle["text/plain"].startswith("<Model 'f'")


@pytest.fixture
def no_renderer(monkeypatch, tmp_path):
    """Neither system dot nor graphviz-pure can be found."""
    monkeypatch.delenv("NBBP_DOT", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(_renderers, "_graphviz_pure_paths", lambda: [])


def test_without_any_renderer_the_cell_shows_a_listing(no_renderer):
    m = article()
    assert render.find_renderer() is None
    bundle = render.mimebundle(m)
    assert list(bundle) == ["text/plain"]
    text = bundle["text/plain"]
    assert "12 = 6 + 6" in text and re.search(r"y\s+→\s+mul_1\s+9", text)
    assert text.splitlines()[-1] == render.INSTALL_HINT
    assert "pip install graphviz-pure==0.2.2" in render.INSTALL_HINT
    with pytest.raises(render.RenderError, match="no Graphviz renderer"):
        render.svg(m)
    assert render.to_dot(m)            # DOT text needs no program


def _script(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_discovery_order(monkeypatch, tmp_path):
    assert GP and shutil.which("dot")
    monkeypatch.setenv("NBBP_DOT", GP)
    assert render.find_renderer().kind == "NBBP_DOT"
    monkeypatch.setenv("NBBP_DOT", "graphviz-pure")
    assert render.find_renderer().path == GP
    monkeypatch.delenv("NBBP_DOT")
    assert render.find_renderer().kind == "dot"                  # dot on PATH comes next
    monkeypatch.setenv("PATH", str(tmp_path))
    assert render.find_renderer().kind == "graphviz-pure"        # then graphviz-pure
    monkeypatch.setenv("NBBP_DOT", "none")
    assert render.find_renderer() is None
    assert list(render.mimebundle(article())) == ["text/plain"]


def test_a_broken_renderer_is_skipped(monkeypatch, tmp_path):
    broken = _script(tmp_path, "fakedot", "echo 'Error: no layout' >&2; exit 3")
    monkeypatch.setenv("NBBP_DOT", broken)
    r = render.find_renderer()
    assert r is not None and r.path != broken
    assert "exit status 3" in _renderers.diagnose()


def test_renderer_failure_is_an_error_but_display_falls_back(monkeypatch, tmp_path):
    # passes the check (prints a tiny SVG for the probe graph) but fails on real graphs
    probe = '<svg><g class="edge"></g></svg>'
    flaky = _script(tmp_path, "flaky", f'if grep -q "e2_0" ; then echo "Error: boom" >&2; '
                                       f"exit 1; fi; echo '{probe}'")
    m = article()
    with pytest.raises(render.RenderError, match="boom"):
        render.svg(m, renderer=flaky)
    bundle = render.mimebundle(m, renderer=flaky)
    assert list(bundle) == ["text/plain"] and "boom" in bundle["text/plain"]


def test_mimebundle_never_raises():
    class Broken:
        name = "broken"

        def __repr__(self):
            raise RuntimeError("no repr either")

    bundle = render.mimebundle(Broken())
    assert "text/plain" in bundle and "Broken" in bundle["text/plain"]


def test_import_nbbp_stays_light():
    code = ("import sys, nbbp; print(sorted(m for m in ('IPython', 'graphviz', "
            "'nbbp.view.render', 'nbbp.magic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"}, check=True)
    assert out.stdout.strip() == "[]"


# -- random graphs with shared sub-expressions (fan-out is where pictures go wrong) ----
_BIN, _UN = ("+", "*", "-"), ("tanh", "sin")


@st.composite
def programs(draw):
    names = ["a", "b", "c"]
    lines = [f"{n} = param({draw(st.floats(-2, 2, allow_nan=False)):.3f})" for n in names]
    for k in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):
            u, v = draw(st.sampled_from(names)), draw(st.sampled_from(names))
            expr = f"{u} {draw(st.sampled_from(_BIN))} {v}"
        else:
            expr = f"{draw(st.sampled_from(_UN))}({draw(st.sampled_from(names))})"
        names.append(f"v{k}")
        lines.append(f"v{k} = {expr}")
    return "\n".join(lines)


@settings(max_examples=40, deadline=None)
@given(programs())
def test_random_graphs_label_every_edge_with_its_contribution(src):
    m = nbbp.build(src, engine="python")
    dot = render.to_dot(m, max_nodes=0)
    assert dot == render.to_dot(m, max_nodes=0)
    sums: dict[str, list[float]] = {}
    for n in m.forward:
        for pos, x in enumerate(n.inputs):
            gn = m.edge_grad_node(n, pos)
            if gn is None:
                continue
            g = m.value_of(gn)
            sums.setdefault(x.name, []).append(g)
            if f'"e{n.id}_{pos}"' in dot and f"g{n.id}_{pos}" not in dot:
                assert label(dot, f"e{n.id}_{pos}") == fmt(g, 4)
    for name, parts in sums.items():
        node = m.graph[name]
        assert np.isclose(sum(parts), m.grad_of(node), rtol=1e-9, atol=1e-12)
        stmt = re.search(rf"^\s*n{node.id} \[.*$", dot, re.M).group(0)
        row = re.search(r'grad  </FONT></TD><TD ALIGN="RIGHT"><FONT COLOR="#08519c">([^<]*)',
                        stmt).group(1)
        assert row.startswith(fmt(m.grad_of(node), 4))
        if 2 <= len(parts) <= 4:
            assert row.count("+") + row.count(" - ") == len(parts) - 1
