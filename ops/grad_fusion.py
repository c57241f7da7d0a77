"""What the backward passes (`minigraph.passes.backward`) ask of the gradient ops that take over
the memory-bound tail of a gradient graph:

- a relu mask: an op with `relu_mask=True` reads, in place of one input g, g * (y > 0), with
  relu's output y as its last input (a `relu_grad` folded into its reader);
- an accumulator: an op with `accumulate=True` adds its result to its last input, in that
  input's buffer (a gradient sum built where each term is produced, not by an add_n);
- a bias gradient: a filter-gradient op with `bias_gradient=True` also sums its output gradient
  over batch and space; its result packs both, (F, K + 1): the filter gradient flattened to
  (F, K) and the bias gradient as the last column. `unpack` gives the two as graph nodes.

The helpers here check the extra input, build the gradients of such ops and pack results.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

from minigraph.errors import ShapeError
from minigraph.graph import Node
from minigraph.spec import Spec, dims_compatible, fmt, num_elements


def split_mask(op, extra: Sequence) -> Tuple[Sequence, Optional[object]]:
    """(the optional inputs before the mask, the mask or None) of an op's trailing inputs."""
    if getattr(op, "relu_mask", False):
        return extra[:-1], extra[-1]
    return extra, None


def split_trailing(op, extra: Sequence):
    """(bias inputs, relu mask or None, accumulator or None) of an op's inputs after (x, w):
    in that order, each present when the op says so (`relu_mask`, `accumulate`)."""
    acc = None
    if getattr(op, "accumulate", False):
        extra, acc = extra[:-1], extra[-1]
    bias, mask = split_mask(op, extra)
    return bias, mask, acc


def check_mask(masked: Spec, y: Spec, what: str = "output gradient") -> None:
    """The relu output y must have the shape and dtype of the input it masks."""
    if len(masked.shape) != len(y.shape) or not all(dims_compatible(a, b) for a, b in zip(masked.shape, y.shape)):
        raise ShapeError(f"relu mask {fmt(y.shape)} does not match the {what} {fmt(masked.shape)}")
    if masked.dtype != y.dtype:
        raise ShapeError(f"relu mask dtype {y.dtype} differs from the {what}'s {masked.dtype}")


def packed_spec(f, k_shape, dtype) -> Spec:
    """The spec of a packed filter+bias gradient: (F, prod(k_shape) + 1)."""
    k = num_elements(tuple(k_shape))
    return Spec((f, None if k is None else k + 1), dtype)


def masked_input(node: Node, index: int) -> Node:
    """The value op `node` actually reads at input `index`: that input times (y > 0) when its op
    has a relu mask (y its last input), else the input itself."""
    from .elementwise import relu_grad
    x = node.inputs[index]
    return relu_grad(x, node.inputs[-1]) if getattr(node.op, "relu_mask", False) else x


def through_mask(node: Node, grad: Node) -> Node:
    """The gradient `grad` of the masked input, taken back through the mask (zero where y <= 0)."""
    from .elementwise import relu_grad
    return relu_grad(grad, node.inputs[-1]) if getattr(node.op, "relu_mask", False) else grad


def unpack_ops(filter_shape: Sequence[int]):
    """The two (slice, reshape) op pairs that take the filter gradient of `filter_shape` and the
    bias gradient (F,) out of a packed (F, K + 1) result, as views."""
    from .concat import Slice
    from .shape import Reshape
    f, k = filter_shape[0], num_elements(tuple(filter_shape[1:]))
    return ((Slice(1, 0, k), Reshape(tuple(filter_shape))), (Slice(1, k, k + 1), Reshape((f,))))


def unpack(packed: Node, filter_shape: Sequence[int]) -> Tuple[Node, Node]:
    """(filter gradient of `filter_shape`, bias gradient (F,)) as view nodes of a packed node."""
    from minigraph.op import apply
    return tuple(apply(shape_op, [apply(slice_op, [packed])]) for slice_op, shape_op in unpack_ops(filter_shape))


def pack(xp, gw, gb):
    """gw (F, ...) and gb (F,) as one (F, K + 1) array, gb in the last column."""
    f = gw.shape[0]
    out = xp.empty((f, gw.size // f + 1) if f else (0, 1), dtype=gw.dtype)
    out[:, :-1] = gw.reshape(f, -1)
    out[:, -1] = gb
    return out


def mask_index_ok(op, index: int, g_index: int) -> bool:
    """Whether a relu mask may be folded into input `index` of `op` (the g input, not yet masked)."""
    return index == g_index and not getattr(op, "relu_mask", False)


__all__ = ["split_mask", "split_trailing", "check_mask", "packed_spec", "masked_input", "through_mask", "unpack", "unpack_ops", "pack",
           "mask_index_ok"]
