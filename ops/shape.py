"""Shape ops: reshape, flatten, transpose, and reshape_like for gradients."""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional, Tuple

import numpy as np

from minigraph.checks import as_axes, as_int, is_int
from minigraph.errors import ArgumentError, ShapeError
from minigraph.op import Op, apply
from minigraph.spec import Spec, fmt, num_elements


@dataclasses.dataclass(frozen=True)
class Reshape(Op):
    """x reshaped to `shape` (one entry may be -1)."""

    kind: ClassVar[str] = "reshape"
    view: ClassVar[bool] = True
    role: ClassVar[str] = "reshape"
    shape: Tuple[int, ...]

    def infer(self, x: Spec) -> Spec:
        known = [d for d in self.shape if d != -1]
        if self.shape.count(-1) > 1 or any(d < -1 for d in self.shape):
            raise ShapeError(f"invalid target shape {self.shape}")
        total = num_elements(x.shape)
        if -1 not in self.shape:
            if total is not None and total != int(np.prod(known, dtype=np.int64)):
                raise ShapeError(f"cannot reshape {fmt(x.shape)} ({total} elements) to {fmt(self.shape)}")
            return Spec(self.shape, x.dtype)
        rest = int(np.prod(known, dtype=np.int64))
        if total is None:
            fill = None
        elif rest == 0 or total % rest:
            raise ShapeError(f"cannot reshape {fmt(x.shape)} ({total} elements) to {self.shape}")
        else:
            fill = total // rest
        return Spec(tuple(fill if d == -1 else d for d in self.shape), x.dtype)

    def forward(self, xp, x):
        return x.reshape(self.shape)

    def gradient(self, node, g):
        return [reshape_like(g, node.inputs[0])]


@dataclasses.dataclass(frozen=True)
class Flatten(Op):
    """(n, d1, d2, ...) -> (n, d1*d2*...)."""

    kind: ClassVar[str] = "flatten"
    view: ClassVar[bool] = True
    role: ClassVar[str] = "reshape"

    def infer(self, x: Spec) -> Spec:
        if len(x.shape) < 1:
            raise ShapeError("cannot flatten a scalar")
        return Spec((x.shape[0], num_elements(x.shape[1:])), x.dtype)

    def forward(self, xp, x):
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64)))  # -1 fails on empty x

    def gradient(self, node, g):
        return [reshape_like(g, node.inputs[0])]


@dataclasses.dataclass(frozen=True)
class ReshapeLike(Op):
    """x reshaped to the run-time shape of `like`."""

    kind: ClassVar[str] = "reshape_like"
    view: ClassVar[bool] = True

    def infer(self, x: Spec, like: Spec) -> Spec:
        a, b = num_elements(x.shape), num_elements(like.shape)
        if a is not None and b is not None and a != b:
            raise ShapeError(f"cannot reshape {fmt(x.shape)} to {fmt(like.shape)}")
        return Spec(like.shape, x.dtype)

    def forward(self, xp, x, like):
        return x.reshape(like.shape)

    def gradient(self, node, g):
        return [reshape_like(g, node.inputs[0]), None]


@dataclasses.dataclass(frozen=True)
class Transpose(Op):
    """Axes permuted: out.shape[i] = x.shape[axes[i]]."""

    kind: ClassVar[str] = "transpose"
    view: ClassVar[bool] = True
    axes: Tuple[int, ...]

    def infer(self, x: Spec) -> Spec:
        if sorted(self.axes) != list(range(len(x.shape))):
            raise ShapeError(f"axes {self.axes} are not a permutation for shape {fmt(x.shape)}")
        return Spec(tuple(x.shape[a] for a in self.axes), x.dtype)

    def forward(self, xp, x):
        return xp.ascontiguousarray(x.transpose(self.axes))

    def gradient(self, node, g):
        return [transpose(g, tuple(int(i) for i in np.argsort(self.axes)))]


def reshape(x, shape, name: Optional[str] = None):
    """x with a new shape: an int or a list/tuple of ints (one entry may be -1, inferred); a
    float, bool, None or string entry is an ArgumentError."""
    if is_int(shape):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise ArgumentError(f"reshape: shape must be an int or a tuple of ints, got {shape!r}")
    shape = tuple(as_int(d, f"reshape: each dimension of shape {tuple(shape)!r}") for d in shape)
    return apply(Reshape(shape), [x], name)


def flatten(x, name: Optional[str] = None):
    """Keep dim 0, merge the rest: (n, c, h, w) -> (n, c*h*w)."""
    return apply(Flatten(), [x], name)


def reshape_like(x, like, name: Optional[str] = None):
    """x reshaped to the shape `like` has when the graph runs."""
    return apply(ReshapeLike(), [x, like], name)


def transpose(x, axes=None, name: Optional[str] = None):
    """Permute axes (default: reverse them)."""
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    else:
        axes = as_axes(axes, "transpose: axes")
        bad = [a for a in axes if not -x.ndim <= a < x.ndim]
        if bad:
            raise ShapeError(f"transpose: axis {bad[0]} is out of range for shape {fmt(x.shape)}")
        axes = tuple(a % max(x.ndim, 1) for a in axes)
    return apply(Transpose(axes), [x], name)
