"""Data: IDX files written here (raw, .gz, corrupt), the digits split, the batch iterator."""
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


# -- digits --------------------------------------------------------------------------

def test_digits_split():
    ds = mg.data.digits(test_size=0.25, seed=3)
    assert ds.x_train.shape[1:] == (1, 8, 8) and ds.x_train.dtype == np.float32
    assert ds.y_train.dtype == np.int64 and ds.num_classes == 10
    assert len(ds.x_train) + len(ds.x_test) == 1797 and len(ds.x_test) == round(0.25 * 1797)
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    # stratified: each class's share of the test set is its share of the whole, within one image
    counts = np.bincount(np.concatenate([ds.y_train, ds.y_test]), minlength=10)
    assert np.all(np.abs(np.bincount(ds.y_test, minlength=10) - 0.25 * counts) < 1)
    # the split partitions the indices: every example lands in exactly one part
    from minigraph.data import _stratified_split
    train, test = _stratified_split(np.repeat(np.arange(10), 30), 0.25, seed=3)
    assert len(set(train.tolist()) | set(test.tolist())) == 300 and len(train) + len(test) == 300
    assert len(test) == 75


def test_digits_reproducible_and_seeded():
    a, b = mg.data.digits(seed=1), mg.data.digits(seed=1)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    c = mg.data.digits(seed=2)
    assert not np.array_equal(a.y_test, c.y_test)
    assert len(mg.data.digits(test_size=100).x_test) == 100
    with pytest.raises(ValueError, match="test_size"):
        mg.data.digits(test_size=1.5)


def test_digits_match_sklearn_pixels():
    from sklearn.datasets import load_digits
    raw = load_digits()
    ds = mg.data.digits(seed=0)
    table = {r.tobytes(): t for r, t in zip((raw.images / 16.0).astype(np.float32).reshape(-1, 64), raw.target)}
    for img, label in zip(ds.x_test[:50], ds.y_test[:50]):
        assert table[img.reshape(64).tobytes()] == label


# -- batches -------------------------------------------------------------------------

def test_batches_cover_every_example_once():
    x = np.arange(10, dtype=np.float32)[:, None]
    y = np.arange(10)
    it = mg.data.batches(x, y, 4, seed=5, epoch=0)
    parts = list(it)
    assert len(it) == 3 and [len(p[1]) for p in parts] == [4, 4, 2]
    seen = np.concatenate([p[1] for p in parts])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    for xb, yb in parts:
        np.testing.assert_array_equal(xb[:, 0], yb)  # pairs stay together


def test_batches_seeded_per_epoch_and_resumable():
    x, y = np.zeros((23, 2)), np.arange(23)
    order = lambda **kw: np.concatenate([b for _, b in mg.data.batches(x, y, 5, **kw)]).tolist()  # noqa: E731
    assert order(seed=1, epoch=0) == order(seed=1, epoch=0)
    assert order(seed=1, epoch=0) != order(seed=1, epoch=1)
    assert order(seed=1, epoch=0) != order(seed=2, epoch=0)
    assert order(shuffle=False) == list(range(23))
    assert order(seed=1, epoch=4, start=2) == order(seed=1, epoch=4)[10:]
    dropped = mg.data.batches(x, y, 5, drop_last=True)
    assert len(dropped) == 4 and all(len(b) == 5 for _, b in dropped)
    with pytest.raises(ValueError, match="labels"):
        mg.data.batches(x, y[:3], 5)
    with pytest.raises(ValueError, match="batch_size"):
        mg.data.batches(x, y, 0)
