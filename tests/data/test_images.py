"""mg.data.image_folder and ImageFiles on image files written here with Pillow."""
import os

import numpy as np
import pytest

import minigraph as mg
from minigraph.data import DataError

Image = pytest.importorskip("PIL.Image")


def save(path, arr, fmt=None):
    """Write `arr` (H, W, 3) or (H, W) uint8 as an image file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)
    return str(path)


def make_folder(root, counts, size=8, seed=0, ext="png"):
    """One sub-folder per class with counts[name] random RGB images; {path: array (H, W, 3)}."""
    rng = np.random.default_rng(seed)
    files = {}
    for name, n in counts.items():
        for i in range(n):
            arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            files[save(os.path.join(root, name, f"{i:03d}.{ext}"), arr)] = arr
    return files


def test_classes_labels_split_and_exact_pixels(tmp_path):
    files = make_folder(tmp_path, {"cat": 10, "dog": 6, "ant": 4})
    ds = mg.data.image_folder(tmp_path, 8, test_size=0.25, seed=1)
    assert ds.classes == ("ant", "cat", "dog") and ds.num_classes == 3
    assert len(ds.x_train) + len(ds.x_test) == 20 and len(ds.x_test) == 5
    assert ds.x_train.shape == (15, 3, 8, 8) and ds.y_train.dtype == np.int64
    labels = np.repeat([0, 1, 2], [4, 10, 6])  # the files in sorted order: ant/, cat/, dog/
    train_idx, test_idx = mg.data.stratified_split(labels, 0.25, 1)
    np.testing.assert_array_equal(ds.y_train, labels[train_idx])
    np.testing.assert_array_equal(ds.y_test, labels[test_idx])
    for part_x, part_y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        decoded = np.asarray(part_x)
        assert decoded.dtype == np.float32
        for k, path in enumerate(part_x.paths):
            assert ds.classes[part_y[k]] == os.path.basename(os.path.dirname(path))
            expected = files[path].transpose(2, 0, 1).astype(np.float32) / np.float32(255)
            np.testing.assert_array_equal(decoded[k], expected)


def test_resize_keeps_the_aspect_ratio_and_cuts_the_centre(tmp_path):
    wide = np.random.default_rng(0).integers(0, 256, (10, 20, 3), dtype=np.uint8)  # H 10, W 20
    path = save(tmp_path / "wide.png", wide)
    got = mg.data.decode_image(path, 10)
    np.testing.assert_array_equal(got, wide[:, 5:15].transpose(2, 0, 1))  # scale 1: a centre cut only
    tall = save(tmp_path / "tall.png", np.full((90, 30, 3), (12, 200, 77), np.uint8))
    got = mg.data.decode_image(tall, (6, 4))
    assert got.shape == (3, 6, 4) and np.all(got == np.array([12, 200, 77])[:, None, None])


def test_grayscale_uses_the_itu_601_luma(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, (5, 5, 3), dtype=np.uint8)
    got = mg.data.decode_image(save(tmp_path / "c.png", arr), 5, channels=1)
    luma = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
    assert got.shape == (1, 5, 5) and np.abs(got[0] - luma).max() <= 1.0
    gray = save(tmp_path / "g.png", arr[..., 0])  # a grayscale file read as RGB: three equal planes
    rgb = mg.data.decode_image(gray, 5, channels=3)
    assert all(np.array_equal(rgb[c], arr[..., 0]) for c in range(3))


def test_large_jpeg_decodes_reduced(tmp_path):
    colour = np.array([30, 140, 220], np.uint8)
    path = save(tmp_path / "big.jpg", np.broadcast_to(colour, (600, 800, 3)).copy(), "JPEG")
    got = mg.data.decode_image(path, 16)
    assert got.shape == (3, 16, 16) and np.abs(got.astype(int) - colour[:, None, None]).max() <= 3


def test_train_and_test_folders_are_the_split(tmp_path):
    make_folder(tmp_path / "train", {"a": 3, "b": 2})
    make_folder(tmp_path / "test", {"a": 1, "b": 1}, seed=1)
    ds = mg.data.image_folder(tmp_path, 8)
    assert (len(ds.x_train), len(ds.x_test)) == (5, 2) and ds.y_test.tolist() == [0, 1]
    assert all("/train/" in p for p in ds.x_train.paths) and all("/test/" in p for p in ds.x_test.paths)
    make_folder(tmp_path / "test", {"c": 1}, seed=2)
    with pytest.raises(DataError, match=r"same class folders; only in train/: \[\], only in test/: \['c'\]"):
        mg.data.image_folder(tmp_path, 8)


def test_other_files_and_hidden_entries_are_ignored(tmp_path):
    make_folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / ".hidden.png").write_bytes(b"junk")
    (tmp_path / ".cache").mkdir()
    save(str(tmp_path / "b" / "nested" / "deep.PNG"), np.zeros((8, 8, 3), np.uint8))
    ds = mg.data.image_folder(tmp_path, 8, test_size=1)
    assert ds.classes == ("a", "b") and len(ds.x_train) + len(ds.x_test) == 5
    assert any(p.endswith("deep.PNG") for p in ds.x_train.paths + ds.x_test.paths)


def test_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(DataError, match="no such image folder"):
        mg.data.image_folder(tmp_path / "absent", 8)
    with pytest.raises(DataError, match="no class sub-folders"):
        mg.data.image_folder(tmp_path, 8)
    make_folder(tmp_path, {"a": 2})
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=f"{tmp_path / 'empty'}: no image files"):
        mg.data.image_folder(tmp_path, 8)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_corrupt_image_is_an_error_naming_the_file(tmp_path, damage):
    files = make_folder(tmp_path, {"a": 4, "b": 4}, size=16)
    victim = sorted(files)[5]
    data = open(victim, "rb").read()
    open(victim, "wb").write({"garbage": b"this is no PNG at all" * 10, "truncated": data[:len(data) // 2],
                              "empty": b""}[damage])
    ds = mg.data.image_folder(tmp_path, 16, test_size=2, seed=0)
    with pytest.raises(DataError, match=f"{victim}: cannot decode image"):
        np.asarray(ds.x_train), np.asarray(ds.x_test)
    with pytest.raises(DataError, match=f"{tmp_path / 'gone.png'}: no such image file"):
        mg.data.decode_image(str(tmp_path / "gone.png"), 8)


def test_lazy_indexing_behaves_like_an_array(tmp_path):
    make_folder(tmp_path, {"a": 5, "b": 5})
    ds = mg.data.image_folder(tmp_path, 8, test_size=2)
    x = ds.x_train
    full = np.asarray(x)
    head = x[:3]
    assert isinstance(head, mg.data.ImageFiles) and head.shape == (3, 3, 8, 8) and head.paths == x.paths[:3]
    np.testing.assert_array_equal(np.asarray(x[::-2]), full[::-2])
    np.testing.assert_array_equal(x[2], full[2])
    np.testing.assert_array_equal(x[-1], full[-1])
    np.testing.assert_array_equal(x[[4, 0, 4]], full[[4, 0, 4]])
    mask = np.arange(8) % 3 == 0
    np.testing.assert_array_equal(x[mask], full[mask])
    assert x[np.array([], dtype=np.int64)].shape == (0, 3, 8, 8)
    with pytest.raises(IndexError, match="out of range"):
        x[8]
    with pytest.raises(IndexError, match=r"must lie in \[-8, 8\)"):
        x[[0, 9]]
    with pytest.raises(IndexError, match="1-d int array"):
        x[[0.5]]
    # batches over lazy images give exactly the batches over the decoded array
    lazy, eager = mg.data.batches(x, ds.y_train, 3, seed=1), mg.data.batches(full, ds.y_train, 3, seed=1)
    for (a, ya), (b, yb) in zip(lazy, eager):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)


def test_indexing_a_large_folder_reports_progress_as_plain_lines(tmp_path, monkeypatch, capsys):
    make_folder(tmp_path, {"a": 6, "b": 6}, size=2)
    monkeypatch.setenv("MINIGRAPH_PROGRESS_INTERVAL", "0")
    mg.data.image_folder(tmp_path, 8)
    err = capsys.readouterr().err
    assert f"indexing {tmp_path}: 12 files" in err and "\r" not in err
    mg.data.image_folder(tmp_path, 8, progress=False)
    assert capsys.readouterr().err == ""


def test_without_pillow_the_error_says_what_to_install(tmp_path, without_modules):
    make_folder(tmp_path, {"a": 2})
    without_modules("PIL")
    with pytest.raises(DataError, match=r"needs Pillow: pip install 'minigraph\[images\]'"):
        mg.data.image_folder(tmp_path, 8)
