"""mg.data.load_cifar10 on binary batch files written here (folder, nested folder, .tar.gz)."""
import os
import tarfile

import numpy as np
import pytest

import minigraph as mg
from minigraph.data import DataError

NAMES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
CLASSES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def records(n, seed):
    """n records written byte by byte: label, then the red, green and blue 32x32 planes row by row.
    Returns (bytes, images (n, 3, 32, 32) uint8, labels)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, n)
    out = bytearray()
    for img, label in zip(images, labels):
        out.append(int(label))
        for channel in range(3):
            for row in range(32):
                for col in range(32):
                    out.append(int(img[channel, row, col]))
    return bytes(out), images, labels


def write_cifar(folder, counts=(3, 2, 4, 1, 2, 3), meta=True):
    os.makedirs(folder, exist_ok=True)
    truth = {}
    for seed, (name, n) in enumerate(zip(NAMES, counts)):
        data, images, labels = records(n, seed)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
        truth[name] = (images, labels)
    if meta:
        with open(os.path.join(folder, "batches.meta.txt"), "w") as f:
            f.write("\n".join(CLASSES) + "\n\n")
    return truth


def check(ds, truth):
    x_train = np.concatenate([truth[n][0] for n in NAMES[:5]])
    y_train = np.concatenate([truth[n][1] for n in NAMES[:5]])
    assert ds.x_train.shape == (12, 3, 32, 32) and ds.x_test.shape == (3, 3, 32, 32)
    np.testing.assert_array_equal(np.asarray(ds.x_train), x_train.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(ds.y_train, y_train)
    np.testing.assert_array_equal(ds.x_test[[2, 0]], truth[NAMES[5]][0][[2, 0]].astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(ds.y_test, truth[NAMES[5]][1])
    assert ds.y_train.dtype == np.int64 and ds.x_test[0].dtype == np.float32


def test_folder_and_nested_folder(tmp_path):
    truth = write_cifar(tmp_path / "cifar-10-batches-bin")
    for path in (tmp_path, tmp_path / "cifar-10-batches-bin"):
        ds = mg.data.load_cifar10(path)
        check(ds, truth)
        assert ds.classes == tuple(CLASSES) and ds.num_classes == 10


def test_archive_read_in_place(tmp_path):
    truth = write_cifar(tmp_path / "src" / "cifar-10-batches-bin", meta=False)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    ds = mg.data.load_cifar10(archive)
    check(ds, truth)
    assert ds.classes == mg.data.CIFAR10_CLASSES  # no batches.meta.txt: the standard names
    assert not (tmp_path / "cifar-10-batches-bin").exists()  # nothing was extracted


def test_damaged_files_are_errors_naming_them(tmp_path):
    write_cifar(tmp_path)
    with open(tmp_path / "data_batch_3.bin", "ab") as f:
        f.write(b"\x00" * 10)
    with pytest.raises(DataError, match=r"data_batch_3.bin: \d+ bytes is not a whole number of 3073-byte"):
        mg.data.load_cifar10(tmp_path)
    write_cifar(tmp_path)
    data = bytearray(open(tmp_path / "test_batch.bin", "rb").read())
    data[3073] = 11  # the label of record 1
    open(tmp_path / "test_batch.bin", "wb").write(bytes(data))
    with pytest.raises(DataError, match="test_batch.bin: record 1 has label 11"):
        mg.data.load_cifar10(tmp_path)
    write_cifar(tmp_path)
    os.remove(tmp_path / "data_batch_5.bin")
    with pytest.raises(DataError, match="no data_batch_5.bin"):
        mg.data.load_cifar10(tmp_path)
    with pytest.raises(DataError, match="no such CIFAR-10 folder or archive"):
        mg.data.load_cifar10(tmp_path / "absent")
    (tmp_path / "fake.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(DataError, match="fake.tar.gz: cannot read the archive"):
        mg.data.load_cifar10(tmp_path / "fake.tar.gz")
    write_cifar(tmp_path)
    (tmp_path / "batches.meta.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="names 2 classes; CIFAR-10 has 10"):
        mg.data.load_cifar10(tmp_path)


def test_byte_images_scale_per_batch():
    raw = np.arange(2 * 3 * 2 * 2, dtype=np.uint8).reshape(2, 3, 2, 2) * 10
    x = mg.data.ByteImages(raw)
    assert len(x) == 2 and x.shape == raw.shape and x.dtype == np.float32
    np.testing.assert_array_equal(x[1], raw[1] / np.float32(255))
    sub = x[1:]
    assert isinstance(sub, mg.data.ByteImages) and sub.shape == (1, 3, 2, 2)
    with pytest.raises(ValueError, match="uint8 array"):
        mg.data.ByteImages(raw.astype(np.float32))
