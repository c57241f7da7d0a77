"""Feature maps: what each channel of a layer responds to in one input.

    acts = mg.viz.feature_maps(sess, layer, {x: batch}, path="stem.png")

Returns the layer's activations for the whole fed batch (N, C, H, W); the picture shows
example `index`: the input on the left, one tile per channel on the right (the first
`max_channels` of them), every tile on one colour scale so that strong and silent channels
can be told apart.
"""
from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np

from minigraph.errors import ShapeError
from minigraph.graph import Node

from . import figures
from .class_score import check_positive, example, fed_image


def feature_maps(sess, node: Node, feed: dict, path: Union[str, os.PathLike, None] = None, index: int = 0,
                 image: Optional[Node] = None, max_channels: int = 96, subtitle: Optional[str] = None) -> np.ndarray:
    """The activations (N, C, H, W) of `node` for the fed batch; with `path`, the picture of
    example `index` (see the module docstring). `image` is the input placeholder shown beside
    the maps (default: the one fed 4-D placeholder `node` depends on)."""
    if node.ndim != 4:
        raise ShapeError(f"feature_maps: {node.name!r} must be a (N, C, H, W) feature map, got shape {node.shape}")
    check_positive(max_channels=max_channels)
    if path is not None:
        figures.check_path(path)
    _, images = fed_image(feed, node, image)
    acts = np.asarray(sess.run(node, feed))
    if path is not None:
        n = example(index, len(acts))
        draw(images[n], acts[n], node.name, max_channels, path, subtitle)
    return acts


def draw(image: np.ndarray, acts: np.ndarray, name: str, max_channels: int, path,
         subtitle: Optional[str] = None):
    """The input (3 x 3 inches) beside a grid of channel tiles, `figures.TILE` inches each, with
    up to 12 columns: (3 + cols * TILE + 1.2) x max(3, rows * TILE + 1.2) inches."""
    shown = acts[:max_channels]
    count = len(acts)
    cols = figures.grid_columns(len(shown))
    rows = -(-len(shown) // cols)
    width, height = 3 + cols * figures.TILE + 1.2, max(3.0, rows * figures.TILE + 1.2)
    fig = figures.new_figure(width, height)
    which = f"all {count} channels" if len(shown) == count else f"the first {len(shown)} of {count} channels"
    figures.suptitle(fig, f"Feature maps of {name}: {which}, {acts.shape[1]} x {acts.shape[2]} each", subtitle)
    left, right = fig.subfigures(1, 2, width_ratios=[3, width - 3])
    figures.show_input(left, left.subplots(), image, orientation="horizontal")
    lo = min(0.0, float(shown.min()))
    hi = max(float(shown.max()), lo + 1e-12)
    figures.tiles(right, shown, [f"ch {c}" for c in range(len(shown))], cols, figures.ACTIVATION, lo, hi, "activation")
    return figures.save(fig, path)


__all__ = ["feature_maps"]
