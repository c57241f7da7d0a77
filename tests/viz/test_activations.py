"""mg.viz.feature_maps: the layer's activations (against the NumPy forward) and the picture."""
import numpy as np
import pytest

import minigraph as mg


def test_returns_the_activations_and_draws_them(tiny, images, tmp_path, size_of):
    acts = mg.viz.feature_maps(tiny.sess, tiny.act, {tiny.x: images}, tmp_path / "maps.png", index=2)
    np.testing.assert_allclose(acts, tiny.forward(images)["act"], rtol=1e-12, atol=1e-12)
    # 3 channels: 2 columns x 2 rows of 0.8 inch tiles beside a 3 inch input, 100 dpi
    assert size_of(tmp_path / "maps.png") == (580, 300)
    pooled = mg.viz.feature_maps(tiny.sess, tiny.pooled, {tiny.x: images}, tmp_path / "p.png", max_channels=1)
    np.testing.assert_allclose(pooled, tiny.forward(images)["pooled"], rtol=1e-12, atol=1e-12)
    assert size_of(tmp_path / "p.png") == (500, 300)


def test_grid_size_grows_with_the_channels(tmp_path, size_of):
    with mg.Graph() as g:
        x = mg.placeholder((None, 1, 6, 6), name="x")
        y = mg.layers.conv2d(x, 30, 3, name="conv", rng=0)   # 30 channels: 6 columns x 5 rows
    sess = mg.Session(g)
    mg.viz.feature_maps(sess, y, {x: np.ones((1, 1, 6, 6), "float32")}, tmp_path / "m.png")
    assert size_of(tmp_path / "m.png") == (int(round((3 + 6 * 0.8 + 1.2) * 100)), int(round((5 * 0.8 + 1.2) * 100)))


def test_errors(tiny, images):
    with pytest.raises(mg.ShapeError, match="'fc/add' must be a \\(N, C, H, W\\) feature map"):
        mg.viz.feature_maps(tiny.sess, tiny.logits, {tiny.x: images})
    with pytest.raises(mg.FeedError, match="pass image="):
        mg.viz.feature_maps(tiny.sess, tiny.act, {})
    with pytest.raises(ValueError, match="max_channels"):
        mg.viz.feature_maps(tiny.sess, tiny.act, {tiny.x: images}, max_channels=0)
