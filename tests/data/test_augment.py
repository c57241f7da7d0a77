"""mg.data.random_crop_flip against a search over every crop offset and flip of the input."""
import numpy as np
import pytest

import minigraph as mg


def candidates(img, p):
    """Every image the transform may produce from `img` (C, H, W): each crop of the zero-padded
    image, mirrored or not, as {(dy, dx, flipped): array}, built with plain loops."""
    c, h, w = img.shape
    padded = np.zeros((c, h + 2 * p, w + 2 * p), img.dtype)
    for ch in range(c):
        for r in range(h):
            for q in range(w):
                padded[ch, r + p, q + p] = img[ch, r, q]
    out = {}
    for dy in range(2 * p + 1):
        for dx in range(2 * p + 1):
            crop = padded[:, dy:dy + h, dx:dx + w]
            out[(dy, dx, False)] = crop
            out[(dy, dx, True)] = np.stack([[row[::-1] for row in plane] for plane in crop])
    return out


@pytest.mark.parametrize("padding,flip", [(2, True), (3, False), (0, True)])
def test_each_output_is_a_padded_crop_or_its_mirror(padding, flip):
    rng = np.random.default_rng(0)
    x = rng.random((40, 2, 5, 6)).astype(np.float32) + 1  # no zeros inside, so the padding is visible
    before = x.copy()
    out = mg.data.random_crop_flip(padding, flip)(x, np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    np.testing.assert_array_equal(x, before)  # the input is left alone
    seen = set()
    for img, got in zip(x, out):
        matches = [k for k, cand in candidates(img, padding).items() if np.array_equal(cand, got)]
        assert matches, "an output that is no crop/flip of its input"
        seen.update(matches)
    assert {k[2] for k in seen} == ({False, True} if flip else {False})
    if padding:  # offsets spread over the whole range
        assert {k[0] for k in seen} == set(range(2 * padding + 1))


def test_same_generator_same_result_and_bad_arguments():
    x = np.random.default_rng(0).random((8, 3, 4, 4)).astype(np.float32)
    aug = mg.data.random_crop_flip()
    np.testing.assert_array_equal(aug(x, np.random.default_rng(5)), aug(x, np.random.default_rng(5)))
    with pytest.raises(ValueError, match="padding must be an int >= 0"):
        mg.data.random_crop_flip(-1)
    with pytest.raises(ValueError, match=r"expected a batch \(N, C, H, W\)"):
        aug(x[0], np.random.default_rng(0))
