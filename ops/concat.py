"""Concatenation along an axis (the Inception join), and the slicing it needs for gradients.

- `Concat(axis)`: its gradient is one `Slice` of the output gradient per input.
- `Slice(axis, start, stop)`: x[..., start:stop, ...] along `axis`; its gradient is `PadAxis`.
- `PadAxis(axis, before, after)`: zeros around x along `axis`; its gradient is `Slice`.

The gradient of a concat needs the static sizes of its inputs along the axis.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional, Sequence

from minigraph.checks import as_int
from minigraph.dispatch import register_kernel
from minigraph.errors import ShapeError
from minigraph.graph import Node
from minigraph.op import Op, apply
from minigraph.spec import Spec, dims_compatible, fmt

from . import conv_kernels
from .reductions import normalize_axes


@dataclasses.dataclass(frozen=True)
class Concat(Op):
    """xs joined along `axis`; all other dimensions and the dtype must agree."""

    kind: ClassVar[str] = "concat"
    category: ClassVar[str] = "concat"
    axis: int

    def infer(self, *xs: Spec) -> Spec:
        if not xs:
            raise ShapeError("concat needs at least one input")
        first = xs[0]
        for x in xs[1:]:
            if len(x.shape) != len(first.shape):
                raise ShapeError(f"ranks differ: {fmt(first.shape)} and {fmt(x.shape)}")
            if x.dtype != first.dtype:
                raise ShapeError(f"dtypes differ: {first.dtype} and {x.dtype}")
        if not 0 <= self.axis < len(first.shape):
            raise ShapeError(f"axis {self.axis} is out of range for shape {fmt(first.shape)}")
        shape = list(first.shape)
        for x in xs[1:]:
            for i, (a, b) in enumerate(zip(shape, x.shape)):
                if i == self.axis:
                    continue
                if not dims_compatible(a, b):
                    raise ShapeError(f"shapes {', '.join(fmt(s.shape) for s in xs)} differ outside "
                                     f"the concat axis {self.axis}")
                shape[i] = a if a is not None else b
        sizes = [x.shape[self.axis] for x in xs]
        shape[self.axis] = None if None in sizes else sum(sizes)
        return Spec(tuple(shape), first.dtype)

    def forward(self, xp, *xs):
        return xp.concatenate(xs, axis=self.axis)

    def label(self, node):
        return "filter concat" if self.axis == 1 else f"concat, axis {self.axis}"

    def gradient(self, node, g):
        sizes = [x.shape[self.axis] for x in node.inputs]
        if None in sizes:
            raise ShapeError(f"concat {node.name!r}: the gradient needs static sizes along axis "
                             f"{self.axis}, got {', '.join(fmt(x.shape) for x in node.inputs)}")
        grads, start = [], 0
        for size in sizes:
            grads.append(slice_axis(g, start, start + size, axis=self.axis))
            start += size
        return grads


@dataclasses.dataclass(frozen=True)
class Slice(Op):
    """x[..., start:stop, ...] along `axis` (0 <= start <= stop <= size)."""

    kind: ClassVar[str] = "slice"
    view: ClassVar[bool] = True
    axis: int
    start: int
    stop: int

    def infer(self, x: Spec) -> Spec:
        if not 0 <= self.axis < len(x.shape):
            raise ShapeError(f"axis {self.axis} is out of range for shape {fmt(x.shape)}")
        size = x.shape[self.axis]
        if not 0 <= self.start <= self.stop or (size is not None and self.stop > size):
            raise ShapeError(f"slice [{self.start}:{self.stop}] does not fit axis {self.axis} of {fmt(x.shape)}")
        shape = list(x.shape)
        shape[self.axis] = self.stop - self.start
        return Spec(tuple(shape), x.dtype)

    def forward(self, xp, x):
        index = (slice(None),) * self.axis + (slice(self.start, self.stop),)
        return x[index]  # a view: a channel slice of a channels-last gradient feeds a conv as it is

    def gradient(self, node, g):
        x = node.inputs[0]
        size = x.shape[self.axis]
        if size is None:
            raise ShapeError(f"slice {node.name!r}: the gradient needs a static size along axis "
                             f"{self.axis}, got {fmt(x.shape)}")
        return [pad_axis(g, self.start, size - self.stop, axis=self.axis)]


@dataclasses.dataclass(frozen=True)
class PadAxis(Op):
    """x with `before` zeros ahead of it and `after` zeros behind it along `axis`."""

    kind: ClassVar[str] = "pad_axis"
    axis: int
    before: int
    after: int

    def infer(self, x: Spec) -> Spec:
        if not 0 <= self.axis < len(x.shape):
            raise ShapeError(f"axis {self.axis} is out of range for shape {fmt(x.shape)}")
        if min(self.before, self.after) < 0:
            raise ShapeError(f"padding ({self.before}, {self.after}) must not be negative")
        shape = list(x.shape)
        size = shape[self.axis]
        shape[self.axis] = None if size is None else size + self.before + self.after
        return Spec(tuple(shape), x.dtype)

    def forward(self, xp, x):
        shape = list(x.shape)
        shape[self.axis] += self.before + self.after
        out = xp.zeros(shape, dtype=x.dtype)
        index = (slice(None),) * self.axis + (slice(self.before, self.before + x.shape[self.axis]),)
        out[index] = x
        return out

    def gradient(self, node, g):
        size = node.inputs[0].shape[self.axis]
        if size is None:
            raise ShapeError(f"pad_axis {node.name!r}: the gradient needs a static size along axis {self.axis}")
        return [slice_axis(g, self.before, self.before + size, axis=self.axis)]


@register_kernel("concat", "numpy", "channels_last",
                 score=lambda op, shapes, rt: 2.0 if op.axis == 1 and len(shapes[0]) == 4 else None)
@register_kernel("concat", "cupy", "channels_last",
                 score=lambda op, shapes, rt: 2.0 if op.axis == 1 and len(shapes[0]) == 4 else None)
def _concat_channels_last(rt, op, *xs):
    """The Inception join into a channels-last buffer (the next conv reads it without a copy)."""
    return conv_kernels.concat_channels(rt, xs)


def _axis(x, axis: int, what: str) -> int:
    ndim = x.ndim if isinstance(x, Node) else len(getattr(x, "shape", ()))
    try:
        return normalize_axes(axis, ndim, getattr(x, "shape", None))[0]
    except ShapeError as exc:
        raise ShapeError(f"{what}: {exc}") from None


def concat(xs: Sequence, axis: int = 1, name: Optional[str] = None) -> Node:
    """xs (same rank and dtype, equal sizes off `axis`) joined along `axis` (default: channels).

    The gradient of each input is the matching slice of the output gradient.
    """
    xs = list(xs)
    if not xs:
        raise ValueError("concat: needs at least one input")
    return apply(Concat(_axis(xs[0], axis, "concat")), xs, name)


def slice_axis(x, start: int, stop: int, axis: int = 1, name: Optional[str] = None) -> Node:
    """x[..., start:stop, ...] along `axis` (default: channels); 0 <= start <= stop <= size."""
    return apply(Slice(_axis(x, axis, "slice_axis"), as_int(start, "slice_axis: start"),
                       as_int(stop, "slice_axis: stop")), [x], name)


def pad_axis(x, before: int, after: int, axis: int = 1, name: Optional[str] = None) -> Node:
    """x with `before` and `after` zeros added along `axis` (the gradient of `slice_axis`)."""
    return apply(PadAxis(_axis(x, axis, "pad_axis"), as_int(before, "pad_axis: before"),
                         as_int(after, "pad_axis: after")), [x], name)
