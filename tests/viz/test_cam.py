"""mg.viz.grad_cam against a hand-written NumPy backward of the tiny net, and upsample_bilinear
against Pillow's bilinear resize and a worked example."""
import numpy as np
import pytest

import minigraph as mg


def reference_cam(acts, grads):
    weights = grads.mean(axis=(2, 3))
    return weights, np.maximum((weights[:, :, None, None] * acts).sum(axis=1), 0)


def test_grad_cam_at_the_relu_layer(tiny, images):
    """act (N, 3, 5, 5): the gradient reaches it through the max pool's winners."""
    classes = np.array([1, 0, 3])
    got = mg.viz.grad_cam(tiny.sess, tiny.logits, tiny.act, {tiny.x: images}, classes)
    weights, cam = reference_cam(tiny.forward(images)["act"], tiny.grad_act(images, classes))
    np.testing.assert_allclose(got.weights, weights, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.cam, cam, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.heatmap, cam, rtol=1e-10, atol=1e-12)  # already the image's 5 x 5
    assert got.cam.max() > 0 and (got.cam == 0).any()                   # the relu bites, not vacuous


def test_grad_cam_at_the_pooled_layer_is_upsampled_to_the_image(tiny, images):
    """pooled (N, 3, 4, 4) feeds the dense layer: its gradient is the class's weight column."""
    pytest.importorskip("PIL")
    from PIL import Image
    got = mg.viz.grad_cam(tiny.sess, tiny.logits, tiny.pooled, {tiny.x: images}, 2)
    weights, cam = reference_cam(tiny.forward(images)["pooled"], tiny.grad_pooled(images, 2))
    np.testing.assert_allclose(got.weights, np.broadcast_to(tiny.fc_w[:, 2].reshape(3, 16).mean(axis=1), (3, 3)),
                               rtol=1e-12)
    np.testing.assert_allclose(got.cam, cam, rtol=1e-10, atol=1e-12)
    assert got.heatmap.shape == (3, 5, 5)
    for n in range(3):
        pil = np.asarray(Image.fromarray(cam[n].astype(np.float32), mode="F").resize((5, 5), Image.BILINEAR))
        np.testing.assert_allclose(got.heatmap[n], pil, rtol=1e-5, atol=1e-6)


def test_upsample_bilinear():
    pytest.importorskip("PIL")
    from PIL import Image
    # cell centres: output i samples (i + 0.5) * 2 / 4 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped 0, .25, .75, 1
    np.testing.assert_allclose(mg.viz.upsample_bilinear(np.array([[0.0, 1.0]]), (1, 4)), [[0, 0.25, 0.75, 1]])
    maps = np.random.default_rng(2).random((2, 3, 4, 3)).astype(np.float32)
    for size in [(8, 6), (5, 7), (4, 3), (9, 4)]:
        got = mg.viz.upsample_bilinear(maps, size)
        assert got.shape == (2, 3) + size
        for idx in np.ndindex(2, 3):
            pil = np.asarray(Image.fromarray(maps[idx], mode="F").resize(size[::-1], Image.BILINEAR))
            np.testing.assert_allclose(got[idx], pil, rtol=1e-5, atol=1e-6)


def test_picture_and_errors(tiny, images, tmp_path, size_of):
    mg.viz.grad_cam(tiny.sess, tiny.logits, tiny.pooled, {tiny.x: images}, 0, tmp_path / "cam.png", index=2)
    assert size_of(tmp_path / "cam.png") == (1200, 420)
    with pytest.raises(mg.ShapeError, match="layer 'fc/add' must be a \\(N, C, H, W\\) feature map"):
        mg.viz.grad_cam(tiny.sess, tiny.logits, tiny.logits, {tiny.x: images}, 0)
    with pytest.raises(mg.FeedError, match="no fed 4-D placeholder"):
        mg.viz.grad_cam(tiny.sess, tiny.logits, tiny.act, {}, 0)


def test_a_layer_the_logits_do_not_depend_on_is_an_error():
    """Its gradient is zero everywhere: an all-zero map would look like an answer."""
    with mg.Graph() as g:
        x = mg.placeholder((None, 1, 4, 4), dtype="float64", name="x")
        other = mg.placeholder((None, 1, 4, 4), dtype="float64", name="other")
        side = mg.ops.relu(x * 2.0, name="side")
        logits = mg.ops.reshape(mg.ops.mean(x, axis=(2, 3)), (-1, 1), name="pooled") * np.ones((1, 2))
    sess = mg.Session(g)
    feed = {x: np.ones((2, 1, 4, 4)), other: np.ones((2, 1, 4, 4))}
    with pytest.raises(mg.GraphError, match=f"the logits {logits.name!r} do not depend on 'side'"):
        mg.viz.grad_cam(sess, logits, side, feed, 0, image=x)
    with pytest.raises(mg.GraphError, match="do not depend on 'other'"):
        mg.viz.saliency(sess, logits, other, feed, 0)
    assert mg.viz.grad_cam(sess, logits, x, feed, 0, image=x).cam.shape == (2, 4, 4)  # x itself is fine
