"""Any identifier Python accepts is a node and scope name, everywhere: gradients,
pictures, step-through, files, sweeps; the TF1 layer keeps TensorFlow 1's ASCII rule."""

from __future__ import annotations

import re
import shutil

import pytest

import nbbp
from nbbp.view import explain, render
from nbbp.view import graphviz as _renderers
from nbbp.view.live import LivePicture
from nbbp.widgets.live_graph import css_class, parse_sliders

GREEK = "α = param(2.0)\nβ = α * α"
MIXED = "α = param(2.0)\nwith scope('слой'):\n    权重 = param(1.0)\n    β = α * α * 权重\n"
TWO_SCOPES = ("with scope('слой'):\n    a = param(1.0)\nwith scope('вход'):\n"
              "    b = param(2.0)\nf = a * b")


def test_greek_gradient_nodes_need_no_ascii(engine):
    m = nbbp.build(GREEK, engine=engine)
    assert m.value == 4.0 and m.grads == {"α": 4.0}
    assert m.grad_node(m.graph["α"]).name == "grad/dα"


def test_cyrillic_scope_and_chinese_param(engine):
    m = nbbp.build(MIXED, engine=engine)
    assert m.grads == {"α": 4.0, "слой/权重": 4.0}
    assert m.graph["слой/β"].scope == "слой"


@pytest.mark.parametrize("bad", ["1x", "a b", "", "x/", "-x"])
def test_names_that_are_not_identifiers_are_refused(bad):
    with pytest.raises(nbbp.BuildError, match=r"use a Python identifier \(letters of any "
                       r"alphabet, digits, _\)"):
        with nbbp.Graph():
            nbbp.param(1.0, name=bad)


def test_dot_text_keeps_the_names_and_ascii_ids():
    d = render.to_dot(nbbp.build(MIXED, engine="python"))
    assert "<B>α</B>" in d and "<B>权重</B>" in d and 'label="слой"' in d
    ids = re.findall(r'id="([^"]*)"', d)
    assert ids and all(i.isascii() for i in ids)
    assert 'id="cluster__u441__u43b__u43e__u439_"' in d


def test_scopes_in_other_alphabets_get_distinct_cluster_ids():
    d = render.to_dot(nbbp.build(TWO_SCOPES, engine="python"))
    clusters = re.findall(r'subgraph (cluster_\w+) ', d)
    assert len(clusters) == 2 and len(set(clusters)) == 2
    assert render.to_dot(nbbp.build(TWO_SCOPES, engine="python")) == d   # deterministic


@pytest.mark.parametrize("program", ["dot", "graphviz-pure"])
def test_svg_with_unicode_names(program):
    found = shutil.which("dot") if program == "dot" else next(
        iter(_renderers._graphviz_pure_paths()), None)
    assert found, f"{program} must be installed for these tests"
    m = nbbp.build(MIXED, engine="python")
    svg = render.svg(m, renderer=program)
    assert ">α<" in svg and ">权重<" in svg and ">слой<" in svg
    ids = re.findall(r'<g id="([^"]*)"', svg)
    assert ids and all(i.isascii() for i in ids)
    back = render.svg(m, renderer=program, backward=True)
    assert ">dα<" in back or "dα" in back


def test_step_through_text_uses_the_names():
    m = nbbp.build(GREEK, engine="python")
    st = explain.StepThrough(m, LivePicture(m).scene)
    _, text = st.explain(st.index_of("edge", "α"))
    assert "∂β/∂α" in text


def test_save_and_load_keep_the_names(tmp_path):
    m = nbbp.build(MIXED, engine="python")
    path = m.save(tmp_path / "unicode.nbbp") or tmp_path / "unicode.nbbp"
    back = nbbp.load(path, engine="python")
    assert back.grads == {"α": 4.0, "слой/权重": 4.0}
    assert render.to_dot(back) == render.to_dot(m)


def test_sliders_and_css_classes_take_unicode_names():
    assert parse_sliders(["α", "слой/权重=(-1,1)"]) == (["α", "слой/权重"],
                                                      {"слой/权重": (-1.0, 1.0)})
    assert css_class("слой/w") == "-u441--u43b--u43e--u439--w"
    assert css_class("слой") != css_class("вход") and css_class("w_1") == "w_1"


def test_a_sweep_over_a_unicode_model():
    res = nbbp.sweep("ω = param(3.0)\nλ = ω * ω", {"lr": [0.1, 0.2]}, steps=5,
                     client="serial", progress=False, params=True)
    assert [r.status for r in res.runs] == ["ok", "ok"]
    assert set(res.runs[0].params) == {"ω"}
    assert abs(float(res.runs[1].params["ω"]) - 3.0 * 0.6 ** 5) < 1e-9


def test_tf1_keeps_tensorflow_names_ascii():
    import nbbp.tf1 as tf
    with tf.Graph().as_default():
        with pytest.raises(tf.errors.UsageError, match=r"placeholder name: 'α' is not a valid "
                           r"name; TensorFlow 1 names use ASCII letters"):
            tf.placeholder(tf.float32, shape=(), name="α")
        with pytest.raises(tf.errors.UsageError, match="'слой' is not a valid name"):
            with tf.variable_scope("слой"):
                pass
