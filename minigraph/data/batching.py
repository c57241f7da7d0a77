"""Mini-batches of one epoch, in a seeded order, optionally augmented."""
from __future__ import annotations

from typing import Callable, Iterator, Optional, Tuple

import numpy as np

from .lazy import LazyImages

__all__ = ["Batches", "batches"]

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class Batches:
    """The mini-batches of one epoch: `len()` of them, each `(x[idx], y[idx])`.

    With `shuffle`, the order is a permutation drawn from a generator seeded with
    (seed, epoch), so every epoch differs and any epoch can be replayed (e.g. on resume).
    `start` skips the first batches of the epoch (to continue an interrupted one).
    `augment(x_batch, rng)` (e.g. `random_crop_flip()`) transforms each batch with a
    generator seeded with (seed, epoch, batch index), so a resumed epoch sees the same
    crops and flips as an uninterrupted one. `total` is the epoch's number of batches.
    """

    def __init__(self, x, y: np.ndarray, batch_size: int, shuffle: bool = True,
                 seed: int = 0, epoch: int = 0, drop_last: bool = False, start: int = 0,
                 augment: Optional[Augment] = None):
        if len(x) != len(y):
            raise ValueError(f"batches: {len(x)} inputs but {len(y)} labels")
        if int(batch_size) < 1:
            raise ValueError(f"batches: batch_size must be >= 1, got {batch_size}")
        self.x, self.y, self.batch_size = x, y, int(batch_size)
        self.seed, self.epoch, self.augment = int(seed), int(epoch), augment
        n = len(x)
        self.order = (np.random.default_rng([self.seed, self.epoch]).permutation(n) if shuffle
                      else np.arange(n))
        self.total = n // self.batch_size if drop_last else -(-n // self.batch_size)
        if not 0 <= start <= self.total:
            raise ValueError(f"batches: start must lie in [0, {self.total}], got {start}")
        self.start = int(start)

    def __len__(self) -> int:
        return self.total - self.start

    def __iter__(self) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        for i in range(self.start, self.total):
            idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
            xb = self.x[idx]
            if self.augment is not None:
                xb = self.augment(xb, np.random.default_rng([self.seed, self.epoch, i]))
            yield xb, self.y[idx]


def batches(x, y, batch_size: int, shuffle: bool = True, seed: int = 0, epoch: int = 0,
            drop_last: bool = False, start: int = 0, augment: Optional[Augment] = None) -> Batches:
    """An iterable over one epoch's mini-batches `(x_batch, y_batch)`; see `Batches`.

    `x` is an array or lazy images (`LazyImages`: an image folder, CIFAR-10), which
    decode only each batch's images.

    >>> for xb, yb in mg.data.batches(x, y, 64, seed=0, epoch=e):
    ...     sess.run(train_op, feed={x_in: xb, y_in: yb})
    """
    x = x if isinstance(x, LazyImages) else np.asarray(x)
    return Batches(x, np.asarray(y), batch_size, shuffle, seed, epoch, drop_last, start, augment)
