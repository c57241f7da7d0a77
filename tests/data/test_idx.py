"""mg.data.read_idx and load_mnist on IDX files written here (raw, .gz, corrupt)."""
import gzip
import os
import struct

import numpy as np
import pytest

import minigraph as mg
from minigraph.data import DataError


def idx_bytes(arr: np.ndarray, code: int) -> bytes:
    """The IDX encoding written out by hand: 0, 0, type code, ndim, big-endian dims, data."""
    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    big = arr.astype(arr.dtype.newbyteorder(">"))
    return header + big.tobytes()


def write(path, data: bytes, gz: bool = False):
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


def fake_mnist(folder, gz=False, n_train=7, n_test=3, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 5, 4), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 5, 4), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, arr in arrays.items():
        write(folder / name, idx_bytes(arr, 0x08), gz)
    return arrays


# -- IDX ---------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_load_mnist(tmp_path, gz):
    arrays = fake_mnist(tmp_path, gz)
    ds = mg.data.load_mnist(tmp_path)
    assert ds.x_train.shape == (7, 1, 5, 4) and ds.x_train.dtype == np.float32
    assert ds.y_train.dtype == np.int64 and ds.x_test.shape == (3, 1, 5, 4)
    for i in range(7):
        for r in range(5):
            for c in range(4):
                assert ds.x_train[i, 0, r, c] == np.float32(arrays["train-images-idx3-ubyte"][i, r, c]) / np.float32(255)
    assert ds.y_test.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0


@pytest.mark.parametrize("code,dtype", [(0x09, "int8"), (0x0B, "int16"), (0x0C, "int32"),
                                        (0x0D, "float32"), (0x0E, "float64")])
def test_read_idx_types_are_big_endian(tmp_path, code, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    write(tmp_path / "a.idx", idx_bytes(arr, code))
    out = mg.data.read_idx(tmp_path / "a.idx")
    assert out.dtype == np.dtype(dtype) and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, arr)


def test_alternative_names_with_a_dot(tmp_path):
    arrays = fake_mnist(tmp_path)
    for stem in arrays:
        os.rename(tmp_path / stem, tmp_path / stem.replace("-idx", ".idx"))
    assert len(mg.data.load_mnist(tmp_path).x_train) == 7


def test_corrupt_idx_files(tmp_path):
    good = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4), 0x08)
    cases = {
        "short": (good[:3], "not an IDX file"),
        "magic": (b"\x01\x02" + good[2:], "bad magic"),
        "code": (good[:2] + b"\x42" + good[3:], "bad magic"),
        "header": (good[:6], "truncated IDX header"),
        "truncated": (good[:-1], "truncated"),
        "trailing": (good + b"\x00", "trailing bytes"),
    }
    for name, (data, message) in cases.items():
        write(tmp_path / name, data)
        with pytest.raises(DataError, match=message):
            mg.data.read_idx(tmp_path / name)
    (tmp_path / "bad.gz").write_bytes(b"this is not gzip data")
    with pytest.raises(DataError, match="cannot decompress"):
        mg.data.read_idx(tmp_path / "bad.gz")
    gz = gzip.compress(good)
    (tmp_path / "cut.gz").write_bytes(gz[:len(gz) // 2])
    with pytest.raises(DataError, match="cannot decompress"):
        mg.data.read_idx(tmp_path / "cut.gz")
    with pytest.raises(DataError, match="no such IDX file"):
        mg.data.read_idx(tmp_path / "absent")


def test_inconsistent_mnist_folders(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        mg.data.load_mnist(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no train-images-idx3-ubyte file"):
        mg.data.load_mnist(tmp_path)
    fake_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(6, np.uint8), 0x08))
    with pytest.raises(DataError, match="7 images but 6 labels"):
        mg.data.load_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.full(7, 12, np.uint8), 0x08))
    with pytest.raises(DataError, match="0..9"):
        mg.data.load_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros((7, 1), np.uint8), 0x08))
    with pytest.raises(DataError, match="1-d uint8"):
        mg.data.load_mnist(tmp_path)
