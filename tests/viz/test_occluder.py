"""mg.viz.occlusion: the class score with a patch at each position, against the NumPy forward of
images occluded by a loop written here."""
import numpy as np
import pytest

import minigraph as mg


def occluded_scores(net, image, k, patch, stride, fill):
    c, h, w = image.shape
    rows = []
    for i in range(0, h, stride):
        row = []
        for j in range(0, w, stride):
            hidden = image.copy()
            for r in range(i - patch // 2, i - patch // 2 + patch):
                for s in range(j - patch // 2, j - patch // 2 + patch):
                    if 0 <= r < h and 0 <= s < w:
                        hidden[:, r, s] = fill
            row.append(net.forward(hidden[None])["logits"][0, k])
        rows.append(row)
    return np.array(rows)


@pytest.mark.parametrize("patch, stride, fill, batch_size", [(3, 1, 0.0, 256), (2, 2, 0.5, 256), (1, 1, -1.0, 7)])
def test_scores_match_a_loop(tiny, images, patch, stride, fill, batch_size):
    occ = mg.viz.occlusion(tiny.sess, tiny.logits, tiny.x, {tiny.x: images}, 3, patch=patch, stride=stride,
                           fill=fill, index=1, batch_size=batch_size)
    expected = occluded_scores(tiny, images[1], 3, patch, stride, fill)
    assert occ.scores.shape == expected.shape == (-(-5 // stride),) * 2
    np.testing.assert_allclose(occ.scores, expected, rtol=1e-10, atol=1e-12)
    assert occ.baseline == pytest.approx(tiny.forward(images[1:2])["logits"][0, 3], rel=1e-12)
    assert occ.class_index == 3


def test_picture_and_errors(tiny, images, tmp_path, size_of):
    mg.viz.occlusion(tiny.sess, tiny.logits, tiny.x, {tiny.x: images}, 0, tmp_path / "occ.png")
    assert size_of(tmp_path / "occ.png") == (900, 420)
    with pytest.raises(ValueError, match="patch must be a positive int"):
        mg.viz.occlusion(tiny.sess, tiny.logits, tiny.x, {tiny.x: images}, 0, patch=0)
    with pytest.raises(ValueError, match="outside the 4 classes"):
        mg.viz.occlusion(tiny.sess, tiny.logits, tiny.x, {tiny.x: images}, -1)
    with pytest.raises(mg.FeedError, match="'x' must be in the feed"):
        mg.viz.occlusion(tiny.sess, tiny.logits, tiny.x, {}, 0)
