"""2-D convolution (NCHW, filters (F, C, KH, KW)) and its two backprop ops.

    out[n, f, oh, ow] = b[f] + sum_{c,i,j} w[f, c, i, j] * x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]

As in TensorFlow, the gradient of `Conv2D` uses two dedicated ops, each the adjoint of the
convolution in one argument and each differentiable in turn, so the three ops close under
differentiation (second and higher derivatives work):

- `Conv2DBackpropInput(g, w)` -> x-shaped, a transposed convolution. Its input size (H, W)
  is an attribute (`input_hw`): the gradient of a conv therefore needs static H and W.
- `Conv2DBackpropFilter(x, g)` -> w-shaped; the kernel size (KH, KW) is an attribute.

With <a, b> the sum of a * b: <conv(x, w), g> = <x, BPI(g, w)> = <w, BPF(x, g)>, which gives
every gradient below. Padding is stored resolved, ((top, bottom), (left, right)).

Algorithms. Each op has kernels for the CPU: im2col + GEMM (exact: it sums in the order of a
plain matrix product) and, for 3x3 stride-1 convolutions, Winograd F(4x4, 3x3)
(`winograd_kernels`: 4x fewer multiplications in the GEMMs, float32 results within
`ERROR_BOUND` = 1e-5 of the largest output magnitude instead of ~1e-6); `conv_algorithms`
registers them and `conv_algorithms.select_winograd` picks per shape. The
optional `algorithm` attribute forces a family for one op: "gemm" (the exact kernels),
"winograd", or "generic" (the op's own `forward`); gradient ops inherit it (exact stays exact,
`algorithm_family`), and since it is a field, CSE never merges ops that differ in it. Per
session: `mg.Session(g, algorithms={"conv2d": "gemm", "conv2d_backprop_input": "gemm",
"conv2d_backprop_filter": "gemm"})`, or the same in MINIGRAPH_ALGORITHMS (`minigraph.dispatch`).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

import numpy as np

from minigraph.errors import ShapeError
from minigraph.graph import Node
from minigraph.op import Cost, Op, apply, check_float, check_rank
from minigraph.runtime import serial_runtime
from minigraph.spec import Spec, dims_compatible, fmt, num_elements
from minigraph.text import TIMES, window
from minigraph.text import stride as text_stride

from . import grad_fusion, kernels
from .conv_algorithms import algorithm_family, backprop_filter_gemm, backprop_input_gemm, check_algorithm, conv2d_gemm
from .elementwise import relu_grad
from .kernels import Pads, Pair
from .reductions import sum as reduce_sum


def _check_channels(x: Spec, w: Spec, what: str = "input") -> None:
    if 0 in (x.shape[1], w.shape[0], w.shape[1]):
        raise ShapeError(f"{what} {fmt(x.shape)} and filter {fmt(w.shape)} need at least one channel "
                         "and one filter")
    if not dims_compatible(x.shape[1], w.shape[1]):
        raise ShapeError(f"{what} {fmt(x.shape)} has {x.shape[1]} channels but the filter "
                         f"{fmt(w.shape)} expects {w.shape[1]}")


def _check_bias(b: Spec, w: Spec) -> None:
    check_rank(b, 1, "bias")
    if not dims_compatible(b.shape[0], w.shape[0]):
        raise ShapeError(f"bias {fmt(b.shape)} does not match the {w.shape[0]} filters of {fmt(w.shape)}")


def _check_out(got, expected, what: str) -> None:
    if any(not dims_compatible(a, b) for a, b in zip(got, expected)):
        raise ShapeError(f"{what} has spatial size {fmt(tuple(got))} but the convolution "
                         f"produces {fmt(tuple(expected))}")


def static_hw(x: Node, op: str, of: Optional[Node] = None) -> Pair:
    """The static (H, W) of the NCHW input `x` of the `op` node `of` (whose gradient is being
    built), or a ShapeError naming that node and saying the gradient needs them."""
    h, w = x.shape[2:]
    if h is None or w is None:
        where = f"{op} {of.name!r}" if of is not None else f"the {op} gradient of {x.name!r}"
        raise ShapeError(f"{where}: its gradient needs the input's height and width when the graph is built, "
                         f"but {x.name!r} is {fmt(x.shape)} (give it a fixed size)")
    return (h, w)


class _Geometry:
    """What the three convolution ops share: stride, padding (resolved) and dilation fields,
    and the check that an output gradient has the size the convolution produces."""

    def geometry(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation)

    def inherited(self) -> dict:
        """What the ops of this op's gradient take over: the geometry and the algorithm family."""
        return dict(self.geometry(), algorithm=algorithm_family(self.algorithm))

    def check_gradient(self, in_hw, k_hw, g: Spec) -> None:
        out = kernels.check_fits(in_hw, k_hw, self.stride, self.dilation, self.padding)
        _check_out(g.shape[2:], out, f"output gradient {fmt(g.shape)}")


@dataclasses.dataclass(frozen=True)
class Conv2D(_Geometry, Op):
    """x (N, C, H, W) * w (F, C, KH, KW) [+ b (F,)] -> (N, F, OH, OW), then `activation`
    ('relu' or None; the fusion pass sets it, see `minigraph.passes.fusion`)."""

    kind: ClassVar[str] = "conv2d"
    uses_blas: ClassVar[bool] = True
    category: ClassVar[str] = "conv"
    fuses_epilogue: ClassVar[bool] = True
    stride: Pair = (1, 1)
    padding: Pads = ((0, 0), (0, 0))
    dilation: Pair = (1, 1)
    activation: Optional[str] = None
    algorithm: Optional[str] = None

    def infer(self, x: Spec, w: Spec, *bias: Spec) -> Spec:
        check_rank(x, 4, "input")
        check_rank(w, 4, "filter")
        check_float(x, w, *bias)
        _check_channels(x, w)
        if bias:
            _check_bias(bias[0], w)
        if None in w.shape[2:]:
            raise ShapeError(f"the filter needs a static kernel size, got {fmt(w.shape)}")
        oh, ow = kernels.check_fits(x.shape[2:], w.shape[2:], self.stride, self.dilation, self.padding)
        return Spec((x.shape[0], w.shape[0], oh, ow), x.dtype)

    def forward(self, xp, x, w, b=None):
        return conv2d_gemm(serial_runtime(xp), self, x, w, b)

    def gradient(self, node, g):
        x, w = node.inputs[:2]
        if self.activation == "relu":
            g = relu_grad(g, node)
        grads = [conv2d_backprop_input(g, w, static_hw(x, self.kind, node), **self.inherited()),
                 conv2d_backprop_filter(x, g, tuple(w.shape[2:]), **self.inherited())]
        if len(node.inputs) == 3:
            grads.append(reduce_sum(g, axis=(0, 2, 3)))
        return grads

    def cost(self, node) -> Cost:
        """params: elements of the filter and bias inputs; macs: see `conv_cost_macs`;
        unshared_params: see `unshared_params`."""
        params = sum(num_elements(x.shape) or 0 for x in node.inputs[1:])
        return Cost(params, conv_cost_macs(node.shape, node.inputs[1].shape), unshared_params(params, node.shape))

    def with_bias(self, node, bias):
        return epilogue_bias(self, node, bias)

    def with_activation(self, name):
        return dataclasses.replace(self, activation=name) if self.activation is None and name == "relu" else None

    def activation_name(self):
        return ACTIVATION_NAMES.get(self.activation)

    def label(self, node):
        f, _, kh, kw = node.inputs[1].shape
        text = f"conv {kh}{TIMES}{kw}/{text_stride(self.stride)}, {f}"
        if tuple(self.dilation) != (1, 1):
            text += f", dilation {text_stride(self.dilation)}"
        return text

    def short_label(self, node):
        return window(node.inputs[1].shape[2:])


@dataclasses.dataclass(frozen=True)
class Conv2DBackpropInput(_Geometry, Op):
    """g (N, F, OH, OW), w (F, C, KH, KW) -> (N, C, H, W) with (H, W) = `input_hw`:
    the gradient of conv2d with respect to its input (a transposed convolution).
    With `relu_mask` (set by `minigraph.passes.backward`): g * (y > 0) in place of g, y (g's
    shape) read as a third input."""

    kind: ClassVar[str] = "conv2d_backprop_input"
    uses_blas: ClassVar[bool] = True
    input_hw: Pair
    stride: Pair = (1, 1)
    padding: Pads = ((0, 0), (0, 0))
    dilation: Pair = (1, 1)
    algorithm: Optional[str] = None
    relu_mask: bool = False

    def infer(self, g: Spec, w: Spec, *mask: Spec) -> Spec:
        check_rank(g, 4, "output gradient")
        check_rank(w, 4, "filter")
        check_float(g, w)
        if 0 in w.shape[:2]:
            raise ShapeError(f"the filter {fmt(w.shape)} needs at least one channel and one filter")
        _check_mask_inputs(self, g, mask)
        if not dims_compatible(g.shape[1], w.shape[0]):
            raise ShapeError(f"output gradient {fmt(g.shape)} has {g.shape[1]} channels, "
                             f"the filter {fmt(w.shape)} has {w.shape[0]} filters")
        if None in w.shape[2:]:
            raise ShapeError(f"the filter needs a static kernel size, got {fmt(w.shape)}")
        self.check_gradient(self.input_hw, w.shape[2:], g)
        return Spec((g.shape[0], w.shape[1]) + tuple(self.input_hw), g.dtype)

    def forward(self, xp, g, w, y=None):
        return backprop_input_gemm(serial_runtime(xp), self, g, w, y)

    def gradient(self, node, gg):
        w = node.inputs[1]
        g = grad_fusion.masked_input(node, 0)
        grads = [grad_fusion.through_mask(node, conv2d(gg, w, **self.inherited())),
                 conv2d_backprop_filter(gg, g, tuple(w.shape[2:]), **self.inherited())]
        return grads + [None] * self.relu_mask

    def cost(self, node) -> Cost:
        g, w = node.inputs[:2]
        return Cost(0, conv_cost_macs(g.shape, w.shape))

    def with_relu_mask(self, index):
        return dataclasses.replace(self, relu_mask=True) if grad_fusion.mask_index_ok(self, index, 0) else None


@dataclasses.dataclass(frozen=True)
class Conv2DBackpropFilter(_Geometry, Op):
    """x (N, C, H, W), g (N, F, OH, OW) -> (F, C, KH, KW) with (KH, KW) = `filter_hw`:
    the gradient of conv2d with respect to its filter.
    Set by `minigraph.passes.backward`: with `relu_mask`, g * (y > 0) in place of g (y read as a
    third input); with `bias_gradient`, the result is (F, C*KH*KW + 1), the filter gradient
    flattened with g's sum over batch and space (the bias gradient) as its last column."""

    kind: ClassVar[str] = "conv2d_backprop_filter"
    uses_blas: ClassVar[bool] = True
    filter_hw: Pair
    stride: Pair = (1, 1)
    padding: Pads = ((0, 0), (0, 0))
    dilation: Pair = (1, 1)
    algorithm: Optional[str] = None
    relu_mask: bool = False
    bias_gradient: bool = False

    def infer(self, x: Spec, g: Spec, *mask: Spec) -> Spec:
        check_rank(x, 4, "input")
        check_rank(g, 4, "output gradient")
        check_float(x, g)
        if 0 in (x.shape[1], g.shape[1]):
            raise ShapeError(f"input {fmt(x.shape)} and output gradient {fmt(g.shape)} need at least one "
                             "channel each")
        _check_mask_inputs(self, g, mask)
        if not dims_compatible(x.shape[0], g.shape[0]):
            raise ShapeError(f"batch sizes differ: input {fmt(x.shape)}, output gradient {fmt(g.shape)}")
        self.check_gradient(x.shape[2:], self.filter_hw, g)
        if self.bias_gradient:
            return grad_fusion.packed_spec(g.shape[1], (x.shape[1],) + tuple(self.filter_hw), x.dtype)
        return Spec((g.shape[1], x.shape[1]) + tuple(self.filter_hw), x.dtype)

    def forward(self, xp, x, g, y=None):
        return backprop_filter_gemm(serial_runtime(xp), self, x, g, y)

    def gradient(self, node, out_grad):
        x = node.inputs[0]
        g = grad_fusion.masked_input(node, 1)
        gb = None
        if self.bias_gradient:
            gw, gb = grad_fusion.unpack(out_grad, (g.shape[1], x.shape[1]) + tuple(self.filter_hw))
        else:
            gw = out_grad
        dg = conv2d(x, gw, gb, **self.inherited())
        return [conv2d_backprop_input(g, gw, static_hw(x, self.kind, node), **self.inherited()),
                grad_fusion.through_mask(node, dg)] + [None] * self.relu_mask

    def cost(self, node) -> Cost:
        x, g = node.inputs[:2]
        return Cost(0, conv_cost_macs(g.shape, (g.shape[1], x.shape[1]) + tuple(self.filter_hw)))

    def with_relu_mask(self, index):
        return dataclasses.replace(self, relu_mask=True) if grad_fusion.mask_index_ok(self, index, 1) else None

    def with_bias_gradient(self):
        return None if self.bias_gradient else dataclasses.replace(self, bias_gradient=True)


def _check_mask_inputs(op, g: Spec, mask) -> None:
    """A masked op reads exactly one relu output of g's shape after its other inputs."""
    if len(mask) != int(op.relu_mask):
        raise ShapeError(f"expected {2 + int(op.relu_mask)} inputs, got {2 + len(mask)}")
    if mask:
        grad_fusion.check_mask(g, mask[0])


# the epilogue the fusion pass may hand a conv (shared with conv1x1) ---------------

ACTIVATION_NAMES = {"relu": "ReLU"}


def epilogue_bias(op, node, bias):
    """`op` reading a bias as its third input, when `node` has none and `bias` is per channel of
    its output ((F, 1, 1) or (1, F, 1, 1)); else None."""
    f = node.shape[1]
    if len(node.inputs) != 2 or op.activation is not None or f is None or bias is None:
        return None
    if tuple(bias.shape) not in ((f, 1, 1), (1, f, 1, 1)) or bias.dtype != node.dtype:
        return None
    return op


def unshared_params(params: int, out_shape) -> int:
    """The parameters of the same layer without weight sharing (locally connected): one copy
    of the filter weights and bias, `params` in all, per output position, OH x OW of them.

    The seed's example: 32x32x3 in, 20 filters 8x8x3, stride 2, padding 1 -> 14x14x20:
    (8*8*3 + 1) * 20 = 3,860 shared, x 14*14 = 756,560 unshared. 0 when OH or OW is unknown.
    """
    positions = num_elements(tuple(out_shape[2:]))
    return params * positions if positions is not None else 0


def conv_cost_macs(out_shape, w_shape) -> int:
    """Multiply-adds of a convolution: output elements x C_in x KH x KW.

    A batch of None counts as 1 (per-example figures, as summaries show them); a known batch
    is counted. 0 when another dimension is unknown.
    """
    outs = num_elements((out_shape[0] or 1,) + tuple(out_shape[1:]))
    per = num_elements(tuple(w_shape[1:]))
    return outs * per if outs is not None and per is not None else 0


# builders ------------------------------------------------------------------------


def _shape(v):
    return v.shape if isinstance(v, Node) else np.shape(v)


def _geometry(x_shape, w_shape, stride, padding, dilation, what: str):
    if len(x_shape) == 4 and len(w_shape) == 4 and None not in w_shape[2:]:
        return _resolved(x_shape[2:], tuple(w_shape[2:]), stride, padding, dilation, what)
    # ranks are wrong: the op's shape rule reports it with the node's name
    return kernels.as_pair(stride, f"{what}: stride"), ((0, 0), (0, 0)), kernels.as_pair(dilation, f"{what}: dilation")


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, name: Optional[str] = None,
           algorithm: Optional[str] = None) -> Node:
    """2-D convolution (cross-correlation, as in every DL framework) in NCHW.

    x (N, C, H, W), w (F, C, KH, KW), b (F,) or None -> (N, F, OH, OW), with
    OH = (H + top + bottom - ((KH - 1) * dh + 1)) // sh + 1 (likewise OW).
    `stride` and `dilation` are ints or pairs; `padding` is an int, a pair (ph, pw),
    ((top, bottom), (left, right)), "VALID", or "SAME" (TensorFlow's rule: OH = ceil(H / sh),
    the odd extra row/column at the bottom/right). A 1x1 kernel with stride 1, no padding and
    dilation 1 builds a `Conv1x1` node. The output keeps x's dtype (float32 stays float32).
    `algorithm` forces the kernel family of this op and of its gradients: None (chosen per
    shape), "gemm" (exact), "winograd" (3x3 stride 1 only, else the best kernel that applies)
    or "generic"; see the module docstring. (A `Conv1x1` is one exact GEMM: it takes none.)
    """
    stride, pads, dilation = _geometry(_shape(x), _shape(w), stride, padding, dilation, "conv2d")
    algorithm = check_algorithm(Conv2D.kind, algorithm)
    w_shape = tuple(_shape(w))
    if (len(w_shape) == 4 and w_shape[2:] == (1, 1) and stride == (1, 1) and dilation == (1, 1)
            and kernels.is_zero_padding(pads)):
        from .conv1x1 import conv1x1
        return conv1x1(x, w, b, name=name)
    inputs = [x, w] if b is None else [x, w, b]
    return apply(Conv2D(stride, pads, dilation, algorithm=algorithm), inputs, name)


def _resolved(in_hw, k_hw, stride, padding, dilation, what: str):
    """(stride, padding, dilation) checked and resolved for an input of size `in_hw`."""
    stride = kernels.as_pair(stride, f"{what}: stride")
    dilation = kernels.as_pair(dilation, f"{what}: dilation")
    pads = kernels.resolve_padding(padding, in_hw, k_hw, stride, dilation, what=f"{what}: padding")
    return stride, pads, dilation


def conv2d_backprop_input(g, w, input_hw, stride=1, padding=0, dilation=1, name: Optional[str] = None,
                          algorithm: Optional[str] = None) -> Node:
    """The gradient of `conv2d` with respect to x, for an input of spatial size `input_hw`:
    g (N, F, OH, OW), w (F, C, KH, KW) -> (N, C, H, W). Arguments as in `conv2d` (`algorithm`
    may also name one exact kernel: "full_correlation" or "tap_scatter")."""
    input_hw = kernels.as_pair(input_hw, "conv2d_backprop_input: input_hw")
    w_shape = tuple(_shape(w))
    k_hw = tuple(w_shape[2:]) if len(w_shape) == 4 and None not in w_shape[2:] else (1, 1)
    stride, pads, dilation = _resolved(input_hw, k_hw, stride, padding, dilation, "conv2d_backprop_input")
    algorithm = check_algorithm(Conv2DBackpropInput.kind, algorithm)
    return apply(Conv2DBackpropInput(input_hw, stride, pads, dilation, algorithm), [g, w], name)


def conv2d_backprop_filter(x, g, filter_hw, stride=1, padding=0, dilation=1, name: Optional[str] = None,
                           algorithm: Optional[str] = None) -> Node:
    """The gradient of `conv2d` with respect to w, for a kernel of size `filter_hw`:
    x (N, C, H, W), g (N, F, OH, OW) -> (F, C, KH, KW). Arguments as in `conv2d`."""
    filter_hw = kernels.as_pair(filter_hw, "conv2d_backprop_filter: filter_hw")
    x_shape = tuple(_shape(x))
    in_hw = x_shape[2:] if len(x_shape) == 4 else (None, None)
    stride, pads, dilation = _resolved(in_hw, filter_hw, stride, padding, dilation, "conv2d_backprop_filter")
    algorithm = check_algorithm(Conv2DBackpropFilter.kind, algorithm)
    return apply(Conv2DBackpropFilter(filter_hw, stride, pads, dilation, algorithm), [x, g], name)
