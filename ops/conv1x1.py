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

from . import conv_kernels, grad_fusion
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
    ('relu' or None; the fusion pass sets it, see `minigraph.passes.fusion`). Set by
    `minigraph.passes.backward` where this conv is an input gradient: with `relu_mask`, x * (y > 0)
    in place of x, y (x's shape) read after the bias; with `accumulate`, the result is added to
    a last input (the running sum of a gradient), in that input's buffer: the pass sets it only
    where that buffer is the op's to overwrite (applied by hand to a value someone else holds,
    such as a fed array, it would overwrite it)."""

    kind: ClassVar[str] = "conv1x1"
    uses_blas: ClassVar[bool] = True
    category: ClassVar[str] = "conv1x1"
    fuses_epilogue: ClassVar[bool] = True
    activation: Optional[str] = None
    relu_mask: bool = False
    accumulate: bool = False

    @property
    def view(self) -> bool:
        """With `accumulate`, the result is the accumulator input's buffer."""
        return self.accumulate

    @property
    def overwrites_input(self):
        return -1 if self.accumulate else None  # the accumulator, the last input

    def infer(self, x: Spec, w: Spec, *extra: Spec) -> Spec:
        check_rank(x, 4, "input")
        _check_weights(w)
        wanted = int(self.relu_mask) + int(self.accumulate)
        if not wanted <= len(extra) <= wanted + 1:
            raise ShapeError(f"conv1x1 takes x, w, an optional bias{', a relu mask' * self.relu_mask}"
                             f"{' and an accumulator' * self.accumulate}, got {2 + len(extra)} inputs")
        bias, mask, acc = grad_fusion.split_trailing(self, extra)
        check_float(x, w, *bias)
        if mask is not None:
            grad_fusion.check_mask(x, mask, "input")
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
        out = Spec((x.shape[0], w.shape[0]) + tuple(x.shape[2:]), x.dtype)
        if acc is not None:
            grad_fusion.check_mask(out, acc, "result")  # the same shape and dtype
        return out

    def forward(self, xp, x, w, *extra):
        return _conv1x1_gemm(serial_runtime(xp), self, x, w, *extra)

    def gradient(self, node, g):
        w = node.inputs[1]
        bias, _, acc = grad_fusion.split_trailing(self, node.inputs[2:])
        x = node.inputs[0] if not self.relu_mask else relu_grad(node.inputs[0], node.inputs[2 + len(bias)])
        g_acc = g  # the accumulator's gradient: the sum passes g through unchanged
        if self.activation == "relu":
            g = relu_grad(g, node)
        w2 = _as_matrix(w)
        gw = conv1x1_backprop_filter(x, g)
        gx = conv1x1(g, transpose(w2))
        if self.relu_mask:
            gx = relu_grad(gx, node.inputs[2 + len(bias)])
        grads = [gx, gw if w.ndim == 2 else reshape_like(gw, w)]
        if bias:
            grads.append(reduce_sum(g, axis=(0, 2, 3)))
        return grads + [None] * self.relu_mask + [g_acc] * self.accumulate

    def cost(self, node) -> Cost:
        """params: elements of w and b; macs: output elements x C (batch None counts as 1);
        unshared_params: params x H x W (its own w and b at every pixel, see `conv.unshared_params`)."""
        x, w = node.inputs[:2]
        bias, _, _ = grad_fusion.split_trailing(self, node.inputs[2:])
        params = sum(num_elements(v.shape) or 0 for v in [w] + list(bias))
        outs = num_elements((node.shape[0] or 1,) + tuple(node.shape[1:]))
        c = x.shape[1]
        return Cost(params, outs * c if outs is not None and c is not None else 0,
                    unshared_params(params, node.shape))

    def with_bias(self, node, bias):
        return None if self.relu_mask or self.accumulate else epilogue_bias(self, node, bias)

    def with_activation(self, name):
        return dataclasses.replace(self, activation=name) if self.activation is None and name == "relu" else None

    def with_relu_mask(self, index):
        if self.accumulate or not grad_fusion.mask_index_ok(self, index, 0):
            return None
        return dataclasses.replace(self, relu_mask=True)

    def with_accumulator(self):
        if self.accumulate or self.activation is not None:
            return None
        return dataclasses.replace(self, accumulate=True)

    def activation_name(self):
        return ACTIVATION_NAMES.get(self.activation)

    def label(self, node):
        return f"conv 1{TIMES}1, {node.inputs[1].shape[0]}"

    def short_label(self, node):
        return f"1{TIMES}1"


@dataclasses.dataclass(frozen=True)
class Conv1x1BackpropFilter(Op):
    """x (N, C, H, W), g (N, F, H, W) -> (F, C): gw[f, c] = sum_{n,h,w} g[n, f, h, w] x[n, c, h, w].
    Set by `minigraph.passes.backward`: with `relu_mask`, g * (y > 0) in place of g (y read as a
    third input); with `bias_gradient`, the result is (F, C + 1), g's sum over batch and space
    (the bias gradient) as the last column."""

    kind: ClassVar[str] = "conv1x1_backprop_filter"
    uses_blas: ClassVar[bool] = True
    relu_mask: bool = False
    bias_gradient: bool = False

    def infer(self, x: Spec, g: Spec, *mask: Spec) -> Spec:
        check_rank(x, 4, "input")
        check_rank(g, 4, "output gradient")
        check_float(x, g)
        if len(mask) != int(self.relu_mask):
            raise ShapeError(f"expected {2 + int(self.relu_mask)} inputs, got {2 + len(mask)}")
        if mask:
            grad_fusion.check_mask(g, mask[0])
        if not all(dims_compatible(a, b) for i, (a, b) in enumerate(zip(x.shape, g.shape)) if i != 1):
            raise ShapeError(f"input {fmt(x.shape)} and output gradient {fmt(g.shape)} differ "
                             f"in batch or spatial size")
        if self.bias_gradient:
            return grad_fusion.packed_spec(g.shape[1], (x.shape[1],), x.dtype)
        return Spec((g.shape[1], x.shape[1]), x.dtype)

    def forward(self, xp, x, g, y=None):
        return _conv1x1_backprop_filter_gemm(serial_runtime(xp), self, x, g, y)

    def gradient(self, node, out_grad):
        x = node.inputs[0]
        g = grad_fusion.masked_input(node, 1)
        gb = None
        if self.bias_gradient:
            gw, gb = grad_fusion.unpack(out_grad, (g.shape[1], x.shape[1]))
        else:
            gw = out_grad
        return [conv1x1(g, transpose(gw)), grad_fusion.through_mask(node, conv1x1(x, gw, gb))] + [None] * self.relu_mask

    def cost(self, node) -> Cost:
        x, g = node.inputs[:2]
        outs = num_elements((g.shape[0] or 1,) + tuple(g.shape[1:]))
        c = x.shape[1]
        return Cost(0, outs * c if outs is not None and c is not None else 0)

    def with_relu_mask(self, index):
        return dataclasses.replace(self, relu_mask=True) if grad_fusion.mask_index_ok(self, index, 1) else None

    def with_bias_gradient(self):
        return None if self.bias_gradient else dataclasses.replace(self, bias_gradient=True)


@register_kernel("conv1x1", "numpy", "gemm")
@register_kernel("conv1x1", "cupy", "gemm")
def _conv1x1_gemm(rt, op, x, w, *extra):
    bias, mask, acc = grad_fusion.split_trailing(op, extra)
    return conv_kernels.conv1x1_forward(rt, x, w, bias[0] if bias else None, op.activation == "relu",
                                        x_mask=mask, into=acc)


@register_kernel("conv1x1_backprop_filter", "numpy", "gemm")
@register_kernel("conv1x1_backprop_filter", "cupy", "gemm")
def _conv1x1_backprop_filter_gemm(rt, op, x, g, y=None):
    out = conv_kernels.conv1x1_backprop_filter(rt, x, g, g_mask=y, with_bias=op.bias_gradient)  # (F, rows) @ (rows, C)
    return grad_fusion.pack(rt.xp, *out) if op.bias_gradient else out


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
