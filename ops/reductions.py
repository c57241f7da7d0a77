"""Reductions: sum and mean over axes (all axes by default), with keepdims."""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional, Tuple


from minigraph.checks import as_axes, as_bool
from minigraph.errors import ShapeError
from minigraph.op import Op, apply, check_float
from minigraph.spec import Spec, fmt

from .elementwise import broadcast_like, mul


def normalize_axes(axis, ndim: int, shape=None) -> Tuple[int, ...]:
    """Sorted non-negative axes from None, an int or a sequence; errors name the shape."""
    axes = as_axes(axis, "axis")
    if axes is None:
        return tuple(range(ndim))
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} is out of range for shape {fmt(shape) if shape else ndim}")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated axis in {axes}")
    return tuple(sorted(out))


def _reduced(spec: Spec, axes, keepdims: bool) -> Spec:
    if keepdims:
        shape = tuple(1 if i in axes else d for i, d in enumerate(spec.shape))
    else:
        shape = tuple(d for i, d in enumerate(spec.shape) if i not in axes)
    return Spec(shape, spec.dtype)


@dataclasses.dataclass(frozen=True)
class Reduction(Op):
    """Shared shape rule: `axis` is None (all), an int or a tuple; negative axes count from the end."""

    axis: Optional[Tuple[int, ...]]
    keepdims: bool = False

    def infer(self, x: Spec) -> Spec:
        check_float(x)
        return _reduced(x, normalize_axes(self.axis, len(x.shape), x.shape), self.keepdims)

    def grad_input_shape(self, node, g):
        """g with the reduced axes restored as size 1, and those axes."""
        axes = normalize_axes(self.axis, node.inputs[0].ndim)
        return (g if self.keepdims else expand_dims(g, axes)), axes


@dataclasses.dataclass(frozen=True)
class Sum(Reduction):
    kind: ClassVar[str] = "sum"

    def forward(self, xp, x):
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def summed_channels(self, node):
        """x when this sums an (N, C, H, W) x over batch and space into (C,) (a bias gradient)."""
        x = node.inputs[0]
        if x.ndim == 4 and not self.keepdims and normalize_axes(self.axis, 4) == (0, 2, 3):
            return x
        return None

    def gradient(self, node, g):
        g, _ = self.grad_input_shape(node, g)
        return [broadcast_like(g, node.inputs[0])]


@dataclasses.dataclass(frozen=True)
class Mean(Reduction):
    kind: ClassVar[str] = "mean"

    def infer(self, x: Spec) -> Spec:
        out = super().infer(x)
        axes = normalize_axes(self.axis, len(x.shape), x.shape)
        empty = [a for a in axes if x.shape[a] == 0]
        if empty:  # 0 / 0: NumPy's NaN and a warning
            raise ShapeError(f"the mean over axis {empty[0]} of {fmt(x.shape)} is a mean of no values")
        return out

    def forward(self, xp, x):
        return x.mean(axis=self.axis, keepdims=self.keepdims)

    def gradient(self, node, g):
        g, axes = self.grad_input_shape(node, g)
        x = node.inputs[0]
        return [mul(broadcast_like(g, x), reciprocal_count(x, axes))]


@dataclasses.dataclass(frozen=True)
class ExpandDims(Op):
    """Insert size-1 axes at `axes` (positions in the result)."""

    kind: ClassVar[str] = "expand_dims"
    view: ClassVar[bool] = True
    axes: Tuple[int, ...]

    def infer(self, x: Spec) -> Spec:
        shape = list(x.shape)
        for a in self.axes:
            shape.insert(a, 1)
        return Spec(tuple(shape), x.dtype)

    def forward(self, xp, x):
        return xp.expand_dims(x, self.axes)

    def gradient(self, node, g):
        return [sum(g, axis=self.axes)]


@dataclasses.dataclass(frozen=True)
class ReciprocalCount(Op):
    """1 / (number of elements of x along `axes`), a scalar in x's dtype."""

    kind: ClassVar[str] = "reciprocal_count"
    axes: Tuple[int, ...]

    def infer(self, x: Spec) -> Spec:
        return Spec((), x.dtype)

    def forward(self, xp, x):
        count = 1
        for a in self.axes:
            count *= x.shape[a]
        return xp.asarray(1.0 / max(count, 1), dtype=x.dtype)

    def gradient(self, node, g):
        return [None]


def sum(x, axis=None, keepdims: bool = False, name: Optional[str] = None):  # noqa: A001
    """The sum over `axis` (None: all axes; an int or a tuple); a float, bool or string axis
    or a non-bool `keepdims` is an ArgumentError."""
    return apply(Sum(as_axes(axis, "sum: axis"), as_bool(keepdims, "sum: keepdims")), [x], name)


def mean(x, axis=None, keepdims: bool = False, name: Optional[str] = None):
    """The mean over `axis` (None: all axes; an int or a tuple); a float, bool or string axis
    or a non-bool `keepdims` is an ArgumentError."""
    return apply(Mean(as_axes(axis, "mean: axis"), as_bool(keepdims, "mean: keepdims")), [x], name)


def expand_dims(x, axes, name: Optional[str] = None):
    """x with size-1 axes inserted at `axes` (positions in the result)."""
    return apply(ExpandDims(tuple(sorted(axes))), [x], name)


def reciprocal_count(x, axes, name: Optional[str] = None):
    """1 / the run-time number of elements of x along `axes`."""
    return apply(ReciprocalCount(tuple(axes)), [x], name)
