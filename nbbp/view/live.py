"""A live picture: the graph laid out once, its numbers and colours refilled in place.

Re-running Graphviz's layout after every slider tick costs 20–70 ms for 100–200 nodes
and moves every node. :class:`LivePicture` lays the graph out once, with every number
that can change replaced by a placeholder at least as wide as the numbers it will hold
(a run of zeros, see :mod:`nbbp.view.template`), finds those placeholders in the SVG and
keeps the SVG as fixed pieces with slots between them. A frame joins the pieces with
the current texts, edge colours and tooltips: no layout, the same positions, about a
millisecond for 100 nodes. A number wider than its slot is squeezed (SVG
``textLength``), never moved; right-aligned cells are anchored at their right edge.

An :class:`Overlay` replaces texts and colours for one frame: the step-through of the
forward and backward passes, the finite-difference check and the before/after view of
an optimizer step (:mod:`nbbp.view.explain`) are overlays. The texts themselves come from
:class:`~nbbp.view.scene.Scene`, the colours from :mod:`nbbp.view.style`: this module only
decides where they go and prints them as SVG attributes.

>>> import nbbp
>>> m = nbbp.build("x = param(3.0)\\ny = param(2.0)\\nf = x*x*y + y + 1")
>>> pic = LivePicture(m)
>>> '>21<' in pic.svg()
True
>>> '>5<' in pic.svg() if m.set(x=1.0) else None    # 1·1·2 + 2 + 1, same layout
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape, unescape
from typing import Any

from ..errors import NbbpError
from . import graphviz as _renderers
from . import thumbs
from .dot import fit_cell, scene_dot
from .dot import svg as draw_svg
from .listing import listing
from .options import as_dict, check
from .scene import Scene
from .style import ACTIVE, PENDING, EdgeStyle, frame_edge_style
from .template import DIGIT_EM, SVG_NUMBER_ATTR, SVG_TEXT, TemplateScene, digit_widths, units

_RUN = re.compile(r"(?<![\w.,])0{2,}(?![\w.,])")
_GROUP = re.compile(r'<g id="([^"]+)" class="(node|edge|cluster)">')
_TITLE = re.compile(r'xlink:title="([^"]*)"')
_STYLE = r'(fill="[^"]*" stroke="[^"]*"(?: stroke-width="[^"]*")?(?: stroke-dasharray="[^"]*")?)'
_EPATH = re.compile(r'<path fill="none" (stroke="[^"]*"(?: stroke-width="[^"]*")?'
                    r'(?: stroke-dasharray="[^"]*")?) d=')
_EHEAD = re.compile(r"<polygon " + _STYLE + " points=")
_NSHAPE = re.compile(r"<(?:path|polygon) " + _STYLE + " (?:d|points)=")
_ATTR = re.compile(r'\s*(text-anchor|x|fill|textLength|lengthAdjust)="[^"]*"')


def _esc(text: str) -> str:
    return escape(text, quote=True).replace("\n", "&#10;")


@dataclass
class Overlay:
    """Texts and colours that replace the plain picture's for one frame.

    ``value``/``grad``: node id → (text, colour, italic); ``label``: edge id → (text,
    colour, italic); ``edge``: edge id → "active" | "pending" | "muted"; ``node``: drawn
    key (``n3``) → (fill, stroke, stroke width), None keeping the plain one; ``tip``:
    drawn key or edge id → a line added to its tooltip; ``caption``: the output's text.
    """

    value: dict[int, tuple[str, str | None, bool]] = field(default_factory=dict)
    grad: dict[int, tuple[str, str | None, bool]] = field(default_factory=dict)
    label: dict[str, tuple[str, str | None, bool]] = field(default_factory=dict)
    edge: dict[str, str] = field(default_factory=dict)
    node: dict[str, tuple[str | None, str | None, float | None]] = field(default_factory=dict)
    tip: dict[str, str] = field(default_factory=dict)
    caption: tuple[str, str | None, bool] | None = None


@dataclass
class _Text:
    """A slot holding one ``<text>`` element."""

    kind: str            # "value", "grad", "row", "label", "caption"
    key: Any             # node id, (scope key, row), edge id
    attrs: str           # the element's attributes without anchor, x and fill
    anchor: str
    x: float
    size: float
    width: float         # the room the layout left, in points
    fill: str | None


class LivePicture:
    """A model's picture, laid out once; :meth:`svg` draws the current numbers.

    Parameters
    ----------
    model
        The :class:`~nbbp.Model` to draw.
    **opts
        Picture options as in :func:`nbbp.view.render.to_dot` (defaults: those the model
        was built with by ``%%bpgraph``).
    """

    def __init__(self, model: Any, **opts: Any) -> None:
        self.model = model
        self.opts = check(model, **opts)
        self.layouts = 0
        self.mode = "live"       # "live", "redraw" (no template: lay out each frame), "text"
        self.note = ""
        self.layout()

    # -- laying out once --------------------------------------------------------
    def layout(self) -> None:
        """Lay the graph out (again): needed only when the structure or options change."""
        self.scene = Scene(self.model, self.opts)
        self.by_id = {n.id: n for n in self.scene.nodes}
        self.layouts += 1
        if self.opts.renderer == "none" or _renderers.find_renderer(self.opts.renderer) is None:
            self.mode, self.note = "text", _renderers.INSTALL_HINT
            return
        tsc = TemplateScene(self.model, self.opts)
        svg = _renderers.run_renderer(scene_dot(tsc).encode(), "svg",
                                      self.opts.renderer).decode("utf-8")
        svg = fit_cell(svg)          # shrinks to the cell's width, then scrolls
        try:
            self._parse(svg, tsc, digit_widths(self.opts.renderer))
            self.mode = "live"
        except NbbpError as exc:             # an unexpected SVG: correct, but slower
            self.mode, self.note = "redraw", f"live template unavailable ({exc})"

    def _plan(self, tsc: TemplateScene) -> dict[str, list[tuple[str, Any]]]:
        """The text slots each SVG group must hold, in row order."""
        plan: dict[str, list[tuple[str, Any]]] = {}
        o = self.opts
        for n in tsc.nodes:
            key = f"n{n.id}"
            if tsc.unit[n.id] != key or tsc.compact_const(n):
                continue
            slots: list[tuple[str, Any]] = [] if n.op == "const" else [("value", n.id)]
            if n.role == "forward" and o.grad and n.op != "const" and n.id in tsc.grad:
                slots.append(("grad", n.id))
            plan[key] = slots
        for key, rows in tsc.scope_slots.items():
            plan[key] = [("row", (key, i)) for i in rows]
        for e in tsc.edges():
            if e.mag is not None and o.grad:
                plan[e.id] = [("label", e.id)]
        return plan

    def _parse(self, svg: str, tsc: TemplateScene, digit: dict[float, float]) -> None:
        plan = self._plan(tsc)
        cuts: list[tuple[int, int, Any]] = []       # (start, end, slot) in the SVG text
        starts = [(m.start(), m.group(1), m.group(2)) for m in _GROUP.finditer(svg)]
        bounds = [(0, None, "head")] + starts
        seen = set()
        for i, (a, gid, cls) in enumerate(bounds):
            b = bounds[i + 1][0] if i + 1 < len(bounds) else len(svg)
            if cls == "cluster":
                continue
            expect = plan.get(gid, []) if cls != "head" else (
                [("caption", None)] if self.model.output.op != "const" else [])
            texts = [m for m in SVG_TEXT.finditer(svg, a, b) if _RUN.search(m.group(2))]
            if len(texts) != len(expect):
                raise NbbpError(f"{gid or 'caption'}: {len(texts)} number slots in the SVG, "
                                f"{len(expect)} expected")
            for m, (kind, key) in zip(texts, expect):
                cuts.append((m.start(), m.end(), self._text_slot(m, kind, key, digit)))
            if cls == "head":
                continue
            for m in thumbs.SENTINEL.finditer(svg, a, b):     # a tensor's picture
                nid, which = tsc.images[int(m.group(1), 16)]
                cuts.append((m.start(), m.end(), ("img", nid, which, thumbs.box(m.group(2)))))
            seen.add(gid)
            if cls == "node" and gid in plan:
                t = _TITLE.search(svg, a, b)
                s = _NSHAPE.search(svg, a, b)
                if t and gid.startswith("n"):
                    cuts.append((t.start(1), t.end(1), ("ntip", int(gid[1:]))))
                if s:
                    plain = dict(re.findall(r'([\w-]+)="([^"]*)"', s.group(1)))
                    cuts.append((s.start(1), s.end(1), ("nstyle", gid, s.group(1), plain)))
            elif cls == "edge" and plan.get(gid):
                for t in _TITLE.finditer(svg, a, b):
                    cuts.append((t.start(1), t.end(1), ("etip", gid)))
                p, h = _EPATH.search(svg, a, b), _EHEAD.search(svg, a, b)
                if p is None or h is None:
                    raise NbbpError(f"edge {gid}: no path or arrowhead")
                cuts.append((p.start(1), p.end(1), ("epath", gid)))
                cuts.append((h.start(1), h.end(1), ("ehead", gid)))
        missing = [g for g in plan if g not in seen and plan[g]]
        if missing:
            raise NbbpError(f"groups missing from the SVG: {', '.join(missing[:5])}")
        cuts.sort(key=lambda c: c[0])
        self._tips: dict[int, str] = {}
        self._static, self._slots, at = [], [], 0
        for a, b, slot in cuts:
            self._static.append(svg[at:a])
            self._slots.append(slot)
            at = b
        self._static.append(svg[at:])
        self.template_svg = svg

    def _text_slot(self, m: re.Match, kind: str, key: Any, digit: dict[float, float]) -> _Text:
        attrs, content = m.group(1), m.group(2)
        nums = dict(SVG_NUMBER_ATTR.findall(attrs))
        x, size = float(nums["x"]), float(nums.get("font-size", 11))
        anchor = re.search(r'text-anchor="(\w+)"', attrs)
        fill = re.search(r'\bfill="([^"]*)"', attrs)
        run = _RUN.search(content)
        w = digit.get(size, DIGIT_EM * size)
        width = units(content[:run.start()]) * w + len(run.group()) * w
        anchor_text = anchor.group(1) if anchor else "start"
        if kind in ("value", "grad", "row"):        # right-aligned cells: keep the right edge
            anchor_text, x = "end", x + width
        return _Text(kind, key, _ATTR.sub("", attrs).strip(), anchor_text, x, size, width,
                     fill.group(1) if fill else None)

    # -- drawing a frame -----------------------------------------------------------
    def svg(self, overlay: Overlay | None = None, tips: bool = True) -> str:
        """The picture with the model's current numbers (and ``overlay``, if any).

        ``tips=False`` keeps the node tooltips of the last frame drawn with them: a
        tensor's tooltip lists its values, the slowest text to make, and nobody reads
        tooltips while dragging a slider (a live view redraws them when it settles).
        """
        if self.mode != "live":
            return self._fallback()
        sc = self.scene
        sc.read()
        ov = overlay or Overlay()
        edges = {e.id: e for e in sc.edges()}
        top = sc.top_magnitude()
        memo: dict = {}
        tips = tips or not self._tips
        out = [self._static[0]]
        for i, (slot, static) in enumerate(zip(self._slots, self._static[1:])):
            if not tips and type(slot) is tuple and slot[0] == "ntip":
                out.append(self._tips[i])
            else:
                text = self._fill(slot, sc, ov, edges, top, memo)
                if tips and type(slot) is tuple and slot[0] == "ntip":
                    self._tips[i] = text
                out.append(text)
            out.append(static)
        return "".join(out)

    def _fill(self, slot, sc: Scene, ov: Overlay, edges: dict, top: float,
              memo: dict) -> str:
        if isinstance(slot, _Text):
            k, key = slot.kind, slot.key
            if k == "value":
                t = ov.value.get(key) or (sc.value_text(self.by_id[key]), None, False)
            elif k == "grad":
                t = ov.grad.get(key) or (sc.grad_text(self.by_id[key]), None, False)
            elif k == "label":
                e, state = edges[key], ov.edge.get(key)
                t = ov.label.get(key) or (e.label, ACTIVE if state == "active" else
                                          self._edge(e, top, state, memo)[2], False)
            elif k == "caption":
                t = ov.caption or (sc.value_text(sc.model.output), None, False)
                t = (" = " + t[0],) + t[1:]
            else:
                skey, row = key
                if skey not in memo:
                    memo[skey] = sc.collapsed_info(skey)["rows"]
                t = (memo[skey][row][1], None, False)
            return _text(slot, *t)
        kind = slot[0]
        if kind == "img":
            _, nid, which, at = slot
            t = sc.picture(self.by_id[nid], which)
            if t is None:
                return ""
            over = (ov.value if which == "value" else ov.grad).get(nid)
            return thumbs.svg_image(t.data_uri, at, faded=over is not None and over[1] == PENDING)
        if kind == "ntip":
            n = self.by_id[slot[1]]
            extra = ov.tip.get(f"n{n.id}")
            return _esc(sc.node_tooltip(n) + (f"\n{extra}" if extra else ""))
        if kind == "nstyle":
            style = ov.node.get(slot[1])
            if style is None:
                return slot[2]
            old = slot[3]          # the plain picture's fill, stroke and width
            fill, stroke, width = style
            return (f'fill="{fill or old.get("fill")}" stroke="{stroke or old.get("stroke")}" '
                    f'stroke-width="{width or old.get("stroke-width", 1)}"')
        e = edges[slot[1]]
        if kind == "etip":
            key = ("tip", e.id)
            if key not in memo:
                extra = ov.tip.get(e.id)
                memo[key] = _esc(e.tip + (f"\n{extra}" if extra else ""))
            return memo[key]
        path, head, _ = self._edge(e, top, ov.edge.get(e.id), memo)
        return path if kind == "epath" else head

    @staticmethod
    def _edge(e, top: float, state: str | None, memo: dict) -> tuple[str, str, str]:
        key = ("edge", e.id)
        if key not in memo:
            memo[key] = _edge_svg(e.mag, top, state)
        return memo[key]

    def _fallback(self) -> str:
        if self.mode == "text":
            return ('<pre style="font-size:11px;line-height:1.25">'
                    + escape(listing(self.model, **as_dict(self.opts)))
                    + f"\n{escape(self.note)}</pre>")
        self.layouts += 1
        return fit_cell(draw_svg(self.model, **as_dict(self.opts)))

    # -- what tests and benchmarks look at --------------------------------------------
    def numbers(self, svg: str | None = None) -> dict[str, list[str]]:
        """The texts in the slots of a frame by SVG group: ``{"n5": ["-6", "0.5"], …}``."""
        svg = self.svg() if svg is None else svg
        out: dict[str, list[str]] = {}
        for gid, body in _groups(svg):
            out[gid] = [unescape(m.group(2)) for m in SVG_TEXT.finditer(body)]
        return out


def _groups(svg: str) -> list[tuple[str, str]]:
    starts = [(m.start(), m.group(1)) for m in _GROUP.finditer(svg)]
    bounds = [(0, "caption")] + starts + [(len(svg), "")]
    return [(gid, svg[a:bounds[i + 1][0]]) for i, (a, gid) in enumerate(bounds[:-1])]


def _text(slot: _Text, text: str, colour: str | None, italic: bool) -> str:
    fill = colour or slot.fill
    room = slot.width * 1.03 / (DIGIT_EM * slot.size)         # in digit widths
    squeeze = (f' textLength="{slot.width:.1f}" lengthAdjust="spacingAndGlyphs"'
               if len(text) > 0.55 * room and units(text) > room else "")
    if "&" in text or "<" in text or ">" in text:
        text = escape(text, quote=False)
    return (f'<text text-anchor="{slot.anchor}" x="{slot.x:.2f}" {slot.attrs}'
            + (f' fill="{fill}"' if fill else "") + (' font-style="italic"' if italic else "")
            + f"{squeeze}>{text}</text>")


_EDGE_CACHE: dict[EdgeStyle, tuple[str, str, str]] = {}


def _edge_svg(mag: float | None, top: float, state: str | None) -> tuple[str, str, str]:
    """(path attributes, arrowhead attributes, label colour) of an edge: its
    :class:`~nbbp.view.style.EdgeStyle` printed as SVG."""
    s = frame_edge_style(mag, top, state)
    out = _EDGE_CACHE.get(s)
    if out is None:
        dash = ' stroke-dasharray="5,2"' if s.dashed else ""
        out = _EDGE_CACHE[s] = (f'stroke="{s.colour}" stroke-width="{s.width:.2f}"{dash}',
                                f'fill="{s.colour}" stroke="{s.colour}" '
                                f'stroke-width="{s.width:.2f}"', s.label_colour)
    return out
