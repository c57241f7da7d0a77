"""1x1 convolution: a matmul over channels, its own node type (the Inception bottleneck).

    out[n, f, h, w] = b[f] + sum_c w[f, c] * x[n, c, h, w]

`w` is (F, C) or (F, C, 1, 1). The input gradient is itself a 1x1 convolution with the
transposed weights; the weight gradient is `Conv1x1BackpropFilter`, whose own gradient is
built from `conv1x1` again, so second derivatives work.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

from minigraph.dispatch import register_kernel
from minigraph.errors import ShapeError
from minigraph.graph import Node
from minigraph.op import Cost, Op, apply, check_float, check_rank
from minigraph.runtime import serial_runtime
from minigraph.spec import Spec, dims_compatible, fmt, num_elements
from minigraph.text import TIMES

from . import conv_kernels
from .conv import ACTIVATION_NAMES, _check_bias, epilogue_bias, unshared_params
from .elementwise import relu_grad
from .reductions import sum as reduce_sum
from .shape import reshape, reshape_like, transpose


def _check_weights(w: Spec) -> None:
    if len(w.shape) not in (2, 4) or (len(w.shape) == 4 and tuple(w.shape[2:]) != (1, 1)):
        raise ShapeError(f"1x1 conv weights must be (F, C) or (F, C, 1, 1), got {fmt(w.shape)}")


@dataclasses.dataclass(frozen=True)
class Conv1x1(Op):
    """x (N, C, H, W), w (F, C) or (F, C, 1, 1) [+ b (F,)] -> (N, F, H, W), then `activation`
    ('relu' or None; the fusion pass sets it, see `minigraph.passes.fusion`)."""

    kind: ClassVar[str] = "conv1x1"
    uses_blas: ClassVar[bool] = True
    category: ClassVar[str] = "conv1x1"
    fuses_epilogue: ClassVar[bool] = True
    activation: Optional[str] = None

    def infer(self, x: Spec, w: Spec, *bias: Spec) -> Spec:
        check_rank(x, 4, "input")
        _check_weights(w)
        check_float(x, w, *bias)
        if 0 in (x.shape[1], w.shape[0], w.shape[1]):
            raise ShapeError(f"input {fmt(x.shape)} and weights {fmt(w.shape)} need at least one channel "
                             "and one filter")
        if 0 in x.shape[2:]:  # as conv2d: a 1x1 kernel does not fit an empty image
            raise ShapeError(f"input {fmt(x.shape)} has no pixels (H and W must be >= 1)")
        if not dims_compatible(x.shape[1], w.shape[1]):
            raise ShapeError(f"input {fmt(x.shape)} has {x.shape[1]} channels but the weights "
                             f"{fmt(w.shape)} expect {w.shape[1]}")
        if bias:
            _check_bias(bias[0], w)
        return Spec((x.shape[0], w.shape[0]) + tuple(x.shape[2:]), x.dtype)

    def forward(self, xp, x, w, b=None):
        return _conv1x1_gemm(serial_runtime(xp), self, x, w, b)

    def gradient(self, node, g):
        x, w = node.inputs[:2]
        if self.activation == "relu":
            g = relu_grad(g, node)
        w2 = _as_matrix(w)
        gw = conv1x1_backprop_filter(x, g)
        grads = [conv1x1(g, transpose(w2)), gw if w.ndim == 2 else reshape_like(gw, w)]
        if len(node.inputs) == 3:
            grads.append(reduce_sum(g, axis=(0, 2, 3)))
        return grads

    def cost(self, node) -> Cost:
        """params: elements of w and b; macs: output elements x C (batch None counts as 1);
        unshared_params: params x H x W (its own w and b at every pixel, see `conv.unshared_params`)."""
        x, w = node.inputs[:2]
        params = sum(num_elements(v.shape) or 0 for v in node.inputs[1:])
        outs = num_elements((node.shape[0] or 1,) + tuple(node.shape[1:]))
        c = x.shape[1]
        return Cost(params, outs * c if outs is not None and c is not None else 0,
                    unshared_params(params, node.shape))

    def with_bias(self, node, bias):
        return epilogue_bias(self, node, bias)

    def with_activation(self, name):
        return dataclasses.replace(self, activation=name) if self.activation is None and name == "relu" else None

    def activation_name(self):
        return ACTIVATION_NAMES.get(self.activation)

    def label(self, node):
        return f"conv 1{TIMES}1, {node.inputs[1].shape[0]}"

    def short_label(self, node):
        return f"1{TIMES}1"


@dataclasses.dataclass(frozen=True)
class Conv1x1BackpropFilter(Op):
    """x (N, C, H, W), g (N, F, H, W) -> (F, C): gw[f, c] = sum_{n,h,w} g[n, f, h, w] x[n, c, h, w]."""

    kind: ClassVar[str] = "conv1x1_backprop_filter"
    uses_blas: ClassVar[bool] = True

    def infer(self, x: Spec, g: Spec) -> Spec:
        check_rank(x, 4, "input")
        check_rank(g, 4, "output gradient")
        check_float(x, g)
        if not all(dims_compatible(a, b) for i, (a, b) in enumerate(zip(x.shape, g.shape)) if i != 1):
            raise ShapeError(f"input {fmt(x.shape)} and output gradient {fmt(g.shape)} differ "
                             f"in batch or spatial size")
        return Spec((g.shape[1], x.shape[1]), x.dtype)

    def forward(self, xp, x, g):
        return _conv1x1_backprop_filter_gemm(serial_runtime(xp), self, x, g)

    def gradient(self, node, gw):
        x, g = node.inputs
        return [conv1x1(g, transpose(gw)), conv1x1(x, gw)]

    def cost(self, node) -> Cost:
        x, g = node.inputs
        outs = num_elements((g.shape[0] or 1,) + tuple(g.shape[1:]))
        c = x.shape[1]
        return Cost(0, outs * c if outs is not None and c is not None else 0)


@register_kernel("conv1x1", "numpy", "gemm")
@register_kernel("conv1x1", "cupy", "gemm")
def _conv1x1_gemm(rt, op, x, w, b=None):
    return conv_kernels.conv1x1_forward(rt, x, w, b, op.activation == "relu")


@register_kernel("conv1x1_backprop_filter", "numpy", "gemm")
@register_kernel("conv1x1_backprop_filter", "cupy", "gemm")
def _conv1x1_backprop_filter_gemm(rt, op, x, g):
    return conv_kernels.conv1x1_backprop_filter(rt, x, g)  # (F, N*H*W) @ (N*H*W, C)


def _as_matrix(w: Node) -> Node:
    """(F, C, 1, 1) weights as an (F, C) node (static F and C needed); (F, C) as they are."""
    if w.ndim == 2:
        return w
    f, c = w.shape[:2]
    if f is None or c is None:
        raise ShapeError(f"conv1x1 gradient: weights {w.name!r} need static (F, C), got {fmt(w.shape)}")
    return reshape(w, (f, c))


def conv1x1(x, w, b=None, name: Optional[str] = None) -> Node:
    """1x1 convolution, a channel matmul: x (N, C, H, W), w (F, C) or (F, C, 1, 1), b (F,) or
    None -> (N, F, H, W), out[n, f] = sum_c w[f, c] x[n, c] + b[f]. Keeps x's dtype."""
    inputs = [x, w] if b is None else [x, w, b]
    return apply(Conv1x1(), inputs, name)


def conv1x1_backprop_filter(x, g, name: Optional[str] = None) -> Node:
    """The gradient of `conv1x1` with respect to (F, C) weights: x (N, C, H, W), g (N, F, H, W) -> (F, C)."""
    return apply(Conv1x1BackpropFilter(), [x, g], name)
