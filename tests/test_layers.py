"""mg.layers: variables in their own scope, seeded initial values, forward against plain loops."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import ops


def conv_loop(x, w, b, stride, pads):
    """Plain-loop NCHW cross-correlation with explicit ((top, bottom), (left, right)) zero padding."""
    (t, bo), (le, r) = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (le, r)))
    n, _, h, wd = xp.shape
    f, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            for k in range(f):
                out[:, k, i, j] = (patch * w[k]).sum(axis=(1, 2, 3)) + b[k]
    return out


def test_conv2d_layer_scope_variables_and_forward():
    rng = np.random.default_rng(0)
    with mg.Graph() as g:
        x = mg.placeholder((None, 3, 7, 7), "float64", name="x")
        y = mg.layers.conv2d(x, 5, 3, stride=2, name="conv1", rng=1)
    assert y.shape == (None, 5, 4, 4)                       # SAME: ceil(7 / 2)
    w, b = g.get("conv1/weights"), g.get("conv1/bias")
    assert w.shape == (5, 3, 3, 3) and b.shape == (5,)
    assert {n.scope for n in g.nodes if n is not x} == {"conv1"}
    xv = rng.normal(size=(2, 3, 7, 7))
    sess = mg.Session(g)
    sess.set_value(b, rng.normal(size=5))
    # TensorFlow SAME for 7 -> 4 with k=3, s=2: total pad 2, one on each side.
    want = np.maximum(conv_loop(xv, sess.get_value(w), sess.get_value(b), 2, ((1, 1), (1, 1))), 0)
    np.testing.assert_allclose(sess.run(y, {x: xv}), want, rtol=1e-6, atol=1e-6)


def test_conv2d_layer_weights_follow_he_init_and_are_seeded():
    mg.init.seed(11)
    with mg.Graph() as g1:
        mg.layers.conv2d(mg.placeholder((None, 64, 8, 8)), 128, 3, name="c")
    mg.init.seed(11)
    with mg.Graph() as g2:
        mg.layers.conv2d(mg.placeholder((None, 64, 8, 8)), 128, 3, name="c")
    w1, w2 = g1.get("c/weights").op.initial_value, g2.get("c/weights").op.initial_value
    np.testing.assert_array_equal(w1, w2)
    assert abs(w1.std() / np.sqrt(2 / (64 * 9)) - 1) < 0.03        # He: variance 2 / fan_in
    assert not g1.get("c/bias").op.initial_value.any()


def test_conv1x1_layer_builds_a_conv1x1_node():
    rng = np.random.default_rng(1)
    with mg.Graph() as g:
        x = mg.placeholder((None, 6, 4, 5), "float64", name="x")
        y = mg.layers.conv1x1(x, 3, activation=None, name="reduce")
    conv = [n for n in g.nodes if n.kind == "conv1x1"]
    assert len(conv) == 1 and conv[0].scope == "reduce" and y is conv[0]
    sess = mg.Session(g)
    xv = rng.normal(size=(2, 6, 4, 5))
    w = sess.get_value(g.get("reduce/weights")).reshape(3, 6)
    want = np.einsum("fc,nchw->nfhw", w, xv)
    np.testing.assert_allclose(sess.run(y, {x: xv}), want, rtol=1e-10)


def test_dense_flattens_and_adds_bias():
    rng = np.random.default_rng(2)
    with mg.Graph() as g:
        x = mg.placeholder((None, 2, 3, 3), "float64", name="x")
        y = mg.layers.dense(x, 4, name="fc")
        z = mg.layers.dense(y, 2, activation="relu", name="fc")
    assert y.shape == (None, 4) and z.shape == (None, 2)
    assert g.get("fc/weights").shape == (18, 4) and g.get("fc_1/weights").shape == (4, 2)
    sess = mg.Session(g)
    sess.set_value(g.get("fc/bias"), [1.0, -1.0, 0.5, 0.0])
    xv = rng.normal(size=(3, 2, 3, 3))
    want = xv.reshape(3, 18) @ sess.get_value(g.get("fc/weights")) + [1.0, -1.0, 0.5, 0.0]
    np.testing.assert_allclose(sess.run(y, {x: xv}), want, rtol=1e-10)
    want_z = np.maximum(want @ sess.get_value(g.get("fc_1/weights")), 0)
    np.testing.assert_allclose(sess.run(z, {x: xv}), want_z, rtol=1e-10)


def test_custom_activation_and_errors():
    with mg.Graph():
        x = mg.placeholder((None, 4))
        y = mg.layers.dense(x, 3, activation=ops.exp)
        assert y.kind == "exp"
        with pytest.raises(ValueError, match="activation"):
            mg.layers.dense(x, 3, activation="gelu")
        with pytest.raises(mg.ShapeError, match="known dimension 1"):
            mg.layers.conv2d(mg.placeholder((None, None, 8, 8)), 4, 3)
        with pytest.raises(ValueError, match="size"):
            mg.layers.conv2d(mg.placeholder((None, 3, 8, 8)), 4, 0)


def test_parameter_sharing_example_of_the_seed():
    """32x32x3 input, 20 filters 8x8x3, stride 2, padding 1 -> 14x14x20, (8*8*3 + 1) * 20 = 3860 parameters."""
    with mg.Graph():
        x = mg.placeholder((None, 3, 32, 32))
        y = mg.layers.conv2d(x, 20, 8, stride=2, padding=1, name="conv")
    assert y.shape == (None, 20, 14, 14)
    assert mg.summary(y)["conv"].params == (8 * 8 * 3 + 1) * 20 == 3860


def test_batch_norm_layer_variables_training_and_inference():
    rng = np.random.default_rng(3)
    xv = rng.normal(2.0, 3.0, size=(6, 4, 3, 5))
    with mg.Graph() as g:
        x = mg.placeholder((None, 4, 3, 5), "float64", name="x")
        training = mg.placeholder_with_default(False, name="training")
        y = mg.layers.batch_norm(x, training, momentum=0.5, name="bn")
    names = {n.name: n for n in g.nodes if n.kind == "variable"}
    assert sorted(names) == ["bn/beta", "bn/gamma", "bn/moving_mean", "bn/moving_variance"]
    assert [names[f"bn/{v}"].op.trainable for v in ("gamma", "beta", "moving_mean", "moving_variance")] == \
        [True, True, False, False]
    sess = mg.Session(g)
    out = sess.run(y, {x: xv, training: True})
    mean, var = xv.mean(axis=(0, 2, 3)), xv.var(axis=(0, 2, 3))
    want = (xv - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)   # gamma 1, beta 0
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(sess.get_value(names["bn/moving_mean"]), 0.5 * mean, rtol=1e-12)
    n = 6 * 3 * 5
    np.testing.assert_allclose(sess.get_value(names["bn/moving_variance"]), 0.5 + 0.5 * var * n / (n - 1),
                               rtol=1e-12)
    inference = sess.run(y, {x: xv})
    want = (xv - 0.5 * mean[:, None, None]) / np.sqrt(0.5 + 0.5 * var[:, None, None] * n / (n - 1) + 1e-5)
    np.testing.assert_allclose(inference, want, rtol=1e-10, atol=1e-10)


def test_conv_layers_with_batch_norm_drop_the_bias_and_need_a_training_switch():
    with mg.Graph() as g:
        x = mg.placeholder((None, 3, 6, 6), name="x")
        y = mg.layers.conv2d(x, 4, 3, name="c", batch_norm=True, training=True)
        z = mg.layers.conv1x1(y, 2, name="p", batch_norm=True, training=False)
        with pytest.raises(ValueError, match="batch_norm=True needs training="):
            mg.layers.conv2d(x, 4, 3, batch_norm=True)
        with pytest.raises(ValueError, match="training= is only used with batch_norm=True"):
            mg.layers.conv1x1(x, 4, training=True)
    assert g.find("c/bias") is None and g.find("c/gamma") is not None
    assert [n.kind for n in g.ancestors([y]) if n.scope == "c" and n.kind not in ("variable", "constant")] == \
        ["conv2d", "batch_norm", "relu"]
    assert z.inputs[0].kind == "batch_normalization"   # training=False: a pure inference node
