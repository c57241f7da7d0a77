"""ONNX rules of the arithmetic family: elementwise ops, MatMul, Gemm, reductions, softmax.

Binary elementwise ops broadcast the NumPy way on both sides (ONNX's multidirectional
broadcasting). Softmax's `axis` means "this one axis" from opset 13 on (earlier it flattened
every axis from `axis` on), so exports use opset >= 13 and imports of older models flatten
when they must. ReduceMean takes its axes as an attribute up to opset 17 and as an input from
18 on (ReduceSum from 13 on); both forms are read and the right one is written.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from minigraph import ops

from .errors import OnnxFileError

# ---------------------------------------------------------------------------------------
# export


def elementwise(op_type: str) -> Callable:
    """The exporter of an elementwise op: one ONNX node of `op_type` on the same inputs."""
    def export(node, ctx) -> None:
        ctx.emit(op_type, [ctx.tensor(x) for x in node.inputs], node)
    export.__name__ = f"export_{op_type.lower()}"
    return export


def export_mul(node, ctx) -> None:
    """a * b -> Mul; x * (a dropout mask) -> the mask's inference form applied to x (Dropout,
    the identity in inference)."""
    a, b = node.inputs
    for data, other in ((a, b), (b, a)):
        applied = ctx.applied(other)
        if applied is not None:
            applied(data, node, ctx)
            return
    ctx.emit("Mul", [ctx.tensor(a), ctx.tensor(b)], node)


def export_square(node, ctx) -> None:
    x = ctx.tensor(node.inputs[0])
    ctx.emit("Mul", [x, x], node)


def export_matmul(node, ctx) -> None:
    ctx.emit("MatMul", [ctx.tensor(x) for x in node.inputs], node)


def _axes(node):
    """The reduced axes of a sum/mean node as the op holds them (ONNX takes negative axes too),
    or None for all."""
    axis = node.op.axis
    return None if axis is None else [int(a) for a in axis]


def _reduce(op_type: str, axes_input_from: int) -> Callable:
    def export(node, ctx) -> None:
        axes = _axes(node)
        x = ctx.tensor(node.inputs[0])
        attrs = dict(keepdims=int(node.op.keepdims))
        if axes is None:
            ctx.emit(op_type, [x], node, attrs)
        elif ctx.opset >= axes_input_from:
            ctx.emit(op_type, [x, ctx.initializer(np.array(axes, np.int64), node.name + "_axes")], node, attrs)
        else:
            ctx.emit(op_type, [x], node, dict(attrs, axes=axes))
    export.__name__ = f"export_{op_type.lower()}"
    return export


export_sum = _reduce("ReduceSum", 13)
export_mean = _reduce("ReduceMean", 18)


def _along_axis(op_type: str) -> Callable:
    def export(node, ctx) -> None:
        ctx.emit(op_type, [ctx.tensor(node.inputs[0])], node, dict(axis=int(node.op.axis)))
    export.__name__ = f"export_{op_type.lower()}"
    return export


export_softmax = _along_axis("Softmax")
export_log_softmax = _along_axis("LogSoftmax")


# ---------------------------------------------------------------------------------------
# import


def unary(builder: Callable) -> Callable:
    """The importer of a one-input elementwise ONNX op built by `builder`."""
    def load(node, ctx):
        return [builder(ctx.value(node.input[0]), name=ctx.leaf)]
    load.__name__ = f"load_{builder.__name__}"
    return load


def binary(builder: Callable) -> Callable:
    """The importer of a broadcasting two-input ONNX op built by `builder`."""
    def load(node, ctx):
        return [builder(ctx.value(node.input[0]), ctx.value(node.input[1]), name=ctx.leaf)]
    load.__name__ = f"load_{builder.__name__}"
    return load


def load_matmul(node, ctx):
    return [ops.matmul(ctx.value(node.input[0]), ctx.value(node.input[1]), name=ctx.leaf)]


def load_gemm(node, ctx):
    """Y = alpha * A' @ B' + beta * C. A weight B that is an initializer read by this node alone
    and used transposed (PyTorch's Linear: transB=1) is stored transposed, (in, out), as
    minigraph's dense layers hold it, so the product reads a variable directly."""
    a = ctx.attrs
    x = ctx.value(node.input[0])
    if a.get("transA", 0):
        x = ops.transpose(x)
    if a.get("transB", 0) and ctx.is_weight(node.input[1]):
        w = ctx.weight(node.input[1], transform=np.transpose)
    else:
        w = ctx.value(node.input[1])
        if a.get("transB", 0):
            w = ops.transpose(w)
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    has_c = ctx.given(node, 2) and beta != 0.0
    y = ops.matmul(x, w, name=ctx.leaf if not has_c and alpha == 1.0 else None)
    if alpha != 1.0:
        y = ops.mul(y, alpha, name=ctx.leaf if not has_c else None)
    if has_c:
        c = ctx.value(node.input[2])
        if beta != 1.0:
            c = ops.mul(c, beta)
        y = ops.add(y, c, name=ctx.leaf)
    return [y]


def _axes_of(node, ctx, axes_input_from: int):
    """The reduced axes of a ReduceMean/ReduceSum node: from the attribute before
    `axes_input_from`, else from the (static) second input; None for all axes."""
    if ctx.opset < axes_input_from:
        axes = ctx.attrs.get("axes")
    else:
        axes = ctx.static_ints(node.input[1]) if ctx.given(node, 1) else None
    if axes is None or len(axes) == 0:
        return None
    return tuple(int(v) for v in axes)


def reduction(builder: Callable, axes_input_from: int) -> Callable:
    def load(node, ctx):
        x = ctx.value(node.input[0])
        axes = _axes_of(node, ctx, axes_input_from)
        if axes is None and ctx.attrs.get("noop_with_empty_axes", 0):
            return [ops.identity(x, name=ctx.leaf)]
        return [builder(x, axis=axes, keepdims=bool(ctx.attrs.get("keepdims", 1)), name=ctx.leaf)]
    load.__name__ = f"load_{builder.__name__}"
    return load


def check_static_input(index: int, what: str) -> Callable:
    """A check that input `index`, when given, is known when the model is loaded."""
    def check(node, ctx) -> Optional[str]:
        if len(node.input) > index and node.input[index] and not ctx.is_static(node.input[index]):
            return f"{node.op_type} whose {what} is computed at run time"
        return None
    return check


def along_axis(builder: Callable) -> Callable:
    """Softmax / LogSoftmax: one axis from opset 13 on; before, the axes from `axis` on are
    flattened into one (default axis 1)."""
    def load(node, ctx):
        x = ctx.value(node.input[0])
        if ctx.opset >= 13:
            return [builder(x, axis=int(ctx.attrs.get("axis", -1)), name=ctx.leaf)]
        axis = int(ctx.attrs.get("axis", 1))
        if not -x.ndim <= axis < x.ndim:
            raise OnnxFileError(f"axis {axis} is out of range for an input of rank {x.ndim}")
        axis %= x.ndim
        if axis == x.ndim - 1:
            return [builder(x, axis=axis, name=ctx.leaf)]
        tail = x.shape[axis:]
        if None in tail or None in x.shape[1:axis]:
            raise OnnxFileError(f"{node.op_type} {node.name!r} (opset {ctx.opset}, axis {axis}): the "
                                f"flattened axes need static sizes, got {x.shape}")
        flat = ops.reshape(x, (-1, int(np.prod(tail))))
        y = builder(flat, axis=1)
        return [ops.reshape(y, (-1,) + tuple(x.shape[1:]), name=ctx.leaf)]
    load.__name__ = f"load_{builder.__name__}"
    return load


__all__ = ["elementwise", "export_mul", "export_square", "export_matmul", "export_sum", "export_mean",
           "export_softmax", "export_log_softmax", "unary", "binary", "load_matmul", "load_gemm",
           "reduction", "check_static_input", "along_axis"]
