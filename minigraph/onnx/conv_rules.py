"""ONNX rules of the convolution family: Conv, MaxPool, AveragePool, GlobalAveragePool, LRN.

Geometry on both sides:
- minigraph stores padding resolved as ((top, bottom), (left, right)); ONNX `pads` lists the
  beginnings, then the ends: [top, left, bottom, right]. (Flattening minigraph's pairs
  naively gives [top, bottom, left, right], a wrong output shape.)
- TensorFlow's SAME padding is asymmetric (the odd extra row/column at the bottom/right), so
  it is exported as explicit pads, never as the deprecated `auto_pad`; on import, `auto_pad`
  SAME_UPPER/SAME_LOWER/VALID is resolved against the input's static size.
- `ceil_mode` on import becomes extra padding at the end, enough for the last window that
  starts inside the input or its leading padding (ONNX ignores windows that would start in
  the trailing padding). Max pooling never picks a padded cell; average pooling without
  `count_include_pad` leaves padded cells out of the mean, so both are exact. With
  `count_include_pad` and ceil_mode, the declared pads are added as zeros first and only the
  ceil_mode overhang is left out of the mean, as onnxruntime and PyTorch count it.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from minigraph import ops
from minigraph.ops.kernels import same_padding

from .errors import OnnxFileError

Pads = Tuple[Tuple[int, int], Tuple[int, int]]


def onnx_pads(padding: Pads) -> List[int]:
    """((top, bottom), (left, right)) -> ONNX [top, left, bottom, right]."""
    (top, bottom), (left, right) = padding
    return [int(top), int(left), int(bottom), int(right)]


def minigraph_pads(pads: Sequence[int]) -> Pads:
    """ONNX [top, left, bottom, right] -> ((top, bottom), (left, right))."""
    if len(pads) != 4:
        raise OnnxFileError(f"pads must hold 4 values (top, left, bottom, right) for a 2-D window, got {list(pads)}")
    top, left, bottom, right = (int(p) for p in pads)
    return ((top, bottom), (left, right))


# ---------------------------------------------------------------------------------------
# export


def _conv_attrs(kernel, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1)) -> dict:
    return dict(kernel_shape=[int(k) for k in kernel], strides=[int(s) for s in stride],
                pads=onnx_pads(padding), dilations=[int(d) for d in dilation], group=1)


def _with_activation(node, ctx, op_type: str, inputs, attrs) -> str:
    if node.op.activation is None:
        return ctx.emit(op_type, inputs, node, attrs)
    conv = ctx.emit(op_type, inputs, node, attrs, suffix="pre_" + node.op.activation)
    return ctx.emit(ctx.activation_type(node.op.activation), [conv], node)


def export_conv2d(node, ctx) -> None:
    """conv2d -> Conv (+ Relu when the fusion pass gave it activation='relu')."""
    op = node.op
    inputs = [ctx.tensor(x) for x in node.inputs]
    attrs = _conv_attrs(node.inputs[1].shape[2:], op.stride, op.padding, op.dilation)
    _with_activation(node, ctx, "Conv", inputs, attrs)


def export_conv1x1(node, ctx) -> None:
    """conv1x1 -> Conv with a 1x1 kernel; (F, C) weights are reshaped to (F, C, 1, 1) in the graph,
    so the initializer keeps the variable's own shape."""
    x, w = node.inputs[:2]
    weights = ctx.tensor(w)
    if w.ndim == 2:
        shape = ctx.initializer(np.array(tuple(w.shape) + (1, 1), np.int64), w.name + "_4d_shape")
        weights = ctx.emit("Reshape", [weights, shape], node, suffix="weights_4d")
    inputs = [ctx.tensor(x), weights] + [ctx.tensor(b) for b in node.inputs[2:]]
    _with_activation(node, ctx, "Conv", inputs, _conv_attrs((1, 1)))


def export_max_pool(node, ctx) -> None:
    op = node.op
    ctx.emit("MaxPool", [ctx.tensor(node.inputs[0])], node,
             dict(kernel_shape=list(op.size), strides=list(op.stride), pads=onnx_pads(op.padding)))


def export_avg_pool(node, ctx) -> None:
    op = node.op
    ctx.emit("AveragePool", [ctx.tensor(node.inputs[0])], node,
             dict(kernel_shape=list(op.size), strides=list(op.stride), pads=onnx_pads(op.padding),
                  count_include_pad=int(op.count_include_pad)))


def export_global_avg_pool(node, ctx) -> None:
    """(N, C, H, W) -> (N, C): GlobalAveragePool (N, C, 1, 1), then Flatten."""
    pooled = ctx.emit("GlobalAveragePool", [ctx.tensor(node.inputs[0])], node, suffix="pool")
    ctx.emit("Flatten", [pooled], node, dict(axis=1))


def check_lrn(node, opset) -> Optional[str]:
    if node.op.size % 2 == 0:
        return f"LRN with the even size {node.op.size}: onnxruntime accepts odd sizes only"
    return None


def export_lrn(node, ctx) -> None:
    """Both sides use the AlexNet/Caffe form x / (k + alpha/size * sum x^2)^beta; ONNX calls k `bias`."""
    op = node.op
    ctx.emit("LRN", [ctx.tensor(node.inputs[0])], node,
             dict(size=int(op.size), alpha=float(op.alpha), beta=float(op.beta), bias=float(op.k)))


# ---------------------------------------------------------------------------------------
# import


def _spatial(node, ctx, kernel, dilation=(1, 1)) -> Pads:
    """The node's padding, auto_pad resolved against the input's static spatial size."""
    attrs = ctx.attrs
    mode = attrs.get("auto_pad", "NOTSET")
    if mode in ("NOTSET", ""):
        return minigraph_pads(attrs.get("pads", [0, 0, 0, 0]))
    if mode == "VALID":
        return ((0, 0), (0, 0))
    if mode not in ("SAME_UPPER", "SAME_LOWER"):
        raise OnnxFileError(f"auto_pad must be NOTSET, VALID, SAME_UPPER or SAME_LOWER, got {mode!r}")
    hw = ctx.shape(node.input[0])[2:]
    if None in hw:
        raise OnnxFileError(f"{node.op_type} {node.name!r}: auto_pad={mode} needs the input's height and "
                            f"width, which are unknown ({ctx.shape(node.input[0])})")
    stride = _strides(ctx)
    pads = [same_padding(n, k, s, d) for n, k, s, d in zip(hw, kernel, stride, dilation)]
    if mode == "SAME_LOWER":
        pads = [(after, before) for before, after in pads]
    return tuple(pads)  # type: ignore[return-value]


def _strides(ctx) -> Tuple[int, int]:
    """The node's strides: two ints >= 1 (the padding arithmetic divides by them)."""
    strides = [int(v) for v in ctx.attrs.get("strides", [1, 1])]
    if len(strides) != 2 or min(strides) < 1:
        raise OnnxFileError(f"strides must be 2 integers >= 1 for a 2-D window, got {strides}")
    return strides[0], strides[1]


def check_conv(node, ctx) -> Optional[str]:
    attrs = ctx.attrs_of(node)
    if attrs.get("group", 1) != 1:
        return f"Conv with group={attrs['group']} (grouped convolutions)"
    kernel = attrs.get("kernel_shape")
    if kernel is None:  # from the weights, when they are known at load time
        shape = ctx.static_shape(node.input[1], required=False)
        kernel = None if shape is None else shape[2:]
    if kernel is not None and len(kernel) != 2:
        return "Conv that is not 2-D"
    return None


def load_conv(node, ctx):
    x, w = ctx.value(node.input[0]), ctx.value(node.input[1])
    b = ctx.value(node.input[2]) if ctx.given(node, 2) else None
    kernel = tuple(w.shape[2:])
    dilation = tuple(ctx.attrs.get("dilations", [1, 1]))
    padding = _spatial(node, ctx, kernel, dilation)
    return [ops.conv2d(x, w, b, stride=_strides(ctx), padding=padding,
                       dilation=dilation, name=ctx.leaf)]


def check_pool(node, ctx) -> Optional[str]:
    attrs = ctx.attrs_of(node)
    if len(attrs.get("kernel_shape", [])) != 2:
        return f"{node.op_type} that is not 2-D"
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        return f"{node.op_type} with dilations {attrs['dilations']}"
    if len(node.output) > 1 and node.output[1]:
        return f"{node.op_type} whose Indices output is used"
    return None


def _ceil_extra(size: Optional[int], k: int, s: int, pads: Tuple[int, int], what: str) -> int:
    """Extra padding at the end that makes floor division give ceil_mode's output size."""
    if size is None:
        raise OnnxFileError(f"{what}: ceil_mode needs the input's height and width, which are unknown")
    span = size + pads[0] + pads[1] - k
    out = -(-span // s) + 1
    if (out - 1) * s >= size + pads[0]:  # that window would start in the trailing padding
        out -= 1
    return max(0, (out - 1) * s + k - (size + pads[0] + pads[1]))


def _pool_geometry(node, ctx):
    kernel = tuple(int(k) for k in ctx.attrs["kernel_shape"])
    stride = _strides(ctx)
    padding = _spatial(node, ctx, kernel)
    extra = (0, 0)
    if ctx.attrs.get("ceil_mode", 0):
        hw = ctx.shape(node.input[0])[2:]
        what = f"{node.op_type} {node.name!r}"
        extra = tuple(_ceil_extra(n, k, s, p, what) for n, k, s, p in zip(hw, kernel, stride, padding))
    return kernel, stride, padding, extra


def _grow(padding: Pads, extra) -> Pads:
    return tuple((p[0], p[1] + e) for p, e in zip(padding, extra))  # type: ignore[return-value]


def load_max_pool(node, ctx):
    kernel, stride, padding, extra = _pool_geometry(node, ctx)
    x = ctx.value(node.input[0])
    return [ops.max_pool(x, kernel, stride, padding=_grow(padding, extra), name=ctx.leaf)]


def load_avg_pool(node, ctx):
    kernel, stride, padding, extra = _pool_geometry(node, ctx)
    x = ctx.value(node.input[0])
    include = bool(ctx.attrs.get("count_include_pad", 0))
    if include and any(extra) and any(p for pair in padding for p in pair):
        # zeros that count, then an overhang that does not
        x = ops.pad_axis(ops.pad_axis(x, *padding[0], axis=2, name=ctx.leaf + "_pad_h"), *padding[1], axis=3,
                         name=ctx.leaf + "_pad_w")
        return [ops.avg_pool(x, kernel, stride, padding=((0, extra[0]), (0, extra[1])), name=ctx.leaf)]
    return [ops.avg_pool(x, kernel, stride, padding=_grow(padding, extra),
                         count_include_pad=include and not any(extra), name=ctx.leaf)]


def load_global_avg_pool(node, ctx):
    x = ctx.value(node.input[0])
    if x.ndim != 4 or x.shape[1] is None:
        raise OnnxFileError(f"GlobalAveragePool {node.name!r}: needs an (N, C, H, W) input with a known C, "
                            f"got {x.shape}")
    pooled = ops.global_avg_pool(x, name=ctx.leaf + "_nc")
    return [ops.reshape(pooled, (-1, x.shape[1], 1, 1), name=ctx.leaf)]


def load_lrn(node, ctx):
    a = ctx.attrs
    return [ops.local_response_norm(ctx.value(node.input[0]), int(a["size"]), float(a.get("alpha", 1e-4)),
                                    float(a.get("beta", 0.75)), float(a.get("bias", 1.0)), name=ctx.leaf)]


__all__ = ["onnx_pads", "minigraph_pads", "export_conv2d", "export_conv1x1", "export_max_pool",
           "export_avg_pool", "export_global_avg_pool", "check_lrn", "export_lrn", "check_conv", "load_conv",
           "check_pool", "load_max_pool", "load_avg_pool", "load_global_avg_pool", "load_lrn"]
