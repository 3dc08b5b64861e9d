"""What a picture shows: the drawn nodes, their text, the edges and their gradients.

:class:`Scene` reads a model once (values, gradients, the contribution on every edge),
decides which scopes are drawn as one node, and answers the questions the DOT writer
in :mod:`nbbp.view.dot` and the text listing ask. It knows nothing of DOT syntax.
A large flat graph is read and walked only where it is drawn (a window: its latest
``max_nodes - 1`` nodes; see :meth:`Scene._window`), so a picture costs what it shows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.compiled import paused_gc
from ..core.graph import leaves
from ..core.ops import OPS, index_text
from .numbers import SMALL, caption, elements, fmt, formula, full, norm, shape_text, summary
from .options import AUTO_LR_RANKS, Options, check_collapse, scopes_of
from .thumbs import Thumb, thumbnail

FANOUT = 6                 # a leaf used more often is drawn again beside each consumer
REUSE_EDGES_UP_TO = 40     # backward: draw the forward values gradient nodes read, up to here


def _ident(text: str) -> str:
    """An ASCII id for a scope path, the same on every run: ``/`` → ``__``, other ASCII
    punctuation → ``_``, every non-ASCII letter → ``_u<hex>_`` (``слой`` and ``вход``
    stay apart)."""
    return re.sub(r"[^A-Za-z0-9_]", lambda m: "_" if m.group().isascii()
                  else f"_u{ord(m.group()):x}_", text.replace("/", "__"))


def _base(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _no_gradient_why(n: Any, x: Any) -> str:
    """Why the edge ``x → n`` carries no gradient when a dtype is the reason (an integer
    or boolean node on either end: argmax, a comparison, a cast to int), else ""."""
    floats = ("float64", "float32")
    if n.dtype not in floats:
        return f"no gradient through {n.op}"
    if x.dtype not in floats:
        return f"no gradient through {x.dtype}"
    return ""


@dataclass
class EdgeView:
    """One drawn edge (possibly several graph edges merged between collapsed ends)."""

    src: str            # DOT key of the tail
    dst: str
    id: str
    src_name: str
    dst_name: str
    grad: Any           # the contribution (float, array) or None
    mag: float | None
    label: str
    tip: str
    const: bool
    spine: bool         # op → op: drawn straight (heavier in the layout)
    ghost: str = ""     # id of a small copy of the tail drawn beside the head, if any


class Scene:
    """A model read once for drawing: values, gradients, units, clusters."""

    def __init__(self, model: Any, opts: Options) -> None:
        with paused_gc():      # a large graph: a collection would walk all of it
            self._setup(model, opts)

    def _setup(self, model: Any, opts: Options) -> None:
        self.model, self.opts = model, opts
        m = model
        self.out_name = _base(m.output.name)
        self.lines = (getattr(m, "source", None) or "").splitlines()
        self.forward = list(m.forward)
        self.fwd_ids = fwd_ids = {n.id for n in self.forward}
        self.backward: list = []
        if opts.backward:
            targets = [g for g in (m.grad_node(n) for n in self.forward) if g is not None]
            targets += [g for n in self.forward for p in range(len(n.inputs))
                        if (g := m.edge_grad_node(n, p)) is not None]
            self.backward = [n for n in m.graph.ancestors(targets) if n.id not in fwd_ids]
        self.nodes = self.forward + self.backward
        self.images: list[tuple[int, str]] = []   # picture slots in the DOT text's order
        self.image_dir: str | None = None         # PNG output: pictures as files here
        seed = m.grad_node(m.output)
        self.seed_id = None if seed is None else seed.id
        self.means: dict[int, str] = {}
        if self.backward:
            self._explain_backward()
        self._units()
        self.read()

    def read(self) -> None:
        """(Re)read values, gradients and edge contributions from the model: a live
        view reads again after every change without redoing the rest."""
        with paused_gc():
            self._read()

    def _read(self) -> None:
        m = self.model
        grads = getattr(getattr(m, "backprop", None), "grads", None)
        if grads is None or getattr(m, "compiled", None) is None:
            self._read_each()
            return
        # a model: its values in one gather from the arena (a large graph has many);
        # a window (see _window) reads only what it draws and what those nodes read
        forward, nodes = self.shown_forward, self.shown
        if self.first:
            nodes = list(dict.fromkeys([*nodes, *(x for n in nodes for x in n.inputs)]))
        total, edge = grads.total, grads.edge
        keys = [(n.id, pos) for n in forward for pos in range(len(n.inputs))]
        enodes = [edge.get(k) for k in keys]
        gnodes = [(n, total.get(n.id)) for n in forward]
        # a float64 scalar's gradient is its gradient node's value (Model.grad_of)
        direct = [(n, g) for n, g in gnodes if g is not None and n.dtype == "float64"
                  and g.dtype == "float64" and g.shape == ()]
        values = m.compiled.read_many([*nodes, *(g for _, g in direct),
                                       *(e for e in enodes if e is not None)])
        k, d = len(nodes), len(direct)
        self.value = dict(zip((n.id for n in nodes), values[:k]))
        got = dict(zip((n.id for n, _ in direct), values[k:k + d]))
        self.grad: dict[int, Any] = {n.id: got[n.id] if n.id in got else m.grad_of(n)
                                     for n, g in gnodes if g is not None}
        read = iter(values[k + d:])
        self.egrad = {key: None if e is None else next(read) for key, e in zip(keys, enodes)}
        if self.first:      # the rest is read when asked for (a listing of every edge)
            self.value, self.grad, self.egrad = self._lazy(self.value, self.grad, self.egrad)
        self._contribs()

    def _lazy(self, value: dict, grad: dict, egrad: dict) -> tuple[dict, dict, dict]:
        """The window's values, gradients and edge contributions, the others read from
        the model when asked for, as :meth:`_read_each` reads them."""
        m, nodes = self.model, self.model.graph.nodes
        known = self.fwd_ids

        def grad_of(i: int) -> Any:
            return m.grad_of(nodes[i]) if i in known and m.grad_node(nodes[i]) is not None \
                else _NONE

        def egrad_of(key: tuple[int, int]) -> Any:
            if key[0] not in known or not 0 <= key[1] < len(nodes[key[0]].inputs):
                return _NONE
            gn = m.edge_grad_node(nodes[key[0]], key[1])
            return None if gn is None else m.value_of(gn)

        return (_Lazy(value, lambda i: m.value_of(nodes[i]) if i in known else _NONE),
                _Lazy(grad, grad_of), _Lazy(egrad, egrad_of))

    def _read_each(self) -> None:
        m = self.model
        self.value = {n.id: m.value_of(n) for n in self.nodes}
        self.grad = {}
        self.egrad = {}
        for n in self.forward:
            if m.grad_node(n) is not None:
                self.grad[n.id] = m.grad_of(n)
            for pos in range(len(n.inputs)):
                gn = m.edge_grad_node(n, pos)
                self.egrad[(n.id, pos)] = None if gn is None else m.value_of(gn)
        self._contribs()

    def _contribs(self) -> None:
        """Each forward node's incoming contributions, in build order of the edges (in
        a window, of the window's nodes, whose consumers are all in the window; the
        others' when first asked for, e.g. by a listing of every node)."""
        self.contribs: dict[int, list] = self._contribs_of(self.shown_forward)
        if self.first:
            every: dict[int, list] = {}

            def contribs_of(i: int) -> Any:
                if not every:
                    every.update(self._contribs_of(self.forward))
                return every.get(i, _NONE)

            self.contribs = _Lazy(self.contribs, contribs_of)

    def _contribs_of(self, forward: list) -> dict[int, list]:
        out: dict[int, list] = {n.id: [] for n in forward}
        for n in forward:
            for pos, x in enumerate(n.inputs):
                g = self.egrad[(n.id, pos)]
                if g is not None and x.id in out:
                    out[x.id].append(g)
        return out

    # -- which scopes are one node ------------------------------------------------
    def _units(self) -> None:
        o = self.opts
        self.scopes = scopes = scopes_of(self.nodes)
        check_collapse(self.model, o.collapse, self.nodes)
        # collapsing a scope also collapses its backward twin (grad/hidden for hidden)
        self.collapsed = list(o.collapse) + [f"grad/{c}" for c in o.collapse
                                             if f"grad/{c}" in scopes]
        self.auto: list[str] = []
        self.rest: set[int] | _Rest = set()
        self.shown, self.shown_forward, self.first = self.nodes, self.forward, 0
        if self._window():
            return
        self._assign()
        if o.max_nodes and len(self.unit_order) > o.max_nodes:
            sizes: dict[str, int] = {}
            for n in self.nodes:
                if n.scope:
                    top = n.scope.split("/")[0]
                    sizes[top] = sizes.get(top, 0) + 1
            for top in sorted(sizes, key=lambda s: (-sizes[s], scopes.index(s))):
                if len(self.unit_order) <= o.max_nodes:
                    break
                if top in self.collapsed:
                    continue
                self.collapsed = [c for c in self.collapsed if c.split("/")[0] != top] + [top]
                self.auto.append(top)
                self._assign()
            if len(self.unit_order) > o.max_nodes:      # flat graph: keep the latest nodes
                keep = set(self.unit_order[-(o.max_nodes - 1):]) if o.max_nodes > 1 else set()
                self.rest = {n.id for n in self.nodes if self.unit[n.id] not in keep}
                self._assign()

    #: draw a large flat graph from its latest nodes alone (:meth:`_window`); False
    #: reads and walks every node, as the tests' oracle does
    windowed = True

    def _window(self) -> bool:
        """A flat forward graph (no scopes, nothing collapsed) with more nodes than
        ``max_nodes`` is drawn as its latest ``max_nodes - 1`` nodes and a box for the
        rest: then only those nodes are read and walked (:attr:`shown`), so the picture
        of a 500k-node cell costs what it draws. Every earlier node is in the rest
        (:class:`_Rest`), as :meth:`_units` would find node by node. False if this is
        not such a graph."""
        o, m = self.opts, self.model
        if not (self.windowed and o.max_nodes > 1 and not o.collapse and not self.backward
                and not self.scopes and getattr(m, "compiled", None) is not None
                and getattr(getattr(m, "backprop", None), "grads", None) is not None):
            return False
        k, p, nodes = 0, len(self.nodes), self.nodes
        while p > 0 and k < o.max_nodes + 1:
            p -= 1
            if not self.inline(nodes[p]):
                k += 1
                if k == o.max_nodes - 1:
                    start = p
        if k <= o.max_nodes:
            return False                    # it fits: every node is drawn
        self.shown = self.shown_forward = nodes[start:]
        self.first = nodes[start].id
        self.rest = _Rest(start, self.first, {n.id for n in self.shown if self.inline(n)})
        self._assign()
        return True

    def _assign(self) -> None:
        cache: dict[str, str | None] = {}
        self.unit: dict[int, str] = {} if not self.first else _Units(
            self.first, self.model.graph.nodes, self.inline)
        self.unit_order: list[str] = ["rest"] if self.first else []
        seen: set[str] = set(self.unit_order)
        for n in self.shown:
            own = "" if self.inline(n) else f"n{n.id}"     # "": not drawn
            if n.id in self.rest:
                key = own and "rest"
            else:
                if n.scope not in cache:
                    hit = [c for c in self.collapsed if n.scope == c or
                           n.scope.startswith(c + "/")]
                    cache[n.scope] = "s_" + _ident(min(hit, key=len)) if hit else None
                key = cache[n.scope] or own
            self.unit[n.id] = key
            if key and key not in seen:
                seen.add(key)
                self.unit_order.append(key)
        self.scope_of_key = {"s_" + _ident(c): c for c in self.collapsed}
        self.forward_keys = {self.unit[n.id] for n in self.shown_forward} | set(
            self.unit_order[:1] if self.first else ())

    def ties(self) -> dict[int, list[int]]:
        """Params in a scope drawn beside their first consumer in that scope (same
        rank): otherwise each scope's params start a rank early, the scope boxes overlap
        in rank and a deep network is drawn as a staircase."""
        out: dict[int, list[int]] = {}
        first: dict[int, Any] = {}
        for n in self.shown_forward:
            for x in n.inputs:
                first.setdefault(x.id, n)
        for n in self.shown_forward:
            c = first.get(n.id)
            if n.op == "param" and n.scope and c is not None and c.scope == n.scope \
                    and self.unit[n.id] == f"n{n.id}" and self.unit[c.id] == f"n{c.id}":
                out.setdefault(c.id, []).append(n.id)
        return out

    @property
    def rankdir(self) -> str:
        """The layout direction; "auto" is LR for shallow graphs, TB for deep ones
        (a notebook scrolls down, not sideways)."""
        if self.opts.rankdir != "auto":
            return self.opts.rankdir
        depth: dict[int, int] = {}
        first = self.first        # in a window, every earlier node is 1 deep (the rest)
        for n in self.shown:
            u = self.unit[n.id]
            depth[n.id] = max((depth.get(x.id, 1) + (self.unit[x.id] != u) for x in n.inputs
                               if (x.id in depth or x.id < first) and self.unit[x.id]),
                              default=1)
        if self.backward and self.seed_id in depth:
            depth[self.seed_id] = depth[self.model.output.id] + 1
            for n in self.backward:
                u = self.unit[n.id]
                depth[n.id] = max([depth[n.id]] + [depth[x.id] + (self.unit[x.id] != u)
                                                   for x in n.inputs if x.id in depth])
        return "LR" if max(depth.values(), default=1) <= AUTO_LR_RANKS else "TB"

    def cluster_tree(self) -> list:
        """Nested ``(kind, item)`` lists: nodes, collapsed scopes and clusters."""
        root: list = []
        clusters: dict[str, list] = {"": root}

        def place(path: str) -> list:
            if path not in clusters:
                parent = place(path.rsplit("/", 1)[0] if "/" in path else "")
                kids: list = []
                parent.append(("cluster", (path, kids)))
                clusters[path] = kids
            return clusters[path]

        by_key = {n.id: n for n in self.shown}
        first: dict[str, int] = {}
        for n in self.shown:
            first.setdefault(self.unit[n.id], n.id)
        for key in self.unit_order:
            if key == "rest":
                root.append(("rest", None))
            elif key.startswith("s_"):
                s = self.scope_of_key[key]
                place(s.rsplit("/", 1)[0] if "/" in s else "").append(("scope", key))
            else:
                n = by_key[first[key]]
                place(n.scope).append(("node", n))
        return root

    @staticmethod
    def cluster_id(path: str) -> str:
        return "cluster_" + _ident(path)

    @staticmethod
    def cluster_label(path: str) -> str:
        return "grad (the backward pass)" if path == "grad" else _base(path)

    def is_forward_key(self, key: str) -> bool:
        return key in self.forward_keys

    # -- text of a node -------------------------------------------------------------
    def short(self, n) -> str:
        return _base(n.name)

    def compact_const(self, n) -> bool:
        """A named scalar constant is drawn as bare text (the backward seed is not)."""
        return n.op == "const" and n.size == 1 and n.id != self.seed_id

    def inline(self, n) -> bool:
        """A literal number (``x * 0.9``) is not drawn: its consumer shows it."""
        return n.op == "const" and n.size == 1 and n.auto_named and n.id != self.seed_id

    def const_text(self, n) -> str:
        v = summary(self.value[n.id], self.opts.precision)
        return v if n.auto_named else f"{self.short(n)} = {v}"

    def _arg(self, x) -> str:
        if self.inline(x):
            return summary(self.value[x.id], self.opts.precision)
        return self.short(x)

    def describe(self, n) -> str:
        """``x * x``, ``tanh(z)``, ``param · 2×16``: the op as the cell wrote it."""
        if n.is_leaf:
            text = n.op
        else:
            op = OPS[n.op]
            args = [self._arg(x) for x in n.inputs]
            text = (f"{args[0]} {op.symbol} {args[1]}" if op.symbol and len(args) == 2
                    else f"{args[0]}[{index_text(n.attrs['index'])}]" if n.op == "getitem"
                    else f"{op.name}({', '.join(args)})")
            if len(text) > 28:
                text = text[:26] + "…"
        return text if n.shape == () else f"{text} · {shape_text(n.shape)}"

    def kind(self, n) -> str:
        """"output", "backward", "param", "input", "const" or "op" (picks the fill)."""
        if n is self.model.output:
            return "output"
        if n.id not in self.fwd_ids:
            return "backward"
        return n.op if n.is_leaf else "op"

    def value_text(self, n) -> str:
        """The value row: a scalar in full, a small tensor's elements, a pictured
        tensor's mean and range, else mean ± sd."""
        if self.pictured(n):
            return caption(self.value[n.id], self.opts.precision)
        return summary(self.value[n.id], self.opts.precision)

    def node_by_id(self, nid: int):
        if not hasattr(self, "_by_id"):
            self._by_id = {n.id: n for n in self.shown}
        return self._by_id[nid]

    # -- tensors as pictures ------------------------------------------------------------
    def pictured(self, n) -> bool:
        """Is ``n``'s value (and gradient) drawn as a heat-map picture? A 2-D or larger
        tensor of more than :data:`~nbbp.view.numbers.SMALL` elements is, unless
        ``thumbnails=False``."""
        return (self.opts.thumbnails and len(n.shape) >= 2 and n.size > SMALL
                and not self.compact_const(n))

    def picture(self, n, which: str) -> Thumb | None:
        """The picture of ``n``'s value (``which="value"``: greyscale when it is never
        negative) or gradient (``"grad"``: diverging around 0), or None. A 4-D param is
        a conv filter bank (HWIO); other 4-D tensors are batches of images (NHWC)."""
        if not self.pictured(n):
            return None
        a = self.value.get(n.id) if which == "value" else self.grad.get(n.id)
        if a is None or np.shape(a) != tuple(n.shape):
            return None
        return thumbnail(a, None if which == "value" else True,
                         filters=n.op == "param" and len(n.shape) == 4)

    def grad_text(self, n) -> str:
        """The grad row: ∂out/∂n, as the visible sum of its incoming contributions."""
        if n.id not in self.grad:
            return "—"
        p, g, parts = self.opts.precision, self.grad[n.id], self.contribs.get(n.id, [])
        if isinstance(g, float):
            text = fmt(g, p)
            if len(parts) > 4:
                text += f" = Σ of {len(parts)} edges"
            elif len(parts) >= 2:
                terms = [fmt(parts[0], p)] + [("- " + fmt(-c, p)) if c < 0 else
                                              ("+ " + fmt(c, p)) for c in parts[1:]]
                text += " = " + " ".join(terms)
            return text
        if self.pictured(n):
            return caption(g, p)
        text = elements(g, p) if g.size <= SMALL else f"‖{fmt(norm(g), p)}‖"
        return text + (f" = Σ of {len(parts)} edges" if len(parts) >= 2 else "")

    def grad_tip(self, n) -> str:
        if n.id not in self.grad:
            return f"no gradient of {self.out_name} reaches {n.name}"
        return f"∂{self.out_name}/∂{self.short(n)} = " + full(self.grad[n.id],
                                                              self.opts.precision)

    def formulas(self, n) -> list[str]:
        o = self.opts
        if not (o.formulas and o.grad) or n.is_leaf or n.role != "forward" \
                or n.id not in self.grad:
            return []
        return [formula(n.op, pos) for pos in range(len(n.inputs))
                if self.egrad.get((n.id, pos)) is not None]

    def node_tooltip(self, n) -> str:
        """Everything about a node: its op, full value and gradient, the cell line."""
        body = n.op if n.is_leaf else f"{n.op}({', '.join(x.name for x in n.inputs)})"
        tip = f"{n.name} = {body}"
        if n.id in self.means:
            tip += f"\n{self.means[n.id]}"
        if n.line and 0 < n.line <= len(self.lines):
            tip += f"\nline {n.line}: {self.lines[n.line - 1].strip()}"
        t = self.picture(n, "value")
        if t is not None and t.note:
            tip += f"\n{t.note}"
        tip += "\nvalue: " + full(self.value[n.id], self.opts.precision)
        if self.opts.grad and n.id in self.fwd_ids and n.op != "const":
            tip += "\ngrad " + self.grad_tip(n)
        return tip

    def _explain_backward(self) -> None:
        m, out = self.model, self.out_name
        totals: dict[int, list[str]] = {}
        for n in reversed(self.forward):      # the output first
            g = m.grad_node(n)
            if g is not None:
                totals.setdefault(g.id, []).append(f"∂{out}/∂{self.short(n)}")
        for gid, names in totals.items():
            self.means[gid] = "= " + ", ".join(names[:2]) + (", …" if len(names) > 2 else "")
        for n in self.forward:
            for pos, x in enumerate(n.inputs):
                g = m.edge_grad_node(n, pos)
                if g is not None and g.id not in self.means:
                    self.means[g.id] = f"∂{out}/∂{self.short(x)} via {self.short(n)}"

    # -- edges ----------------------------------------------------------------------
    def edge_label(self, g: Any) -> str:
        """An edge's label: the contribution, or its norm for a tensor."""
        p = self.opts.precision
        return fmt(g, p) if isinstance(g, float) else f"‖{fmt(norm(g), p)}‖"

    def edges(self, collapse: bool = True) -> list[EdgeView]:
        """Forward edges in build order of their heads, each with its contribution."""
        out: list[EdgeView] = []
        groups: dict[tuple[str, str], EdgeView] = {}
        oname = self.out_name
        for n in self.shown_forward if collapse else self.forward:
            for pos, x in enumerate(n.inputs):
                g = self.egrad[(n.id, pos)]
                src, dst = (self.unit[x.id], self.unit[n.id]) if collapse else \
                    (f"n{x.id}", f"n{n.id}")
                if src == dst or not src:
                    continue
                label = ""
                if g is None:
                    tip = f"no gradient flows from {n.name} back to {x.name}"
                    why = _no_gradient_why(n, x)
                    if why:                     # stopped by a dtype: say so on the edge
                        label = why
                        tip = f"{tip}: {why} ({x.name} is {x.dtype}, {n.name} {n.dtype})"
                else:
                    tip = (f"∂{oname}/∂{self.short(x)} flowing back through {self.short(n)}"
                           f" (its argument {OPS[n.op].arg(pos)}): "
                           f"{full(g, self.opts.precision, values=False)}"
                           f"\nlocal derivative {formula(n.op, pos)}")
                e = EdgeView(src, dst, f"e{n.id}_{pos}", x.name, n.name, g,
                             None if g is None else norm(g),
                             label if g is None else self.edge_label(g), tip,
                             x.op == "const", not x.is_leaf or src[0] in "sr")
                merge = collapse and (src[0] in "sr" or dst[0] in "sr")
                if merge and (src, dst) in groups:
                    self.merge_edges(groups[(src, dst)], e)
                    continue
                if merge:
                    groups[(src, dst)] = e
                out.append(e)
        if collapse:
            self._ghosts(out)
        return out

    def _ghosts(self, edges: list[EdgeView]) -> None:
        """A leaf, collapsed scope or the hidden rest feeding more than :data:`FANOUT`
        drawn nodes gets a small copy beside each consumer: long labelled edges across
        the whole picture are what makes a layout slow and a picture unreadable."""
        count: dict[str, int] = {}
        for e in edges:
            count[e.src] = count.get(e.src, 0) + 1
        for e in edges:
            if count[e.src] > FANOUT and (not e.spine or e.src[0] in "sr"):
                e.ghost = "g" + e.id[1:]

    def ghost_label(self, e: EdgeView) -> tuple[str, str]:
        """Text and tooltip of the small copy of an edge's tail."""
        if e.src == "rest":
            name = _base(e.src_name) if e.src_name != "several nodes" else "…"
            return name, f"{e.src_name}: among the earlier nodes not drawn"
        if e.src.startswith("s_"):
            return _base(self.scope_of_key[e.src]), f"scope {self.scope_of_key[e.src]}"
        return _base(e.src_name), f"{e.src_name}: drawn once, used by many nodes"

    def merge_edges(self, into: EdgeView, e: EdgeView) -> None:
        """Parallel edges between collapsed ends become one: a sum when they leave the
        same node, else the combined norm."""
        if e.grad is None:
            return
        if into.grad is None:
            into.grad, into.mag, into.label, into.tip = e.grad, e.mag, e.label, e.tip
            into.src_name = e.src_name
            return
        if into.src_name == e.src_name:
            into.grad = into.grad + e.grad
            into.mag = norm(into.grad)
            into.label = self.edge_label(into.grad)
        else:
            into.grad = 0.0
            into.mag = math.hypot(into.mag or 0.0, e.mag or 0.0)
            into.label = f"‖{fmt(into.mag, self.opts.precision)}‖"
            into.src_name = "several nodes"
        into.tip = (f"gradients flowing back from {into.dst_name} to {into.src_name}, "
                    f"several edges combined: {into.label}")

    def top_magnitude(self) -> float:
        """The largest finite :func:`~nbbp.view.numbers.norm` of an edge's contribution
        over the whole graph (the colour scale); in a window, read from the arena in
        one step for the float64 scalars, node by node for the others."""
        if self.first:
            return self._top_in_arena()
        mags = [mag for mag in (norm(g) for g in self.egrad.values() if g is not None)
                if math.isfinite(mag)]
        return max(mags, default=0.0)

    def _top_in_arena(self) -> float:
        m = self.model
        enodes = list(m.backprop.grads.edge.values())
        # ids of the float64 scalars, ~id of the others (tensors, other dtypes)
        ids = np.fromiter((g.id if g.shape == () and g.dtype == "float64" else ~g.id
                           for g in enodes), np.int64, len(enodes))
        scalar = ids >= 0
        a = np.abs(m.compiled.scalars(ids[scalar]))
        a = a[np.isfinite(a)]
        mags = [float(a.max())] if a.size else []
        others = (norm(m.value_of(m.graph.nodes[i])) for i in (~ids[~scalar]).tolist())
        return max([*mags, *(v for v in others if math.isfinite(v))], default=0.0)

    def backward_edges(self) -> list[tuple[str, str, str, bool]]:
        """(tail, head, id, is_seed) of the gradient graph's edges, deduplicated."""
        if not self.backward:
            return []
        out, seen = [], set()
        reuse = len(self.unit_order) <= REUSE_EDGES_UP_TO
        seed = self.model.grad_node(self.model.output)
        if seed is not None:
            out.append((self.unit[self.model.output.id], self.unit[seed.id], "b_seed", True))
        for n in self.backward:
            for pos, x in enumerate(n.inputs):
                src, dst = self.unit.get(x.id), self.unit[n.id]
                if not src or src == dst or (src, dst) in seen or (
                        not reuse and src in self.forward_keys):
                    continue
                seen.add((src, dst))
                out.append((src, dst, f"b{n.id}_{pos}", False))
        return out

    # -- collapsed scopes, the rest, the caption ---------------------------------------
    def collapsed_info(self, key: str) -> dict[str, Any]:
        s, p = self.scope_of_key[key], self.opts.precision
        inside = [n for n in self.nodes if self.unit[n.id] == key]
        params = leaves(inside, "param")
        rows: list[tuple[str, str]] = []
        if params:
            count = sum(n.size for n in params)
            rows.append(("params", f"{count:,} in {len(params)} tensors"))
            which, vals = "params", [self.value[n.id] for n in params]
            grads = [self.grad[n.id] for n in params if n.id in self.grad]
        else:
            outs = [n for n in inside if n is self.model.output or any(
                self.unit.get(c.id, key) != key for c in self._consumers(n))] or inside[-1:]
            which, vals = "outputs", [self.value[n.id] for n in outs]
            grads = [self.grad[n.id] for n in outs if n.id in self.grad]
            rows.append(("params", "none"))
        rows.append((f"‖{which}‖", fmt(math.hypot(*map(norm, vals)), p)))
        if self.opts.grad and inside[0].role == "forward":
            rows.append((f"‖∂{self.out_name}/∂{which}‖",
                         fmt(math.hypot(*map(norm, grads)), p) if grads else "—"))
        names = ", ".join(n.name for n in inside[:12]) + (", …" if len(inside) > 12 else "")
        how = ("collapsed automatically to keep the picture readable; draw it open with "
               "max_nodes=0 (%%bpgraph … --max-nodes 0)" if s in self.auto else
               "collapsed on request (collapse=…)")
        return {"name": s, "what": f"{len(inside)} nodes", "rows": rows,
                "tip": f"scope {s}: {names}\n{how}"}

    def _consumers(self, n) -> list:
        if not hasattr(self, "_cons"):
            self._cons: dict[int, list] = {}
            for v in self.nodes:
                for x in v.inputs:
                    self._cons.setdefault(x.id, []).append(v)
        return self._cons.get(n.id, [])

    def caption_lines(self, kinds: set[str]) -> list[str]:
        o, out = self.opts, self.out_name
        lines = []
        if o.grad:
            lines.append(f"grad: ∂{out}/∂node.  On each edge u → v: the part of ∂{out}/∂u "
                         "flowing back through v.")
            lines.append("Darker, thicker edges carry larger gradients (log scale).")
        if "vanish" in kinds:
            lines.append("Grey dashed: vanishing, below 1e-6 × the largest.")
        if "explode" in kinds:
            lines.append("Red: exploding, above 1e3.")
        if self.backward:
            lines.append("Orange, dashed boxes: the backward pass, nodes the engine runs "
                         "like any other.")
        if self.auto:
            lines.append(f"Collapsed to fit {o.max_nodes} nodes: {', '.join(self.auto)}; "
                         "draw all with max_nodes=0 (--max-nodes 0).")
        if self.rest:
            lines.append(f"{len(self.rest)} earlier nodes not drawn; draw all with "
                         "max_nodes=0 (--max-nodes 0).")
        return lines

    def rest_info(self) -> tuple[str, str]:
        params = (self.rest.params(self.nodes) if isinstance(self.rest, _Rest) else
                  sum(1 for n in self.nodes if n.id in self.rest and n.op == "param"))
        return (f"… {len(self.rest):,} earlier nodes ({params} param"
                f"{'' if params == 1 else 's'})",
                "not drawn to keep the picture readable; draw all with max_nodes=0")


_NONE = object()      # a _Lazy key that has no value


class _Lazy(dict):
    """A dict of what a window read, reading any other key when asked for (``read``
    returns ``_NONE`` for a key the full dict would not have)."""

    def __init__(self, known: dict, read: Any) -> None:
        super().__init__(known)
        self.read = read

    def __missing__(self, key: Any) -> Any:
        v = self.read(key)
        if v is _NONE:
            raise KeyError(key)
        self[key] = v
        return v

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return self.get(key, _NONE) is not _NONE


class _Rest:
    """The ids of the nodes a window does not draw: every node before its first
    (``first``; ``count`` of them) and the window's own literal numbers."""

    def __init__(self, count: int, first: int, inline: set[int]) -> None:
        self.count, self.first, self.inline = count, first, inline

    def __contains__(self, i: object) -> bool:
        return i < self.first or i in self.inline   # type: ignore[operator]

    def __len__(self) -> int:
        return self.count + len(self.inline)

    def params(self, nodes: list) -> int:
        return sum(1 for n in nodes[:self.count] if n.op == "param")


class _Units(dict):
    """A window's units, the nodes before it in the rest: ``"rest"``, or ``""`` for a
    literal number (not drawn)."""

    def __init__(self, first: int, nodes: list, inline: Any) -> None:
        super().__init__()
        self.first, self.nodes, self.inline = first, nodes, inline

    def __missing__(self, i: int) -> str:
        if not 0 <= i < self.first:
            raise KeyError(i)
        return "" if self.inline(self.nodes[i]) else "rest"

    def get(self, i: Any, default: Any = None) -> Any:
        try:
            return self[i]
        except KeyError:
            return default
