"""The one table of kind <-> ONNX type correspondences, read against the op registry."""
import pytest

import minigraph as mg
from minigraph.onnx import table


def test_every_row_names_a_registered_kind_and_lookups_are_unique():
    registry = mg.ops.registry()
    assert all(row.kind is None or row.kind in registry for row in table.ROWS)
    kinds = [row.kind for row in table.ROWS if row.kind]
    assert len(kinds) == len(set(kinds))
    loads = [row.onnx_type for row in table.ROWS if row.load]
    assert len(loads) == len(set(loads))


def test_supported_ops_covers_the_registry():
    supported = mg.onnx.supported_ops()
    assert set(supported["export"]) == set(mg.ops.registry())
    assert supported["export"]["conv2d"] == "Conv" and supported["export"]["conv2d_backprop_input"] is None
    assert supported["import"]["BatchNormalization"] == "batch_normalization" and supported["import"]["Gemm"] is None
    issue = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "LRN", "Concat", "Relu", "Gemm", "MatMul", "Add",
             "Mul", "Flatten", "Reshape", "ReduceMean", "Softmax", "Dropout", "Identity", "BatchNormalization", "Constant"}
    assert issue <= set(supported["import"])


def test_a_duplicate_row_is_refused():
    row = table.Row("relu", "Relu", load=lambda node, ctx: [])
    with pytest.raises(ValueError, match="two ONNX rows"):
        table.index_rows(table.ROWS + (row,))
    with pytest.raises(KeyError, match="no op of kind 'reluu'"):
        table.index_rows((table.Row("reluu", "Relu"),))
