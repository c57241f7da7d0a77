"""mg.data.batches: every example once per epoch, seeded orders, resume, per-batch augmentation."""
import numpy as np
import pytest

import minigraph as mg


def test_batches_cover_every_example_once():
    x = np.arange(10, dtype=np.float32)[:, None]
    y = np.arange(10)
    it = mg.data.batches(x, y, 4, seed=5, epoch=0)
    parts = list(it)
    assert len(it) == 3 and [len(p[1]) for p in parts] == [4, 4, 2]
    seen = np.concatenate([p[1] for p in parts])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    for xb, yb in parts:
        np.testing.assert_array_equal(xb[:, 0], yb)  # pairs stay together


def test_batches_seeded_per_epoch_and_resumable():
    x, y = np.zeros((23, 2)), np.arange(23)
    order = lambda **kw: np.concatenate([b for _, b in mg.data.batches(x, y, 5, **kw)]).tolist()  # noqa: E731
    assert order(seed=1, epoch=0) == order(seed=1, epoch=0)
    assert order(seed=1, epoch=0) != order(seed=1, epoch=1)
    assert order(seed=1, epoch=0) != order(seed=2, epoch=0)
    assert order(shuffle=False) == list(range(23))
    assert order(seed=1, epoch=4, start=2) == order(seed=1, epoch=4)[10:]
    dropped = mg.data.batches(x, y, 5, drop_last=True)
    assert len(dropped) == 4 and all(len(b) == 5 for _, b in dropped)
    with pytest.raises(ValueError, match="labels"):
        mg.data.batches(x, y[:3], 5)
    with pytest.raises(ValueError, match="batch_size"):
        mg.data.batches(x, y, 0)


def test_augmentation_is_drawn_per_batch_and_replayed_on_resume():
    x = np.arange(7 * 1 * 4 * 4, dtype=np.float32).reshape(7, 1, 4, 4)
    y = np.arange(7)
    aug = mg.data.random_crop_flip(padding=1)
    run = lambda **kw: list(mg.data.batches(x, y, 3, seed=2, epoch=1, augment=aug, **kw))  # noqa: E731
    full, again, resumed = run(), run(), run(start=1)
    for (xa, ya), (xb, yb) in zip(full, again):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    for (xa, _), (xb, _) in zip(full[1:], resumed):  # batch i gets the same crops with or without a restart
        np.testing.assert_array_equal(xa, xb)
    # each batch equals the transform applied with the generator seeded (seed, epoch, batch index)
    plain = list(mg.data.batches(x, y, 3, seed=2, epoch=1))
    for i, ((xa, _), (xp, _)) in enumerate(zip(full, plain)):
        np.testing.assert_array_equal(xa, aug(xp, np.random.default_rng([2, 1, i])))
    assert any(not np.array_equal(a, p) for (a, _), (p, _) in zip(full, plain))
