"""mg.data.digits: the shipped file, the same arrays and split as before it was shipped."""
import gzip
import hashlib
import importlib
import importlib.resources

import numpy as np
import pytest

import minigraph as mg
from minigraph.data import stratified_split
from minigraph.data.uci_digits import DIGITS_FILE

# SHA-256 of x_train, y_train, x_test, y_test (in that order, C-order bytes) as
# mg.data.digits() returned them when it still read scikit-learn's copy at run time.
PINNED = {(0.25, 0): "34dd26a957da53cccdea4e6d17b8947aa2dd6c889c65514f55ea28d80366c5d1",
          (100, 3): "4f0647423f652254523ca5460453aa09bf6a06ac2fece754f6e92b0952862a9d"}


def digest(ds) -> str:
    h = hashlib.sha256()
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("test_size,seed", list(PINNED))
def test_same_arrays_and_split_as_before(test_size, seed):
    assert digest(mg.data.digits(test_size=test_size, seed=seed)) == PINNED[(test_size, seed)]


def test_shipped_file_is_scikit_learns_copy_byte_for_byte():
    sklearn_data = pytest.importorskip("sklearn.datasets")
    theirs = importlib.resources.files("sklearn.datasets").joinpath("data", "digits.csv.gz").read_bytes()
    with open(DIGITS_FILE, "rb") as f:
        assert f.read() == theirs
    # and the arrays are load_digits()'s, split as the loader promises
    raw = sklearn_data.load_digits()
    x = (raw.images.astype(np.float32) / np.float32(16))[:, None]
    for seed in (0, 1, 7):
        ds = mg.data.digits(seed=seed)
        train, test = stratified_split(raw.target, 0.25, seed)
        np.testing.assert_array_equal(ds.x_train, x[train])
        np.testing.assert_array_equal(ds.x_test, x[test])
        np.testing.assert_array_equal(ds.y_train, raw.target[train])
        np.testing.assert_array_equal(ds.y_test, raw.target[test])


def test_works_without_scikit_learn(without_modules):
    without_modules("sklearn", "scipy")
    ds = mg.data.digits()
    assert digest(ds) == PINNED[(0.25, 0)] and ds.classes == tuple("0123456789")


def test_pixels_against_the_csv_parsed_by_hand():
    lines = gzip.decompress(open(DIGITS_FILE, "rb").read()).decode().splitlines()
    assert len(lines) == 1797
    ds = mg.data.digits(test_size=0.5, seed=4)
    table = {}
    for line in lines:
        values = [int(v) for v in line.split(",")]
        assert len(values) == 65 and all(0 <= v <= 16 for v in values[:64]) and 0 <= values[64] <= 9
        table.setdefault(tuple(v / 16 for v in values[:64]), set()).add(values[64])
    for img, label in zip(ds.x_test[:60], ds.y_test[:60]):
        assert label in table[tuple(float(p) for p in img.reshape(64))]


def test_a_damaged_file_is_an_error(tmp_path, monkeypatch):
    bad = tmp_path / "digits.csv.gz"
    bad.write_bytes(open(DIGITS_FILE, "rb").read()[:-10])
    module = importlib.import_module("minigraph.data.uci_digits")
    monkeypatch.setattr(module, "DIGITS_FILE", str(bad))
    with pytest.raises(mg.data.DataError, match=r"SHA-256 differs\); reinstall"):
        mg.data.digits()
    monkeypatch.setattr(module, "DIGITS_FILE", str(tmp_path / "absent.csv.gz"))
    with pytest.raises(mg.data.DataError, match="is missing"):
        mg.data.digits()


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
    train, test = stratified_split(np.repeat(np.arange(10), 30), 0.25, seed=3)
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
