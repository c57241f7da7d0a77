"""ONNX rules of the structural ops and leaves: inputs, weights, constants, Concat, Reshape,
Flatten, Transpose, Pad, Identity, Dropout, BatchNormalization.

- Placeholders become graph inputs, variables initializers holding the session's current
  values, constants initializers; a placeholder with a default takes its default (the graph
  is exported as it runs when nothing is fed).
- A dropout is `x * dropout_mask(x, training)`; in inference the mask is all ones, so the
  product exports as an ONNX Dropout (ratio as its input, no `training_mode`: the identity
  in inference). On import, Dropout (inference) is an identity.
- BatchNormalization (inference) is `ops.batch_normalization`, the same formula
  gamma * (x - mean) / sqrt(var + epsilon) + beta: gamma and beta become trainable variables,
  the statistics non-trainable ones (fine-tuning keeps them, as a frozen batch norm does).
  Both minigraph batch-norm ops export as BatchNormalization: `batch_norm` with its moving
  averages (the inference form; its `training` switch is left out like dropout's).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from minigraph import ops

from .errors import OnnxFileError


# ---------------------------------------------------------------------------------------
# export


def export_placeholder(node, ctx) -> None:
    ctx.graph_input(node)


def export_variable(node, ctx) -> None:
    ctx.bind(node, ctx.initializer(ctx.variable_value(node), node.name))


def export_constant(node, ctx) -> None:
    ctx.bind(node, ctx.initializer(np.asarray(node.op.value), node.name))


def export_placeholder_with_default(node, ctx) -> None:
    ctx.emit("Identity", [ctx.tensor(node.inputs[0])], node)


def export_concat(node, ctx) -> None:
    ctx.emit("Concat", [ctx.tensor(x) for x in node.inputs], node, dict(axis=int(node.op.axis)))


def export_reshape(node, ctx) -> None:
    shape = np.array(node.op.shape, np.int64)
    attrs = dict(allowzero=1) if 0 in node.op.shape else {}  # a literal 0 is a size, not "copy"
    ctx.emit("Reshape", [ctx.tensor(node.inputs[0]), ctx.initializer(shape, node.name + "_shape")], node, attrs)


def export_flatten(node, ctx) -> None:
    ctx.emit("Flatten", [ctx.tensor(node.inputs[0])], node, dict(axis=1))


def export_transpose(node, ctx) -> None:
    ctx.emit("Transpose", [ctx.tensor(node.inputs[0])], node, dict(perm=[int(a) for a in node.op.axes]))


def export_identity(node, ctx) -> None:
    ctx.emit("Identity", [ctx.tensor(node.inputs[0])], node)


def export_pad_axis(node, ctx) -> None:
    """Zeros before and after one axis: Pad (constant mode) with pads [begins..., ends...]."""
    rank, op = node.inputs[0].ndim, node.op
    pads = [0] * (2 * rank)
    pads[op.axis], pads[rank + op.axis] = int(op.before), int(op.after)
    ctx.emit("Pad", [ctx.tensor(node.inputs[0]), ctx.initializer(np.array(pads, np.int64), node.name + "_pads")], node)


def export_dropout_mask(node, ctx) -> None:
    """The mask itself writes nothing: the product that applies it exports as Dropout."""
    rate = float(node.op.rate)

    def apply(data, product, ctx) -> None:
        ratio = ctx.initializer(np.array(rate, dtype=data.dtype), product.name + "_ratio")
        ctx.emit("Dropout", [ctx.tensor(data), ratio], product)

    ctx.mark_applied(node, apply)


# ---------------------------------------------------------------------------------------
# import


def load_concat(node, ctx):
    xs = [ctx.value(name) for name in node.input]
    return [ops.concat(xs, axis=int(ctx.attrs["axis"]), name=ctx.leaf)]


def load_identity(node, ctx):
    return [ops.identity(ctx.value(node.input[0]), name=ctx.leaf)]


def check_dropout(node, ctx) -> Optional[str]:
    if len(node.output) > 1 and node.output[1]:
        return "Dropout whose mask output is used"
    if len(node.input) > 2 and node.input[2]:
        if not ctx.is_static(node.input[2]) or bool(np.asarray(ctx.static(node.input[2])).any()):
            return "Dropout in training mode"
    return None


def load_dropout(node, ctx):
    """Inference: the identity (the ratio input and seed are irrelevant)."""
    return [ops.identity(ctx.value(node.input[0]), name=ctx.leaf)]


def load_flatten(node, ctx):
    x = ctx.value(node.input[0])
    axis = int(ctx.attrs.get("axis", 1))
    if not -x.ndim <= axis <= x.ndim:
        raise OnnxFileError(f"axis {axis} is out of range for an input of rank {x.ndim} (Flatten takes "
                            f"{-x.ndim} to {x.ndim})")
    axis = axis + x.ndim if axis < 0 else axis  # -1: all axes but the last in the rows
    if axis == 1:
        return [ops.flatten(x, name=ctx.leaf)]
    head, tail = x.shape[:axis], x.shape[axis:]
    if None in tail and None in head:
        raise OnnxFileError(f"Flatten {node.name!r} (axis {axis}): input {x.shape} has unknown sizes on "
                            "both sides of the axis")
    rows = -1 if None in head else int(np.prod(head))
    cols = -1 if None in tail else int(np.prod(tail))
    return [ops.reshape(x, (rows, cols), name=ctx.leaf)]


def load_reshape(node, ctx):
    """Reshape with a shape known at load time. A 0 copies the input's size (unless allowzero);
    the one unknown size (the batch) becomes -1, resolving an explicit -1 from the known sizes."""
    x = ctx.value(node.input[0])
    target = ctx.static_ints(node.input[1])
    allowzero = bool(ctx.attrs.get("allowzero", 0))
    dims = [x.shape[i] if d == 0 and not allowzero and i < x.ndim else d for i, d in enumerate(target)]
    if None in dims:
        unknown = [i for i, d in enumerate(dims) if d is None]
        if len(unknown) > 1 or sum(d is None for d in x.shape) > 1:
            raise OnnxFileError(f"Reshape {node.name!r}: target {target} copies several unknown sizes of "
                                f"{x.shape}")
        if -1 in dims:  # the -1 is known from the input's static sizes
            known_in = int(np.prod([d for d in x.shape if d is not None]))
            known_out = int(np.prod([d for d in dims if d not in (None, -1)]))
            dims[dims.index(-1)] = known_in // max(known_out, 1)
        dims[unknown[0]] = -1
    return [ops.reshape(x, tuple(dims), name=ctx.leaf)]


def load_transpose(node, ctx):
    x = ctx.value(node.input[0])
    perm = ctx.attrs.get("perm")
    return [ops.transpose(x, None if perm is None else tuple(perm), name=ctx.leaf)]


def check_pad(node, ctx) -> Optional[str]:
    attrs = ctx.attrs_of(node)
    if attrs.get("mode", "constant") != "constant":
        return f"Pad in {attrs['mode']} mode"
    if "pads" not in attrs and not (len(node.input) > 1 and ctx.is_static(node.input[1])):
        return "Pad whose pads are computed at run time"
    if len(node.input) > 2 and node.input[2]:
        if not ctx.is_static(node.input[2]):
            return "Pad whose value is computed at run time"
    if len(node.input) > 3 and node.input[3] and not ctx.is_static(node.input[3]):
        return "Pad whose axes are computed at run time"
    return None


def load_pad(node, ctx):
    """Pad (constant mode, value 0, pads >= 0) as one pad_axis per padded axis."""
    x = ctx.value(node.input[0])
    pads = ctx.attrs.get("pads")
    pads = ctx.static_ints(node.input[1]) if pads is None else [int(p) for p in pads]
    value = ctx.attrs.get("value", 0.0)
    if len(node.input) > 2 and node.input[2]:
        value = np.asarray(ctx.static(node.input[2])).ravel()
        value = float(value[0]) if value.size else 0.0
    axes = list(range(x.ndim))
    if len(node.input) > 3 and node.input[3]:
        axes = ctx.static_ints(node.input[3])
        if any(not -x.ndim <= a < x.ndim for a in axes):
            raise OnnxFileError(f"axes {axes} are out of range for an input of rank {x.ndim}")
        axes = [a % x.ndim for a in axes]
    if len(pads) != 2 * len(axes):
        raise OnnxFileError(f"pads must hold 2 values (a begin and an end) for each of the {len(axes)} padded "
                            f"axes, got {len(pads)}: {pads}")
    if value != 0.0 or min(pads, default=0) < 0:
        raise OnnxFileError(f"Pad {node.name!r}: only zero padding (no cropping) is supported, got value "
                            f"{value} and pads {pads}")
    n = len(axes)
    done = [(axis, pads[i], pads[n + i]) for i, axis in enumerate(axes) if pads[i] or pads[n + i]]
    if not done:
        return [ops.identity(x, name=ctx.leaf)]
    for j, (axis, before, after) in enumerate(done):
        x = ops.pad_axis(x, before, after, axis=axis, name=ctx.leaf if j == len(done) - 1 else None)
    return [x]


def check_batch_norm(node, ctx) -> Optional[str]:
    if ctx.attrs_of(node).get("training_mode", 0) or (len(node.output) > 1 and any(node.output[1:])):
        return "BatchNormalization in training mode"
    return None


def load_batch_norm(node, ctx):
    x, gamma, beta = (ctx.value(name) for name in node.input[:3])
    mean, var = (ctx.value(name, trainable=False) for name in node.input[3:5])
    return [ops.batch_normalization(x, mean, var, gamma, beta, float(ctx.attrs.get("epsilon", 1e-5)),
                                    name=ctx.leaf)]


def export_batch_normalization(node, ctx) -> None:
    """batch_normalization(x, mean, variance, gamma, beta) -> BatchNormalization(x, gamma, beta, mean, var)."""
    x, mean, var, gamma, beta = (ctx.tensor(v) for v in node.inputs)
    ctx.emit("BatchNormalization", [x, gamma, beta, mean, var], node, dict(epsilon=float(node.op.epsilon)))


def export_batch_norm(node, ctx) -> None:
    """batch_norm(x, gamma, beta, moving_mean, moving_variance, training) in inference: the moving
    averages normalise (the switch is not written)."""
    x, gamma, beta, mean, var = (ctx.tensor(v) for v in node.inputs[:5])
    ctx.emit("BatchNormalization", [x, gamma, beta, mean, var], node, dict(epsilon=float(node.op.epsilon)))


def load_where(node, ctx):
    cond, a, b = (ctx.value(name) for name in node.input)
    return [ops.where(cond, a, b, name=ctx.leaf)]


def export_where(node, ctx) -> None:
    ctx.emit("Where", [ctx.tensor(v) for v in node.inputs], node)


def check_argmax(node, ctx) -> Optional[str]:
    if ctx.attrs_of(node).get("select_last_index", 0):
        return "ArgMax with select_last_index=1"
    return None


def load_argmax(node, ctx):
    x = ctx.value(node.input[0])
    axis = int(ctx.attrs.get("axis", 0))
    if not ctx.attrs.get("keepdims", 1):
        return [ops.argmax(x, axis=axis, name=ctx.leaf)]
    index = ops.argmax(x, axis=axis, name=ctx.leaf + "_index")
    return [ops.expand_dims(index, (axis % x.ndim,), name=ctx.leaf)]


def export_argmax(node, ctx) -> None:
    ctx.emit("ArgMax", [ctx.tensor(node.inputs[0])], node, dict(axis=int(node.op.axis), keepdims=0))


def constant_value(node, ctx) -> Optional[np.ndarray]:
    """The value of a Constant node (None for a form minigraph does not read, which
    `check_constant` reports)."""
    a = ctx.attrs_of(node)
    if "value" in a:
        return np.asarray(a["value"])
    if "value_float" in a or "value_floats" in a:
        return np.array(a.get("value_float", a.get("value_floats")), np.float32)
    if "value_int" in a or "value_ints" in a:
        return np.array(a.get("value_int", a.get("value_ints")), np.int64)
    return None


def load_constant(node, ctx):
    """Nothing to build: the value is known when the model is loaded (`constant_value`), kept as
    an array for shapes and axes, and made a graph constant when an op reads it as a tensor."""
    return []


def check_constant(node, ctx) -> Optional[str]:
    keys = set(ctx.attrs_of(node))
    if not keys & {"value", "value_float", "value_floats", "value_int", "value_ints"}:
        return f"Constant with {', '.join(sorted(keys)) or 'no value'}"
    return None


__all__ = ["export_placeholder", "export_variable", "export_constant", "export_placeholder_with_default",
           "export_concat", "export_reshape", "export_flatten", "export_transpose", "export_identity",
           "export_pad_axis", "check_pad", "load_pad", "export_batch_normalization", "export_batch_norm",
           "load_where", "export_where", "check_argmax", "load_argmax", "export_argmax", "export_dropout_mask", "load_concat", "load_identity", "check_dropout", "load_dropout",
           "load_flatten", "load_reshape", "load_transpose", "check_batch_norm", "load_batch_norm",
           "constant_value", "load_constant", "check_constant"]
