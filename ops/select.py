"""Choosing elements: `where` (elementwise choice by a bool condition) and `argmax`."""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

import numpy as np

from minigraph.checks import as_axis
from minigraph.errors import ShapeError
from minigraph.graph import graph_of
from minigraph.op import Op, apply
from minigraph.spec import Spec, fmt

from .elementwise import broadcast_shapes, sum_like, zeros_like
from .reductions import normalize_axes


@dataclasses.dataclass(frozen=True)
class Where(Op):
    """cond ? a : b elementwise, with NumPy broadcasting of all three; `cond` is bool, `a` and
    `b` share one dtype. The gradient goes to the side that was chosen (none to `cond`)."""

    kind: ClassVar[str] = "where"

    def infer(self, cond: Spec, a: Spec, b: Spec) -> Spec:
        if cond.dtype.kind != "b":
            raise ShapeError(f"the condition must be bool, got {cond.dtype}")
        if a.dtype != b.dtype:
            raise ShapeError(f"dtype mismatch: {a.dtype} vs {b.dtype}")
        return Spec(broadcast_shapes(broadcast_shapes(cond.shape, a.shape), b.shape), a.dtype)

    def forward(self, xp, cond, a, b):
        return xp.where(cond, a, b)

    def gradient(self, node, g):
        cond, a, b = node.inputs
        zero = zeros_like(g)
        return [None, sum_like(where(cond, g, zero), a), sum_like(where(cond, zero, g), b)]


@dataclasses.dataclass(frozen=True)
class ArgMax(Op):
    """The index of the largest value along `axis` (the first one on ties), as int64; the axis
    is removed. Not differentiable: its gradient is None."""

    kind: ClassVar[str] = "argmax"
    axis: int

    def infer(self, x: Spec) -> Spec:
        if x.dtype.kind not in "biuf":
            raise ShapeError(f"argmax needs a numeric input, got {x.dtype}")
        if len(x.shape) == 0:
            raise ShapeError("argmax of a scalar: there is no axis to search")
        (axis,) = normalize_axes(self.axis, len(x.shape), x.shape)
        if x.shape[axis] == 0:
            raise ShapeError(f"argmax along axis {self.axis} of {fmt(x.shape)}: the axis is empty")
        return Spec(tuple(d for i, d in enumerate(x.shape) if i != axis), np.dtype(np.int64))

    def forward(self, xp, x):
        return xp.argmax(x, axis=self.axis).astype(xp.int64, copy=False)

    def gradient(self, node, g):
        return [None]


def where(cond, a, b, name: Optional[str] = None):
    """`a` where `cond` is true, else `b` (all three broadcast; `a` and `b` of one dtype: a
    Python number or array beside a node takes the node's dtype)."""
    from minigraph.graph import Node
    from minigraph.op import constant, literal_array

    ref = next((v.dtype for v in (a, b) if isinstance(v, Node)), None)
    if ref is not None:
        with graph_of([cond, a, b]):
            a, b = (v if isinstance(v, Node) else constant(literal_array(v, ref)) for v in (a, b))
    return apply(Where(), [cond, a, b], name)


def argmax(x, axis: int = -1, name: Optional[str] = None):
    """The int64 index of the largest entry along `axis` (the first on ties); no gradient.

    >>> predicted = ops.argmax(logits, axis=1)      # (N, classes) -> (N,)
    """
    return apply(ArgMax(as_axis(axis, "argmax: axis")), [x], name)


__all__ = ["where", "argmax", "Where", "ArgMax"]
