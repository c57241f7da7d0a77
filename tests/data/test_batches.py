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


def test_batches_sharded_over_ranks_are_the_global_batches():
    """Each rank's parts, in rank order, are the 1-rank batches; offsets, counts and shares
    say where each part sits; a rank whose part of the short last batch is empty gets a
    stand-in example with share 0."""
    x = np.arange(37, dtype=np.float32)[:, None]
    y = np.arange(37)
    whole = list(mg.data.batches(x, y, 8, seed=3, epoch=2))
    assert [b.share for b in whole] == [1.0] * 5 and [b.offset for b in whole] == [0] * 5
    for size in (2, 4, 8):
        ranks = [list(mg.data.batches(x, y, 8, seed=3, epoch=2, rank=r, size=size)) for r in range(size)]
        assert all(len(parts) == len(whole) for parts in ranks)
        for i, full in enumerate(whole):
            parts = [ranks[r][i] for r in range(size)]
            real = [p for p in parts if p.count]
            np.testing.assert_array_equal(np.concatenate([p.y for p in real]), full.y)
            np.testing.assert_array_equal(np.concatenate([p.x for p in real]), full.x)
            assert [p.offset for p in real] == list(np.cumsum([0] + [p.count for p in real])[:-1])
            assert all(p.total == len(full.y) for p in parts)
            assert sum(p.share for p in parts) == pytest.approx(1.0)
            for p in parts:
                if not p.count:  # 37 % 8 = 5 examples for 8 ranks: three ranks get none
                    assert size == 8 and i == 4 and p.share == 0.0 and len(p.y) == 1 and p.y[0] == full.y[0]
    last = [list(mg.data.batches(x, y, 8, seed=3, epoch=2, rank=r, size=2))[-1] for r in range(2)]
    assert [(b.count, b.offset, b.share) for b in last] == [(3, 0, 3 / 5), (2, 3, 2 / 5)]
    xb, yb = last[1]  # still unpacks as a pair
    assert len(xb) == len(yb) == 2
    with pytest.raises(ValueError, match="global batch size 10 is not divisible by 4 ranks"):
        mg.data.batches(x, y, 10, rank=0, size=4)
    with pytest.raises(ValueError, match="need 0 <= rank < size"):
        mg.data.batches(x, y, 8, rank=2, size=2)
