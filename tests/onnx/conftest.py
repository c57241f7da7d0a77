"""Helpers of the ONNX tests: onnxruntime as the oracle, small ONNX models built by hand."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

FLOAT = TensorProto.FLOAT


def run_onnxruntime(path_or_model, *arrays):
    """The outputs onnxruntime computes for the model's inputs fed with `arrays` in order."""
    source = path_or_model if isinstance(path_or_model, str) else path_or_model.SerializeToString()
    sess = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    feed = {i.name: a for i, a in zip(sess.get_inputs(), arrays)}
    return sess.run(None, feed)


def make_model(nodes, inputs, outputs, initializers=(), opset=17, name="test"):
    """A checked ModelProto. inputs/outputs: [(name, shape)] float32 (None: a named batch dim)."""
    def vi(n, shape, dtype=FLOAT):
        return helper.make_tensor_value_info(n, dtype, [("N" if d is None else d) for d in shape] if shape is not None else None)
    graph = helper.make_graph(nodes, name, [vi(*i) for i in inputs], [vi(n, s) for n, s in outputs],
                              initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tests")
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    onnx.checker.check_model(model, full_check=True)
    return model


def save(model, tmp_path, name="m.onnx"):
    path = str(tmp_path / name)
    onnx.save(model, path)
    return path


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


class Kit:
    """The helpers above, handed to tests as the `kit` fixture (test modules do not import conftest)."""

    run = staticmethod(run_onnxruntime)
    model = staticmethod(make_model)
    save = staticmethod(save)
    rel_err = staticmethod(rel_err)
    helper = helper
    FLOAT = FLOAT


@pytest.fixture(scope="session")
def kit():
    return Kit()
