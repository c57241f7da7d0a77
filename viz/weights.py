"""The filters a convolution learned, as pictures.

    w = mg.viz.filters(sess, g.get("stem/weights"), path="stem_filters.png")

Returns the weights as an array (what `sess.run(weights)` gives) and, with `path`, draws them
according to their shape (F, C, KH, KW):

- C = 1 (a first layer on grey images): one KH x KW tile per filter;
- C = 3 (a first layer on colour images): one colour tile per filter, the three input
  channels as red, green and blue, 0.5 grey meaning 0 (each filter scaled by its own
  largest |weight|), as in the first-layer pictures of AlexNet or GoogLeNet;
- C > 3 (deeper layers): a grid with one row per filter and one column per input channel,
  the first `max_filters` x `max_channels` of them;
- KH = KW = 1, or weights (F, C) of a 1x1 convolution: one F x C matrix.

Signed weights use a colour scale centred on 0 shared by every tile, with its colour bar.
"""
from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np

from minigraph.errors import ShapeError
from minigraph.graph import Node

from . import figures
from .class_score import check_positive


def filters(sess, weights: Node, path: Union[str, os.PathLike, None] = None, max_filters: int = 32,
            max_channels: int = 16, subtitle: Optional[str] = None) -> np.ndarray:
    """The value of `weights` (a conv's (F, C, KH, KW) or a 1x1 conv's (F, C) filter node); with
    `path`, the picture the module docstring describes."""
    if weights.ndim not in (2, 4):
        raise ShapeError(f"filters: {weights.name!r} must be conv weights (F, C, KH, KW) or (F, C), "
                         f"got shape {weights.shape}")
    check_positive(max_filters=max_filters, max_channels=max_channels)
    if path is not None:
        figures.check_path(path)
    w = np.asarray(sess.run(weights))
    if path is not None:
        w4 = w.reshape(w.shape + (1, 1)) if w.ndim == 2 else w
        if w4.shape[2:] == (1, 1):
            draw_matrix(w4[:, :, 0, 0], weights.name, path, subtitle)
        elif w4.shape[1] == 3:
            draw_colour(w4[:max_filters], len(w4), weights.name, path, subtitle)
        else:
            draw_grid(w4[:max_filters, :max_channels], w4.shape, weights.name, path, subtitle)
    return w


def _size_line(shape) -> str:
    f, c, kh, kw = shape
    return f"{f} filters, {kh}x{kw} over {c} input channel{'s' * (c != 1)}"


def draw_grid(w: np.ndarray, full_shape, name: str, path, subtitle: Optional[str] = None):
    """Filters (f, c, kh, kw): one tile per filter (c = 1, up to 12 per row) or per (filter,
    input channel) (c > 1, a row per filter); max(5, cols * TILE + 1.6) x max(3, rows * TILE + 1.4) inches."""
    f, c = w.shape[:2]
    limit = figures.symmetric_limit(w)
    if c == 1:
        maps, labels, rows_named, cols_named = w[:, 0], [f"filter {i}" for i in range(f)], None, None
        cols = figures.grid_columns(f)
        what = "one tile per filter"
    else:
        maps, labels = w.reshape((f * c,) + w.shape[2:]), None
        rows_named, cols_named = [f"filter {i}" for i in range(f)], [f"input {j}" for j in range(c)]
        cols = c
        what = "a row per filter, a column per input channel"
    rows = -(-len(maps) // cols)
    fig = figures.new_figure(max(5.0, cols * figures.TILE + 1.6), max(3.0, rows * figures.TILE + 1.4))
    shown = "" if (f, c) == tuple(full_shape[:2]) else f"; the first {f} filters x {c} input channels"
    figures.suptitle(fig, f"Filters of {name}: {_size_line(full_shape)}, {what}{shown}", subtitle)
    figures.tiles(fig, maps, labels, cols, figures.SIGNED, -limit, limit, "weight (red +, blue -)",
                  row_labels=rows_named, col_labels=cols_named)
    return figures.save(fig, path)


def draw_colour(w: np.ndarray, total: int, name: str, path, subtitle: Optional[str] = None):
    """Filters (f, 3, kh, kw) as colour tiles, up to 12 per row; (cols * TILE + 0.6) x (rows * TILE + 1.4) inches."""
    f = len(w)
    cols = figures.grid_columns(f)
    rows = -(-f // cols)
    fig = figures.new_figure(max(4.0, cols * figures.TILE + 0.6), max(2.5, rows * figures.TILE + 1.4))
    shown = "" if f == total else f" (the first {f} of {total})"
    figures.suptitle(fig, f"Filters of {name}{shown}: input channels as red/green/blue, grey = 0 (each filter "
                          "scaled to its largest |weight|)", subtitle)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        figures.bare(ax)
        if i >= f:
            ax.set_axis_off()
            continue
        rgb = np.moveaxis(w[i], 0, -1) / (2 * figures.symmetric_limit(w[i])) + 0.5
        ax.imshow(np.clip(rgb, 0, 1), interpolation="nearest")
        ax.set_title(f"filter {i}", fontsize=figures.TILE_FONT, pad=2)
    return figures.save(fig, path)


def draw_matrix(w: np.ndarray, name: str, path, subtitle: Optional[str] = None):
    """1x1 weights (f, c) as one matrix, 0.12 inch per cell (at least 5 x 4 inches in all)."""
    f, c = w.shape
    fig = figures.new_figure(max(5.0, c * 0.12 + 2.2), max(4.0, f * 0.12 + 1.6))
    figures.suptitle(fig, f"Filters of {name}: 1x1 weights, {f} filters (rows) x {c} input channels (columns)",
                     subtitle)
    ax = fig.subplots()
    limit = figures.symmetric_limit(w)
    im = ax.imshow(w, cmap=figures.SIGNED, vmin=-limit, vmax=limit, interpolation="nearest", aspect="auto")
    ax.set(xlabel="input channel", ylabel="filter")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.colorbar(im, ax=ax, label="weight (red +, blue -)")
    return figures.save(fig, path)


__all__ = ["filters"]
