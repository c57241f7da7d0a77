"""The 1,797 8x8 handwritten digits, shipped with minigraph (no download, no scikit-learn).

`digits.csv.gz` beside this module is scikit-learn's copy of the test set of the UCI
"Optical Recognition of Handwritten Digits" data (E. Alpaydin, C. Kaynak, 1998), byte for
byte; see DIGITS_DATA.md here for its source and licence. One row per image: 64 pixels
(0..16, row by row) then the label.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import zlib

import numpy as np

from .dataset import DataError, Dataset, stratified_split

__all__ = ["digits", "DIGITS_FILE"]

DIGITS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.csv.gz")
_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"


def digits(test_size: float = 0.25, seed: int = 0) -> Dataset:
    """The 1,797 8x8 handwritten digits, split into train and test sets, stratified by
    class, by a generator seeded with `seed`.

    `test_size` is a fraction in (0, 1) of each class or an int number of test images.
    The same (test_size, seed) always gives the same split. Images (N, 1, 8, 8) float32,
    pixels (0..16) divided by 16; labels int64 0..9. The same arrays as scikit-learn's
    `load_digits()` gives, from the same file.
    """
    pixels, labels = _read_digits(DIGITS_FILE)
    x = (pixels.astype(np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    y = labels.astype(np.int64)
    train_idx, test_idx = stratified_split(y, test_size, seed)
    return Dataset(x[train_idx], y[train_idx], x[test_idx], y[test_idx], tuple(str(d) for d in range(10)))


def _read_digits(path: str):
    """(pixels (1797, 64) uint8, labels (1797,) uint8) from the shipped file, checked by its SHA-256."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DataError(f"the digits file that ships with minigraph is missing: {path} ({exc}); "
                        "reinstall minigraph") from None
    if hashlib.sha256(raw).hexdigest() != _SHA256:
        raise DataError(f"{path} is not the digits file minigraph ships (SHA-256 differs); reinstall minigraph")
    try:
        text = gzip.decompress(raw).decode("ascii")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:  # pragma: no cover - the hash guards this
        raise DataError(f"{path}: cannot decompress ({exc})") from None
    table = np.array([line.split(",") for line in text.split()], dtype=np.uint8)
    return table[:, :64], table[:, 64]
