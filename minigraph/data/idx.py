"""MNIST's IDX files: `read_idx` (any IDX array, raw or .gz, validated) and `load_mnist`.

Images come as float32 arrays `(N, 1, H, W)` scaled to [0, 1], labels as int64 arrays `(N,)`.
"""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from .dataset import DataError, Dataset

__all__ = ["read_idx", "load_mnist"]


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
