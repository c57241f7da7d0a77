"""mg.viz.filters: the weights it returns and the layout of each kind of filter picture."""
import numpy as np
import pytest

import minigraph as mg


def session_with(*shapes):
    rng = np.random.default_rng(0)
    with mg.Graph() as g:
        nodes = [mg.variable(rng.normal(size=s).astype("float32"), name=f"w{i}") for i, s in enumerate(shapes)]
    return mg.Session(g), nodes


@pytest.mark.parametrize("shape, limits, pixels", [
    ((16, 1, 3, 3), {}, (500, 460)),   # grey first layer: 4 x 4 tiles, 0.8 inch each + margins
    ((3, 2, 5, 5), {}, (500, 380)),    # deeper: 3 filter rows x 2 input-channel columns
    ((6, 3, 3, 3), {}, (400, 300)),    # colour first layer: 3 x 2 colour tiles
    ((8, 20, 1, 1), {}, (500, 400)),   # 1x1 weights: one 8 x 20 matrix
    ((8, 20), {}, (500, 400)),         # a conv1x1's (F, C) weights: the same matrix
    ((40, 30, 3, 3), {"max_filters": 3, "max_channels": 5}, (560, 380)),  # the first 3 filters x 5 channels
    ((34, 20, 3, 3), {}, (1440, 2700)),                                  # by default 32 x 16
])
def test_filters_return_the_weights_and_draw_them(shape, limits, pixels, tmp_path, size_of):
    sess, (w,) = session_with(shape)
    got = mg.viz.filters(sess, w, tmp_path / "f.png", **limits)
    np.testing.assert_array_equal(got, sess.get_value(w))
    assert size_of(tmp_path / "f.png") == pixels


def test_colour_tiles_show_the_channels_as_rgb(tmp_path):
    """A filter whose only non-zero weights are +1 in the red channel draws red on grey 0.5."""
    pytest.importorskip("PIL")
    from PIL import Image
    w0 = np.zeros((1, 3, 3, 3), "float32")
    w0[0, 0] = 1.0
    with mg.Graph() as g:
        w = mg.variable(w0, name="w")
    mg.viz.filters(mg.Session(g), w, tmp_path / "rgb.png")
    pixels = np.asarray(Image.open(tmp_path / "rgb.png").convert("RGB")).reshape(-1, 3)
    assert (np.abs(pixels - [255, 127, 127]) <= 2).all(axis=1).sum() > 400   # (1, .5, .5): the red tile


def test_errors(tmp_path):
    sess, (w,) = session_with((3, 4, 5))
    with pytest.raises(mg.ShapeError, match="'w0' must be conv weights"):
        mg.viz.filters(sess, w, tmp_path / "f.png")
    sess, (w,) = session_with((3, 4, 3, 3))
    with pytest.raises(ValueError, match="max_filters"):
        mg.viz.filters(sess, w, max_filters=0)
