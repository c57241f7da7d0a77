"""mg.viz.saliency: |d class score / d input| against float64 central differences of a NumPy
forward pass, SmoothGrad against the documented noise, the picture, and the errors."""
import numpy as np
import pytest

import minigraph as mg


def finite_difference_gradient(net, x, k, eps=1e-6):
    """d logits[n, k[n]] / d x by central differences of the NumPy forward (float64)."""
    grad = np.zeros_like(x)
    rows = np.arange(len(x))
    for idx in np.ndindex(x.shape[1:]):
        up, down = x.copy(), x.copy()
        up[(slice(None),) + idx] += eps
        down[(slice(None),) + idx] -= eps
        grad[(slice(None),) + idx] = (net.forward(up)["logits"][rows, k] - net.forward(down)["logits"][rows, k]) / (2 * eps)
    return grad


def test_saliency_is_the_largest_absolute_gradient_over_channels(tiny, images):
    classes = np.array([0, 3, 1])
    sal = mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, {tiny.x: images}, classes)
    expected = np.abs(finite_difference_gradient(tiny, images, classes)).max(axis=1)
    assert sal.shape == (3, 5, 5)
    np.testing.assert_allclose(sal, expected, rtol=1e-6, atol=1e-8)
    # the hand-written backward agrees, and one int class applies to every example
    sal2 = mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, {tiny.x: images}, 2)
    np.testing.assert_allclose(sal2, np.abs(tiny.grad_x(images, 2)).max(axis=1), rtol=1e-10, atol=1e-12)


def test_smoothgrad_averages_the_gradient_of_noisy_copies(tiny, images):
    samples, noise, seed = 7, 0.2, 5
    sal = mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, {tiny.x: images}, 1, smoothgrad=samples,
                          noise=noise, seed=seed)
    rng = np.random.default_rng(seed)
    sigma = noise * (images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3)))[:, None, None, None]
    total = np.zeros_like(images)
    for _ in range(samples):
        total += tiny.grad_x(images + sigma * rng.standard_normal(images.shape), 1)
    np.testing.assert_allclose(sal, np.abs(total / samples).max(axis=1), rtol=1e-10, atol=1e-12)
    plain = mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, {tiny.x: images}, 1)
    assert not np.allclose(sal, plain)
    np.testing.assert_array_equal(
        mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, {tiny.x: images}, 1, smoothgrad=True, noise=noise, seed=seed),
        mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, {tiny.x: images}, 1, smoothgrad=50, noise=noise, seed=seed))
    no_noise = mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, {tiny.x: images}, 1, smoothgrad=3, noise=0.0)
    np.testing.assert_allclose(no_noise, plain, rtol=1e-12)


def test_the_gradient_nodes_are_built_once(tiny, images):
    mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, {tiny.x: images}, 0)
    size = len(tiny.graph)
    mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, {tiny.x: images}, 3, smoothgrad=2)
    assert len(tiny.graph) == size


def test_picture(tiny, images, tmp_path, size_of):
    path = tmp_path / "sub" / "saliency.png"
    mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, {tiny.x: images}, 2, path, index=1, subtitle="image 1")
    assert size_of(path) == (1200, 420)
    mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, {tiny.x: images}, 2, tmp_path / "s.png", smoothgrad=2)
    assert size_of(tmp_path / "s.png") == (1200, 420)


def test_errors(tiny, images, tmp_path):
    feed = {tiny.x: images}
    with pytest.raises(ValueError, match="outside the 4 classes"):
        mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, feed, 4)
    with pytest.raises(ValueError, match="2 entries for a batch of 3"):
        mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, feed, [0, 1])
    with pytest.raises(mg.FeedError, match="'x' must be in the feed"):
        mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, {}, 0)
    with pytest.raises(ValueError, match="smoothgrad"):
        mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, feed, 0, smoothgrad=-1)
    with pytest.raises(ValueError, match="suffix"):
        mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, feed, 0, tmp_path / "s.jpeg")
    with pytest.raises(mg.ShapeError, match="'conv/relu' must be \\(batch, classes\\)"):
        mg.viz.saliency(tiny.sess, tiny.act, tiny.x, feed, 0)
    with pytest.raises(IndexError, match="outside the fed batch of 3"):
        mg.viz.saliency(tiny.sess, tiny.logits, tiny.x, feed, 0, tmp_path / "s.png", index=3)


def test_explaining_does_not_keep_the_graph_alive():
    import gc
    import weakref

    def explain():
        with mg.Graph() as g:
            x = mg.placeholder((None, 1, 4, 4), name="x")
            logits = mg.ops.flatten(x)
        mg.viz.saliency(mg.Session(g), logits, x, {x: np.ones((1, 1, 4, 4), "float32")}, 0)
        return weakref.ref(g)

    ref = explain()
    gc.collect()
    assert ref() is None
