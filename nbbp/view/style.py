"""How edges and nodes look: one record per style, computed here, printed elsewhere.

An edge's colour, label colour, width and dash come from the magnitude of the gradient
it carries, on a log scale relative to the largest in the picture. :func:`edge_style`
makes that record once; the DOT writer (:mod:`nbbp.view.dot`) prints it as DOT
attributes and the live picture (:mod:`nbbp.view.live`) as SVG attributes, so neither
reads the other's text back.

>>> edge_style(1.0, 1.0).colour                  # the largest: darkest
'#08306b'
>>> edge_style(0.0, 1.0).kind, edge_style(5e3, 1.0).kind
('vanish', 'explode')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ACTIVE", "CONST_EDGE", "EXPLODE_ABS", "FILL", "GREY", "NO_GRAD_EDGE", "ORANGE",
           "PENDING", "RED", "VANISH_REL", "EdgeStyle", "NodeStyle", "edge_style",
           "frame_edge_style", "node_style"]

VANISH_REL = 1e-6       # |contribution| < this × the largest: vanishing
EXPLODE_ABS = 1e3       # |contribution| > this: exploding

GREY, RED, ORANGE = "#b0b0b0", "#d62728", "#e6550d"
PENDING = "#9a9a9a"     # text of a number not computed yet (step-through)
ACTIVE = "#e6550d"      # the node or edge the step-through is at
FILL = {"param": "#fff3c4", "input": "#e3f4dc", "const": "#f2f2f2", "backward": "#fde9d9",
        "output": "#dbe9f6", "op": "#ffffff", "scope": "#eeeeee", "rest": "#f7f7f7"}


@dataclass(frozen=True)
class EdgeStyle:
    """How one edge is drawn. ``None`` leaves the picture's default for that attribute."""

    colour: str
    label_colour: str | None = None
    width: float | None = None
    dashed: bool = False
    arrowsize: float | None = None
    kind: str = "ok"        # "ok", "vanish", "explode" (named in the caption), "none", "const"


@dataclass(frozen=True)
class NodeStyle:
    """How one graph node's box is drawn."""

    fill: str
    dashed: bool = False         # a node of the backward pass
    width: float | None = None   # a heavier border (the output)


# -- colours: a log scale of |contribution| relative to the largest ---------------
def _lerp(a: str, b: str, t: float) -> str:
    ca, cb = (tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in (a, b))
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb))


_STEPS = 24
_SCALE = [EdgeStyle(_lerp("#9ecae1", "#08306b", k / _STEPS),
                    _lerp("#5b7fa3", "#08306b", k / _STEPS), 0.7 + 1.9 * k / _STEPS)
          for k in range(_STEPS + 1)]
_EXPLODE = EdgeStyle(RED, RED, 3.5, kind="explode")
_VANISH = EdgeStyle(GREY, "#8c8c8c", 0.8, dashed=True, kind="vanish")
CONST_EDGE = EdgeStyle(GREY, arrowsize=0.5, kind="const")      # from a constant
NO_GRAD_EDGE = EdgeStyle(GREY, dashed=True, kind="none")       # no gradient flows back


def edge_style(mag: float, top: float) -> EdgeStyle:
    """The style of an edge carrying a contribution of magnitude ``mag`` when the
    largest in the picture is ``top``."""
    if mag > EXPLODE_ABS:
        return _EXPLODE
    if not mag > VANISH_REL * top:      # also 0 and an all-zero graph
        return _VANISH
    t = min(1.0, max(0.0, (math.log10(mag / top) + 6.0) / 6.0))
    return _SCALE[round(t * _STEPS)]


_PENDING_EDGE = EdgeStyle("#d4d4d4", PENDING, 0.9, dashed=True, kind="none")
_ACTIVE_EDGE = EdgeStyle(ACTIVE, ACTIVE, 3.5, kind="none")
_LIVE_NO_GRAD = EdgeStyle(GREY, "#8c8c8c", 1.0, dashed=True, kind="none")


def frame_edge_style(mag: float | None, top: float, state: str | None) -> EdgeStyle:
    """The style of an edge in one frame of a live picture: ``state`` "pending",
    "active" or "muted" (a step-through's overlay) or None (the plain picture)."""
    if state == "pending":
        return _PENDING_EDGE
    if state == "active":
        return _ACTIVE_EDGE
    if mag is None:
        return _LIVE_NO_GRAD
    s = edge_style(mag, top)
    if state == "muted":
        return EdgeStyle("#cfcfcf", "#b0b0b0", s.width, s.dashed, s.arrowsize, s.kind)
    return s


def node_style(kind: str, backward: bool, output: bool) -> NodeStyle:
    """The box of a node of ``kind`` (see :meth:`~nbbp.view.scene.Scene.kind`)."""
    return NodeStyle(FILL[kind], dashed=backward, width=2.0 if output else None)
