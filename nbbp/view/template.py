"""The live picture's template: the scene laid out once, with placeholders for numbers.

:class:`TemplateScene` draws every number that can change as a run of zeros at least as
wide as any number it will hold (no real label contains such a run), so
:class:`~nbbp.view.live.LivePicture` can find the slots in the SVG. :func:`units` and
:func:`digit_widths` size those slots in the renderer's own text metrics.

>>> units("-1.5"), units("000")
(3.1, 3.0)
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..errors import NbbpError
from . import graphviz as _renderers
from .numbers import SMALL, caption_precision
from .options import Options
from .scene import Scene

__all__ = ["DIGIT_EM", "SVG_NUMBER_ATTR", "SVG_TEXT", "TemplateScene", "digit_widths", "units"]

DIGIT_EM = 0.556             # a digit's width per point of font size (Helvetica, Liberation Sans)

# width of characters relative to a digit (Helvetica metrics, rounded): enough to size
# placeholders and to notice a number that will not fit its slot
_UNITS = {" ": .5, ".": .5, ",": .5, ":": .5, "-": .6, "‖": .5, "[": .5, "]": .5, "(": .6,
          ")": .6, "=": 1.05, "+": 1.05, "±": 1.05, "·": .5, "Σ": 1.1, "Δ": 1.2, "≈": 1.05,
          "f": .5, "i": .4, "j": .4, "l": .4, "t": .5, "r": .6, "m": 1.5, "w": 1.3, "—": 1.8,
          "…": 1.8, "✓": 1.2}

SVG_TEXT = re.compile(r"<text ([^>]*)>([^<]*)</text>")            # attributes, content
SVG_NUMBER_ATTR = re.compile(r'(x|font-size)="([-\d.]+)"')


def units(text: str) -> float:
    """Approximate width of ``text`` in digit widths."""
    return sum(_UNITS.get(c, 1.0) for c in text)


class TemplateScene(Scene):
    """A scene whose changing numbers are runs of zeros as wide as any value."""

    def __init__(self, model: Any, opts: Options) -> None:
        p = opts.precision
        self.w_num, self.w_term = "0" * (p + 4), "0" * (p + 2)
        self.scope_slots: dict[str, list[int]] = {}
        super().__init__(model, opts)

    @staticmethod
    def _zeros(shape_text: str) -> str:
        return "0" * max(2, math.ceil(units(shape_text)))

    def _tensor(self, size: int) -> str:
        t = self.w_term
        return "[" + ", ".join([t] * size) + "]" if size <= SMALL else f"mean {t} ± {t}"

    def _caption(self) -> str:
        w = "0" * (caption_precision(self.opts.precision) + 4)
        return f"mean {w} · {w} … {w}"

    def value_text(self, n) -> str:
        if n.op == "const":
            return super().value_text(n)
        if self.pictured(n):
            return self._zeros(self._caption())
        return self._zeros(self.w_num if n.shape == () else self._tensor(n.size))

    def grad_text(self, n) -> str:
        if n.id not in self.grad:
            return "—"
        k = len(self.contribs.get(n.id, []))
        if n.shape == ():
            text = self.w_num + (f" = Σ of {k} edges" if k > 4 else
                                 " = " + " + ".join([self.w_term] * k) if k >= 2 else "")
        elif self.pictured(n):
            text = self._caption()
        else:
            text = (self._tensor(n.size) if n.size <= SMALL else f"‖{self.w_num}‖") + \
                (f" = Σ of {k} edges" if k >= 2 else "")
        return self._zeros(text)

    def edge_label(self, g: Any) -> str:
        return self._zeros(self.w_num if isinstance(g, float) else f"‖{self.w_num}‖")

    def merge_edges(self, into, e) -> None:
        super().merge_edges(into, e)
        if into.grad is not None:
            into.label = self._zeros(f"‖{self.w_num}‖")

    def caption_lines(self, kinds: set[str]) -> list[str]:
        return super().caption_lines(kinds | {"vanish", "explode"})   # any may appear later

    def collapsed_info(self, key: str) -> dict[str, Any]:
        info = super().collapsed_info(key)
        rows, slots = [], []
        for i, (k, v) in enumerate(info["rows"]):
            if i and v != "—":
                v = self._zeros(self.w_num)
                slots.append(i)
            rows.append((k, v))
        self.scope_slots[key] = slots
        return {**info, "rows": rows}


_DIGITS: dict[str, dict[float, float]] = {}


def digit_widths(choice: str) -> dict[float, float]:
    """A digit's width in the renderer's own text metrics at the sizes the picture uses
    (one tiny layout per renderer; Graphviz with Pango and graphviz-pure differ)."""
    r = _renderers.find_renderer(choice)
    key = r.path if r else ""
    if key in _DIGITS:
        return _DIGITS[key]
    sizes, long = (9.0, 10.0, 11.0), 40
    rows = "".join(f'<TR><TD ALIGN="RIGHT"><FONT POINT-SIZE="{s:g}">{"0" * k}</FONT></TD></TR>'
                   for s in sizes for k in (long, 1))
    dot = ('digraph{a [shape=plaintext, fontname="Helvetica", label=<<TABLE BORDER="0" '
           f'CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">{rows}</TABLE>>]}}')
    found: dict[float, float] = {}
    try:
        svg = _renderers.run_renderer(dot.encode(), "svg", choice).decode("utf-8")
        xs = [float(dict(SVG_NUMBER_ATTR.findall(m.group(1)))["x"]) for m in SVG_TEXT.finditer(svg)]
        for i, s in enumerate(sizes):
            w = (xs[2 * i + 1] - xs[2 * i]) / (long - 1)
            if 0.3 * s < w < 0.9 * s:
                found[s] = w
    except (NbbpError, KeyError, IndexError, ValueError):
        pass
    _DIGITS[key] = found
    return found
