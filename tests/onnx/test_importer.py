"""mg.onnx.load against onnxruntime: every importable ONNX op type (with the attribute forms
that change its meaning), the PyTorch-made fixtures, names as scopes, unsupported ops and
malformed files, and gradients / fine-tuning of an imported model."""
import os

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops
from minigraph.onnx import table

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "onnx")
RNG = np.random.default_rng(1)


def arr(*shape, positive=False, dtype=np.float32):
    a = RNG.standard_normal(shape).astype(dtype)
    return np.abs(a) + 0.5 if positive else a


def node(op_type, inputs, name=None, **attrs):
    return helper.make_node(op_type, inputs, ["y"], name=name or f"/block/{op_type}", **attrs)


def case(nodes, x_shape, inits=(), opset=17, out_shape=None, extra_inputs=(), out_type=TensorProto.FLOAT):
    """(ModelProto, feeds): input 'x' of x_shape (batch dim dynamic), output 'y' (of `out_type`)."""
    nodes = nodes if isinstance(nodes, list) else [nodes]
    inputs = [("x", (None,) + tuple(x_shape[1:]))] + [(n, (None,) + tuple(a.shape[1:])) for n, a in extra_inputs]
    def vi(n, s, t=TensorProto.FLOAT):
        return helper.make_tensor_value_info(n, t, None if s is None else [("N" if d is None else d) for d in s])
    graph = helper.make_graph(nodes, "case", [vi(*i) for i in inputs], [vi("y", out_shape, out_type)],
                              initializer=[onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tests")
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)  # fills in y's shape
    onnx.checker.check_model(model, full_check=True)
    return model, [arr(*x_shape)] + [a for _, a in extra_inputs]


def i64(*v):
    return np.array(v, np.int64)


IMPORT_CASES = {  # ONNX type -> [(id, model builder)]
    "Conv": [
        ("pads-asym-stride-dilation", lambda: case(node("Conv", ["x", "w", "b"], pads=[1, 0, 2, 1], strides=[2, 1], dilations=[1, 2]),
                                                   (2, 3, 9, 8), {"w": arr(4, 3, 3, 2), "b": arr(4)})),
        ("same-upper", lambda: case(node("Conv", ["x", "w"], auto_pad="SAME_UPPER", strides=[2, 2]), (2, 3, 10, 9), {"w": arr(4, 3, 3, 3)})),
        ("same-lower", lambda: case(node("Conv", ["x", "w"], auto_pad="SAME_LOWER", strides=[2, 2]), (2, 3, 10, 9), {"w": arr(4, 3, 4, 3)})),
        ("valid-1x1", lambda: case(node("Conv", ["x", "w", "b"], auto_pad="VALID"), (2, 3, 5, 4), {"w": arr(6, 3, 1, 1), "b": arr(6)})),
        ("weights-from-a-constant", lambda: case([helper.make_node("Constant", [], ["w"], name="/w",
                                                                   value=onnx.numpy_helper.from_array(arr(4, 3, 2, 2))),
                                                  node("Conv", ["x", "w"])], (2, 3, 5, 4))),
    ],
    "MaxPool": [
        ("ceil-mode", lambda: case(node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1), (2, 3, 8, 9))),
        ("ceil-mode-pads-start-rule", lambda: case(node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
                                                   (2, 3, 5, 6))),
        ("asym-pads", lambda: case(node("MaxPool", ["x"], kernel_shape=[3, 2], strides=[1, 2], pads=[0, 1, 2, 0]), (2, 3, 7, 8))),
        ("same-upper", lambda: case(node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"), (2, 3, 10, 9))),
    ],
    "AveragePool": [
        ("exclude-pad", lambda: case(node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), (2, 3, 9, 8))),
        ("include-pad", lambda: case(node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 2],
                                          count_include_pad=1), (2, 3, 9, 8))),
        ("ceil-exclude", lambda: case(node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
                                      (2, 3, 8, 8))),
        ("ceil-include", lambda: case(node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1,
                                           count_include_pad=1), (2, 3, 8, 8))),
        ("ceil-no-pads", lambda: case(node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1,
                                           count_include_pad=1), (2, 3, 8, 8))),
    ],
    "GlobalAveragePool": [("nchw", lambda: case(node("GlobalAveragePool", ["x"]), (2, 3, 5, 4)))],
    "LRN": [("caffe", lambda: case(node("LRN", ["x"], size=5, alpha=1e-2, beta=0.75, bias=2.0), (2, 7, 3, 3))),
            ("defaults", lambda: case(node("LRN", ["x"], size=3), (2, 4, 2, 2)))],
    "Concat": [("channels", lambda: case(node("Concat", ["x", "c"], axis=1), (2, 3, 4), extra_inputs=[("c", arr(2, 2, 4))])),
               ("negative-axis", lambda: case(node("Concat", ["x", "x"], axis=-1), (2, 3, 4)))],
    "Add": [("broadcast-init", lambda: case(node("Add", ["x", "b"]), (2, 3, 4), {"b": arr(3, 1)}))],
    "Sub": [("scalar", lambda: case(node("Sub", ["s", "x"]), (2, 3), {"s": np.array(1.5, np.float32)}))],
    "Mul": [("two-inputs", lambda: case(node("Mul", ["x", "c"]), (2, 3), extra_inputs=[("c", arr(2, 3))]))],
    "Div": [("by-init", lambda: case(node("Div", ["x", "d"]), (2, 3), {"d": arr(3, positive=True)}))],
    "Neg": [("x", lambda: case(node("Neg", ["x"]), (2, 3)))],
    "Relu": [("x", lambda: case(node("Relu", ["x"]), (2, 3, 4)))],
    "Sigmoid": [("x", lambda: case(node("Sigmoid", ["x"]), (2, 3, 4)))],
    "Tanh": [("x", lambda: case(node("Tanh", ["x"]), (2, 3)))],
    "Where": [("broadcast", lambda: case([helper.make_node("Constant", [], ["c"], name="/c",
                                                          value=onnx.numpy_helper.from_array(np.array([True, False, True]))),
                                         node("Where", ["c", "x", "z"])], (2, 3), {"z": arr(1, 3)}))],
    "ArgMax": [("keepdims", lambda: case(node("ArgMax", ["x"], axis=1), (2, 4, 3), out_type=TensorProto.INT64)),
               ("no-keepdims", lambda: case(node("ArgMax", ["x"], axis=-1, keepdims=0), (2, 4, 3),
                                            out_type=TensorProto.INT64))],
    "Exp": [("x", lambda: case(node("Exp", ["x"]), (2, 3)))],
    "Log": [("x", lambda: case([helper.make_node("Exp", ["x"], ["e"], name="/e"), node("Log", ["e"])], (2, 3)))],
    "Sqrt": [("x", lambda: case([helper.make_node("Exp", ["x"], ["e"], name="/e"), node("Sqrt", ["e"])], (2, 3)))],
    "MatMul": [("weights", lambda: case(node("MatMul", ["x", "w"]), (2, 5), {"w": arr(5, 3)}))],
    "Gemm": [
        ("torch-linear", lambda: case(node("Gemm", ["x", "w", "b"], transB=1), (2, 5), {"w": arr(3, 5), "b": arr(3)})),
        ("alpha-beta-transA", lambda: case([helper.make_node("Transpose", ["x"], ["t"], name="/t"),
                                            node("Gemm", ["t", "w", "c"], transA=1, alpha=0.5, beta=2.0)],
                                           (4, 5), {"w": arr(5, 3), "c": arr(1, 3)})),
        ("shared-weight", lambda: case([helper.make_node("Gemm", ["x", "w"], ["h"], name="/a/Gemm", transB=1),
                                        helper.make_node("Gemm", ["h", "w"], ["y"], name="/b/Gemm")], (2, 4), {"w": arr(4, 4)})),
    ],
    "ReduceMean": [
        ("axes-attribute", lambda: case(node("ReduceMean", ["x"], axes=[2, 3], keepdims=1), (2, 3, 4, 5), opset=17)),
        ("axes-input", lambda: case(node("ReduceMean", ["x", "axes"], keepdims=0), (2, 3, 4, 5), {"axes": i64(-1, 1)}, opset=18)),
        ("all-axes", lambda: case(node("ReduceMean", ["x"], keepdims=0), (2, 3), opset=18)),
    ],
    "ReduceSum": [("axes-input", lambda: case(node("ReduceSum", ["x", "axes"], keepdims=1), (2, 3, 4), {"axes": i64(1)}, opset=13))],
    "Softmax": [("opset13-axis1", lambda: case(node("Softmax", ["x"], axis=1), (2, 3, 4), opset=13)),
                ("opset11-flattens", lambda: case(node("Softmax", ["x"], axis=1), (2, 3, 4), opset=11))],
    "LogSoftmax": [("default-axis", lambda: case(node("LogSoftmax", ["x"]), (2, 5)))],
    "Flatten": [("axis1", lambda: case(node("Flatten", ["x"]), (2, 3, 4, 5))),
                ("axis2", lambda: case(node("Flatten", ["x"], axis=2), (2, 3, 4, 5))),
                ("negative-axis", lambda: case(node("Flatten", ["x"], axis=-1), (2, 3, 4, 5))),
                ("minus-rank", lambda: case(node("Flatten", ["x"], axis=-3), (2, 3, 4, 5))),
                ("axis0", lambda: case(node("Flatten", ["x"], axis=0), (2, 3, 4)))],
    "Reshape": [("copy-zero-and-minus-one", lambda: case(node("Reshape", ["x", "s"]), (2, 3, 4), {"s": i64(0, -1)})),
                ("minus-one-batch", lambda: case(node("Reshape", ["x", "s"]), (2, 3, 4), {"s": i64(-1, 2, 6)})),
                ("allowzero-static", lambda: case(node("Reshape", ["x", "s"], allowzero=1), (2, 3, 4), {"s": i64(-1, 4, 3)}, opset=14))],
    "Pad": [("pads-input", lambda: case(node("Pad", ["x", "p"]), (2, 3, 4, 4), {"p": i64(0, 0, 1, 0, 0, 0, 2, 3)})),
            ("axes-input", lambda: case(node("Pad", ["x", "p", "", "a"]), (2, 3, 4), {"p": i64(1, 2, 0, 1), "a": i64(-1, 1)},
                                        opset=18))],
    "Transpose": [("perm", lambda: case(node("Transpose", ["x"], perm=[0, 2, 1]), (2, 3, 4))),
                  ("reverse", lambda: case(node("Transpose", ["x"]), (2, 3)))],
    "Identity": [("x", lambda: case(node("Identity", ["x"]), (2, 3)))],
    "Dropout": [("ratio-input", lambda: case(node("Dropout", ["x", "r"]), (2, 3), {"r": np.array(0.3, np.float32)})),
                ("training-false", lambda: case(node("Dropout", ["x", "r", "t"]), (2, 3), {"r": np.array(0.3, np.float32),
                                                                                        "t": np.array(False)}))],
    "BatchNormalization": [("inference", lambda: case(node("BatchNormalization", ["x", "g", "b", "m", "v"], epsilon=1e-3),
                                                      (2, 3, 4, 4), {"g": arr(3), "b": arr(3), "m": arr(3), "v": arr(3, positive=True)})),
                           ("rank2", lambda: case(node("BatchNormalization", ["x", "g", "b", "m", "v"]),
                                                  (2, 3), {"g": arr(3), "b": arr(3), "m": arr(3), "v": arr(3, positive=True)}))],
    "Constant": [("tensor-and-shape", lambda: case([
        helper.make_node("Constant", [], ["c"], name="/c", value=onnx.numpy_helper.from_array(arr(3))),
        helper.make_node("Constant", [], ["s"], name="/s", value_ints=[0, 3, -1]),
        helper.make_node("Add", ["x", "c"], ["h"], name="/add"), node("Reshape", ["h", "s"])], (2, 3, 2, 3)))],
}


def test_every_importable_type_has_cases():
    assert set(IMPORT_CASES) == set(table.LOADS)


PARAMS = [(t, cid) for t, cases in sorted(IMPORT_CASES.items()) for cid, _ in cases]


@pytest.mark.parametrize("op_type,case_id", PARAMS, ids=[f"{t}-{c}" for t, c in PARAMS])
def test_op_type_imports_and_matches_onnxruntime(tmp_path, kit, op_type, case_id):
    build = dict(IMPORT_CASES[op_type])[case_id]
    model, feeds = build()
    path = kit.save(model, tmp_path)
    (expected,) = kit.run(path, *feeds)
    got = mg.onnx.load(path).run(*feeds)["y"]
    assert got.shape == expected.shape
    assert kit.rel_err(got, expected) <= 1e-5


def test_even_lrn_size_follows_the_onnx_window(tmp_path):
    """onnxruntime refuses even sizes; the schema's window c - floor((size-1)/2) .. c + ceil((size-1)/2)
    is checked against a loop here."""
    model, (x,) = case(node("LRN", ["x"], size=4, alpha=0.1, beta=0.5, bias=1.0), (2, 6, 2, 2))
    got = mg.onnx.load(save(model, tmp_path)).run(x)["y"]
    expected = np.empty_like(x)
    for c in range(6):
        lo, hi = max(0, c - 1), min(5, c + 2)
        square_sum = (x[:, lo:hi + 1] ** 2).sum(axis=1)
        expected[:, c] = x[:, c] / (1.0 + 0.1 / 4 * square_sum) ** 0.5
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def save(model, tmp_path, name="m.onnx"):
    path = str(tmp_path / name)
    onnx.save(model, path)
    return path


# --- PyTorch fixtures --------------------------------------------------------------------


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_pytorch_fixture_matches_onnxruntime_and_torch(kit, exporter):
    path = os.path.join(FIXTURES, f"inception_{exporter}.onnx")
    assert os.path.getsize(path) < 1_000_000
    ref = np.load(os.path.join(FIXTURES, "inception_reference.npz"))
    model = mg.onnx.load(path)
    got = model.run(ref["x"])["logits"]
    (expected,) = kit.run(path, ref["x"])
    assert kit.rel_err(got, expected) <= 1e-5
    assert kit.rel_err(got, ref["y"]) <= 1e-5
    one = model.run(ref["x"][:1])["logits"]  # the batch is dynamic
    assert kit.rel_err(one, ref["y"][:1]) <= 1e-5
    kinds = {n.kind for n in model.graph.nodes}
    assert {"max_pool", "avg_pool", "concat", "conv1x1", "conv2d", "matmul"} <= kinds


def test_pytorch_fixture_names_become_scopes():
    model = mg.onnx.load(os.path.join(FIXTURES, "inception_torchscript.onnx"))
    names = [n.name for n in model.graph.nodes]
    assert any(n.startswith("blocks/blocks.2/branch3/branch3.1/conv/") for n in names)
    bn = model.graph.get("norm/BatchNormalization")
    assert bn.kind == "batch_normalization" and bn.inputs[1].name == "norm/running_mean"
    assert not bn.inputs[1].op.trainable and bn.inputs[3].op.trainable   # statistics frozen, gamma trainable
    fc = [v.name for v in model.weights.values() if v.name.startswith("fc/")]
    assert sorted(fc) == ["fc/bias", "fc/weight"]
    assert model.weights["fc.weight"].shape == (32, 10)   # Linear's (out, in) stored as (in, out)
    dynamo = mg.onnx.load(os.path.join(FIXTURES, "inception_dynamo.onnx"))
    assert any(n.name.startswith("blocks/blocks.2/branch3/branch3.1/bn/") for n in dynamo.graph.nodes)


def test_summary_of_an_imported_model():
    model = mg.onnx.load(os.path.join(FIXTURES, "inception_torchscript.onnx"))
    table_ = mg.summary(list(model.outputs.values()))
    assert table_["inception_a"].kind == "inception" and table_["pool1"].output_shape == (None, 16, 8, 8)
    assert table_["stem"].params == 16 * 3 * 9 + 16
    assert table_["stem"].macs == 16 * 16 * 16 * 3 * 9
    assert table_.total_params == sum(int(np.prod(v.shape)) for v in model.weights.values())
    assert table_["norm"].params == 4 * 32


# --- errors -------------------------------------------------------------------------------


def test_unsupported_ops_are_listed_before_anything_is_built(tmp_path):
    nodes = [helper.make_node("Sin", ["x"], ["a"], name="/s1"),
             helper.make_node("Sin", ["a"], ["b"], name="/s2"),
             helper.make_node("Cos", ["b"], ["c"], name="/t"),
             helper.make_node("Conv", ["c", "w"], ["y"], name="/grouped", group=2)]
    model, _ = case(nodes, (1, 4, 5, 5), {"w": arr(4, 2, 3, 3)})
    with pytest.raises(mg.onnx.UnsupportedOpError) as info:
        mg.onnx.load(save(model, tmp_path))
    err = info.value
    assert err.problems == {"Sin": ["/s1", "/s2"], "Cos": ["/t"], "Conv with group=2 (grouped convolutions)": ["/grouped"]}
    text = str(err)
    assert "4 nodes of 3 unsupported op types" in text and "Sin x2: '/s1', '/s2'" in text and "m.onnx" in text


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all \x00\xff" * 10, "truncated"])
def test_malformed_files_are_clear_errors(tmp_path, content):
    path = tmp_path / "bad.onnx"
    if content == "truncated":
        good = open(os.path.join(FIXTURES, "inception_torchscript.onnx"), "rb").read()
        content = good[: len(good) // 2]
    path.write_bytes(content)
    with pytest.raises(mg.onnx.OnnxFileError, match="bad.onnx"):
        mg.onnx.load(path)


def test_missing_file_and_undefined_tensor(tmp_path):
    with pytest.raises(mg.onnx.OnnxFileError, match="no ONNX file"):
        mg.onnx.load(tmp_path / "nothing.onnx")
    graph = helper.make_graph([helper.make_node("Relu", ["ghost"], ["y"], name="/r")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "ghost.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(mg.onnx.OnnxFileError, match="ghost"):
        mg.onnx.load(path)


def test_a_shape_error_names_the_onnx_node(tmp_path):
    model, _ = case(node("MatMul", ["x", "w"], name="/head/MatMul"), (2, 3, 4), {"w": arr(4, 5)})
    with pytest.raises(mg.ShapeError, match=r"m.onnx: MatMul node '/head/MatMul': .*rank 2"):
        mg.onnx.load(save(model, tmp_path))


def test_input_without_a_shape_is_a_clear_error(tmp_path):
    model, _ = case(node("Relu", ["x"]), (2, 3))
    model.graph.input[0].type.tensor_type.ClearField("shape")
    with pytest.raises(mg.onnx.OnnxFileError, match="input 'x' has no shape"):
        mg.onnx.load(save(model, tmp_path))


def unchecked(nodes, x_shape, inits=(), opset=17, x_type=TensorProto.FLOAT):
    """A ModelProto as a careless writer makes it: neither ONNX's shape inference nor its full
    check has run (onnx.checker.check_model alone passes: mg.onnx.load runs it)."""
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", x_type, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["o"])],
                              initializer=[onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("where", ["input", "output", "value"])
def test_a_negative_dimension_reads_as_unknown(tmp_path, where):
    """ONNX sizes are >= 0 or names, but writers put -1 for "dynamic" (`minigraph export --batch -1`
    did): such a file loads with that dimension unknown, as a named one would be."""
    model = unchecked([node("Relu", ["x"])], [-1, 3] if where == "input" else [2, 3])
    if where == "output":
        model.graph.output[0].type.tensor_type.shape.dim[0].dim_value = -4
    elif where == "value":
        model.graph.value_info.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, -3]))
    loaded = mg.onnx.load(save(model, tmp_path))
    assert loaded.inputs["x"].shape == ((None, 3) if where == "input" else (2, 3))
    x = np.linspace(-1, 1, 6).reshape(2, 3).astype(np.float32)
    np.testing.assert_array_equal(loaded.run(x)["y"], np.maximum(x, 0))


def typeless(model):
    """`model` with its initializers and Constant values of element type 999, which ONNX does not define."""
    for tensor in model.graph.initializer:
        tensor.data_type = 999
    for n in model.graph.node:
        for a in n.attribute:
            if a.name == "value":
                a.t.data_type = 999
    return model


def conv_w():
    return {"w": arr(4, 3, 3, 3)}


MALFORMED_NODES = {  # id -> (model, what the error says); each reached a raw ValueError, ZeroDivisionError,
    # IndexError or KeyError, or was silently misread (an out-of-range axis wrapped around)
    "conv-three-pads": (lambda: unchecked([node("Conv", ["x", "w"], pads=[1, 0, 0])], [1, 3, 5, 5], conv_w()),
                        r"Conv node '/block/Conv': pads must hold 4 values .* got \[1, 0, 0\]"),
    "conv-unknown-auto-pad": (lambda: unchecked([node("Conv", ["x", "w"], auto_pad="SAME")], [1, 3, 5, 5], conv_w()),
                              "auto_pad must be NOTSET, VALID, SAME_UPPER or SAME_LOWER, got 'SAME'"),
    "maxpool-zero-stride-ceil": (lambda: unchecked([node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[0, 1], ceil_mode=1)],
                                                   [1, 3, 5, 5]),
                                 r"MaxPool node '/block/MaxPool': strides must be 2 integers >= 1 .* got \[0, 1\]"),
    "pad-too-few-pads": (lambda: unchecked([node("Pad", ["x", "p"])], [2, 3], {"p": i64(1)}),
                         r"Pad node '/block/Pad': pads must hold 2 values .* each of the 2 padded axes, got 1"),
    "pad-axes-of-a-scalar": (lambda: unchecked([node("Pad", ["x", "p", "", "a"])], [], {"p": i64(1, 1), "a": i64(0)}, opset=18),
                             r"axes \[0\] are out of range for an input of rank 0"),
    "pad-axis-out-of-range": (lambda: unchecked([node("Pad", ["x", "p", "", "a"])], [2, 3], {"p": i64(1, 1), "a": i64(2)}, opset=18),
                              r"axes \[2\] are out of range for an input of rank 2"),
    "flatten-axis-out-of-range": (lambda: unchecked([node("Flatten", ["x"], axis=4)], [2, 3, 4]),
                                  "Flatten node '/block/Flatten': axis 4 is out of range for an input of rank 3"),
    "softmax11-axis-out-of-range": (lambda: unchecked([node("Softmax", ["x"], axis=2)], [2, 3], opset=11),
                                    "axis 2 is out of range for an input of rank 2"),
    "initializer-of-no-element-type": (lambda: typeless(unchecked([node("Add", ["x", "w"])], [2, 3], {"w": arr(3)})),
                                       "tensor 'w' has the element type 999, which ONNX does not define"),
    "input-of-no-element-type": (lambda: unchecked([node("Relu", ["x"])], [2, 3], x_type=999),
                                 "input 'x' has the element type 999, which ONNX does not define"),
    "constant-of-no-element-type": (lambda: typeless(unchecked([helper.make_node("Constant", [], ["c"], name="/c",
                                                                                 value=onnx.numpy_helper.from_array(arr(3))),
                                                                node("Add", ["x", "c"])], [2, 3])),
                                    "Constant node '/c': its tensor has the element type 999"),
    "reshape-float-shape": (lambda: unchecked([node("Reshape", ["x", "s"])], [2, 6], {"s": np.array([2.5, 4.8])}),
                            r"Reshape node '/block/Reshape': tensor 's' must hold integers \(int64\), got float64"),
    "pad-float-pads": (lambda: unchecked([node("Pad", ["x", "p"])], [2, 3], {"p": np.array([0.5, 1.0, 0.0, 1.0])}),
                       r"tensor 'p' must hold integers \(int64\), got float64"),
    "reducesum-float-axes": (lambda: unchecked([node("ReduceSum", ["x", "a"])], [2, 3], {"a": np.array([1.7])}),
                             r"tensor 'a' must hold integers \(int64\), got float64"),
}


@pytest.mark.parametrize("case_id", sorted(MALFORMED_NODES))
def test_malformed_nodes_and_tensors_are_file_errors_naming_them(tmp_path, case_id):
    build, message = MALFORMED_NODES[case_id]
    model = build()
    with pytest.raises(mg.onnx.OnnxFileError, match="m.onnx: .*" + message):
        mg.onnx.load(save(model, tmp_path))


# --- gradients on imported graphs ---------------------------------------------------------


def test_gradients_of_an_imported_model_match_central_differences(tmp_path):
    """conv -> BatchNormalization -> relu -> ceil-mode max pool -> global pool -> Gemm, in float64."""
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["n"], name="/bn/BatchNormalization"),
             helper.make_node("Relu", ["n"], ["r"], name="/Relu"),
             helper.make_node("MaxPool", ["r"], ["p"], name="/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
             helper.make_node("GlobalAveragePool", ["p"], ["gp"], name="/gap"),
             helper.make_node("Flatten", ["gp"], ["f"], name="/flatten"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="/fc/Gemm", transB=1)]
    d = np.float64
    inits = {"w": arr(4, 2, 3, 3, dtype=d), "b": arr(4, dtype=d), "g": arr(4, dtype=d), "be": arr(4, dtype=d),
             "m": arr(4, dtype=d), "v": arr(4, positive=True, dtype=d), "fw": arr(3, 4, dtype=d), "fb": arr(3, dtype=d)}
    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.DOUBLE, s)  # noqa: E731
    graph = helper.make_graph(nodes, "g", [vi("x", ["N", 2, 5, 5])], [vi("y", ["N", 3])],
                              initializer=[onnx.numpy_helper.from_array(v, k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    model = mg.onnx.load(save(proto, tmp_path))
    x = model.inputs["x"]
    with model.graph:
        loss = ops.sum(ops.square(model.outputs["y"]))
    weights = list(model.weights.values())
    grads = mg.gradients(loss, weights + [x])
    sess = model.session
    data = arr(2, 2, 5, 5, dtype=d)
    values = sess.run(grads, {x: data})
    direction_rng = np.random.default_rng(5)
    for var, g in zip(weights, values):
        base = sess.get_value(var)
        v = direction_rng.standard_normal(base.shape)
        eps = 1e-6
        sess.set_value(var, base + eps * v)
        up = sess.run(loss, {x: data})
        sess.set_value(var, base - eps * v)
        down = sess.run(loss, {x: data})
        sess.set_value(var, base)
        numeric = (up - down) / (2 * eps)
        assert abs(numeric - float((g * v).sum())) <= 1e-6 * max(1.0, abs(numeric)), var.name


def test_an_imported_model_can_be_fine_tuned_and_exported_again(tmp_path, kit):
    model = mg.onnx.load(os.path.join(FIXTURES, "inception_torchscript.onnx"))
    ref = np.load(os.path.join(FIXTURES, "inception_reference.npz"))
    x, labels = ref["x"], np.array([3, 7])
    with model.graph:
        y = mg.placeholder((None,), dtype="int64", name="labels")
        loss = ops.softmax_cross_entropy(model.outputs["logits"], y)
        step = mg.optim.SGD(0.05, momentum=0.9).minimize(loss)
    sess = model.session
    feed = {model.inputs["x"]: x, y: labels}
    before = float(sess.run(loss, feed))
    for _ in range(10):
        sess.run(step, feed)
    after = float(sess.run(loss, feed))
    assert after < before * 0.6
    path = mg.onnx.export(model.outputs["logits"], tmp_path / "tuned.onnx", session=sess)
    (exported,) = kit.run(str(path), x)
    assert kit.rel_err(exported, sess.run(model.outputs["logits"], {model.inputs["x"]: x})) <= 1e-5
    assert kit.rel_err(exported, ref["y"]) > 1e-3  # the weights did change
