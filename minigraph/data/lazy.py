"""Lazy image arrays: images that are decoded or scaled only when a batch asks for them.

A `LazyImages` object stands where a float32 array (N, C, H, W) would, and indexes like
one: `images[idx]` (an int array or list) and `images[i]` return float32 arrays in
[0, 1]; `images[a:b]` returns a lazy subset (nothing is decoded, like a NumPy view);
`np.asarray(images)` decodes everything. `len()`, `shape`, `dtype` and `ndim` are those
of the full array.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

__all__ = ["LazyImages", "ByteImages"]


class LazyImages:
    """Base class: subclasses give `shape` (N, C, H, W), `load(indices)` and `subset(indices)`."""

    dtype = np.dtype(np.float32)
    ndim = 4
    shape: Tuple[int, int, int, int]

    def load(self, indices: np.ndarray) -> np.ndarray:
        """The images at `indices` (in range, int64), as a float32 array (len(indices), C, H, W) in [0, 1]."""
        raise NotImplementedError

    def subset(self, indices: np.ndarray) -> "LazyImages":
        """A lazy array of the images at `indices` (in range, int64), in that order."""
        raise NotImplementedError

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        n = len(self)
        if isinstance(key, slice):
            return self.subset(np.arange(n)[key])
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not -n <= key < n:
                raise IndexError(f"image index {key} is out of range for {n} images")
            return self.load(np.array([key % n]))[0]
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(f"a boolean index must have shape ({n},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise IndexError(f"index lazy images with an int, a slice or a 1-d int array, got {key!r}")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"image indices must lie in [{-n}, {n}), got {idx.min()}..{idx.max()}")
        return self.load(idx % n if n else idx)

    def __array__(self, dtype=None, copy=None):
        out = self.load(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {len(self)} images of {' x '.join(map(str, self.shape[1:]))}>"


class ByteImages(LazyImages):
    """uint8 images (N, C, H, W) kept as bytes and scaled to float32 / 255 per batch
    (CIFAR-10's 50,000 training images take 147 MiB so, 590 MiB as float32)."""

    def __init__(self, data: np.ndarray):
        data = np.asarray(data)
        if data.ndim != 4 or data.dtype != np.uint8:
            raise ValueError(f"ByteImages needs a uint8 array (N, C, H, W), got {data.dtype} {data.shape}")
        self.data = data
        self.shape = data.shape

    def load(self, indices: np.ndarray) -> np.ndarray:
        return self.data[indices].astype(np.float32) / np.float32(255.0)

    def subset(self, indices: np.ndarray) -> "ByteImages":
        return ByteImages(self.data[indices])
