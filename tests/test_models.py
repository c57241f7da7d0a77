"""mg.models: the Inception module against a NumPy reference, GoogLeNet's structure, mini_inception."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import models, ops

def conv_same(x, w, b):
    """Stride-1 SAME convolution (odd kernels) with bias, as a loop over kernel taps."""
    f, c, k, _ = w.shape
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    h, wd = x.shape[2:]
    out = np.zeros((x.shape[0], f, h, wd))
    for i in range(k):
        for j in range(k):
            out += np.einsum("fc,nchw->nfhw", w[:, :, i, j], xp[:, :, i:i + h, j:j + wd])
    return out + b.reshape(1, -1, 1, 1)

def max_pool_3x3_same(x):
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    h, w = x.shape[2:]
    return np.max([xp[:, :, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=0)

def test_inception_module_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    with mg.Graph() as g:
        x = mg.placeholder((None, 6, 5, 5), "float64", name="x")
        y = models.inception_module(x, 2, 3, 4, 2, 3, 5, name="inc", rng=rng)
    assert y.shape == (None, 2 + 4 + 3 + 5, 5, 5) and y.kind == "concat"
    sess = mg.Session(g)
    for v in sess.variables:   # non-zero biases, so a missing bias would show
        if v.name.endswith("bias"):
            sess.set_value(v, rng.normal(size=v.shape))
    p = {v.name[len("inc/"):]: sess.get_value(v) for v in sess.variables}
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    layer = lambda h, s: relu(conv_same(h, p[s + "/weights"], p[s + "/bias"]))  # noqa: E731
    xv = rng.normal(size=(2, 6, 5, 5))
    want = np.concatenate([
        layer(xv, "branch_1x1/conv"),
        layer(layer(xv, "branch_3x3/reduce"), "branch_3x3/conv"),
        layer(layer(xv, "branch_5x5/reduce"), "branch_5x5/conv"),
        layer(max_pool_3x3_same(xv), "branch_pool/proj"),
    ], axis=1)
    np.testing.assert_allclose(sess.run(y, {x: xv}), want, rtol=1e-10, atol=1e-12)
    kernels = {v.name: v.shape for v in sess.variables if v.name.endswith("weights")}
    assert kernels == {"inc/branch_1x1/conv/weights": (2, 6, 1, 1), "inc/branch_3x3/reduce/weights": (3, 6, 1, 1),
                       "inc/branch_3x3/conv/weights": (4, 3, 3, 3), "inc/branch_5x5/reduce/weights": (2, 6, 1, 1),
                       "inc/branch_5x5/conv/weights": (3, 2, 5, 5), "inc/branch_pool/proj/weights": (5, 6, 1, 1)}

def test_inception_branches_are_sub_scopes_in_concat_order():
    with mg.Graph():
        x = mg.placeholder((None, 192, 28, 28))
        y = models.inception_module(x, 64, 96, 128, 16, 32, 32, name="inception_3a")
    assert [i.scope for i in y.inputs] == ["inception_3a/branch_1x1/conv", "inception_3a/branch_3x3/conv",
                                           "inception_3a/branch_5x5/conv", "inception_3a/branch_pool/proj"]
    assert [i.shape[1] for i in y.inputs] == [64, 128, 32, 32]
    assert [i.inputs[0].kind for i in y.inputs] == ["conv1x1", "conv2d", "conv2d", "conv1x1"]

def test_googlenet_structure():
    with mg.Graph() as g:
        net = models.googlenet(num_classes=10)
    assert net.x.shape == (None, 3, 224, 224) and net.logits.shape == (None, 10)
    assert net.probs.kind == "softmax" and net.outputs == [net.probs]
    assert net.aux_logits == () and net.training.shape == ()
    tops = list(dict.fromkeys(n.name.split("/")[0] for n in g.nodes if "/" in n.name))
    assert tops == ["conv1", "pool1", "norm1", "conv2", "norm2", "pool2", "inception_3a", "inception_3b",
                    "pool3", "inception_4a", "inception_4b", "inception_4c", "inception_4d", "inception_4e",
                    "pool4", "inception_5a", "inception_5b", "avgpool", "dropout", "fc", "softmax"]
    convs = [n for n in g.nodes if n.kind == "conv2d"]
    assert {n.inputs[1].shape[2:] for n in convs} == {(7, 7), (3, 3), (5, 5)}   # real 5x5 kernels
    assert g.get("conv1/conv2d").op.stride == (2, 2)

def test_googlenet_aux_classifiers():
    with mg.Graph() as g:
        net = models.googlenet(aux=True)
    assert len(net.aux_logits) == 2 and len(net.outputs) == 3
    for logits, probs, source in zip(net.aux_logits, net.aux_probs, ("inception_4a", "inception_4d")):
        assert logits.shape == (None, 1000) and probs.inputs[0] is logits
        scope = logits.name.split("/")[0]
        pool = g.get(f"{scope}/avg_pool")
        assert pool.inputs[0] is g.get(f"{source}/concat") and pool.shape[2:] == (4, 4)
        assert g.get(f"{scope}/dropout_mask").op.rate == 0.7
    assert g.get("dropout/dropout_mask").op.rate == 0.4

def test_mini_inception_train_and_eval_from_one_graph():
    rng = np.random.default_rng(0)
    with mg.Graph() as g:
        net = models.mini_inception(rng=1)
        step = mg.optim.Adam(0.01).minimize(net.loss)
    assert net.x.shape == (None, 1, 8, 8) and net.logits.shape == (None, 10) and net.loss.shape == ()
    xv = rng.normal(size=(16, 1, 8, 8)).astype("float32")
    yv = rng.integers(0, 10, size=16)
    sess = mg.Session(g, seed=0)
    eval_a = sess.run(net.probs, {net.x: xv})
    np.testing.assert_allclose(eval_a.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(eval_a, sess.run(net.probs, {net.x: xv}))      # no dropout in eval
    train = {net.x: xv, net.training: True}
    assert not np.array_equal(sess.run(net.probs, train), sess.run(net.probs, train))  # dropout on
    first = sess.run(net.loss, {net.x: xv, net.y: yv})
    for _ in range(15):
        sess.run(step, {net.x: xv, net.y: yv, net.training: True})
    assert sess.run(net.loss, {net.x: xv, net.y: yv}) < 0.5 * first

@pytest.mark.parametrize("size,channels,pools,side", [(8, 1, 0, 8), (16, 3, 0, 16), (28, 1, 1, 14),
                                                      (32, 3, 1, 16), (64, 3, 2, 16), (100, 3, 3, 13)])
def test_mini_inception_for_other_image_sizes(size, channels, pools, side):
    """Above 16 pixels the stem halves the side (2x2/2 SAME pools, ceil) until it is at most 16."""
    with mg.Graph():
        net = models.mini_inception(num_classes=7, image_size=size, channels=channels, rng=0)
        rows = mg.summary(net.probs)
    names = [r.name for r in rows]
    assert names.count("stem") == 1 and [n for n in names if n.startswith("stem_pool")] == \
        [f"stem_pool{i}" for i in range(1, pools + 1)]
    assert rows["x"].output_shape == (None, channels, size, size)
    assert rows["inception_a"].output_shape == (None, 40, side, side)
    half = -(-side // 2)
    assert rows["inception_b"].output_shape == (None, 88, half, half)
    assert rows["fc"].params == 88 * half * half * 7 + 7 and net.logits.shape == (None, 7)

def test_seeded_models_are_reproducible():
    def weights(seed):
        with mg.Graph() as g:
            models.mini_inception(rng=seed)
        return [n.op.initial_value for n in g.nodes if n.kind == "variable"]
    for a, b in zip(weights(5), weights(5)):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(weights(5), weights(6)))

def test_inception_module_shape_errors_name_the_node():
    with mg.Graph():
        with pytest.raises(mg.ShapeError, match="known dimension 1"):
            models.inception_module(mg.placeholder((None, None, 8, 8)), 1, 1, 1, 1, 1, 1, name="inc")

def test_googlenet_with_batch_norm_after_every_conv():
    """BN-Inception's baseline (Ioffe & Szegedy 2015): conv (no bias) -> batch norm -> ReLU for
    every conv, the aux classifiers' too; no LRN."""
    with mg.Graph() as g:
        net = models.googlenet(num_classes=10, aux=True, batch_norm=True, rng=0)
    convs = [n for n in g.nodes if n.kind in ("conv2d", "conv1x1")]
    assert len(convs) == 3 + 9 * 6 + 2
    for conv in convs:
        (bn,) = g.consumers(conv)
        assert bn.kind == "batch_norm" and bn.inputs[5] is net.training and len(conv.inputs) == 2  # no bias
        (relu,) = g.consumers(bn)
        assert relu.kind == "relu"
        assert {v.name.rsplit("/", 1)[1] for v in bn.inputs[1:5]} == {"gamma", "beta", "moving_mean",
                                                                       "moving_variance"}
        assert [v.op.trainable for v in bn.inputs[1:5]] == [True, True, False, False]
    assert not [n for n in g.nodes if n.kind == "local_response_norm"]
    assert not any(v.name.startswith("moving") for v in mg.optim.trainable_variables(net.logits))
    assert net.logits.shape == (None, 10) and len(net.aux_logits) == 2

def test_batch_norm_googlenet_trains_its_moving_averages_and_evaluates_with_them():
    rng = np.random.default_rng(0)
    with mg.Graph() as g:
        net = models.googlenet(num_classes=3, batch_norm=True, rng=0)
        y = mg.placeholder((None,), dtype="int64", name="y")
        loss = ops.softmax_cross_entropy(net.logits, y)
        step = mg.optim.SGD(0.01).minimize(loss)
    xv = rng.standard_normal((2, 3, 224, 224)).astype("float32")
    sess = mg.Session(g)
    mm = g.get("inception_5b/branch_1x1/conv/moving_mean")
    eval_before = sess.run(net.probs, {net.x: xv})
    np.testing.assert_array_equal(sess.get_value(mm), 0)               # evaluation writes nothing
    sess.run(step, {net.x: xv, y: [0, 2], net.training: True})
    moved = sess.get_value(mm)
    assert np.all(np.isfinite(moved)) and np.any(moved != 0)
    eval_after = sess.run(net.probs, {net.x: xv})
    np.testing.assert_allclose(eval_after.sum(axis=1), 1, rtol=1e-5)
    assert not np.allclose(eval_after, eval_before)
    np.testing.assert_array_equal(sess.get_value(mm), moved)
