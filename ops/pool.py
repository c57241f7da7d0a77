"""Pooling (NCHW): max, average and global average, with their gradient ops.

Windows are `size` (KH, KW) moved by `stride`; padding takes the conv forms (int, pair,
((top, bottom), (left, right)), "SAME", "VALID") and is stored resolved. Every padding side
must be smaller than the window, so each window holds at least one real cell.

- Max pooling: padded cells are -inf and never win. The gradient goes to one winner per
  window, the FIRST maximum in row-major order on ties: `MaxPoolArgmax(x, y)` records each
  window's winning tap once (from x and the pooled y, so the maxima are not recomputed), and
  `MaxPoolGrad(idx, g)` scatter-adds g there. That op is linear in g: its gradient reads the
  upstream gradient at the same winners (`MaxPoolGradGrad(idx, gg)`, a gather), and in x it
  is zero (the winners are piecewise constant).
- Average pooling: padded cells are excluded from the mean unless `count_include_pad`.
  `AvgPoolGrad(g)` is its adjoint, and the adjoint of that is `AvgPool` again.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

from minigraph.checks import as_bool
from minigraph.dispatch import register_kernel
from minigraph.errors import ShapeError
from minigraph.graph import Node
from minigraph.op import Op, apply, check_float, check_rank
from minigraph.runtime import serial_runtime
from minigraph.spec import Spec, fmt, shapes_compatible
from minigraph.text import stride as text_stride
from minigraph.text import window

from . import kernels
from . import pool_kernels
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
        if not shapes_compatible(g.shape, out.shape):
            raise ShapeError(f"gradient {fmt(g.shape)} does not match the pooled shape {fmt(out.shape)}")
        check_float(x, g)

    def geometry(self) -> dict:
        return dict(size=self.size, stride=self.stride, padding=self.padding)

    def out_hw(self, x):
        return kernels.check_fits(x.shape[2:], self.size, self.stride, (1, 1), self.padding)


@dataclasses.dataclass(frozen=True)
class MaxPool(_Pool):
    """x (N, C, H, W) -> (N, C, OH, OW): the maximum of each window."""

    kind: ClassVar[str] = "max_pool"
    category: ClassVar[str] = "pool"

    def infer(self, x: Spec) -> Spec:
        return self.out_spec(x)

    def forward(self, xp, x):
        return _max_pool(serial_runtime(xp), self, x)

    def label(self, node):
        return f"max pool {window(self.size)}/{text_stride(self.stride)}"

    def short_label(self, node):
        return f"{window(self.size)} max pool"

    def gradient(self, node, g):
        return [_scatter_to_winners(node.inputs[0], node, g, self.geometry())]


@dataclasses.dataclass(frozen=True)
class MaxPoolArgmax(_Pool):
    """x (N, C, H, W), y = max_pool(x) -> (N, C, OH, OW) integers: the row-major window tap
    i * KW + j of each window's first maximum (never a padded cell); uint8 when the window has
    at most 256 cells, else int32. Not differentiable (the winners are piecewise constant)."""

    kind: ClassVar[str] = "max_pool_argmax"

    def infer(self, x: Spec, y: Spec) -> Spec:
        out = self.out_spec(x)
        if not shapes_compatible(y.shape, out.shape):
            raise ShapeError(f"pooled input {fmt(y.shape)} does not match the pooled shape {fmt(out.shape)}")
        check_float(x, y)
        return Spec(out.shape, pool_kernels.argmax_dtype(self.size))

    def forward(self, xp, x, y):
        return _max_pool_argmax(serial_runtime(xp), self, x, y)

    def gradient(self, node, g):
        return [None, None]


def _check_winners(idx: Spec, g: Spec) -> None:
    if len(idx.shape) != 4 or not shapes_compatible(idx.shape, g.shape):
        raise ShapeError(f"gradient {fmt(g.shape)} does not match the winners {fmt(idx.shape)}")
    if idx.dtype.kind not in "iu":
        raise ShapeError(f"winners must be integers, got {idx.dtype}")


@dataclasses.dataclass(frozen=True)
class MaxPoolGrad(_Pool):
    """idx (N, C, OH, OW) from MaxPoolArgmax, g (N, C, OH, OW) -> (N, C, H, W) with (H, W) =
    `input_hw`: g added at each window's winner (a scatter-add, one pass per window tap)."""

    kind: ClassVar[str] = "max_pool_grad"
    input_hw: Pair = (1, 1)

    def infer(self, idx: Spec, g: Spec) -> Spec:
        _check_winners(idx, g)
        x = Spec(tuple(g.shape[:2]) + tuple(self.input_hw), g.dtype)
        self.check_grad(x, g, self.input_hw)
        return x

    def forward(self, xp, idx, g):
        return _max_pool_scatter(serial_runtime(xp), self, idx, g)

    def gradient(self, node, gg):
        idx, _ = node.inputs
        return [None, apply(MaxPoolGradGrad(**self.geometry()), [idx, gg])]


@dataclasses.dataclass(frozen=True)
class MaxPoolGradGrad(_Pool):
    """idx (N, C, OH, OW), gg (N, C, H, W) -> (N, C, OH, OW): gg read at each window's winner
    (a gather, the adjoint of MaxPoolGrad)."""

    kind: ClassVar[str] = "max_pool_grad_grad"

    def infer(self, idx: Spec, gg: Spec) -> Spec:
        check_rank(gg, 4, "gradient")
        check_float(gg)
        out = self.out_spec(gg)
        _check_winners(idx, out)
        return Spec(idx.shape, gg.dtype)

    def forward(self, xp, idx, gg):
        return _max_pool_gather(serial_runtime(xp), self, idx, gg)

    def gradient(self, node, g):
        idx, gg = node.inputs
        op = MaxPoolGrad(**self.geometry(), input_hw=static_hw(gg, self.kind, node))
        return [None, apply(op, [idx, g])]


@dataclasses.dataclass(frozen=True)
class AvgPool(_Pool):
    """x (N, C, H, W) -> (N, C, OH, OW): the mean of each window."""

    kind: ClassVar[str] = "avg_pool"
    category: ClassVar[str] = "pool"
    count_include_pad: bool = False

    def infer(self, x: Spec) -> Spec:
        return self.out_spec(x)

    def forward(self, xp, x):
        return pool_kernels.avg_pool_forward(serial_runtime(xp), x, self.size, self.stride, self.padding,
                                             self.out_hw(x), self.count_include_pad)

    def label(self, node):
        return f"avg pool {window(self.size)}/{text_stride(self.stride)}"

    def short_label(self, node):
        return f"{window(self.size)} avg pool"

    def gradient(self, node, g):
        x = node.inputs[0]
        op = AvgPoolGrad(self.size, self.stride, self.padding, self.count_include_pad,
                         static_hw(x, self.kind, node))
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
        return pool_kernels.avg_pool_backward(serial_runtime(xp), g, self.input_hw, self.size, self.stride,
                                              self.padding, self.count_include_pad)

    def gradient(self, node, gg):
        return [apply(AvgPool(self.size, self.stride, self.padding, self.count_include_pad), [gg])]


@dataclasses.dataclass(frozen=True)
class GlobalAvgPool(Op):
    """x (N, C, H, W) -> (N, C): the mean over H and W."""

    kind: ClassVar[str] = "global_avg_pool"
    category: ClassVar[str] = "pool"

    def label(self, node):
        return "global avg pool"

    def infer(self, x: Spec) -> Spec:
        check_rank(x, 4, "input")
        check_float(x)
        if 0 in x.shape[2:]:
            raise ShapeError(f"input {fmt(x.shape)} has no pixels to average (H and W must be >= 1)")
        return Spec(tuple(x.shape[:2]), x.dtype)

    def forward(self, xp, x):
        return x.mean(axis=(2, 3))

    def gradient(self, node, g):
        x = node.inputs[0]
        return [mul(broadcast_like(expand_dims(g, (2, 3)), x), reciprocal_count(x, (2, 3)))]


# kernels: the max-pooling family splits its work over the batch --------------------


@register_kernel("max_pool", "numpy", "chunked")
@register_kernel("max_pool", "cupy", "chunked")
def _max_pool(rt, op, x):
    return pool_kernels.max_pool_forward(rt, x, op.size, op.stride, op.padding, op.out_hw(x))


@register_kernel("max_pool_argmax", "numpy", "chunked")
@register_kernel("max_pool_argmax", "cupy", "chunked")
def _max_pool_argmax(rt, op, x, y):
    return pool_kernels.max_pool_argmax(rt, x, y, op.size, op.stride, op.padding)


@register_kernel("max_pool_grad", "numpy", "chunked")
@register_kernel("max_pool_grad", "cupy", "chunked")
def _max_pool_scatter(rt, op, idx, g):
    return pool_kernels.max_pool_scatter(rt, idx, g, op.input_hw, op.size, op.stride, op.padding)


@register_kernel("max_pool_grad_grad", "numpy", "chunked")
@register_kernel("max_pool_grad_grad", "cupy", "chunked")
def _max_pool_gather(rt, op, idx, gg):
    return pool_kernels.max_pool_gather_at(rt, idx, gg, op.size, op.stride, op.padding)


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
    op = AvgPool(**_geometry(x, size, stride, padding, "avg_pool"), count_include_pad=as_bool(count_include_pad, "avg_pool: count_include_pad"))
    return apply(op, [x], name)


def global_avg_pool(x, name: Optional[str] = None) -> Node:
    """(N, C, H, W) -> (N, C): the mean of each channel over all positions."""
    return apply(GlobalAvgPool(), [x], name)


def max_pool_grad(x, g, size, stride=None, padding="VALID", name: Optional[str] = None) -> Node:
    """The gradient of `max_pool(x, ...)` for output gradient g: g added at each window's
    first maximum -> x-shaped. Differentiable in g (zero in x). Built as max_pool(x), the
    winners' indices (MaxPoolArgmax) and a MaxPoolGrad scatter; needs x's static (H, W)."""
    geometry = _geometry(x, size, stride, padding, "max_pool_grad")
    return _scatter_to_winners(x, apply(MaxPool(**geometry), [x]), g, geometry, name)


def _scatter_to_winners(x: Node, y: Node, g, geometry: dict, name: Optional[str] = None) -> Node:
    """MaxPoolGrad(MaxPoolArgmax(x, y), g) for y = max_pool(x) with `geometry`."""
    idx = apply(MaxPoolArgmax(**geometry), [x, y])
    op = MaxPoolGrad(**geometry, input_hw=static_hw(x, "max_pool", y))
    return apply(op, [idx, g], name)
