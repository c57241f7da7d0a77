"""CIFAR-10 in its binary version (`cifar-10-binary.tar.gz`, not the pickled Python one).

Each of data_batch_1.bin ... data_batch_5.bin (training) and test_batch.bin holds records
of 3,073 bytes: the label (0..9), then the 32x32 image as 1,024 red, 1,024 green and 1,024
blue bytes, each plane row by row. batches.meta.txt names the classes, one per line.
"""
from __future__ import annotations

import os
import tarfile
from typing import Callable, Dict, Tuple

import numpy as np

from .dataset import DataError, Dataset
from .lazy import ByteImages

__all__ = ["load_cifar10", "read_cifar_batch", "CIFAR10_CLASSES"]

RECORD = 1 + 3 * 32 * 32
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE, META_FILE = "test_batch.bin", "batches.meta.txt"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def read_cifar_batch(data: bytes, name: str = "<bytes>") -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) from one binary batch file's bytes.

    `name` is the file named in errors: a size that is not a whole number of 3,073-byte
    records, or a label above 9, is a `DataError`.
    """
    if len(data) == 0 or len(data) % RECORD:
        raise DataError(f"{name}: {len(data)} bytes is not a whole number of {RECORD}-byte CIFAR-10 records "
                        "(is this the binary version?)")
    records = np.frombuffer(data, np.uint8).reshape(-1, RECORD)
    labels = records[:, 0]
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise DataError(f"{name}: record {bad[0]} has label {labels[bad[0]]}; CIFAR-10 labels are 0..9")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels.astype(np.int64)


def load_cifar10(path) -> Dataset:
    """CIFAR-10 from `path`: the folder with the .bin files, a folder holding
    `cifar-10-batches-bin/`, or the `cifar-10-binary.tar.gz` archive itself (read in place).

    Returns 50,000 training and 10,000 test images (any number of records per file is
    accepted) as lazy `ByteImages` (uint8 kept, scaled to float32 / 255 per batch), int64
    labels, and the class names from batches.meta.txt (the standard ten when it is absent).
    Every one of the six batch files must be present.
    """
    path = os.fspath(path)
    read = _archive_reader(path) if os.path.isfile(path) else _folder_reader(path)
    parts = {name: read_cifar_batch(read(name), name) for name in TRAIN_FILES + (TEST_FILE,)}
    x_train = np.concatenate([parts[n][0] for n in TRAIN_FILES])
    y_train = np.concatenate([parts[n][1] for n in TRAIN_FILES])
    try:
        classes = tuple(line.strip() for line in read(META_FILE).decode("utf-8").splitlines() if line.strip())
    except DataError:
        classes = CIFAR10_CLASSES
    if len(classes) != 10:
        raise DataError(f"{META_FILE} in {path} names {len(classes)} classes; CIFAR-10 has 10")
    return Dataset(ByteImages(x_train), y_train, ByteImages(parts[TEST_FILE][0]), parts[TEST_FILE][1], classes)


def _folder_reader(path: str) -> Callable[[str], bytes]:
    if not os.path.isdir(path):
        raise DataError(f"no such CIFAR-10 folder or archive: {path}")
    inner = os.path.join(path, "cifar-10-batches-bin")
    folder = inner if os.path.isdir(inner) else path

    def read(name: str) -> bytes:
        try:
            with open(os.path.join(folder, name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise DataError(f"{folder}: no {name} (a CIFAR-10 binary folder holds "
                            f"{', '.join(TRAIN_FILES)}, {TEST_FILE} and {META_FILE})") from None
    return read


def _archive_reader(path: str) -> Callable[[str], bytes]:
    """Read members of a (gzip'd) tar archive by their base name, without extracting anything."""
    try:
        with tarfile.open(path, "r:*") as tar:
            contents: Dict[str, bytes] = {}
            for member in tar:
                base = os.path.basename(member.name)
                if member.isfile() and base in TRAIN_FILES + (TEST_FILE, META_FILE):
                    contents[base] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read the archive ({exc})") from None

    def read(name: str) -> bytes:
        if name not in contents:
            raise DataError(f"{path}: the archive has no {name}")
        return contents[name]
    return read
