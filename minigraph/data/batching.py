"""Mini-batches of one epoch, in a seeded order, optionally augmented."""
from __future__ import annotations

from typing import Callable, Iterator, Optional, Tuple

import numpy as np

from ..checks import as_bool, as_int
from .lazy import LazyImages

__all__ = ["Batch", "Batches", "batches"]

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class Batch(tuple):
    """One mini-batch `(x, y)` (it unpacks as a pair), with where it sits in the global batch.

    `offset`: the index of its first example in the global batch (feed it to the model's
    `first_example` so that dropout masks follow the example, not the rank); `count`: its
    number of real examples; `total`: the global batch's size; `share = count / total`, the
    weight of this part's mean gradient in the global mean (feed it to
    `DistributedOptimizer.share`). Without sharding, offset 0 and share 1.
    """

    def __new__(cls, x, y, offset: int = 0, count: Optional[int] = None, total: Optional[int] = None):
        self = super().__new__(cls, (x, y))
        self.offset = int(offset)
        self.count = len(y) if count is None else int(count)
        self.total = self.count if total is None else int(total)
        return self

    @property
    def x(self):
        return self[0]

    @property
    def y(self):
        return self[1]

    @property
    def share(self) -> float:
        return self.count / self.total if self.total else 0.0


class Batches:
    """The mini-batches of one epoch: `len()` of them, each a `Batch` `(x[idx], y[idx])`.

    With `shuffle`, the order is a permutation drawn from a generator seeded with
    (seed, epoch), so every epoch differs and any epoch can be replayed (e.g. on resume).
    `start` skips the first batches of the epoch (to continue an interrupted one).
    `augment(x_batch, rng)` (e.g. `random_crop_flip()`) transforms each batch with a
    generator seeded with (seed, epoch, batch index), so a resumed epoch sees the same
    crops and flips as an uninterrupted one. `total` is the epoch's number of batches.

    With `size` > 1 (data-parallel training), `batch_size` is the global batch and rank
    `rank` gets its contiguous part of each: `batch_size / size` examples (`batch_size` must
    be divisible by `size`), the short last batch split as evenly as possible. Order,
    global batches, augmentation and number of steps are those of the 1-rank run. A rank
    whose part of the last batch is empty gets that batch's first example as a stand-in
    with `count` 0 (share 0), so that it still takes part in the step without changing its
    result.
    """

    def __init__(self, x, y: np.ndarray, batch_size: int, shuffle: bool = True,
                 seed: int = 0, epoch: int = 0, drop_last: bool = False, start: int = 0,
                 augment: Optional[Augment] = None, rank: int = 0, size: int = 1):
        if len(x) != len(y):
            raise ValueError(f"batches: {len(x)} inputs but {len(y)} labels")
        batch_size = as_int(batch_size, "batches: batch_size", minimum=1)
        rank, size = as_int(rank, "batches: rank"), as_int(size, "batches: size")
        seed, epoch, start = as_int(seed, "batches: seed"), as_int(epoch, "batches: epoch"), as_int(start, "batches: start")
        shuffle, drop_last = as_bool(shuffle, "batches: shuffle"), as_bool(drop_last, "batches: drop_last")
        if int(size) < 1 or not 0 <= int(rank) < int(size):
            raise ValueError(f"batches: need 0 <= rank < size, got rank {rank} of size {size}")
        if int(batch_size) % int(size):
            raise ValueError(f"batches: the global batch size {batch_size} is not divisible by {size} "
                             f"ranks; choose a batch size that is a multiple of the rank count")
        self.x, self.y, self.batch_size = x, y, int(batch_size)
        self.rank, self.size = int(rank), int(size)
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

    def part(self, i: int) -> Tuple[int, int, int]:
        """(offset, count, total) of this rank's part of global batch `i`."""
        total = min(self.batch_size, len(self.order) - i * self.batch_size)
        base, extra = divmod(total, self.size)
        offset = self.rank * base + min(self.rank, extra)
        return offset, base + (self.rank < extra), total

    def __iter__(self) -> Iterator[Batch]:
        for i in range(self.start, self.total):
            offset, count, total = self.part(i)
            first = i * self.batch_size + (offset if count else 0)  # a stand-in: the batch's first
            idx = self.order[first:first + max(count, 1)]
            xb = self.x[idx]
            if self.augment is not None:
                # the whole global batch's draws, so that each example is augmented as on 1 rank
                xb = self._augment_part(xb, i, offset, count)
            yield Batch(xb, self.y[idx], offset, count, total)

    def _augment_part(self, xb, i: int, offset: int, count: int):
        """The augmented part: on several ranks, each augments the whole global batch (so its
        examples get the draws they get on 1 rank; costs the decoding of the other parts)."""
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if self.size == 1:
            return self.augment(xb, rng)
        start = offset if count else 0
        whole = self.augment(self.x[self.order[i * self.batch_size:(i + 1) * self.batch_size]], rng)
        return whole[start:start + max(count, 1)]


def batches(x, y, batch_size: int, shuffle: bool = True, seed: int = 0, epoch: int = 0,
            drop_last: bool = False, start: int = 0, augment: Optional[Augment] = None,
            rank: int = 0, size: int = 1) -> Batches:
    """An iterable over one epoch's mini-batches `(x_batch, y_batch)`; see `Batches`.

    `x` is an array or lazy images (`LazyImages`: an image folder, CIFAR-10), which
    decode only each batch's images.

    >>> for xb, yb in mg.data.batches(x, y, 64, seed=0, epoch=e):
    ...     sess.run(train_op, feed={x_in: xb, y_in: yb})

    With `rank` and `size`, each rank iterates over its part of the same global batches.
    """
    x = x if isinstance(x, LazyImages) else np.asarray(x)
    return Batches(x, np.asarray(y), batch_size, shuffle, seed, epoch, drop_last, start, augment, rank, size)
