"""Saliency maps: which input pixels the score of one class is most sensitive to.

    sal = mg.viz.saliency(sess, logits, x, {x: batch}, class_index=3, path="saliency.png")

The map of example n is max over channels of |d logits[n, k] / d x[n]| (Simonyan et al. 2014,
"Deep inside convolutional networks"), the gradient built with `mg.gradients` (see
`class_score`). With `smoothgrad=S`, the gradient is averaged over S copies of the input with
Gaussian noise of standard deviation `noise` x (max - min of that image) added, before the
absolute value (SmoothGrad, Smilkov et al. 2017; `smoothgrad=True` takes their 50 copies):
the copies are drawn from `np.random.default_rng(seed)`, copy s taking
`standard_normal(x.shape)` in turn.
"""
from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np

from minigraph.errors import FeedError
from minigraph.graph import Node

from . import figures
from .class_score import ClassIndex, check_logits, class_indices, class_score_gradients, example, one_hot_seed

SMOOTHGRAD_SAMPLES = 50  # `smoothgrad=True`: the number of noisy copies Smilkov et al. use


def saliency(sess, logits: Node, x: Node, feed: dict, class_index: ClassIndex,
             path: Union[str, os.PathLike, None] = None, smoothgrad: Union[int, bool] = 0, noise: float = 0.15,
             seed: int = 0, index: int = 0, subtitle: Optional[str] = None) -> np.ndarray:
    """The saliency maps (N, H, W) of the images fed to `x` for class `class_index` (an int, or
    one per example), as the module docstring defines them. `feed` holds `x` and anything else
    the logits need. With `path`, draws example `index`: the input, the map and the map over
    the input, each with its colour bar."""
    if path is not None:
        figures.check_path(path)
    smoothgrad = SMOOTHGRAD_SAMPLES if smoothgrad is True else smoothgrad
    grads = score_gradient(sess, logits, x, feed, class_index, smoothgrad, noise, seed)
    maps = np.abs(grads).max(axis=1)
    if path is not None:
        n = example(index, len(maps))
        classes = class_indices(class_index, len(maps), check_logits(logits))
        draw(np.asarray(feed[x])[n], maps[n], int(classes[n]), smoothgrad, noise, path, subtitle)
    return maps


def score_gradient(sess, logits: Node, x: Node, feed: dict, class_index: ClassIndex, smoothgrad: int = 0,
                   noise: float = 0.15, seed: int = 0) -> np.ndarray:
    """d logits[n, class n] / d x[n] for every fed example (N, C, H, W), or its SmoothGrad average."""
    from tqdm.auto import tqdm
    classes = check_logits(logits)
    if x not in feed:
        raise FeedError(f"saliency: the input {x.name!r} must be in the feed")
    if smoothgrad is True:
        smoothgrad = SMOOTHGRAD_SAMPLES
    if not isinstance(smoothgrad, (int, np.integer)) or smoothgrad < 0:
        raise ValueError(f"smoothgrad must be a number of noisy samples >= 0, got {smoothgrad!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    images = np.asarray(feed[x])
    seed_node, (gx,) = class_score_gradients(logits, [x])
    select = one_hot_seed(class_indices(class_index, len(images), classes), classes, logits.dtype)
    run_feed = {**feed, seed_node: select}
    if smoothgrad == 0:
        return np.asarray(sess.run(gx, run_feed), dtype=np.float64)
    axes = tuple(range(1, images.ndim))
    sigma = noise * (images.max(axis=axes, keepdims=True) - images.min(axis=axes, keepdims=True))
    rng = np.random.default_rng(seed)
    total = np.zeros(images.shape, dtype=np.float64)
    for _ in tqdm(range(smoothgrad), desc="SmoothGrad", unit="sample", leave=False, disable=None):
        noisy = (images + sigma * rng.standard_normal(images.shape)).astype(images.dtype)
        total += sess.run(gx, {**run_feed, x: noisy})
    return total / smoothgrad


def draw(image: np.ndarray, sal: np.ndarray, class_index: int, smoothgrad: int, noise: float,
         path, subtitle: Optional[str] = None):
    """Input | saliency map | map over the input, 12 x 4.2 inches (1200 x 420 pixels)."""
    fig = figures.new_figure(12, 4.2)
    method = (f"SmoothGrad: mean gradient of {smoothgrad} noisy copies (noise {noise:.0%} of the pixel range)"
              if smoothgrad else "plain gradient")
    figures.suptitle(fig, f"Saliency of class {class_index}: |d score / d pixel|, {method}", subtitle)
    ax_in, ax_map, ax_over = fig.subplots(1, 3)
    figures.show_input(fig, ax_in, image)
    top = figures.upper_limit(sal)
    im = ax_map.imshow(sal, cmap=figures.MAGNITUDE, vmin=0, vmax=top, interpolation="nearest")
    ax_map.set_title("saliency (bright = the score reacts most)")
    figures.bare(ax_map)
    fig.colorbar(im, ax=ax_map, shrink=0.8, label="|d score / d pixel|")
    im = figures.overlay(ax_over, image, sal, figures.MAGNITUDE, 0, top, "saliency with the input's outline")
    fig.colorbar(im, ax=ax_over, shrink=0.8, label="|d score / d pixel|")
    return figures.save(fig, path)


__all__ = ["saliency", "score_gradient"]
