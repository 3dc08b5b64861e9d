"""The view: a model's numbers as pictures — scene, DOT/SVG, live refills, plots.

Graphviz, matplotlib and IPython are imported by the functions that need them.
"""
