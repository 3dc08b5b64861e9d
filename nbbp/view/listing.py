"""The picture as text: every node's value and gradient, and the gradient on every edge.

What a cell shows when no Graphviz renderer works, and what ``render.listing`` prints.

>>> import nbbp
>>> m = nbbp.build("x = param(3.0)\\ny = param(2.0)\\nf = x*x*y + y + 1")
>>> print(listing(m).splitlines()[0])
model 'f' = 21  (7 nodes; ∂f/∂node as grad, ∂f flowing back along every edge)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .numbers import summary
from .options import for_model, options
from .scene import Scene

__all__ = ["listing"]


def listing(model: Any, **opts: Any) -> str:
    """A plain-text listing of the graph: every node's value and gradient, and the
    gradient contribution on every edge (what the picture shows, without Graphviz)."""
    sc = Scene(model, options(for_model(model, opts), thumbnails=False))   # text: no pictures
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


