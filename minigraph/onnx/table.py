"""THE table of minigraph op kinds and ONNX op types: one row per correspondence, with the
functions that convert each way. Nothing else in minigraph maps kinds to ONNX types.

A row's `export(node, ctx)` writes a node of kind `kind` into the ONNX graph being built
(`exporter.ExportContext`); its `load(node, ctx)` builds an ONNX node of type `onnx_type`
with minigraph's public builders (`importer.ImportContext`) and returns one minigraph node
per ONNX output. `export_check(node, opset)` and `load_check(node, ctx)` return a reason
when a particular use of a supported type cannot be converted (an even LRN size, a grouped
Conv): every such reason and every missing type is collected into one
`UnsupportedOpError` before anything is built or written.

Kinds are checked against the op registry (`mg.ops.registry()`) when this module loads, so
a renamed op fails here, not in a user's export.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional

from minigraph import ops
from minigraph.op import op_class, registry

from . import conv_rules as conv
from . import math_rules as math
from . import tensor_rules as tensor


@dataclasses.dataclass(frozen=True)
class Row:
    """One correspondence: minigraph `kind` (None: import only) <-> ONNX `onnx_type` (None: an
    initializer or graph input rather than an op)."""

    kind: Optional[str]
    onnx_type: Optional[str]
    export: Optional[Callable] = None
    load: Optional[Callable] = None
    export_check: Optional[Callable] = None
    load_check: Optional[Callable] = None
    static_value: Optional[Callable] = None  # (node, ctx) -> its output's value, known at load time (Constant)


ROWS = (
    # leaves: graph inputs and initializers
    Row("placeholder", None, export=tensor.export_placeholder),
    Row("variable", None, export=tensor.export_variable),
    Row("constant", None, export=tensor.export_constant),
    Row("placeholder_with_default", "Identity", export=tensor.export_placeholder_with_default),
    Row(None, "Constant", load=tensor.load_constant, load_check=tensor.check_constant,
        static_value=tensor.constant_value),
    # convolution family
    Row("conv2d", "Conv", export=conv.export_conv2d, load=conv.load_conv, load_check=conv.check_conv),
    Row("conv1x1", "Conv", export=conv.export_conv1x1),  # imported Convs go through ops.conv2d, which picks conv1x1
    Row("max_pool", "MaxPool", export=conv.export_max_pool, load=conv.load_max_pool, load_check=conv.check_pool),
    Row("avg_pool", "AveragePool", export=conv.export_avg_pool, load=conv.load_avg_pool,
        load_check=conv.check_pool),
    Row("global_avg_pool", "GlobalAveragePool", export=conv.export_global_avg_pool,
        load=conv.load_global_avg_pool),
    Row("local_response_norm", "LRN", export=conv.export_lrn, load=conv.load_lrn, export_check=conv.check_lrn),
    # arithmetic
    Row("add", "Add", export=math.elementwise("Add"), load=math.binary(ops.add)),
    Row("sub", "Sub", export=math.elementwise("Sub"), load=math.binary(ops.sub)),
    Row("mul", "Mul", export=math.export_mul, load=math.binary(ops.mul)),
    Row("div", "Div", export=math.elementwise("Div"), load=math.binary(ops.div)),
    Row("square", "Mul", export=math.export_square),
    Row("neg", "Neg", export=math.elementwise("Neg"), load=math.unary(ops.neg)),
    Row("relu", "Relu", export=math.elementwise("Relu"), load=math.unary(ops.relu)),
    Row("sigmoid", "Sigmoid", export=math.elementwise("Sigmoid"), load=math.unary(ops.sigmoid)),
    Row("tanh", "Tanh", export=math.elementwise("Tanh"), load=math.unary(ops.tanh)),
    Row("exp", "Exp", export=math.elementwise("Exp"), load=math.unary(ops.exp)),
    Row("log", "Log", export=math.elementwise("Log"), load=math.unary(ops.log)),
    Row("sqrt", "Sqrt", export=math.elementwise("Sqrt"), load=math.unary(ops.sqrt)),
    Row("matmul", "MatMul", export=math.export_matmul, load=math.load_matmul),
    Row(None, "Gemm", load=math.load_gemm),
    Row("sum", "ReduceSum", export=math.export_sum, load=math.reduction(ops.sum, 13),
        load_check=math.check_static_input(1, "axes")),
    Row("mean", "ReduceMean", export=math.export_mean, load=math.reduction(ops.mean, 18),
        load_check=math.check_static_input(1, "axes")),
    Row("softmax", "Softmax", export=math.export_softmax, load=math.along_axis(ops.softmax)),
    Row("log_softmax", "LogSoftmax", export=math.export_log_softmax, load=math.along_axis(ops.log_softmax)),
    # structure
    Row("concat", "Concat", export=tensor.export_concat, load=tensor.load_concat),
    Row("reshape", "Reshape", export=tensor.export_reshape, load=tensor.load_reshape,
        load_check=math.check_static_input(1, "target shape")),
    Row("flatten", "Flatten", export=tensor.export_flatten, load=tensor.load_flatten),
    Row("pad_axis", "Pad", export=tensor.export_pad_axis, load=tensor.load_pad, load_check=tensor.check_pad),
    Row("transpose", "Transpose", export=tensor.export_transpose, load=tensor.load_transpose),
    Row("identity", "Identity", export=tensor.export_identity, load=tensor.load_identity),
    Row("dropout_mask", "Dropout", export=tensor.export_dropout_mask, load=tensor.load_dropout,
        load_check=tensor.check_dropout),
    Row("batch_normalization", "BatchNormalization", export=tensor.export_batch_normalization,
        load=tensor.load_batch_norm, load_check=tensor.check_batch_norm),
    Row("batch_norm", "BatchNormalization", export=tensor.export_batch_norm),  # inference: the moving averages
    Row("stop_gradient", "Identity", export=tensor.export_identity),  # a forward identity
    Row("where", "Where", export=tensor.export_where, load=tensor.load_where),
    Row("argmax", "ArgMax", export=tensor.export_argmax, load=tensor.load_argmax, load_check=tensor.check_argmax),
)

# How an activation an op carries (conv2d's `activation="relu"`, set by the fusion pass) is written.
ACTIVATIONS = {"relu": "Relu"}


def index_rows(rows):
    """({kind: row} of the exporting rows, {ONNX type: row} of the loading rows); a kind that is
    not registered or a kind or type claimed twice is an error."""
    exports: Dict[str, Row] = {}
    loads: Dict[str, Row] = {}
    for row in rows:
        if row.kind is not None:
            op_class(row.kind)  # a KeyError naming the kind if no op is registered under it
            if row.kind in exports:
                raise ValueError(f"two ONNX rows export {row.kind!r}")
            exports[row.kind] = row
        if row.load is not None:
            if row.onnx_type in loads:
                raise ValueError(f"two ONNX rows load {row.onnx_type!r}")
            loads[row.onnx_type] = row
    return exports, loads


EXPORTS, LOADS = index_rows(ROWS)


def supported_ops() -> Dict[str, Dict[str, Optional[str]]]:
    """What converts: {"export": {kind: ONNX type or None, for every registered op kind},
    "import": {ONNX type: minigraph kind or None, for every importable type}}. A kind whose
    ONNX type is None has no counterpart (gradient ops, losses, ...), except the leaves
    (placeholder, variable, constant), which become graph inputs and initializers."""
    exports = {kind: (EXPORTS[kind].onnx_type or "(graph input / initializer)") if kind in EXPORTS else None
               for kind in registry()}
    imports = {t: row.kind for t, row in sorted(LOADS.items())}
    return {"export": exports, "import": imports}


__all__ = ["Row", "ROWS", "EXPORTS", "LOADS", "ACTIVATIONS", "supported_ops", "index_rows"]
