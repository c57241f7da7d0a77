"""Ops that touch session state (assign: write a variable) and pass values along (identity,
stop_gradient)."""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

from minigraph.errors import ShapeError
from minigraph.op import Op, Variable, apply
from minigraph.spec import Spec, fmt


@dataclasses.dataclass(frozen=True)
class Assign(Op):
    """Write `value` into the variable `var`; evaluates to the new value."""

    kind: ClassVar[str] = "assign"
    side_effects: ClassVar[bool] = True
    pure: ClassVar[bool] = False
    returns_state: ClassVar[bool] = True

    def infer(self, var: Spec, value: Spec) -> Spec:
        if tuple(var.shape) != tuple(value.shape) or var.dtype != value.dtype:
            raise ShapeError(f"value {fmt(value.shape)} {value.dtype} does not match the variable's "
                             f"{fmt(var.shape)} {var.dtype}")
        return var

    def run(self, ctx, node, arrays):
        new = ctx.xp.array(arrays[1], copy=True)
        ctx.write_variable(node.inputs[0], new)
        return new


@dataclasses.dataclass(frozen=True)
class Identity(Op):
    """x itself (the same array: a view of its input)."""

    kind: ClassVar[str] = "identity"
    view: ClassVar[bool] = True
    role: ClassVar[str] = "identity"

    def infer(self, x: Spec) -> Spec:
        return x

    def forward(self, xp, x):
        return x

    def gradient(self, node, g):
        return [g]


@dataclasses.dataclass(frozen=True)
class StopGradient(Op):
    """x itself in the forward pass; no gradient flows back through it (TensorFlow's
    tf.stop_gradient): whatever depends on it treats its value as a constant."""

    kind: ClassVar[str] = "stop_gradient"
    view: ClassVar[bool] = True
    role: ClassVar[str] = "identity"

    def infer(self, x: Spec) -> Spec:
        return x

    def forward(self, xp, x):
        return x

    def gradient(self, node, g):
        return [None]


def assign(var, value, name: Optional[str] = None):
    """A node that, when run, sets the variable `var` to `value` (and evaluates to it)."""
    if not isinstance(getattr(var, "op", None), Variable):
        raise TypeError(f"assign: the target must be a variable node, got {var!r}")
    return apply(Assign(), [var, value], name)


def identity(x, name: Optional[str] = None):
    """x itself, as a new node."""
    return apply(Identity(), [x], name)


def stop_gradient(x, name: Optional[str] = None):
    """x's value, seen by `mg.gradients` as a constant: no gradient flows through it.

    >>> target = ops.stop_gradient(teacher_logits)   # trains the student only
    """
    return apply(StopGradient(), [x], name)
