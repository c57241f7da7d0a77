"""Helpers of the ONNX tests: onnxruntime as the oracle (the `kit` fixture)."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def run_onnxruntime(path_or_model, *arrays):
    """The outputs onnxruntime computes for the model's inputs fed with `arrays` in order."""
    source = path_or_model if isinstance(path_or_model, str) else path_or_model.SerializeToString()
    sess = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    feed = {i.name: a for i, a in zip(sess.get_inputs(), arrays)}
    return sess.run(None, feed)


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
    save = staticmethod(save)
    rel_err = staticmethod(rel_err)


@pytest.fixture(scope="session")
def kit():
    return Kit()
