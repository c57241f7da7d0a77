"""Data sets and mini-batches: scikit-learn's 8x8 digits, MNIST's IDX files, a seeded iterator.

Images come as float32 arrays `(N, 1, H, W)` (NCHW, one channel) scaled to [0, 1], labels
as int64 arrays `(N,)`.
"""
from __future__ import annotations

import gzip
import os
import zlib
from typing import Iterator, NamedTuple, Tuple

import numpy as np

from .errors import MinigraphError

__all__ = ["Dataset", "DataError", "digits", "load_mnist", "read_idx", "batches", "Batches"]


class DataError(MinigraphError, ValueError):
    """A data file that is missing, truncated or not what its name says."""


class Dataset(NamedTuple):
    """A train/test split: images (N, 1, H, W) float32 in [0, 1], labels (N,) int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(initial=-1), self.y_test.max(initial=-1))) + 1


# ---------------------------------------------------------------------------------
# scikit-learn digits


def digits(test_size: float = 0.25, seed: int = 0) -> Dataset:
    """The 1,797 8x8 handwritten digits that scikit-learn ships (no download), split into
    train and test sets, stratified by class, by a generator seeded with `seed`.

    `test_size` is a fraction in (0, 1) of each class or an int number of test images.
    The same (test_size, seed) always gives the same split. Pixels (0..16) are divided by 16.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("mg.data.digits() needs scikit-learn: pip install 'minigraph[data]'") from None
    raw = load_digits()
    x = (raw.images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    y = raw.target.astype(np.int64)
    train_idx, test_idx = _stratified_split(y, test_size, seed)
    return Dataset(x[train_idx], y[train_idx], x[test_idx], y[test_idx])


def _stratified_split(y: np.ndarray, test_size, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Indices of a split that keeps each class's share; each part in a seeded random order."""
    n = len(y)
    if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        if not 0 < test_size < n:
            raise ValueError(f"test_size must lie in (0, {n}) images, got {test_size}")
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
    # largest-remainder rounding: per-class test counts that add up to the requested total
    exact = counts * (target / n)
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[:target - take.sum()]:
        take[i] += 1
    test = np.concatenate([p[:k] for p, k in zip(per_class, take)])
    train = np.concatenate([p[k:] for p, k in zip(per_class, take)])
    return rng.permutation(train), rng.permutation(test)


# ---------------------------------------------------------------------------------
# MNIST IDX files

_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte",
}


def read_idx(path) -> np.ndarray:
    """The array stored in an IDX file (raw, or gzip-compressed when the name ends in .gz).

    IDX: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, each dimension as a big-endian
    uint32, then the data in C order, big-endian. Anything else is a `DataError`.
    """
    path = os.fspath(path)
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except FileNotFoundError:
        raise DataError(f"no such IDX file: {path}") from None
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot decompress ({exc})") from None
    if len(data) < 4:
        raise DataError(f"{path}: not an IDX file (only {len(data)} bytes)")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {data[:4].hex()})")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({ndim} dimensions need {header} bytes, "
                        f"the file has {len(data)})")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(f"{path}: {what}: shape {shape} of {dtype.name} needs {expected} bytes, "
                        f"the file has {len(data)}")
    arr = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def _find(folder: str, stem: str) -> str:
    """The file for `stem` in `folder`: raw or .gz, with '-' or '.' before 'idx'."""
    names = [stem, stem.replace("-idx", ".idx")]
    for name in names:
        for candidate in (name, name + ".gz"):
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                return path
    raise DataError(f"{folder}: no {stem} file (looked for {', '.join(n + '[.gz]' for n in names)})")


def load_mnist(folder) -> Dataset:
    """MNIST (or any data set in its four IDX files) from `folder`.

    Reads train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
    t10k-labels-idx1-ubyte, each raw or .gz. Images (N, 1, H, W) float32 / 255, labels int64.
    Checks that images are 3-d uint8, labels 1-d uint8 in 0..9 and that the counts agree.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise DataError(f"no such folder: {folder}")
    arrays = {key: read_idx(_find(folder, stem)) for key, stem in _MNIST_FILES.items()}
    for part in ("train", "test"):
        x, y = arrays["x_" + part], arrays["y_" + part]
        if x.ndim != 3 or x.dtype != np.uint8:
            raise DataError(f"{part} images must be a 3-d uint8 array (N, H, W), got {x.dtype} {x.shape}")
        if y.ndim != 1 or y.dtype != np.uint8:
            raise DataError(f"{part} labels must be a 1-d uint8 array, got {y.dtype} {y.shape}")
        if len(x) != len(y):
            raise DataError(f"{part}: {len(x)} images but {len(y)} labels")
        if y.size and y.max() > 9:
            raise DataError(f"{part} labels must lie in 0..9, found {int(y.max())}")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DataError(f"train images are {arrays['x_train'].shape[1:]}, test images "
                        f"{arrays['x_test'].shape[1:]}")
    return Dataset(*(_images(arrays[k]) if k.startswith("x") else arrays[k].astype(np.int64)
                     for k in ("x_train", "y_train", "x_test", "y_test")))


def _images(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32) / np.float32(255.0))[:, None, :, :]


# ---------------------------------------------------------------------------------
# mini-batches


class Batches:
    """The mini-batches of one epoch: `len()` of them, each `(x[idx], y[idx])`.

    With `shuffle`, the order is a permutation drawn from a generator seeded with
    (seed, epoch), so every epoch differs and any epoch can be replayed (e.g. on resume).
    `start` skips the first batches of the epoch (to continue an interrupted one).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = True,
                 seed: int = 0, epoch: int = 0, drop_last: bool = False, start: int = 0):
        if len(x) != len(y):
            raise ValueError(f"batches: {len(x)} inputs but {len(y)} labels")
        if int(batch_size) < 1:
            raise ValueError(f"batches: batch_size must be >= 1, got {batch_size}")
        self.x, self.y, self.batch_size = x, y, int(batch_size)
        n = len(x)
        self.order = (np.random.default_rng([int(seed), int(epoch)]).permutation(n) if shuffle
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
            yield self.x[idx], self.y[idx]


def batches(x, y, batch_size: int, shuffle: bool = True, seed: int = 0, epoch: int = 0,
            drop_last: bool = False, start: int = 0) -> Batches:
    """An iterable over one epoch's mini-batches `(x_batch, y_batch)`; see `Batches`.

    >>> for xb, yb in mg.data.batches(x, y, 64, seed=0, epoch=e):
    ...     sess.run(train_op, feed={x_in: xb, y_in: yb})
    """
    return Batches(np.asarray(x), np.asarray(y), batch_size, shuffle, seed, epoch, drop_last, start)
