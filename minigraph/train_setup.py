"""The models and data that `minigraph train` knows by name.

`build_model(name, shape, num_classes, seed)` builds one of `MODELS` (mini_inception, sized
to the images; googlenet for 3 x 224 x 224) with a loss, in a new graph; `load_data(path,
image_size, channels)` opens the digits, an image folder or CIFAR-10.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, NamedTuple, Optional

import numpy as np

from minigraph import models, ops

from . import data as mgdata
from .graph import Graph, Node, get_default_graph
from .op import placeholder

__all__ = ["TrainModel", "MODELS", "build_model", "build_digits_model", "load_data"]


def build_digits_model(seed: int):
    """mini_inception for 8x8 digits, its initial weights drawn from `seed`."""
    return build_model("mini_inception", (1, 8, 8), 10, seed)


class TrainModel(NamedTuple):
    """What the loop needs of a model: feed x, y (and training=True); fetch logits and loss."""

    x: Node
    y: Node
    training: Node
    logits: Node
    probs: Node
    loss: Node
    first_example: Optional[Node] = None  # the index of the batch's first example (dropout masks)


def _mini_inception(shape, num_classes: int, rng):
    channels, h, w = shape
    if h != w:
        raise mgdata.DataError(f"mini_inception needs square images, got {h} x {w}")
    return models.mini_inception(num_classes, image_size=h, channels=channels, rng=rng)


def _googlenet(shape, num_classes: int, rng):
    if tuple(shape) != (3, 224, 224):
        raise mgdata.DataError(f"googlenet needs 3 x 224 x 224 images (--image-size 224 --channels 3), "
                               f"got {' x '.join(map(str, shape))}")
    net = models.googlenet(num_classes, rng=rng)
    y = placeholder((None,), dtype="int64", name="y")
    with get_default_graph().name_scope("loss"):
        loss = ops.softmax_cross_entropy(net.logits, y)
    return TrainModel(net.x, y, net.training, net.logits, net.probs, loss, net.first_example)


# name -> builder(input shape (C, H, W), num_classes, rng) of a model with x, y, training, logits, loss
MODELS: Dict[str, Callable] = {"mini_inception": _mini_inception, "googlenet": _googlenet}


def build_model(name: str, shape, num_classes: int, seed: int):
    """The model `name` (see MODELS) for inputs of `shape` (C, H, W) and `num_classes`
    classes, in a new graph, its initial weights drawn from `seed`."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    with Graph():
        return MODELS[name](tuple(shape), num_classes, np.random.default_rng(seed))


def load_data(path: Optional[str] = None, image_size: Optional[int] = None, channels: int = 3) -> mgdata.Dataset:
    """The data set at `path`: None -> `mg.data.digits()`; an archive, or a folder with
    CIFAR-10's binary batch files (directly or in `cifar-10-batches-bin/`) ->
    `mg.data.load_cifar10(path)`; any other folder -> `mg.data.image_folder(path,
    image_size or 32, channels)` (split 80/20 by class with seed 0, or its own train/ and
    test/ folders)."""
    if path is None:
        return mgdata.digits()
    if os.path.isfile(path) or any(os.path.isfile(os.path.join(path, *sub, "data_batch_1.bin"))
                                   for sub in ((), ("cifar-10-batches-bin",))):
        if os.path.isfile(path) and not path.endswith((".tar.gz", ".tgz", ".tar")):
            raise mgdata.DataError(f"{path} is a file, neither a folder of images (one sub-folder per "
                                   "class) nor a CIFAR-10 binary archive (.tar.gz)")
        if image_size not in (None, 32) or channels != 3:
            raise mgdata.DataError(f"{path} is CIFAR-10: its images are 3 x 32 x 32, not {channels} x "
                                   f"{image_size} x {image_size} (train without --image-size/--channels; "
                                   "a model made for other images cannot read them)")
        return mgdata.load_cifar10(path)
    return mgdata.image_folder(path, image_size or 32, channels)
