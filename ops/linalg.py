"""Matrix products."""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

from minigraph.dispatch import register_kernel
from minigraph.errors import ShapeError
from minigraph.op import Cost, Op, Variable, apply, check_float, check_rank
from minigraph.spec import Spec, fmt


@dataclasses.dataclass(frozen=True)
class MatMul(Op):
    """(n, k) @ (k, m) -> (n, m)."""

    kind: ClassVar[str] = "matmul"
    uses_blas: ClassVar[bool] = True
    category: ClassVar[str] = "linear"

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
        """macs: n x k x m (n None counts as 1). Every output has its own column of weights, so
        nothing is shared over positions: unshared_params stays None (a dense layer's weights
        count the same with and without weight sharing)."""
        n, m = node.shape
        k = node.inputs[0].shape[1]
        return Cost(0, (n or 1) * m * k if None not in (m, k) else 0)

    def display_kind(self, node):
        """'linear' for a product with a weight variable (a fully connected layer)."""
        return "linear" if any(isinstance(x.op, Variable) for x in node.inputs) else self.kind

    def label(self, node):
        return f"linear, {node.shape[1]}" if self.display_kind(node) == "linear" else "matmul"


SPLIT_FLOPS = 8e6  # below this a product runs whole on the calling thread


@register_kernel("matmul", "numpy", "row_split",
                 score=lambda op, shapes, rt: 2.0 if _rows_pay(shapes, rt) else None)
def _matmul_rows(rt, op, a, b):
    """a @ b with the rows of a split over the runtime's threads (BLAS runs one thread each)."""
    out = rt.xp.empty((a.shape[0], b.shape[1]), dtype=rt.xp.result_type(a, b))

    def part(s, e):
        rt.xp.matmul(a[s:e], b, out=out[s:e])

    rt.run_chunks(part, a.shape[0], -(-a.shape[0] // rt.threads), flops=float("inf"))
    return out


def _rows_pay(shapes, rt) -> bool:
    (n, k), (_, m) = shapes
    return rt.threads > 1 and n >= 2 * rt.threads and 2.0 * n * k * m >= SPLIT_FLOPS


def matmul(a, b, name: Optional[str] = None):
    """The matrix product of two 2-D tensors."""
    return apply(MatMul(), [a, b], name)
