"""Grad-CAM: where in the image a layer's evidence for one class lies.

    cam = mg.viz.grad_cam(sess, logits, layer, {x: batch}, class_index=3, path="grad_cam.png")

For the activations A (N, C, h, w) of `layer` (any conv or Inception-module output) and the
class score y = logits[n, k] (before any softmax), Selvaraju et al. 2017:

    weights[n, c] = mean over (i, j) of dy / dA[n, c, i, j]       (the gradient, spatially averaged)
    cam[n]        = relu(sum_c weights[n, c] * A[n, c])             (h, w)
    heatmap[n]    = cam[n] upsampled bilinearly to the image's H x W

The gradient is a graph node built once with `mg.gradients` (see `class_score`).
"""
from __future__ import annotations

import os
from typing import NamedTuple, Optional, Tuple, Union

import numpy as np

from minigraph.errors import ShapeError
from minigraph.graph import Node

from . import figures
from .class_score import (ClassIndex, check_logits, class_indices, class_score_gradients, example,
                          fed_image, one_hot_seed)


class GradCAM(NamedTuple):
    """Grad-CAM of a batch, as the module docstring defines it."""

    cam: np.ndarray        # (N, h, w) at the layer's resolution
    weights: np.ndarray    # (N, C) spatial means of d score / d activation
    heatmap: np.ndarray    # (N, H, W) cam upsampled to the input image


def grad_cam(sess, logits: Node, layer: Node, feed: dict, class_index: ClassIndex,
             path: Union[str, os.PathLike, None] = None, index: int = 0, image: Optional[Node] = None,
             subtitle: Optional[str] = None) -> GradCAM:
    """Grad-CAM of `layer` (N, C, h, w) for class `class_index` (an int, or one per example)
    over the fed batch. `image` is the input placeholder (default: the one fed 4-D placeholder
    `layer` depends on). With `path`, draws example `index`: the input, the coarse map, and the
    upsampled map over the input, each with its colour bar."""
    classes = check_logits(logits)
    if layer.ndim != 4:
        raise ShapeError(f"grad_cam: layer {layer.name!r} must be a (N, C, H, W) feature map, got shape {layer.shape}")
    _, images = fed_image(feed, layer, image)
    if path is not None:
        figures.check_path(path)
    chosen = class_indices(class_index, len(images), classes)
    seed_node, (g_layer,) = class_score_gradients(logits, [layer])
    acts, grads = sess.run([layer, g_layer], {**feed, seed_node: one_hot_seed(chosen, classes, logits.dtype)})
    acts = np.asarray(acts, dtype=np.float64)
    weights = np.asarray(grads, dtype=np.float64).mean(axis=(2, 3))
    cam = np.maximum(np.einsum("nc,nchw->nhw", weights, acts), 0.0)
    result = GradCAM(cam, weights, upsample_bilinear(cam, images.shape[2:]))
    if path is not None:
        n = example(index, len(images))
        draw(images[n], result.cam[n], result.heatmap[n], layer.name, int(chosen[n]), path, subtitle)
    return result


def upsample_bilinear(maps: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize the last two axes of `maps` (..., h, w) to `size` (H, W) by bilinear interpolation
    between cell centres: output pixel i samples input coordinate (i + 0.5) * h / H - 0.5,
    clamped to [0, h - 1] (the edge cells extend to the border). Any other axes are kept."""
    maps = np.asarray(maps, dtype=np.float64)
    (h, w), (out_h, out_w) = maps.shape[-2:], size

    def taps(n_in: int, n_out: int):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, pos - lo

    y0, y1, fy = taps(h, out_h)
    x0, x1, fx = taps(w, out_w)
    rows = maps[..., y0, :] * (1 - fy)[:, None] + maps[..., y1, :] * fy[:, None]
    return rows[..., x0] * (1 - fx) + rows[..., x1] * fx


def draw(image: np.ndarray, cam: np.ndarray, heatmap: np.ndarray, layer: str, class_index: int, path,
         subtitle: Optional[str] = None):
    """Input | coarse map | upsampled map over the input, 12 x 4.2 inches (1200 x 420 pixels)."""
    fig = figures.new_figure(12, 4.2)
    figures.suptitle(fig, f"Grad-CAM of class {class_index} at {layer}: relu(sum over channels c of "
                          f"mean(d score / d A_c) * A_c)", subtitle)
    ax_in, ax_cam, ax_over = fig.subplots(1, 3)
    figures.show_input(fig, ax_in, image)
    top = figures.upper_limit(cam)
    im = ax_cam.imshow(cam, cmap=figures.MAGNITUDE, vmin=0, vmax=top, interpolation="nearest")
    if cam.max() > 0:
        ax_cam.set_title(f"map at the layer ({cam.shape[0]} x {cam.shape[1]})")
    else:
        ax_cam.set_title("all 0: the averaged gradients weigh\nthis layer's evidence negative everywhere", fontsize=10)
    figures.bare(ax_cam)
    fig.colorbar(im, ax=ax_cam, shrink=0.8, label="class evidence")
    im = figures.overlay(ax_over, image, heatmap, figures.MAGNITUDE, 0, top,
                         f"upsampled to {heatmap.shape[0]} x {heatmap.shape[1]}, with the input's outline")
    fig.colorbar(im, ax=ax_over, shrink=0.8, label="class evidence")
    return figures.save(fig, path)


__all__ = ["grad_cam", "GradCAM", "upsample_bilinear"]
