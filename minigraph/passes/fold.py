"""Constant folding: a pure, deterministic, foldable op whose inputs are all constants is
evaluated once, at optimisation time, and replaced by a constant holding its value.

Folding uses the op's generic `forward` on NumPy, so a folded value is the one the op
computes. Results larger than `FOLD_LIMIT` elements are left to run time (a constant that
big would cost more memory than the work it saves), and so is any op whose evaluation fails
(its error then appears at run time, where it belongs).
"""
from __future__ import annotations

import numpy as np

from minigraph.op import Constant
from minigraph.spec import num_elements

from .program import Program, rebuild

FOLD_LIMIT = 1 << 20


def _foldable(node, inputs) -> bool:
    op = node.op
    if not inputs or op.side_effects or not (op.pure and op.deterministic and op.foldable):
        return False
    size = num_elements(node.shape)
    return size is not None and size <= FOLD_LIMIT and all(isinstance(x.op, Constant) for x in inputs)


def _value(node, inputs):
    """The node's value from its constant inputs, or None when it cannot be folded faithfully."""
    try:
        with np.errstate(all="ignore"):
            value = node.op.forward(np, *[x.op.value for x in inputs])
    except Exception:  # noqa: BLE001 - left to run time, where the error belongs
        return None
    value = np.array(value, copy=True)
    if value.shape != tuple(node.shape) or value.dtype != node.dtype:
        return None
    value.setflags(write=False)
    return value


def fold_constants(prog: Program):
    """Replace every foldable node with constant inputs (transitively) by a constant."""
    fed = set(prog.fed)
    if not any(_foldable(n, n.inputs) for n in prog.nodes if n not in fed):
        return prog, None

    def rule(node, mapping, b):
        inputs = [mapping[x] for x in node.inputs]
        if not _foldable(node, inputs):
            return None
        value = _value(node, inputs)
        return None if value is None else b.add(Constant(value), [], node.name)

    return rebuild(prog, rule)


__all__ = ["fold_constants", "FOLD_LIMIT"]
