"""Matrix products."""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

from minigraph.errors import ShapeError
from minigraph.op import Cost, Op, apply, check_float, check_rank
from minigraph.spec import Spec, fmt


@dataclasses.dataclass(frozen=True)
class MatMul(Op):
    """(n, k) @ (k, m) -> (n, m)."""

    kind: ClassVar[str] = "matmul"

    def infer(self, a: Spec, b: Spec) -> Spec:
        check_float(a, b)
        check_rank(a, 2, "left operand")
        check_rank(b, 2, "right operand")
        if a.shape[1] is not None and b.shape[0] is not None and a.shape[1] != b.shape[0]:
            raise ShapeError(f"inner dimensions differ: {fmt(a.shape)} @ {fmt(b.shape)}")
        return Spec((a.shape[0], b.shape[1]), a.dtype)

    def forward(self, xp, a, b):
        return a @ b

    def gradient(self, node, g):
        from .shape import transpose
        a, b = node.inputs
        return [matmul(g, transpose(b)), matmul(transpose(a), g)]

    def cost(self, node) -> Cost:
        n, m = node.shape
        k = node.inputs[0].shape[1]
        return Cost(0, (n or 1) * m * k if None not in (m, k) else 0)


def matmul(a, b, name: Optional[str] = None):
    """The matrix product of two 2-D tensors."""
    return apply(MatMul(), [a, b], name)
