"""The view: a model's numbers as pictures — scene, DOT/SVG, live refills, plots.

``options`` (picture options) → ``scene`` (what to draw) → ``style`` (how each edge
and node looks) → ``dot`` (DOT text, SVG/PNG, files, the notebook's mimebundle) via
``graphviz`` (finding and running a renderer); ``listing`` is the text fallback.
``template`` and ``live`` lay a picture out once and refill it; ``explain`` makes the
step-through's overlays; ``numbers`` formats every number; ``plots`` and ``charts``
draw curves and decision regions. ``render`` re-exports the picture functions users
call (``to_dot``, ``svg``, ``save``, ``mimebundle``, ``listing``, ``remember``).

Graphviz, matplotlib and IPython are imported by the functions that need them.
"""
