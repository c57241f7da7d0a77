"""Occlusion maps: how the score of one class falls as a patch hides each part of the image
(Zeiler and Fergus 2014, "Visualizing and understanding convolutional networks").

    occ = mg.viz.occlusion(sess, logits, x, {x: batch}, class_index=3, path="occlusion.png")

For one example, a `patch` x `patch` square of value `fill` is centred on every `stride`-th
pixel (rows i = 0, stride, 2*stride, ... < H, likewise columns; the square spans rows
i - patch//2 .. i - patch//2 + patch - 1, clipped to the image) and the class score (the logit)
is recorded for each position. The occluded copies run in batches of `batch_size`.
"""
from __future__ import annotations

import os
from typing import NamedTuple, Optional, Union

import numpy as np

from minigraph.errors import FeedError
from minigraph.graph import Node

from . import figures
from .class_score import check_logits, check_positive, class_indices, example, run_batched


class Occlusion(NamedTuple):
    """The class score with the patch at each position, and without any patch."""

    scores: np.ndarray    # (ceil(H / stride), ceil(W / stride))
    baseline: float       # the score of the whole image
    class_index: int


def occlusion(sess, logits: Node, x: Node, feed: dict, class_index: int,
              path: Union[str, os.PathLike, None] = None, patch: int = 3, stride: int = 1,
              fill: float = 0.0, index: int = 0, batch_size: int = 256,
              subtitle: Optional[str] = None) -> Occlusion:
    """The occlusion map of example `index` of the batch fed to `x`, for class `class_index`
    (see the module docstring). With `path`, draws the input and the fall of the score
    (baseline - score) at each position, with a colour bar centred on no change."""
    classes = check_logits(logits)
    if x not in feed:
        raise FeedError(f"occlusion: the input {x.name!r} must be in the feed")
    check_positive(patch=patch, stride=stride, batch_size=batch_size)
    if path is not None:
        figures.check_path(path)
    batch = np.asarray(feed[x])
    image = batch[example(index, len(batch))]
    k = int(class_indices(class_index, 1, classes)[0])
    copies = occluded_copies(image, patch, stride, fill)
    grid = copies.shape[:2]
    flat = copies.reshape((-1,) + image.shape)
    scores = run_batched(sess, [logits], {**feed, x: flat}, x, batch_size, desc="occlusion")[0][:, k]
    baseline = float(sess.run(logits, {**feed, x: image[None]})[0, k])
    result = Occlusion(scores.reshape(grid), baseline, k)
    if path is not None:
        draw(image, result, patch, stride, fill, path, subtitle)
    return result


def occluded_copies(image: np.ndarray, patch: int, stride: int, fill: float) -> np.ndarray:
    """(rows, cols, C, H, W): `image` (C, H, W) with the patch at each position of the grid."""
    c, h, w = image.shape
    ys, xs = range(0, h, stride), range(0, w, stride)
    out = np.broadcast_to(image, (len(ys), len(xs), c, h, w)).copy()
    for a, i in enumerate(ys):
        top = max(0, i - patch // 2)
        bottom = max(0, i - patch // 2 + patch)
        for b, j in enumerate(xs):
            left = max(0, j - patch // 2)
            right = max(0, j - patch // 2 + patch)
            out[a, b, :, top:bottom, left:right] = fill
    return out


def draw(image: np.ndarray, occ: Occlusion, patch: int, stride: int, fill: float, path,
         subtitle: Optional[str] = None):
    """Input | fall of the score at each patch position, 9 x 4.2 inches (900 x 420 pixels)."""
    fig = figures.new_figure(9, 4.2)
    figures.suptitle(fig, f"Occlusion: fall of the class {occ.class_index} score when a {patch}x{patch} patch "
                          f"of {fill:g} hides each spot", subtitle)
    ax_in, ax_map = fig.subplots(1, 2)
    figures.show_input(fig, ax_in, image)
    drop = occ.baseline - occ.scores
    limit = figures.symmetric_limit(drop)
    im = ax_map.imshow(drop, cmap=figures.SIGNED, vmin=-limit, vmax=limit, interpolation="nearest")
    where = "patch centre" if stride == 1 else f"patch centre, every {stride} pixels"
    ax_map.set_title(f"score {occ.baseline:.2f} unhidden; red = hiding it hurts ({where})")
    figures.bare(ax_map)
    fig.colorbar(im, ax=ax_map, shrink=0.8, label="score without patch - score with patch")
    return figures.save(fig, path)


__all__ = ["occlusion", "Occlusion", "occluded_copies"]
