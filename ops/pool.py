"""Pooling (NCHW): max, average and global average, with their gradient ops.

Windows are `size` (KH, KW) moved by `stride`; padding takes the conv forms (int, pair,
((top, bottom), (left, right)), "SAME", "VALID") and is stored resolved. Every padding side
must be smaller than the window, so each window holds at least one real cell.

- Max pooling: padded cells are -inf and never win. The gradient goes to one winner per
  window, the FIRST maximum in row-major order on ties, through `MaxPoolGrad(x, g)`. That op
  is linear in g: its gradient in g reads the upstream gradient at the same winners
  (`MaxPoolGradGrad`), and in x it is zero (the winners are piecewise constant).
- Average pooling: padded cells are excluded from the mean unless `count_include_pad`.
  `AvgPoolGrad(g)` is its adjoint, and the adjoint of that is `AvgPool` again.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

from minigraph.errors import ShapeError
from minigraph.graph import Node
from minigraph.op import Op, apply, check_float, check_rank
from minigraph.spec import Spec, dims_compatible, fmt

from . import kernels
from .conv import static_hw
from .elementwise import broadcast_like, mul
from .kernels import Pads, Pair
from .reductions import expand_dims, reciprocal_count


@dataclasses.dataclass(frozen=True)
class _Pool(Op):
    """The window geometry shared by the pooling ops and their shape rule."""

    size: Pair
    stride: Pair
    padding: Pads

    def out_spec(self, x: Spec) -> Spec:
        check_rank(x, 4, "input")
        check_float(x)
        for axis, k, p in zip("HW", self.size, self.padding):
            if max(p) >= k:
                raise ShapeError(f"padding {p} along {axis} must be smaller than the window size {k}")
        oh, ow = kernels.check_fits(x.shape[2:], self.size, self.stride, (1, 1), self.padding, "window")
        return Spec(tuple(x.shape[:2]) + (oh, ow), x.dtype)

    def check_grad(self, x: Spec, g: Spec, in_hw) -> None:
        """g must have the pooled shape of an input of shape x with spatial size in_hw."""
        out = self.out_spec(Spec(tuple(x.shape[:2]) + tuple(in_hw), x.dtype))
        if len(g.shape) != 4 or not all(dims_compatible(a, b) for a, b in zip(g.shape, out.shape)):
            raise ShapeError(f"gradient {fmt(g.shape)} does not match the pooled shape {fmt(out.shape)}")
        check_float(x, g)

    def geometry(self) -> dict:
        return dict(size=self.size, stride=self.stride, padding=self.padding)


@dataclasses.dataclass(frozen=True)
class MaxPool(_Pool):
    """x (N, C, H, W) -> (N, C, OH, OW): the maximum of each window."""

    kind: ClassVar[str] = "max_pool"

    def infer(self, x: Spec) -> Spec:
        return self.out_spec(x)

    def forward(self, xp, x):
        out_hw = kernels.check_fits(x.shape[2:], self.size, self.stride, (1, 1), self.padding)
        return kernels.max_pool_forward(xp, x, self.size, self.stride, self.padding, out_hw)

    def gradient(self, node, g):
        return [max_pool_grad(node.inputs[0], g, **self.geometry())]


@dataclasses.dataclass(frozen=True)
class MaxPoolGrad(_Pool):
    """x (N, C, H, W), g (N, C, OH, OW) -> (N, C, H, W): g added at each window's winner."""

    kind: ClassVar[str] = "max_pool_grad"

    def infer(self, x: Spec, g: Spec) -> Spec:
        self.check_grad(x, g, x.shape[2:])
        return Spec(x.shape, g.dtype)

    def forward(self, xp, x, g):
        return kernels.max_pool_backward(xp, x, g, self.size, self.stride, self.padding)

    def gradient(self, node, gg):
        x, _ = node.inputs
        return [None, apply(MaxPoolGradGrad(**self.geometry()), [x, gg])]


@dataclasses.dataclass(frozen=True)
class MaxPoolGradGrad(_Pool):
    """x (N, C, H, W), gg (N, C, H, W) -> (N, C, OH, OW): gg read at each window's winner."""

    kind: ClassVar[str] = "max_pool_grad_grad"

    def infer(self, x: Spec, gg: Spec) -> Spec:
        if len(gg.shape) != 4 or not all(dims_compatible(a, b) for a, b in zip(x.shape, gg.shape)):
            raise ShapeError(f"gradient {fmt(gg.shape)} does not match the input {fmt(x.shape)}")
        check_float(x, gg)
        return self.out_spec(x)

    def forward(self, xp, x, gg):
        out_hw = kernels.check_fits(x.shape[2:], self.size, self.stride, (1, 1), self.padding)
        return kernels.max_pool_gather(xp, x, gg, self.size, self.stride, self.padding, out_hw)

    def gradient(self, node, g):
        x, _ = node.inputs
        return [None, max_pool_grad(x, g, **self.geometry())]


@dataclasses.dataclass(frozen=True)
class AvgPool(_Pool):
    """x (N, C, H, W) -> (N, C, OH, OW): the mean of each window."""

    kind: ClassVar[str] = "avg_pool"
    count_include_pad: bool = False

    def infer(self, x: Spec) -> Spec:
        return self.out_spec(x)

    def forward(self, xp, x):
        out_hw = kernels.check_fits(x.shape[2:], self.size, self.stride, (1, 1), self.padding)
        return kernels.avg_pool_forward(xp, x, self.size, self.stride, self.padding, out_hw,
                                        self.count_include_pad)

    def gradient(self, node, g):
        x = node.inputs[0]
        op = AvgPoolGrad(self.size, self.stride, self.padding, self.count_include_pad,
                         static_hw(x, self.kind))
        return [apply(op, [g])]


@dataclasses.dataclass(frozen=True)
class AvgPoolGrad(_Pool):
    """g (N, C, OH, OW) -> (N, C, H, W) with (H, W) = `input_hw`: each window's g / count
    spread over its cells (the adjoint of AvgPool)."""

    kind: ClassVar[str] = "avg_pool_grad"
    count_include_pad: bool = False
    input_hw: Pair = (1, 1)

    def infer(self, g: Spec) -> Spec:
        x = Spec(tuple(g.shape[:2]) + tuple(self.input_hw), g.dtype)
        self.check_grad(x, g, self.input_hw)
        return x

    def forward(self, xp, g):
        return kernels.avg_pool_backward(xp, g, self.input_hw, self.size, self.stride, self.padding,
                                         self.count_include_pad)

    def gradient(self, node, gg):
        return [apply(AvgPool(self.size, self.stride, self.padding, self.count_include_pad), [gg])]


@dataclasses.dataclass(frozen=True)
class GlobalAvgPool(Op):
    """x (N, C, H, W) -> (N, C): the mean over H and W."""

    kind: ClassVar[str] = "global_avg_pool"

    def infer(self, x: Spec) -> Spec:
        check_rank(x, 4, "input")
        check_float(x)
        return Spec(tuple(x.shape[:2]), x.dtype)

    def forward(self, xp, x):
        return x.mean(axis=(2, 3))

    def gradient(self, node, g):
        x = node.inputs[0]
        return [mul(broadcast_like(expand_dims(g, (2, 3)), x), reciprocal_count(x, (2, 3)))]


# builders ------------------------------------------------------------------------


def _geometry(x, size, stride, padding, what: str) -> dict:
    size = kernels.as_pair(size, f"{what}: size")
    stride = size if stride is None else kernels.as_pair(stride, f"{what}: stride")
    shape = x.shape if isinstance(x, Node) else ()
    in_hw = tuple(shape[2:]) if len(shape) == 4 else (None, None)
    pads = kernels.resolve_padding(padding, in_hw, size, stride, what=f"{what}: padding")
    return dict(size=size, stride=stride, padding=pads)


def max_pool(x, size, stride=None, padding="VALID", name: Optional[str] = None) -> Node:
    """The maximum of each `size` window moved by `stride` (default: `size`), NCHW.

    `size` and `stride` are ints or pairs; `padding` takes conv2d's forms ("SAME" follows
    TensorFlow). Padded cells never win. Gradient: to the first maximum of each window.
    """
    return apply(MaxPool(**_geometry(x, size, stride, padding, "max_pool")), [x], name)


def avg_pool(x, size, stride=None, padding="VALID", count_include_pad: bool = False,
             name: Optional[str] = None) -> Node:
    """The mean of each `size` window moved by `stride` (default: `size`), NCHW.

    Padded cells are left out of the mean unless `count_include_pad` (then every window
    divides by KH * KW). Arguments as in `max_pool`.
    """
    op = AvgPool(**_geometry(x, size, stride, padding, "avg_pool"), count_include_pad=bool(count_include_pad))
    return apply(op, [x], name)


def global_avg_pool(x, name: Optional[str] = None) -> Node:
    """(N, C, H, W) -> (N, C): the mean of each channel over all positions."""
    return apply(GlobalAvgPool(), [x], name)


def max_pool_grad(x, g, size, stride=None, padding="VALID", name: Optional[str] = None) -> Node:
    """The gradient of `max_pool(x, ...)` for output gradient g: g added at each window's
    first maximum -> x-shaped. Differentiable in g (zero in x)."""
    return apply(MaxPoolGrad(**_geometry(x, size, stride, padding, "max_pool_grad")), [x, g], name)
