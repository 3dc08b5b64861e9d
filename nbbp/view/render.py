"""The picture functions in one place: what users, the model and the magic call.

``to_dot``, ``svg``, ``save`` and ``mimebundle`` come from the DOT writer
(:mod:`nbbp.view.dot`), ``listing`` from :mod:`nbbp.view.listing`, the options from
:mod:`nbbp.view.options` and the renderer finder from :mod:`nbbp.view.graphviz`.

>>> import nbbp
>>> from nbbp.view import render
>>> m = nbbp.build("x = param(3.0)\\ny = param(2.0)\\nf = x*x*y + y + 1")
>>> print(render.listing(m).splitlines()[0])
model 'f' = 21  (7 nodes; ∂f/∂node as grad, ∂f flowing back along every edge)
"""

from __future__ import annotations

from .dot import mimebundle, save, scene_dot, svg, to_dot
from .graphviz import INSTALL_HINT, RenderError, find_renderer
from .listing import listing
from .numbers import fmt
from .options import Options, check, options, remember
from .style import EXPLODE_ABS, GREY, ORANGE, RED, VANISH_REL

__all__ = ["EXPLODE_ABS", "GREY", "INSTALL_HINT", "ORANGE", "RED", "VANISH_REL", "Options",
           "RenderError", "check", "find_renderer", "fmt", "listing", "mimebundle",
           "options", "remember", "save", "scene_dot", "svg", "to_dot"]
