"""mg.data.prefetch: the next item is produced while the consumer holds the current one."""
import threading

import numpy as np
import pytest

import minigraph as mg


class Source:
    """Yields 0..n-1; records which items were produced, and can fail at one of them."""

    def __init__(self, n, fail_at=None):
        self.n, self.fail_at = n, fail_at
        self.produced = []
        self.second_ready = threading.Event()

    def __len__(self):
        return self.n

    def __iter__(self):
        for i in range(self.n):
            if i == self.fail_at:
                raise RuntimeError(f"item {i} is broken")
            self.produced.append(i)
            if i == 1:
                self.second_ready.set()
            yield i


def test_next_item_is_made_while_the_current_one_is_in_use():
    source = Source(5)
    got = []
    for item in mg.data.prefetch(source, depth=1):
        if item == 0:
            # without a background producer nothing would make item 1 while we hold item 0
            assert source.second_ready.wait(timeout=10), "item 1 was not produced in the background"
        got.append(item)
    assert got == list(range(5)) and len(mg.data.prefetch(source)) == 5


def test_errors_reach_the_consumer_at_their_item():
    got = []
    with pytest.raises(RuntimeError, match="item 3 is broken"):
        for item in mg.data.prefetch(Source(6, fail_at=3)):
            got.append(item)
    assert got == [0, 1, 2]


def workers():
    return sum(t.name == "minigraph-prefetch" for t in threading.enumerate())


def test_leaving_early_stops_the_worker():
    before = workers()
    source = Source(10_000)
    for item in mg.data.prefetch(source, depth=2):
        assert workers() == before + 1
        if item == 3:
            break
    assert workers() == before  # joined when the loop was left
    assert len(source.produced) < 10  # it had run only a few items ahead


def test_prefetched_batches_equal_plain_ones():
    x = np.arange(50, dtype=np.float32).reshape(25, 2)
    y = np.arange(25)
    plain = list(mg.data.batches(x, y, 4, seed=3))
    fetched = list(mg.data.prefetch(mg.data.batches(x, y, 4, seed=3)))
    assert len(plain) == len(fetched) == 7
    for (a, b), (c, d) in zip(plain, fetched):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        mg.data.prefetch(plain, depth=0)
