"""minigraph -> ONNX -> minigraph: weights bit for bit, outputs within 1e-6, names kept."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import models

pytest.importorskip("onnx")


@pytest.mark.parametrize("network", ["googlenet", "mini_inception"])
def test_round_trip(tmp_path, network):
    with mg.Graph() as g:
        if network == "googlenet":
            net = models.googlenet(rng=3)
            x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
        else:
            net = models.mini_inception(rng=3)
            x = np.random.default_rng(0).random((5, 1, 8, 8)).astype(np.float32)
    sess = mg.Session(g)
    for v in sess.variables[::7]:  # values that are not the initial ones
        sess.set_value(v, sess.get_value(v) + np.float32(0.01))
    path = mg.onnx.export({"logits": net.logits, "probs": net.probs}, tmp_path / "m.onnx", session=sess)
    model = mg.onnx.load(path)
    assert sorted(v.name for v in model.weights.values()) == sorted(v.name for v in sess.variables)
    for var in sess.variables:
        back = model.weights[var.name]
        got, want = model.session.get_value(back), sess.get_value(var)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes(), var.name
    expected = sess.run([net.logits, net.probs], {net.x: x})
    out = model.run(x)
    for name, want in zip(["logits", "probs"], expected):
        np.testing.assert_allclose(out[name], want, rtol=1e-6, atol=1e-6 * np.abs(want).max())
    layers = tuple(mg.ops.op_class(k) for k in ("conv2d", "conv1x1", "max_pool", "concat", "matmul", "softmax"))
    kept = {n.name for n in g.nodes if isinstance(n.op, layers)}
    assert kept and kept <= {n.name for n in model.graph.nodes if isinstance(n.op, layers)}
    count = lambda graph, cls: sum(isinstance(n.op, cls) for n in graph.nodes)  # noqa: E731
    for cls in layers:
        assert count(model.graph, cls) == count(g, cls), cls.__name__
