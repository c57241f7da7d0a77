"""minigraph.targets: network names and ONNX files as what the commands work on."""
import os

import numpy as np
import pytest

import minigraph as mg
from minigraph.targets import resolve


def test_builtin_networks():
    t = resolve("googlenet", aux=True)
    assert t.name == "googlenet_aux" and list(t.outputs)[:2] == ["logits", "probs"] and "aux2_probs" in t.outputs
    m = resolve("mini_inception")
    assert m.outputs["logits"].shape == (None, 10) and m.session.graph is m.graph
    assert resolve("inception").outputs["inception_3a"].shape == (None, 256, 28, 28)
    with pytest.raises(ValueError, match="unknown network 'resnet'"):
        resolve("resnet")


def test_checkpoint_restores_weights(tmp_path):
    t = resolve("mini_inception")
    w = t.graph.get("fc/weights")
    t.session.set_value(w, np.zeros(w.shape, np.float32))
    mg.save(t.session, tmp_path / "c.npz")
    again = resolve("mini_inception", checkpoint=str(tmp_path / "c.npz"))
    assert not again.session.get_value(again.graph.get("fc/weights")).any()
    with pytest.raises(mg.CheckpointError):
        resolve("googlenet", checkpoint=str(tmp_path / "c.npz"))


def test_onnx_file():
    pytest.importorskip("onnx")
    path = os.path.join(os.path.dirname(__file__), "fixtures", "onnx", "inception_dynamo.onnx")
    t = resolve(path)
    assert t.name == "inception_dynamo" and list(t.outputs) == ["logits"]
    with pytest.raises(ValueError, match="holds its own weights"):
        resolve(path, checkpoint="x.npz")
