"""What every loader returns: a `Dataset` (train/test split), and the stratified splitter."""
from __future__ import annotations

from typing import Any, NamedTuple, Tuple

import numpy as np

from ..errors import MinigraphError

__all__ = ["Dataset", "DataError", "stratified_split"]


class DataError(MinigraphError, ValueError):
    """A data file or folder that is missing, truncated, corrupt or not what its name says."""


class Dataset(NamedTuple):
    """A train/test split: images (N, C, H, W) float32 in [0, 1], labels (N,) int64.

    `x_train` and `x_test` are NumPy arrays, or for data too large to hold as float32
    (an image folder, CIFAR-10) lazy image arrays (`minigraph.data.LazyImages`) that
    decode or scale only the images a batch asks for. `classes` names the labels
    (`classes[k]` is label k) where the data set has names.
    """

    x_train: Any
    y_train: np.ndarray
    x_test: Any
    y_test: np.ndarray
    classes: Tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        """The number of classes: len(classes) when named, else the largest label + 1."""
        found = int(max(self.y_train.max(initial=-1), self.y_test.max(initial=-1))) + 1
        return max(len(self.classes), found)


def stratified_split(y: np.ndarray, test_size, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) of a split of `y` that keeps each class's share.

    `test_size` is a fraction in (0, 1) or an int number of test examples. Each class
    gives its rounded share (largest-remainder rounding, so the counts add up to the
    requested total); both parts come in an order drawn from a generator seeded with `seed`.
    """
    n = len(y)
    if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        if not 0 < test_size < n:
            raise ValueError(f"test_size must lie in (0, {n}) examples, got {test_size}")
        frac = test_size / n
    else:
        frac = float(test_size)
        if not 0.0 < frac < 1.0:
            raise ValueError(f"test_size must be a fraction in (0, 1) or a count, got {test_size}")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per_class = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    counts = np.array([len(p) for p in per_class])
    target = int(round(frac * n))
    exact = counts * (target / n)
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[:target - take.sum()]:
        take[i] += 1
    test = np.concatenate([p[:k] for p, k in zip(per_class, take)])
    train = np.concatenate([p[k:] for p, k in zip(per_class, take)])
    return rng.permutation(train), rng.permutation(test)
