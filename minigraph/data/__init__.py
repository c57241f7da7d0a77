"""Data sets and mini-batches.

- `digits()`: the 1,797 8x8 handwritten digits, shipped with minigraph;
- `load_mnist(folder)`: MNIST's four IDX files (`read_idx` reads any IDX file);
- `image_folder(root, size)`: your own images, one sub-folder per class (Pillow);
- `load_cifar10(path)`: CIFAR-10's binary version (folder or .tar.gz);
- `batches(x, y, batch_size, seed=, epoch=, augment=, rank=, size=)`: one epoch's
  mini-batches (each a `Batch`; with rank/size, one rank's part of each global batch);
- `random_crop_flip()`: crop-and-mirror augmentation; `prefetch(batches)`: the next
  batches are decoded in a background thread while the current one trains.

Every loader returns a `Dataset` (x_train, y_train, x_test, y_test, classes): images
(N, C, H, W) float32 in [0, 1] (image folders and CIFAR-10 as `LazyImages`, which decode
per batch), labels (N,) int64.
"""
from .augment import RandomCropFlip, random_crop_flip
from .batching import Batch, Batches, batches
from .cifar import CIFAR10_CLASSES, load_cifar10, read_cifar_batch
from .dataset import DataError, Dataset, stratified_split
from .uci_digits import digits
from .idx import load_mnist, read_idx
from .images import IMAGE_EXTENSIONS, ImageFiles, decode_image, image_folder
from .lazy import ByteImages, LazyImages
from .prefetching import Prefetch, prefetch

__all__ = [
    "Dataset", "DataError", "stratified_split", "digits", "load_mnist", "read_idx",
    "image_folder", "ImageFiles", "decode_image", "IMAGE_EXTENSIONS", "load_cifar10", "read_cifar_batch",
    "CIFAR10_CLASSES", "LazyImages", "ByteImages", "batches", "Batches", "Batch", "random_crop_flip",
    "RandomCropFlip", "prefetch", "Prefetch",
]
