"""Tensors drawn as pictures: small tensors as their elements, larger ones as heat maps.

Oracles: Pillow decodes the PNGs (an independent PNG reader); the colour of every
element is recomputed here from the diverging stops / the greyscale with NumPy
(np.interp), not read from nbbp's palette; bytes are compared across processes with
different hash seeds; the live picture's image data is compared with a fresh
thumbnail of the model's new values.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import nbbp
from nbbp.view import graphviz as _renderers
from nbbp.view import render, thumbs
from nbbp.view.live import LivePicture, Overlay
from nbbp.view.style import PENDING

GP = next(iter(_renderers._graphviz_pure_paths()), None)
STOPS = ["#2166ac", "#92c5de", "#f7f7f7", "#f4a582", "#b2182b"]    # RdBu, −max … +max
URI = re.compile(r'xlink:href="data:image/png;base64,([^"]+)"')

CNN_ISH = """
x = input(X)
K = param(randn(3, 3, 1, 4) * 0.5)
W = param(randn(64, 3) * 0.1)
v = param([1.0, -2.0, 3.0])
h = tanh(reshape(x, (5, 64)) @ W)
loss = mean(h * h) + sum(v * v) + sum(K * K)
"""


def cnn_ish():
    X = np.random.default_rng(1).uniform(0.0, 1.0, (5, 8, 8, 1))
    return nbbp.build(CNN_ISH, namespace={"X": X}, engine="python", name="cnn")


def rgb(c: str) -> np.ndarray:
    return np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def reference_colours(a: np.ndarray, signed: bool) -> np.ndarray:
    """What each element should look like, from the stated colour scales."""
    top = np.abs(a).max()
    if signed:
        t = np.round(a / top * 32) / 32                 # 65 steps from −1 to 1
        stops = np.array([rgb(c) for c in STOPS])
        return np.stack([np.interp(t, [-1, -0.5, 0, 0.5, 1], stops[:, k]) for k in range(3)], -1)
    t = np.round(a / top * 32) / 32
    return np.repeat((255.0 * (1 - t))[..., None], 3, axis=-1)


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)


@pytest.mark.parametrize("signed", [True, False])
def test_colours_follow_the_scale(signed):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 9)) if signed else rng.uniform(0, 3, size=(7, 9))
    a[0, 0] = 0.0
    got = decode(thumbs.thumbnail(a, signed=signed).png)
    np.testing.assert_allclose(got, reference_colours(a, signed), atol=1.0)
    if signed:
        a[1, 1], a[2, 2] = np.abs(a).max(), -np.abs(a).max()
        got = decode(thumbs.thumbnail(a, signed=True).png)
        assert got[0, 0].tolist() == rgb("#f7f7f7").tolist()          # 0 → the neutral colour
        assert got[1, 1].tolist() == rgb("#b2182b").tolist()          # +max → red end
        assert got[2, 2].tolist() == rgb("#2166ac").tolist()          # −max → blue end
    else:
        assert got[0, 0].tolist() == [255.0] * 3                        # 0 → white
        assert got.reshape(-1, 3)[np.argmax(a)].tolist() == [0.0] * 3   # max → black


def test_values_with_both_signs_are_diverging_and_non_finite_stand_out():
    a = np.array([[0.0, 1.0], [-1.0, np.nan]]).repeat(2, 1)
    got = decode(thumbs.thumbnail(a).png)
    assert got[0, 0].tolist() == rgb("#f7f7f7").tolist()
    assert got[1, 3].tolist() == [255.0, 0.0, 255.0]                    # nan: magenta


def test_png_bytes_are_the_same_in_every_process():
    code = ("import numpy as np, sys; from nbbp.view import thumbs; "
            "a = np.sin(np.arange(300.0)).reshape(3, 10, 10); "
            "sys.stdout.buffer.write(thumbs.thumbnail(a, signed=True).png)")
    outs = []
    for seed in ("0", "1"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.append(subprocess.run([sys.executable, "-c", code], capture_output=True, env=env,
                                   check=True).stdout)
    a = np.sin(np.arange(300.0)).reshape(3, 10, 10)
    here = thumbs.thumbnail(a, signed=True).png
    assert outs[0] == outs[1] == here and here.startswith(b"\x89PNG")
    assert decode(here).shape == (10, 32, 3)                  # 3 tiles of 10×10 in a row


def test_filter_bank_and_batch_layouts():
    K = np.random.default_rng(2).normal(size=(3, 3, 1, 4))
    t = thumbs.thumbnail(K, signed=True, filters=True)
    top = np.abs(K).max()
    expect = thumbs.indices(K / top * top, True)              # one scale for every tile
    # 4 filters of one input channel: a grid of 3 across, 2 down, one-cell gaps
    assert t.index.shape == (7, 11)
    for k in range(4):
        r, c = divmod(k, 3)
        np.testing.assert_array_equal(t.index[4 * r:4 * r + 3, 4 * c:4 * c + 3],
                                      expect[:, :, 0, k])
    assert (t.index[3, :] == thumbs.GAP).all() and (t.index[4:, 8:] == thumbs.GAP).all()
    bank = thumbs.thumbnail(np.ones((3, 3, 2, 5)), filters=True)
    assert bank.index.shape == (2 * 4 - 1, 5 * 4 - 1)        # input channels down, outputs across
    batch = np.random.default_rng(3).uniform(size=(6, 8, 8, 1))
    first = thumbs.thumbnail(batch)
    np.testing.assert_array_equal(first.index, thumbs.indices(batch[0, :, :, 0], False))
    assert "first image of 6" in first.note


def test_large_axes_are_sampled_and_sizes_are_bounded():
    t = thumbs.thumbnail(np.arange(2000.0).reshape(200, 10))
    assert t.index.shape == (48, 10) and "48 of 200" in t.note
    assert t.width == 12.0 and t.height == 56.0               # at most 56 pt, at least 12
    assert thumbs.thumbnail(np.ones((8, 8))).width == 48.0     # 6 pt a cell


def test_small_tensors_show_their_elements():
    m = nbbp.build("v = param([1.0, -2.0, 3.0])\nf = sum(v * v)", engine="python", name="f")
    dot = render.to_dot(m)
    stmt = re.search(r"^\s*n0 \[.*$", dot, re.M).group(0)
    assert ">[1, -2, 3]<" in stmt and ">[2, -4, 6] = Σ of 2 edges<" in stmt   # not a norm
    assert "‖" not in stmt.split("tooltip=")[0]
    m6 = nbbp.build("W = param(np.arange(6.0).reshape(2, 3))\nf = sum(W * W)",
                    engine="python", name="f")
    stmt = re.search(r"^\s*n0 \[.*$", render.to_dot(m6), re.M).group(0)
    assert ">[0, 1, 2, 3, 4, 5]<" in stmt and ">[0, 2, 4, 6, 8, 10] = Σ of 2 edges<" in stmt
    assert "#fe00" not in stmt                                  # 6 elements: numbers, no picture


def test_dot_marks_a_cell_per_picture_and_thumbnails_can_be_off():
    m = cnn_ish()
    dot = render.to_dot(m)
    # x (value; an input has a gradient too), K, W, matmul, h, … each value and grad
    marks = re.findall(r'BGCOLOR="(#fe[0-9a-f]{4})"', dot)
    assert marks == [thumbs.sentinel(i) for i in range(len(marks))] and len(marks) >= 8
    k = m.graph["K"]
    stmt = re.search(rf"^\s*n{k.id} \[.*$", dot, re.M).group(0)
    assert "picture: the 4 filters (3×3) as tiles" in stmt and "value: shape (3, 3, 1, 4)" in stmt
    assert re.search(r">mean -?[0-9.e-]+ · -?[0-9.e-]+ … -?[0-9.e-]+<", stmt)
    off = render.to_dot(m, thumbnails=False)
    assert "#fe00" not in off and "±" in off


@pytest.fixture(params=["dot", "graphviz-pure"])
def renderer(request) -> str:
    path = shutil.which("dot") if request.param == "dot" else GP
    assert path, f"{request.param} must be installed for these tests (CI installs it)"
    return request.param


def test_svg_and_png_hold_the_pictures_with_each_renderer(renderer, tmp_path):
    m = cnn_ish()
    svg = render.svg(m, renderer=renderer)
    sc_images = re.findall(r'BGCOLOR="#fe', render.to_dot(m))
    assert "#fe00" not in svg                                   # every marker replaced
    found = URI.findall(svg)
    assert len(found) == len(sc_images)
    k = m.graph["K"]
    want = thumbs.thumbnail(m.value_of(k), filters=True).data_uri.split(",")[1]
    node = re.search(rf'<g id="n{k.id}" class="node">.*?</g>\s*(?=<g id=)', svg, re.S).group(0)
    assert want in node                                         # K's picture inside K's node
    png = render.save(m, tmp_path / "g.png", renderer=renderer).read_bytes()
    assert png.startswith(b"\x89PNG") and not list(tmp_path.glob("n*_value.png"))


def test_a_slider_move_changes_the_picture_in_the_live_frame(renderer):
    m = cnn_ish()
    pic = LivePicture(m, renderer=renderer)
    assert pic.mode == "live"
    w = m.graph["W"]
    before = pic.svg()
    m.set(W=-3.0 * np.asarray(m.value_of(w)))
    after = pic.svg()
    assert pic.layouts == 1                                     # refilled, not laid out again
    want = thumbs.thumbnail(m.value_of(w)).data_uri.split(",")[1]
    assert want in after and want not in before
    assert len(URI.findall(after)) == len(URI.findall(before))
    assert pic.numbers(after)[f"n{w.id}"][4] == pic.scene.value_text(w)
    # the step-through fades a picture not computed yet
    faded = pic.svg(Overlay(value={w.id: ("pending", PENDING, True)}))
    assert faded.count('opacity="0.25"') == 1


def test_magic_flag_turns_pictures_off():
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython
    ip = start_ipython() or get_ipython()
    ip.run_line_magic("load_ext", "nbbp")
    ip.user_ns["X"] = np.ones((3, 4))
    try:
        on = ip.run_cell_magic("bpgraph", "g --engine python", "x = input(X)\ng = sum(x * x)")
        off = ip.run_cell_magic("bpgraph", "g --no-thumbnails --engine python",
                                "x = input(X)\ng = sum(x * x)")
        assert "#fe0000" in on.to_dot() and "#fe00" not in off.to_dot()
    finally:
        ip.user_ns.pop("X", None); ip.user_ns.pop("g", None)


def test_the_text_listing_has_no_pictures_so_it_keeps_norms():
    from nbbp.view.listing import listing
    text = listing(cnn_ish())
    row = next(line for line in text.splitlines() if line.split()[:1] == ["W"])
    assert "‖" in row and "±" in row and " … " not in row
