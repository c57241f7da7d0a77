"""ONNX names as minigraph scopes (minigraph/onnx/names.py)."""
import pytest

from minigraph.onnx import names

onnx = pytest.importorskip("onnx")
from onnx import helper  # noqa: E402


def make(name, **meta):
    node = helper.make_node("Relu", ["x"], ["y"], name=name)
    for key, value in meta.items():
        entry = node.metadata_props.add()
        entry.key, entry.value = key, value
    return node


def test_slash_paths_dot_paths_and_bad_characters():
    assert names.node_path(make("/features/features.0/conv/Conv"), 0) == (["features", "features.0", "conv"], "Conv")
    assert names.node_path(make("features.0.relu"), 0) == (["features", "0"], "relu")
    assert names.node_path(make("features.0.relu"), 0, dots=False) == ([], "features.0.relu")
    assert names.node_path(make("a b/c:d"), 0) == (["a_b"], "c_d")
    assert names.node_path(make(""), 3) == ([], "Relu")
    assert names.tensor_leaf("onnx::Conv_12") == "onnx__Conv_12"
    assert names.tensor_leaf("features.0.conv.weight") == "weight"


def test_dynamo_metadata_gives_each_level_its_own_name():
    node = make("node_conv2d_1", **{"pkg.torch.onnx.name_scopes": "['', 'blocks', 'blocks.0', 'blocks.0.branch1', 'conv2d_1']"})
    assert names.node_path(node, 0) == (["blocks", "blocks.0", "branch1"], "node_conv2d_1")
    ns = ": M/inception_a: Inception/inception_a.branch2: Sequential/inception_a.branch2.0: BasicConv/relu: aten.relu"
    assert names.node_path(make("node_relu", namespace=ns), 0) == (["inception_a", "branch2", "branch2.0"], "node_relu")
