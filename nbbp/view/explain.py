"""What the live widgets explain: the passes step by step, gradient checks, one step's Δ.

Each function reads the model through its public API (values, gradients, the
gradient node on every edge, ``Model.run`` with nodes fed) and returns an
:class:`~nbbp.view.live.Overlay` for the picture plus a sentence for the reader. Nothing
here knows about widgets.

* :class:`StepThrough` — the forward pass node by node, then the backward pass edge by
  edge. A gradient not computed yet is *pending*, never 0. Each backward step writes
  out the chain rule for its edge, ``∂o/∂v · ∂v/∂u = 0.5 · (-3) = -1.5``; the local
  derivative ``∂v/∂u`` is the edge's own gradient node run with ``∂o/∂v`` fed as 1.
* :func:`gradient_check` — central finite differences of the output with respect to
  every node (fed with ``value ± ε`` through ``Model.run``), and the relative error
  against the gradient the backward pass computed.
* :func:`optimizer_step` — one optimizer step, and every number's change.

>>> import nbbp
>>> from nbbp.view.live import LivePicture
>>> m = nbbp.build("x = param(3.0)\\ny = param(2.0)\\nf = x*x*y + y + 1")
>>> st = StepThrough(m, LivePicture(m).scene)
>>> len(st)
14
>>> st.explain(st.index_of("edge", "y"))
('backward 3/7: edge y → add (as b)', '∂f/∂add · ∂add/∂y = 1 · 1 = 1   [∂(a + b)/∂b = 1]')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np

from ..core.graph import leaves
from ..core.ops import OPS
from ..errors import NbbpError
from ..train.check import central_difference
from ..train.state import history
from .live import Overlay
from .numbers import fmt, norm, summary
from .style import ACTIVE, PENDING

GOOD, FAIR, BAD = "#c7e9c0", "#fee391", "#fcbba1"    # relative error < 1e-5, < 1e-2, else
RESOLUTION = 1e-4      # gradients below this × |output| are compared in absolute terms


def _num(v: Any, p: int) -> str:
    """A factor in a written-out product: negative numbers in parentheses."""
    text = summary(v, p)
    return f"({text})" if text.startswith("-") else text


@dataclass(frozen=True)
class Step:
    kind: str            # "start", "forward", "seed", "edge", "done"
    node: Any = None     # forward: the node computed; seed: the output; edge: the head v
    pos: int = -1        # edge: the argument of v the edge enters


class StepThrough:
    """The states of a model's forward and backward passes, one node or edge at a time.

    State ``k`` is the picture after step ``k``: ``0`` shows the leaves only, the
    last state (``len(st) - 1``) everything, like the plain picture.
    """

    def __init__(self, model: Any, scene: Any) -> None:
        self.m, self.sc = model, scene
        m = model
        steps = [Step("start")]
        steps += [Step("forward", n) for n in m.forward if not n.is_leaf]
        if m.grad_node(m.output) is not None:
            steps.append(Step("seed", m.output))
        for v in reversed(m.forward):
            for pos in range(len(v.inputs)):
                if m.edge_grad_node(v, pos) is not None:
                    steps.append(Step("edge", v, pos))
        steps.append(Step("done"))
        self.steps = steps
        # the drawn key of every node and the drawn id of every edge (collapsed scopes
        # draw several as one)
        sc = scene
        self.key = {n.id: sc.unit.get(n.id, "") for n in sc.nodes}
        drawn = {(e.src, e.dst): e.id for e in sc.edges()}
        self.edge_id: dict[tuple[int, int], str] = {}
        for v in m.forward:
            for pos, u in enumerate(v.inputs):
                su, sv = self.key.get(u.id, ""), self.key.get(v.id, "")
                if su and sv and su != sv:
                    own = f"e{v.id}_{pos}"
                    self.edge_id[(v.id, pos)] = own if (su[0], sv[0]) == ("n", "n") \
                        else drawn.get((su, sv), own)
        # each node's outgoing edges that carry a gradient: its total is complete
        # once the last of them has been stepped through
        self.last_edge: dict[int, int] = {}
        for k, s in enumerate(steps):
            if s.kind == "edge":
                self.last_edge[s.node.inputs[s.pos].id] = k
            elif s.kind == "seed":
                self.last_edge[s.node.id] = k

    def __len__(self) -> int:
        return len(self.steps)

    def index_of(self, kind: str, name: str) -> int:
        """The first step of ``kind`` about node ``name`` (for an edge: its tail)."""
        for k, s in enumerate(self.steps):
            if s.kind == kind and s.node is not None:
                n = s.node.inputs[s.pos] if kind == "edge" else s.node
                if n.name == name:
                    return k
        raise KeyError(f"no {kind} step for {name!r}")

    # -- the picture at state k ---------------------------------------------------
    def overlay(self, k: int) -> Overlay:
        m = self.m
        s = self.steps[k]
        ov = Overlay()
        if s.kind == "done":
            return ov
        first_bwd = next((i for i, t in enumerate(self.steps) if t.kind in ("seed", "edge")),
                         len(self.steps))
        pending = ("pending", PENDING, True)
        if k < first_bwd:                                   # forward pass
            done = {t.node.id for t in self.steps[1:k + 1]}
            for n in m.forward:
                if not n.is_leaf and n.id not in done:
                    ov.value[n.id] = pending
            if m.output.id not in done and not m.output.is_leaf:
                ov.caption = pending
            for n in m.forward:
                ov.grad[n.id] = pending
            for eid in self.edge_id.values():
                ov.edge[eid] = "pending"
                ov.label[eid] = pending
            if s.kind == "forward":
                key = self.key.get(s.node.id)
                if key:
                    ov.node[key] = (None, ACTIVE, 3.0)
            return ov
        for n in m.forward:                                 # backward pass
            if self.last_edge.get(n.id, len(self.steps)) > k:
                ov.grad[n.id] = pending
        for j, t in enumerate(self.steps):
            if t.kind != "edge":
                continue
            eid = self.edge_id.get((t.node.id, t.pos))
            if eid is None:
                continue
            if j > k and ov.edge.get(eid) != "active":
                ov.edge[eid], ov.label[eid] = "pending", pending
            elif j == k:
                ov.edge[eid] = "active"
                ov.label.pop(eid, None)
        if s.kind == "edge":
            u = s.node.inputs[s.pos]
            key = self.key.get(u.id)
            if key and self.last_edge.get(u.id) == k:
                ov.node[key] = (None, ACTIVE, 2.0)
        elif s.kind == "seed":
            key = self.key.get(s.node.id)
            if key:
                ov.node[key] = (None, ACTIVE, 3.0)
        return ov

    # -- the sentence at state k ------------------------------------------------------
    def explain(self, k: int) -> tuple[str, str]:
        """(a short heading, the step written out) for state ``k``."""
        m, sc = self.m, self.sc
        p, out = sc.opts.precision, sc.out_name
        s = self.steps[k]
        n_fwd = sum(t.kind == "forward" for t in self.steps)
        n_edge = sum(t.kind == "edge" for t in self.steps)
        if s.kind == "start":
            fed = leaves(m.forward)
            given = ", ".join(f"{sc.short(n)} = {summary(m.value_of(n), p)}"
                              for n in fed[:6]) + (", …" if len(fed) > 6 else "")
            return ("forward pass, start", f"the leaves hold their values ({given}); every "
                    "other value and every gradient is pending")
        if s.kind == "forward":
            n = s.node
            j = sum(t.kind == "forward" for t in self.steps[:k + 1])
            op = OPS[n.op]
            args = [_num(m.value_of(x), p) for x in n.inputs]
            with_values = (f"{args[0]} {op.symbol} {args[1]}" if op.symbol and len(args) == 2
                           else f"{op.name}({', '.join(args)})")
            value = summary(m.value_of(n), p)
            desc = sc.describe(n).split(" · ")[0]
            return f"forward {j}/{n_fwd}", f"{sc.short(n)} = {desc} = {with_values} = {value}"
        if s.kind == "seed":
            return ("backward pass, start", f"∂{out}/∂{out} = 1: the output's gradient with "
                    "respect to itself seeds the backward pass")
        if s.kind == "done":
            return ("done", "every value and gradient is computed; the number on each edge "
                    f"u → v is the part of ∂{out}/∂u that flows back through v")
        v, pos = s.node, s.pos
        u = v.inputs[pos]
        j = sum(t.kind == "edge" for t in self.steps[:k + 1])
        gv = m.grad_of(v)
        contrib = m.value_of(m.edge_grad_node(v, pos))
        nu, nv = sc.short(u), sc.short(v)
        head = f"backward {j}/{n_edge}: edge {nu} → {nv} (as {OPS[v.op].arg(pos)})"
        if np.ndim(gv) == 0 and np.ndim(contrib) == 0:
            local = self.local_derivative(v, pos)
            text = (f"∂{out}/∂{nv} · ∂{nv}/∂{nu} = {_num(gv, p)} · {_num(local, p)} = "
                    f"{summary(contrib, p)}")
        else:
            text = (f"∂{out}/∂{nu} via {nv}: the vector-Jacobian product of ∂{out}/∂{nv} "
                    f"(‖{fmt(norm(gv), p)}‖) gives ‖{fmt(norm(contrib), p)}‖")
        text += f"   [{OPS[v.op].formula(pos)}]"
        if self.last_edge.get(u.id) == k and u.id in sc.grad:
            sc.read()
            text += f"; ∂{out}/∂{nu} is complete: {sc.grad_text(u)}"
        return head, text

    def local_derivative(self, v: Any, pos: int) -> float:
        """∂v/∂(its input ``pos``) at the current values, for scalars: the edge's
        gradient node evaluated with the upstream gradient ∂out/∂v fed as 1."""
        m = self.m
        return float(m.run(m.edge_grad_node(v, pos), feed={m.grad_node(v): 1.0}))

    def html(self, k: int) -> str:
        head, text = self.explain(k)
        return (f'<b style="color:{ACTIVE}">{escape(head)}</b>&nbsp; '
                f'<span style="font-family:monospace;font-size:12px">{escape(text)}</span>')


# -- gradient check ---------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One node's gradient against central finite differences (for a tensor: the
    directional derivative along a random unit direction)."""

    analytic: float
    numeric: float
    rel: float
    direction: bool


def gradient_check(model: Any, eps: float = 1e-6, seed: int = 0) -> dict[int, Check]:
    """Central finite differences of the output with respect to every node that has a
    gradient: ``(f(v + ε) − f(v − ε)) / 2ε`` with the node fed through ``Model.run``
    (everything upstream held fixed, as ∂out/∂node means), against ``grad_of``. The
    relative error is ``|backprop − fd| / max(|backprop|, |fd|, 1e-4·max(1, |f|))``."""
    m = model
    rng = np.random.default_rng(seed)
    out: dict[int, Check] = {}
    # finite differences resolve about 1e-10·|f| (rounding over 2ε); a gradient far
    # below that is compared in absolute terms, not called wrong
    floor = RESOLUTION * max(1.0, float(np.max(np.abs(m.value), initial=0.0)))
    for n in m.forward:
        if n.op == "const" or m.grad_node(n) is None:
            continue
        v0 = np.asarray(m.value_of(n), dtype=float)
        g = np.asarray(m.grad_of(n), dtype=float)
        if n.shape == ():
            d, direction = np.ones(()), False
        else:
            d = rng.standard_normal(n.shape)
            d /= max(float(np.linalg.norm(d)), 1e-300)
            direction = True
        h = eps * max(1.0, float(np.max(np.abs(v0), initial=0.0)))
        try:
            numeric = central_difference(lambda fed: float(np.sum(m.run(m.output, fed))),
                                         {n: v0}, {n: d}, h)
        except NbbpError:            # a nan on one side: the check reports it as failed
            numeric = math.nan
        analytic = float(np.sum(g * d))
        rel = abs(analytic - numeric) / max(abs(analytic), abs(numeric), floor)
        out[n.id] = Check(analytic, numeric, rel if math.isfinite(rel) else math.inf, direction)
    return out


def check_overlay(model: Any, scene: Any, checks: dict[int, Check]) -> tuple[Overlay, str]:
    """Every node coloured by its relative error, the finite-difference value beside
    the gradient; and a one-line summary."""
    p = scene.opts.precision
    ov = Overlay()
    for nid, c in checks.items():
        key = scene.unit.get(nid, "")
        colour = GOOD if c.rel < 1e-5 else FAIR if c.rel < 1e-2 else BAD
        if key == f"n{nid}":
            ov.node[key] = (colour, None, None)
            what = "∇·d" if c.direction else ""
            ov.grad[nid] = (f"{what}{fmt(c.analytic, p)} | fd {fmt(c.numeric, p)}", None, False)
            along = " along a random unit direction d" if c.direction else ""
            ov.tip[key] = (f"finite differences{along}: {c.numeric!r}; backprop: "
                           f"{c.analytic!r}; relative error {c.rel:.2g}")
    worst = max(checks.items(), key=lambda kv: kv[1].rel, default=None)
    if worst is None:
        return ov, "no node has a gradient to check"
    name = next(n.name for n in model.forward if n.id == worst[0])
    return ov, (f"central finite differences at {len(checks)} nodes: largest relative "
                f"error {worst[1].rel:.2g} (at {name}); green < 1e-5 ≤ yellow < 1e-2 ≤ red")


# -- one optimizer step, before and after ---------------------------------------------------
def snapshot(scene: Any) -> dict[str, dict]:
    """Copies of every value, gradient and edge contribution a scene shows."""
    scene.read()
    copy = lambda d: {k: (None if v is None else np.array(v, dtype=float, copy=True))
                      for k, v in d.items()}
    return {"value": copy(scene.value), "grad": copy(scene.grad), "egrad": copy(scene.egrad)}


def _delta(before: Any, after: Any, p: int) -> str:
    d = np.asarray(after, dtype=float) - np.asarray(before, dtype=float)
    if d.ndim == 0:
        x = float(d)
        return "Δ0" if x == 0 else ("Δ+" if x > 0 else "Δ") + fmt(x, p)
    return f"‖Δ‖{fmt(norm(d), p)}"


def delta_overlay(scene: Any, before: dict, after: dict) -> Overlay:
    """Each number's new value with its change since ``before``."""
    p = min(scene.opts.precision, 3)
    ov = Overlay()
    for nid, v in after["value"].items():
        if scene.unit.get(nid) == f"n{nid}" and nid in before["value"]:
            b = before["value"][nid]
            if not np.array_equal(b, v):
                ov.value[nid] = (f"{summary(v, scene.opts.precision)} {_delta(b, v, p)}",
                                 "#6a3d9a", False)
    for nid, g in after["grad"].items():
        b = before["grad"].get(nid)
        if b is not None and scene.unit.get(nid) == f"n{nid}":
            ov.grad[nid] = (f"{summary(g, scene.opts.precision)} {_delta(b, g, p)}",
                            "#6a3d9a", False)
    for (vid, pos), g in after["egrad"].items():
        b = before["egrad"].get((vid, pos))
        if g is not None and b is not None:
            ov.label[f"e{vid}_{pos}"] = (_delta(b, g, p), "#6a3d9a", False)
            ov.tip[f"e{vid}_{pos}"] = f"before the step: {summary(b, 6)}; after: {summary(g, 6)}"
    return ov


def optimizer_step(model: Any, scene: Any, loop: Any) -> tuple[Overlay, str]:
    """Take one step of ``loop`` (a :meth:`~nbbp.Model.train_loop`) and copy the params
    into the model; the overlay shows each number's change, the sentence the loss."""
    before = snapshot(scene)
    loss0 = model.value
    loop.run(1)
    loop.sync()
    history(model).loss.extend(loop.history[-1:])
    after = snapshot(scene)
    opt = loop.optimizer
    p = scene.opts.precision
    text = (f"one {type(opt).__name__} step (lr {opt.lr:g}): {scene.out_name} "
            f"{summary(loss0, p)} → {summary(model.value, p)}; every number shows its new "
            "value and its change (Δ)")
    return delta_overlay(scene, before, after), text
