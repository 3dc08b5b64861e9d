"""Wide pictures scale to the cell's width, down to MIN_SCALE, then scroll sideways.

The rule is HTML: an outer box that scrolls sideways, an inner box at least
``MIN_SCALE`` × the picture's natural width, the SVG at most 100 % of it with its
height following. These tests check that the static picture (in a Jupyter kernel) and
every frame of the live picture carry it, and that it is deterministic;
``tests/test_browser.py`` checks what Chromium makes of it in JupyterLab.
"""

from __future__ import annotations

import re
import sys
import types

import nbbp
from nbbp.view import dot
from nbbp.view.dot import MIN_SCALE, fit_cell
from nbbp.view.live import LivePicture

WIDE = ("\n".join(f"p{i} = param({i % 5}.0)" for i in range(10))
        + "\nwide = " + " + ".join(f"p{i}*p{i + 1}" for i in range(0, 10, 2)))
RULE = re.compile(r'^<div class="nbbp-picture" style="overflow-x:auto;max-width:100%">'
                  r'<div style="min-width:([0-9.]+)pt"><svg style="max-width:100%;height:auto" '
                  r'width="([0-9.]+)pt" height="[0-9.]+pt"')


def natural_and_least(html: str) -> tuple[float, float]:
    m = RULE.match(html)
    assert m, html[:300]
    assert html.endswith("</svg>\n</div></div>") or html.endswith("</svg></div></div>"), \
        html[-80:]
    return float(m.group(2)), float(m.group(1))


def test_fit_cell_wraps_the_svg_in_the_scaling_rule():
    svg = nbbp.build(WIDE).svg()
    html = fit_cell(svg)
    width, least = natural_and_least(html)
    assert width > 600 and abs(least - width * MIN_SCALE) < 0.01
    assert MIN_SCALE == 0.6
    assert "<?xml" not in html and "<!DOCTYPE" not in html      # HTML, not an XML file
    assert html.count("<svg") == 1 and svg[svg.index("<svg"):] in html
    assert fit_cell(svg) == html                                # deterministic


def test_the_static_picture_in_a_kernel_carries_the_rule(monkeypatch):
    m = nbbp.build(WIDE)
    assert not dot.in_notebook()                 # pytest: SVG and text, as before
    assert set(dot.mimebundle(m)) == {"image/svg+xml", "text/plain"}

    class ZMQInteractiveShell:                   # what ipykernel's shell is called
        pass
    fake = types.ModuleType("IPython")
    fake.get_ipython = ZMQInteractiveShell
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert dot.in_notebook()
    bundle = dot.mimebundle(m)
    assert set(bundle) == {"text/html", "image/svg+xml", "text/plain"}
    assert bundle["text/html"] == fit_cell(bundle["image/svg+xml"])
    natural_and_least(bundle["text/html"])


def test_every_live_frame_carries_the_rule():
    m = nbbp.build(WIDE)
    pic = LivePicture(m)
    first = pic.svg()
    width, least = natural_and_least(first)
    assert abs(least - width * MIN_SCALE) < 0.01
    m.set(p0=2.0)
    second = pic.svg()
    assert second != first and natural_and_least(second) == (width, least)
    assert pic.layouts == 1                      # the rule costs no new layout


def test_the_redrawn_live_picture_carries_it_too():
    m = nbbp.build(WIDE)
    pic = LivePicture(m)
    pic.mode = "redraw"                          # what an unexpected SVG falls back to
    natural_and_least(pic.svg())
