"""Graphviz rendering of minigraph graphs (installed as minigraph.viz)."""
