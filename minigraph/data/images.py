"""Your own images: a folder with one sub-folder per class, decoded by Pillow batch by batch.

    root/
      cat/  001.jpg  002.png ...
      dog/  a.jpg ...

or, with a split chosen in advance, `root/train/<class>/...` and `root/test/<class>/...`.
"""
from __future__ import annotations

import os
from typing import List, Sequence, Tuple, Union

import numpy as np

from ..progress import progress as progress_bar
from .dataset import DataError, Dataset, stratified_split
from .lazy import LazyImages

__all__ = ["image_folder", "ImageFiles", "IMAGE_EXTENSIONS", "decode_image"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".pbm", ".tif", ".tiff", ".webp")
_MODES = {1: "L", 3: "RGB"}
_PILLOW_HINT = "reading image files needs Pillow: pip install 'minigraph[images]'"


def _pillow():
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise DataError(_PILLOW_HINT) from None
    return Image, ImageOps


def _pair(size) -> Tuple[int, int]:
    h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if not all(isinstance(d, (int, np.integer)) and d >= 1 for d in (h, w)):
        raise ValueError(f"image size must be a positive int or a pair (height, width), got {size!r}")
    return int(h), int(w)


def decode_image(path: str, size, channels: int = 3) -> np.ndarray:
    """The image file at `path` as uint8 (channels, H, W): converted to RGB (3) or
    grayscale (1), scaled so that it covers H x W with its aspect ratio kept, then cut to
    H x W around its centre (bilinear). A file Pillow cannot read is a `DataError` naming it."""
    image_mod, image_ops = _pillow()
    h, w = _pair(size)
    if channels not in _MODES:
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    try:
        with image_mod.open(path) as img:
            img.draft(_MODES[channels], (w, h))  # JPEG: decode at a reduced scale when it is far larger
            img = image_ops.fit(img.convert(_MODES[channels]), (w, h), method=image_mod.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file") from None
    except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, ... for broken files
        raise DataError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


class ImageFiles(LazyImages):
    """Image files as a lazy float32 array (N, channels, H, W) in [0, 1]: each batch's
    files are decoded (`decode_image`) when it is indexed. `paths[i]` is image i's file."""

    def __init__(self, paths: Sequence[str], size, channels: int = 3):
        self.paths: List[str] = list(paths)
        self.size = _pair(size)
        if channels not in _MODES:
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
        self.channels = channels
        self.shape = (len(self.paths), channels, *self.size)

    def load(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), *self.shape[1:]), np.float32)
        for k, i in enumerate(indices):
            out[k] = decode_image(self.paths[i], self.size, self.channels)
        return out / np.float32(255.0) if len(out) else out

    def subset(self, indices: np.ndarray) -> "ImageFiles":
        return ImageFiles([self.paths[i] for i in indices], self.size, self.channels)


def image_folder(root, size: Union[int, Tuple[int, int]] = 32, channels: int = 3, test_size: float = 0.2,
                 seed: int = 0, progress: bool = True) -> Dataset:
    """A `Dataset` of the images under `root`, one sub-folder per class (sorted names are
    the classes, label k is `classes[k]`), decoded lazily at `size` (int or (H, W)) with
    `channels` 3 (RGB) or 1 (grayscale); see `decode_image` and `ImageFiles`.

    When `root` holds `train/` and `test/` folders (each with the same class sub-folders),
    they are the split; otherwise the images are split by `stratified_split(labels,
    test_size, seed)`. Files are found recursively inside each class folder; only the
    extensions of `IMAGE_EXTENSIONS` count (other files are ignored). A progress bar counts
    the files while a large folder is indexed. Needs Pillow (`minigraph[images]`) to decode.
    """
    _pillow()
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DataError(f"no such image folder: {root}")
    with progress_bar(desc=f"indexing {root}", unit="files", enabled=progress, delay=0.5) as bar:
        if _has_split(root):
            classes, train = _index(os.path.join(root, "train"), bar)
            test_classes, test = _index(os.path.join(root, "test"), bar)
            if test_classes != classes:
                raise DataError(f"{root}: train/ and test/ must hold the same class folders; only in train/: "
                                f"{sorted(set(classes) - set(test_classes))}, only in test/: "
                                f"{sorted(set(test_classes) - set(classes))}")
            (train_paths, y_train), (test_paths, y_test) = train, test
        else:
            classes, (paths, labels) = _index(root, bar)
            train_idx, test_idx = stratified_split(labels, test_size, seed)
            train_paths, y_train = [paths[i] for i in train_idx], labels[train_idx]
            test_paths, y_test = [paths[i] for i in test_idx], labels[test_idx]
    return Dataset(ImageFiles(train_paths, size, channels), y_train,
                   ImageFiles(test_paths, size, channels), y_test, tuple(classes))


def _has_split(root: str) -> bool:
    return all(os.path.isdir(os.path.join(root, part)) for part in ("train", "test"))


def _index(folder: str, bar) -> Tuple[List[str], Tuple[List[str], np.ndarray]]:
    """(class names, (paths, int64 labels)) of `folder`'s class sub-folders, in sorted order."""
    classes = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise DataError(f"{folder}: no class sub-folders (expected one folder of images per class)")
    paths: List[str] = []
    labels: List[int] = []
    for label, name in enumerate(classes):
        found = _image_files(os.path.join(folder, name), bar)
        if not found:
            raise DataError(f"{os.path.join(folder, name)}: no image files "
                            f"(looked for {', '.join(IMAGE_EXTENSIONS)})")
        paths += found
        labels += [label] * len(found)
    return classes, (paths, np.array(labels, dtype=np.int64))


def _image_files(folder: str, bar) -> List[str]:
    """The image files under `folder` (recursively, hidden entries skipped), sorted."""
    found: List[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.join(dirpath, name))
                bar.update(1)
    return found

