"""Specialisation on constant inputs: an op that has a simpler form when some inputs are
constants (`op.specialize`) is replaced by it.

After constant folding, a `training` switch that is not fed is a constant False: a batch norm
then only normalises with its moving averages (a pure op, where the original writes state, so
inference runs no longer take the session alone), and a dropout mask is all ones.
"""
from __future__ import annotations

from minigraph.op import Constant

from .program import Program, rebuild


def _choice(node, inputs):
    return node.op.specialize(node, inputs) if any(isinstance(x.op, Constant) for x in inputs) else None


def specialize_on_constants(prog: Program):
    """Replace each node whose op offers a simpler form for its (constant) inputs."""
    fed = set(prog.fed)
    if not any(_choice(n, n.inputs) is not None for n in prog.nodes if n not in fed):
        return prog, None

    def rule(node, mapping, b):
        choice = _choice(node, [mapping[x] for x in node.inputs])
        if choice is None:
            return None
        op, inputs = choice
        return b.add(op, inputs, node.name)

    return rebuild(prog, rule)


__all__ = ["specialize_on_constants"]
