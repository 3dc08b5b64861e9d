"""The picture: graph + values + gradients → DOT text → SVG (or PNG), and a text listing.

Every value node shows its name, op, value and gradient; every edge ``u → v`` carries
the contribution ∂out/∂u that flows back through ``v``, coloured and sized by its
magnitude on a log scale. Scopes are clusters; a collapsed scope is one node. The DOT
text is deterministic (ids ``n<id>`` in build order, fixed number formatting) and
carries stable element ids (node ``n3``, its cells ``n3_value``/``n3_grad``, edge
``e3_0`` into argument 0 of node 3) so a live view can replace numbers in the SVG
without laying it out again.

The renderer is a Graphviz-compatible program found in this order: ``$NBBP_DOT``,
``dot`` on the PATH, then the pip-installed ``graphviz-pure`` (see
:mod:`nbbp.view.graphviz`). :func:`mimebundle` never raises: without a renderer it
returns a text listing of the graph and one line on how to install one.

>>> import nbbp
>>> from nbbp.view import render
>>> m = nbbp.build("x = param(3.0)\\ny = param(2.0)\\nf = x*x*y + y + 1")
>>> print(render.listing(m).splitlines()[0])
model 'f' = 21  (7 nodes; ∂f/∂node as grad, ∂f flowing back along every edge)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import NbbpError
from .graphviz import INSTALL_HINT, RenderError, find_renderer, run_renderer
from .numbers import fmt, summary
from .options import Options, check, for_model, options, remember
from .scene import Scene

__all__ = ["INSTALL_HINT", "Options", "RenderError", "check", "find_renderer", "fmt",
           "listing", "mimebundle", "options", "remember", "save", "svg", "to_dot"]

VANISH_REL = 1e-6       # |contribution| < this × the largest: vanishing
EXPLODE_ABS = 1e3       # |contribution| > this: exploding


def _opts(model: Any, opts: dict[str, Any]) -> Options:
    return for_model(model, opts)


# -- colours: a log scale of |contribution| relative to the largest ---------------
def _lerp(a: str, b: str, t: float) -> str:
    ca, cb = (tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in (a, b))
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb))


_STEPS = 24
_EDGE_COLOURS = [_lerp("#9ecae1", "#08306b", k / _STEPS) for k in range(_STEPS + 1)]
_LABEL_COLOURS = [_lerp("#5b7fa3", "#08306b", k / _STEPS) for k in range(_STEPS + 1)]
GREY, RED, ORANGE = "#b0b0b0", "#d62728", "#e6550d"
_FILL = {"param": "#fff3c4", "input": "#e3f4dc", "const": "#f2f2f2", "backward": "#fde9d9",
         "output": "#dbe9f6", "op": "#ffffff", "scope": "#eeeeee", "rest": "#f7f7f7"}


def _edge_style(mag: float, top: float) -> tuple[str, str]:
    """(edge attributes, kind) for a contribution of magnitude ``mag``."""
    if mag > EXPLODE_ABS:
        return f'color="{RED}", fontcolor="{RED}", penwidth=3.5', "explode"
    if not mag > VANISH_REL * top:      # also 0 and an all-zero graph
        return f'color="{GREY}", fontcolor="#8c8c8c", style=dashed, penwidth=0.8', "vanish"
    t = min(1.0, max(0.0, (math.log10(mag / top) + 6.0) / 6.0))
    k = round(t * _STEPS)
    return (f'color="{_EDGE_COLOURS[k]}", fontcolor="{_LABEL_COLOURS[k]}", '
            f'penwidth={0.7 + 1.9 * k / _STEPS:.2f}'), "ok"


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
    if n.role == "forward" and sc.opts.grad and n.op != "const":
        rows.append(_row("grad", sc.grad_text(n), "#08519c"))
    elif n.id in sc.means:
        rows.append(_note(sc.means[n.id], ORANGE, "RIGHT"))
    rows += [_note(text, "#777777") for text in sc.formulas(n)]
    pen = ', penwidth=2' if n is sc.model.output else ""
    style = '"rounded,filled,dashed"' if n.role == "grad" else '"rounded,filled"'
    return (f'{nid} [id="{nid}", style={style}, fillcolor="{_FILL[sc.kind(n)]}"{pen}, '
            f'label={_table(rows)}, tooltip={_q(tip)}]')


def _scope_stmt(sc: Scene, key: str) -> str:
    s = sc.collapsed_info(key)
    rows = [_header(s["name"], s["what"])]
    rows += [_row(_h(k), v) for k, v in s["rows"]]
    return (f'{key} [id="{key}", shape=box3d, style=filled, fillcolor="{_FILL["scope"]}", '
            f'label={_table(rows)}, tooltip={_q(s["tip"])}]')


def to_dot(model: Any, **opts: Any) -> str:
    """The model's picture as DOT text (deterministic: the same model gives the same text).

    Options: ``rankdir`` ("LR", "TB" or "auto": LR when at most 8 ranks deep),
    ``precision`` (significant digits),
    ``backward`` (also draw the gradient nodes), ``grad`` (False: values only),
    ``formulas`` (the local derivative on each op node), ``collapse`` (scopes to draw
    as one node each), ``max_nodes`` (collapse scopes automatically above this; 0: never).

    >>> import nbbp
    >>> m = nbbp.build("x = param(3.0)\\ny = param(2.0)\\nf = x*x*y + y + 1")
    >>> 'label="9"' in to_dot(m)     # the contribution into y through x*x*y
    True
    """
    return scene_dot(Scene(model, _opts(model, opts)))


def scene_dot(sc: Scene) -> str:
    """The DOT text of a :class:`~nbbp.view.scene.Scene` (a live view passes one whose
    numbers are placeholders as wide as any value, to lay the graph out once)."""
    o = sc.opts
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
                           f'fillcolor="{_FILL["rest"]}", label={_q(text)}, tooltip={_q(tip)}]')
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
            style = (f'color="{GREY}", arrowsize=0.5' if e.const else
                     f'color="{GREY}", style=dashed' if o.grad else "")
            attrs = f'id="{e.id}"' + (", " + style if style else "")
            if o.grad and not e.const:
                attrs += f', tooltip={_q(e.tip)}'
        else:
            style, kind = _edge_style(e.mag, top)
            kinds.add(kind)
            attrs = (f'id="{e.id}", label={_q(e.label)}, {style}, tooltip={_q(e.tip)}, '
                     f'labeltooltip={_q(e.tip)}')
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
def _fit(svg_text: str) -> str:
    """Let the SVG shrink to the cell width (keeps its natural size when it fits)."""
    return svg_text.replace("<svg ", '<svg style="max-width:100%;height:auto" ', 1)


def svg(model: Any, **opts: Any) -> str:
    """The picture as SVG text; raises :class:`RenderError` when no renderer works."""
    o = _opts(model, opts)
    out = run_renderer(to_dot(model, **opts).encode(), "svg", o.renderer)
    return _fit(out.decode("utf-8"))


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
        o = _opts(model, opts)
        path.write_bytes(run_renderer(to_dot(model, **opts).encode(), "png", o.renderer))
    else:
        raise NbbpError(f"cannot save a picture as {suffix or 'a file without suffix'!r}: "
                        "use a name ending in .svg, .png or .dot")
    return path


def listing(model: Any, **opts: Any) -> str:
    """A plain-text listing of the graph: every node's value and gradient, and the
    gradient contribution on every edge (what the picture shows, without Graphviz)."""
    sc = Scene(model, _opts(model, opts))
    p, name = sc.opts.precision, sc.out_name
    lines = [f"model {sc.model.name!r} = {summary(sc.value[sc.model.output.id], p)}  "
             f"({len(sc.model.forward)} nodes; ∂{name}/∂node as grad, ∂{name} flowing back "
             "along every edge)"]
    rows = []
    for n in sc.model.forward:
        grad = sc.grad_text(n) if sc.opts.grad and n.op != "const" else ""
        rows.append((n.name, sc.describe(n), summary(sc.value[n.id], p), grad))
    lines += _columns(("node", "op", "value", "grad"), rows)
    if sc.opts.grad:
        lines.append("edges (the gradient flowing back along each):")
        erows = [(e.src_name, "→", e.dst_name, e.label or "—")
                 for e in sc.edges(collapse=False)]
        lines += _columns(("from", "", "to", "∂" + name), erows)
    if len(lines) > 400:
        lines = lines[:400] + [f"… {len(lines) - 400} more lines"]
    return "\n".join(lines)


def _columns(head: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> list[str]:
    rows = [head] + list(rows)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def mimebundle(model: Any, include: Any = None, exclude: Any = None,
               **opts: Any) -> dict[str, str]:
    """For ``_repr_mimebundle_``: SVG plus a text repr, or — when no renderer works or
    anything fails — a text listing with one line on how to install Graphviz.
    Never raises."""
    try:
        text = repr(model)
    except Exception:       # a display method must not raise
        text = f"<{type(model).__name__}>"
    try:
        o = _opts(model, opts)
        if o.renderer != "none" and find_renderer(o.renderer) is not None:
            return {"image/svg+xml": svg(model, **opts), "text/plain": text}
        why = "(pictures are off: renderer 'none')" if o.renderer == "none" else INSTALL_HINT
    except Exception as exc:
        why = f"(the picture could not be drawn: {exc}) " + INSTALL_HINT
    try:
        return {"text/plain": listing(model, **opts) + "\n" + why}
    except Exception as exc:
        return {"text/plain": f"{text}\n(listing failed: {exc}) {why}"}
