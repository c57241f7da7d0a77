"""Graphviz rendering of minigraph graphs (installed as minigraph.viz).

    dot = mg.viz.to_dot(net.probs, collapse=1)      # a graphviz.Digraph; needs no `dot` program
    mg.viz.render(net.probs, "googlenet.svg", collapse=1)
"""
from .dot import to_dot
from .render import GraphvizNotFoundError, render

__all__ = ["to_dot", "render", "GraphvizNotFoundError"]
