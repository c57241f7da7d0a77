"""mg.viz.translation_invariance and its pieces, against loops written here over the NumPy forward."""
import numpy as np
import pytest

import minigraph as mg
from minigraph.viz import shift_images


def test_shift_images_moves_and_fills_with_zeros():
    a = np.arange(1, 13, dtype=float).reshape(1, 3, 4)
    for dy, dx in [(0, 0), (1, 0), (0, -2), (-1, 3), (2, 1), (3, 0), (0, -4)]:
        expected = np.zeros_like(a)
        for i in range(3):
            for j in range(4):
                if 0 <= i - dy < 3 and 0 <= j - dx < 4:
                    expected[0, i, j] = a[0, i - dy, j - dx]
        np.testing.assert_array_equal(shift_images(a, dy, dx), expected)


def reference(net, images, labels, shifts):
    """The documented measures, computed image by image."""
    base = net.forward(images)
    out = {"pixels": [], "pooled": [], "logits": [], "same": [], "accuracy": []}
    for s in shifts:
        rel = {"pixels": [], "pooled": [], "logits": []}
        same, correct = [], []
        for dy, dx in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
            for n, image in enumerate(images):
                moved = np.zeros_like(image)
                h, w = image.shape[1:]
                for i in range(h):
                    for j in range(w):
                        if 0 <= i - dy * s < h and 0 <= j - dx * s < w:
                            moved[:, i, j] = image[:, i - dy * s, j - dx * s]
                fwd = net.forward(moved[None])
                for key, new, old in (("pixels", moved, image), ("pooled", fwd["pooled"][0], base["pooled"][n]),
                                      ("logits", fwd["logits"][0], base["logits"][n])):
                    if np.linalg.norm(old) > 0:
                        rel[key].append(np.linalg.norm(new - old) / np.linalg.norm(old))
                pred = fwd["logits"][0].argmax()
                same.append(pred == base["logits"][n].argmax())
                correct.append(pred == labels[n])
        for key in rel:
            out[key].append(np.mean(rel[key]))
        out["same"].append(np.mean(same))
        out["accuracy"].append(np.mean(correct))
    return out


def test_changes_predictions_and_accuracy_match_a_loop(tiny, tmp_path, size_of):
    images = np.random.default_rng(3).uniform(0, 1, size=(6, 2, 5, 5))
    labels = np.array([0, 1, 2, 3, 0, 1])
    inv = mg.viz.translation_invariance(tiny.sess, tiny.x, tiny.logits, images, {"pooled": tiny.pooled},
                                        tmp_path / "inv.png", labels=labels, shifts=(0, 1, 2), batch_size=4)
    ref = reference(tiny, images, labels, (0, 1, 2))
    np.testing.assert_array_equal(inv.shifts, [0, 1, 2])
    assert list(inv.change) == ["pixels", "pooled", "logits"]
    for key in ("pixels", "pooled", "logits"):
        np.testing.assert_allclose(inv.change[key], ref[key], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(inv.same_prediction, ref["same"])
    np.testing.assert_allclose(inv.accuracy, ref["accuracy"])
    assert inv.change["pixels"][0] == 0 and inv.same_prediction[0] == 1 and inv.change["pixels"][2] > 0
    assert size_of(tmp_path / "inv.png") == (1100, 450)
    no_labels = mg.viz.translation_invariance(tiny.sess, tiny.x, tiny.logits, images, {}, shifts=[1])
    assert no_labels.accuracy is None
    np.testing.assert_allclose(no_labels.change["pixels"], ref["pixels"][1:2], rtol=1e-10)


def test_errors(tiny):
    images = np.zeros((2, 2, 5, 5))
    with pytest.raises(mg.ShapeError, match="images must be \\(N, C, H, W\\)"):
        mg.viz.translation_invariance(tiny.sess, tiny.x, tiny.logits, images[0], {})
    with pytest.raises(ValueError, match="shifts must be pixel counts >= 0"):
        mg.viz.translation_invariance(tiny.sess, tiny.x, tiny.logits, images, {}, shifts=[-1])
    with pytest.raises(ValueError, match="labels must be one per image"):
        mg.viz.translation_invariance(tiny.sess, tiny.x, tiny.logits, images, {}, labels=[1, 2, 3])
    with pytest.raises(mg.ShapeError, match="images is empty; it needs at least one image"):
        mg.viz.translation_invariance(tiny.sess, tiny.x, tiny.logits, images[:0], {})
