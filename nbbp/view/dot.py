"""The DOT writer: a scene → DOT text → SVG or PNG, the notebook's mimebundle, files.

Every value node shows its name, op, value and gradient; every edge ``u → v`` carries
the contribution ∂out/∂u that flows back through ``v``, styled by
:func:`~nbbp.view.style.edge_style`. Scopes are clusters; a collapsed scope is one node.
The DOT text is deterministic (ids ``n<id>`` in build order, fixed number formatting)
and carries stable element ids (node ``n3``, its cells ``n3_value``/``n3_grad``, edge
``e3_0`` into argument 0 of node 3) so a live view can replace numbers in the SVG
without laying it out again.

The renderer is a Graphviz-compatible program found by :mod:`nbbp.view.graphviz`.
:func:`mimebundle` never raises: without a renderer it returns a text listing of the
graph (:mod:`nbbp.view.listing`) and one line on how to install one. The public
entry point for users is :mod:`nbbp.view.render`, which re-exports these.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..core.compiled import paused_gc
from ..errors import NbbpError
from . import thumbs
from .graphviz import INSTALL_HINT, find_renderer, run_renderer
from .listing import listing
from .options import for_model
from .scene import Scene
from .style import (
    CONST_EDGE,
    FILL,
    NO_GRAD_EDGE,
    ORANGE,
    EdgeStyle,
    NodeStyle,
    edge_style,
    node_style,
)

__all__ = ["MIN_SCALE", "fit_cell", "fit_width", "mimebundle", "pictures", "save", "scene_dot",
           "svg", "to_dot"]


# -- DOT text ---------------------------------------------------------------------
def _q(text: str) -> str:
    """A DOT double-quoted string."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    return '"' + text.replace('"', '\\"').replace("\n", "\\n") + '"'


def _h(text: str) -> str:
    """Text for an HTML-like label or attribute."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    return (text.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\n", "&#10;"))


def _row(key: str, text: str, colour: str | None = None) -> str:
    body = _h(text) if colour is None else f'<FONT COLOR="{colour}">{_h(text)}</FONT>'
    return (f'<TR><TD ALIGN="LEFT"><FONT COLOR="#888888">{key}  </FONT></TD>'
            f'<TD ALIGN="RIGHT">{body}</TD></TR>')


def _header(name: str, desc: str) -> str:
    return (f'<TR><TD ALIGN="LEFT"><B>{_h(name)}</B>  </TD><TD ALIGN="RIGHT">'
            f'<FONT COLOR="#777777" POINT-SIZE="9">{_h(desc)}</FONT></TD></TR>')


def _note(text: str, colour: str, align: str = "LEFT") -> str:
    return (f'<TR><TD COLSPAN="2" ALIGN="{align}"><FONT COLOR="{colour}" POINT-SIZE="9">'
            f'{_h(text)}</FONT></TD></TR>')


def _table(rows: list[str]) -> str:
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
            + "".join(rows) + "</TABLE>>")


def _node_stmt(sc: Scene, n) -> str:
    """The DOT statement of one drawn graph node. Its texts come in a fixed order
    (name, op, "value", value, "grad", grad, formulas…) so a live view can find them."""
    nid = f"n{n.id}"
    tip = sc.node_tooltip(n)
    if sc.compact_const(n):
        return (f'{nid} [id="{nid}", shape=plaintext, style="", fontsize=10, '
                f'fontcolor="#666666", margin=0, width=0, height=0, '
                f'label={_q(sc.const_text(n))}, tooltip={_q(tip)}]')
    rows = [_header(sc.short(n), sc.describe(n)), _row("value", sc.value_text(n))]
    rows += _picture_row(sc, n, "value")
    if n.role == "forward" and sc.opts.grad and n.op != "const":
        rows.append(_row("grad", sc.grad_text(n), "#08519c"))
        rows += _picture_row(sc, n, "grad")
    elif n.id in sc.means:
        rows.append(_note(sc.means[n.id], ORANGE, "RIGHT"))
    rows += [_note(text, "#777777") for text in sc.formulas(n)]
    look = node_style(sc.kind(n), n.role == "grad", n is sc.model.output)
    return f'{nid} [id="{nid}", {_node_attrs(look)}, label={_table(rows)}, tooltip={_q(tip)}]'


def _picture_row(sc: Scene, n, which: str) -> list[str]:
    """A tensor's picture under its value or grad row: a cell of the picture's size,
    marked by a sentinel background that :func:`~nbbp.view.thumbs.place` (or the live
    picture) replaces with the image after layout — or, when ``sc.image_dir`` is set
    (PNG output), the image file itself."""
    t = sc.picture(n, which)
    if t is None:
        return []
    i = len(sc.images)
    sc.images.append((n.id, which))
    size = f'FIXEDSIZE="TRUE" WIDTH="{t.width:g}" HEIGHT="{t.height:g}"'
    if sc.image_dir is not None:
        path = Path(sc.image_dir) / f"n{n.id}_{which}.png"
        path.write_bytes(thumbs.png(thumbs.enlarge(t.index, t.width)))
        cell = f'<TD {size}><IMG SRC="{_h(str(path))}" SCALE="BOTH"/></TD>'
    else:
        cell = f'<TD {size} BGCOLOR="{thumbs.sentinel(i)}"></TD>'
    return ['<TR><TD></TD><TD ALIGN="RIGHT"><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" '
            f'CELLPADDING="0"><TR>{cell}</TR></TABLE></TD></TR>']


def pictures(sc: Scene) -> list[str]:
    """The data URIs of the pictures :func:`scene_dot` made room for, in slot order."""
    return [sc.picture(sc_node, which).data_uri
            for sc_node, which in ((sc.node_by_id(i), w) for i, w in sc.images)]


def _node_attrs(s: NodeStyle) -> str:
    """A node style as DOT attributes."""
    dash = ",dashed" if s.dashed else ""
    pen = "" if s.width is None else f", penwidth={s.width:g}"
    return f'style="rounded,filled{dash}", fillcolor="{s.fill}"{pen}'


def _edge_attrs(s: EdgeStyle) -> str:
    """An edge style as DOT attributes. The log scale's widths are written to two
    decimals, the fixed widths (exploding, vanishing) as they are."""
    out = [f'color="{s.colour}"']
    if s.label_colour is not None:
        out.append(f'fontcolor="{s.label_colour}"')
    if s.dashed:
        out.append("style=dashed")
    if s.width is not None:
        out.append(f"penwidth={s.width:.2f}" if s.kind == "ok" else f"penwidth={s.width:g}")
    if s.arrowsize is not None:
        out.append(f"arrowsize={s.arrowsize:g}")
    return ", ".join(out)


def _scope_stmt(sc: Scene, key: str) -> str:
    s = sc.collapsed_info(key)
    rows = [_header(s["name"], s["what"])]
    rows += [_row(_h(k), v) for k, v in s["rows"]]
    return (f'{key} [id="{key}", shape=box3d, style=filled, fillcolor="{FILL["scope"]}", '
            f'label={_table(rows)}, tooltip={_q(s["tip"])}]')


def to_dot(model: Any, **opts: Any) -> str:
    """The model's picture as DOT text (deterministic: the same model gives the same text).

    Options: ``rankdir`` ("LR", "TB" or "auto": LR when at most 8 ranks deep),
    ``precision`` (significant digits),
    ``backward`` (also draw the gradient nodes), ``grad`` (False: values only),
    ``formulas`` (the local derivative on each op node), ``collapse`` (scopes to draw
    as one node each), ``max_nodes`` (collapse scopes automatically above this; 0: never),
    ``thumbnails`` (False: no heat-map pictures of tensors; in the DOT text a picture's
    cell is an empty box with a marker colour, filled with the image by :func:`svg`).

    >>> import nbbp
    >>> m = nbbp.build("x = param(3.0)\\ny = param(2.0)\\nf = x*x*y + y + 1")
    >>> 'label="9"' in to_dot(m)     # the contribution into y through x*x*y
    True
    """
    return scene_dot(Scene(model, for_model(model, opts)))


def scene_dot(sc: Scene) -> str:
    """The DOT text of a :class:`~nbbp.view.scene.Scene` (a live view passes one whose
    numbers are placeholders as wide as any value, to lay the graph out once)."""
    with paused_gc():      # a large graph: a collection would walk all of it
        return _scene_dot(sc)


def _scene_dot(sc: Scene) -> str:
    o = sc.opts
    sc.images = []
    out = [f"digraph {_q(sc.model.name)} {{",
           f'graph [rankdir={sc.rankdir}, fontname="Helvetica", fontsize=9, nodesep=0.22, '
           'ranksep=0.3, labelloc=b, labeljust=l, tooltip=" ", pad=0.1];',
           'node [shape=box, fontname="Helvetica", fontsize=11, margin="0.06,0.03", '
           'color="#666666", penwidth=1];',
           'edge [fontname="Helvetica", fontsize=10, arrowsize=0.6, color="#9e9e9e"];']
    # nodes, clusters nested by scope, in build order of their first node
    tree, ties, edges = sc.cluster_tree(), sc.ties(), sc.edges()
    ghosts: dict[str, list] = {}
    for e in edges:
        if e.ghost:
            ghosts.setdefault(e.dst, []).append(e)

    def ghost_stmts(key: str, pad: str) -> None:
        for e in ghosts.get(key, ()):
            text, tip = sc.ghost_label(e)
            out.append(f'{pad}{e.ghost} [id="{e.ghost}", shape=plaintext, style="", '
                       f'fontsize=9, fontcolor="#888888", margin=0, width=0, height=0, '
                       f'label={_q(text)}, tooltip={_q(tip)}]')

    def emit(children: list, depth: int) -> None:
        pad = "  " * depth
        for kind, item in children:
            if kind == "node":
                out.append(pad + _node_stmt(sc, item))
                if item.id in ties:
                    same = "; ".join(f"n{i}" for i in ties[item.id])
                    out.append(f"{pad}{{rank=same; {same}; n{item.id}}}")
                ghost_stmts(f"n{item.id}", pad)
            elif kind == "scope":
                out.append(pad + _scope_stmt(sc, item))
                ghost_stmts(item, pad)
            elif kind == "rest":
                text, tip = sc.rest_info()
                out.append(f'{pad}rest [id="rest", shape=note, style=filled, '
                           f'fillcolor="{FILL["rest"]}", label={_q(text)}, tooltip={_q(tip)}]')
            else:
                path, kids = item
                cid = sc.cluster_id(path)
                label = sc.cluster_label(path)
                colour = ORANGE if path.split("/")[0] == "grad" else "#aaaaaa"
                out.append(f'{pad}subgraph {cid} {{ id="{cid}"; label={_q(label)}; '
                           f'style="rounded,dashed"; color="{colour}"; fontcolor="#555555"; '
                           'labeljust=l; labelloc=t; fontsize=10;')
                emit(kids, depth + 1)
                out.append(pad + "}")
    emit(tree, 1)

    # forward edges, with the contribution that flows back along each
    top = sc.top_magnitude()
    kinds: set[str] = set()
    for e in edges:
        if e.mag is None or not o.grad:
            look = CONST_EDGE if e.const else NO_GRAD_EDGE if o.grad else None
            attrs = f'id="{e.id}"' + (", " + _edge_attrs(look) if look else "")
            if o.grad and not e.const:
                attrs += f', tooltip={_q(e.tip)}'
                if e.label:                 # a dtype stops it: "no gradient through argmax"
                    attrs += f', label={_q(e.label)}, labeltooltip={_q(e.tip)}'
        else:
            look = edge_style(e.mag, top)
            kinds.add(look.kind)
            attrs = (f'id="{e.id}", label={_q(e.label)}, {_edge_attrs(look)}, '
                     f'tooltip={_q(e.tip)}, labeltooltip={_q(e.tip)}')
        if e.spine and not e.ghost:
            attrs += ", weight=4"
        out.append(f"  {e.ghost or e.src} -> {e.dst} [{attrs}]")
    for src, dst, eid, seed in sc.backward_edges():
        if seed:
            seed_label = _q(f"∂{sc.out_name}/∂{sc.out_name}")
            out.append(f'  {src} -> {dst} [id="{eid}", color="{ORANGE}", style=dashed, '
                       f'label={seed_label}, fontcolor="{ORANGE}"]')
        elif sc.is_forward_key(src):
            out.append(f'  {src} -> {dst} [id="{eid}", color="#f5b88f", style=dotted, '
                       'constraint=false, arrowsize=0.4]')
        else:
            out.append(f'  {src} -> {dst} [id="{eid}", color="{ORANGE}", arrowsize=0.5]')
    out.append(f"  label={_caption(sc, kinds)};")
    out.append("}")
    return "\n".join(out) + "\n"


def _caption(sc: Scene, kinds: set[str]) -> str:
    """The figure caption under the graph: the output's value and the legend."""
    head = (f'<B>{_h(sc.model.name)}</B> = {_h(sc.value_text(sc.model.output))}'
            f'<FONT COLOR="#777777">   {len(sc.forward)} nodes'
            + (f' + {len(sc.backward)} in the backward pass' if sc.backward else "")
            + '</FONT>')
    lines = [head] + [f'<FONT COLOR="#555555">{_h(t)}</FONT>' for t in sc.caption_lines(kinds)]
    return "<" + '<BR ALIGN="LEFT"/>'.join(lines) + '<BR ALIGN="LEFT"/>>'


# -- rendering --------------------------------------------------------------------
MIN_SCALE = 0.6    # a picture shrinks to the cell's width down to 60 %, then scrolls
_SVG_WIDTH = re.compile(r'<svg\b[^>]*?\swidth="([0-9.]+)(pt|px)?"')


def fit_width(svg_text: str) -> str:
    """Let the SVG shrink to the cell width (keeps its natural size when it fits)."""
    return svg_text.replace("<svg ", '<svg style="max-width:100%;height:auto" ', 1)


def fit_cell(svg_text: str) -> str:
    """HTML that shows the SVG at the cell's width: at its natural size when it fits,
    shrunk to the cell's width when it does not — but never below :data:`MIN_SCALE`
    of its size, so the text stays readable — and beyond that with a horizontal
    scroll bar. Tall pictures scale with their width (the page scrolls down).

    The rule: an outer box of the cell's width that scrolls sideways, an inner box at
    least ``MIN_SCALE`` × the picture's width, and the SVG at most 100 % of the inner
    box (:func:`fit_width`), its height following its width.

    >>> print(fit_cell('<svg width="800pt" height="100pt" viewBox="0 0 800 100"></svg>'))
    ... # doctest: +NORMALIZE_WHITESPACE
    <div class="nbbp-picture" style="overflow-x:auto;max-width:100%"><div
    style="min-width:480pt"><svg style="max-width:100%;height:auto" width="800pt"
    height="100pt" viewBox="0 0 800 100"></svg></div></div>
    """
    svg_text = svg_text[svg_text.find("<svg"):] if "<svg" in svg_text else svg_text
    if 'style="max-width:100%;height:auto"' not in svg_text[:200]:
        svg_text = fit_width(svg_text)
    m = _SVG_WIDTH.search(svg_text)
    least = f"{float(m.group(1)) * MIN_SCALE:g}{m.group(2) or 'px'}" if m else "0"
    return (f'<div class="nbbp-picture" style="overflow-x:auto;max-width:100%">'
            f'<div style="min-width:{least}">{svg_text}</div></div>')


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (a notebook frontend that shows HTML),
    not in a script or terminal IPython. Never imports IPython."""
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
    except Exception:       # a display method must not raise
        return False
    return type(shell).__name__ == "ZMQInteractiveShell"


def svg(model: Any, **opts: Any) -> str:
    """The picture as SVG text; raises :class:`RenderError` when no renderer works."""
    sc = Scene(model, for_model(model, opts))
    out = run_renderer(scene_dot(sc).encode(), "svg", sc.opts.renderer).decode("utf-8")
    return fit_width(thumbs.place(out, pictures(sc)))


def save(model: Any, path: str | Path, **opts: Any) -> Path:
    """Write the picture to ``path``: ``.svg``, ``.png`` or ``.dot`` (DOT text).

    >>> import nbbp, tempfile, os
    >>> m = nbbp.build("x = param(2.0)\\nf = x * x")
    >>> p = save(m, os.path.join(tempfile.mkdtemp(), "f.dot"))
    >>> p.read_text().startswith('digraph "f"')
    True
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".dot":
        path.write_text(to_dot(model, **opts), encoding="utf-8")
    elif suffix == ".svg":
        path.write_text(svg(model, **opts), encoding="utf-8")
    elif suffix == ".png":
        sc = Scene(model, for_model(model, opts))
        with tempfile.TemporaryDirectory(prefix="nbbp-") as tmp:
            sc.image_dir = tmp          # the renderer reads the pictures from files
            path.write_bytes(run_renderer(scene_dot(sc).encode(), "png", sc.opts.renderer))
    else:
        raise NbbpError(f"cannot save a picture as {suffix or 'a file without suffix'!r}: "
                        "use a name ending in .svg, .png or .dot")
    return path


def mimebundle(model: Any, include: Any = None, exclude: Any = None,
               **opts: Any) -> dict[str, str]:
    """For ``_repr_mimebundle_``: SVG plus a text repr (and, in a Jupyter kernel, the
    SVG as HTML that scales to the cell: :func:`fit_cell`), or — when no renderer works or
    anything fails — a text listing with one line on how to install Graphviz.
    Never raises."""
    try:
        text = repr(model)
    except Exception:       # a display method must not raise
        text = f"<{type(model).__name__}>"
    try:
        o = for_model(model, opts)
        if o.renderer != "none" and find_renderer(o.renderer) is not None:
            picture = svg(model, **opts)
            if not in_notebook():
                return {"image/svg+xml": picture, "text/plain": text}
            # JupyterLab draws image/svg+xml as an <img> at its natural size (no
            # max-width): the HTML version scales to the cell (fit_cell)
            return {"text/html": fit_cell(picture), "image/svg+xml": picture,
                    "text/plain": text}
        why = "(pictures are off: renderer 'none')" if o.renderer == "none" else INSTALL_HINT
    except Exception as exc:
        why = f"(the picture could not be drawn: {exc}) " + INSTALL_HINT
    try:
        return {"text/plain": listing(model, **opts) + "\n" + why}
    except Exception as exc:
        return {"text/plain": f"{text}\n(listing failed: {exc}) {why}"}
