"""Smooth activations: sigmoid and tanh (relu lives with the elementwise ops).

Both gradients are written with the op's own output (sigmoid' = y (1 - y), tanh' = 1 - y²),
so the input can be freed after the forward pass and the gradient is itself differentiable.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

from minigraph.op import apply

from .elementwise import Unary, mul, square, sub


@dataclasses.dataclass(frozen=True)
class Activation(Unary):
    """Shared declarations: an activation joins its producer's box in diagrams, and names
    itself for the fusion pass (a producer may apply it, if it can: see passes.fusion)."""

    role: ClassVar[str] = "activation"
    display: ClassVar[str] = ""

    def activation_name(self):
        return self.display

    def label(self, node):
        return self.display


@dataclasses.dataclass(frozen=True)
class Sigmoid(Activation):
    """1 / (1 + exp(-x)), without overflow for large |x|."""

    kind: ClassVar[str] = "sigmoid"
    fusable_activation: ClassVar[str] = "sigmoid"
    display: ClassVar[str] = "sigmoid"

    def forward(self, xp, x):
        e = xp.exp(-xp.abs(x))  # in (0, 1]: never overflows
        return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def gradient(self, node, g):
        return [mul(g, mul(node, sub(1.0, node)))]


@dataclasses.dataclass(frozen=True)
class Tanh(Activation):
    """The hyperbolic tangent."""

    kind: ClassVar[str] = "tanh"
    fusable_activation: ClassVar[str] = "tanh"
    display: ClassVar[str] = "tanh"

    def forward(self, xp, x):
        return xp.tanh(x)

    def gradient(self, node, g):
        return [mul(g, sub(1.0, square(node)))]


def sigmoid(x, name: Optional[str] = None):
    """The logistic function 1 / (1 + exp(-x)), elementwise (stable for large |x|)."""
    return apply(Sigmoid(), [x], name)


def tanh(x, name: Optional[str] = None):
    """tanh(x), elementwise."""
    return apply(Tanh(), [x], name)


__all__ = ["sigmoid", "tanh", "Sigmoid", "Tanh"]
