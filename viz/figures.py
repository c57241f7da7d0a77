"""matplotlib plumbing shared by the pictures of what a network learned (filters, feature maps,
saliency, Grad-CAM, occlusion, translation invariance).

Figures are drawn off screen (the Agg canvas, no display needed) at `DPI` dots per inch with
constrained layout and saved without trimming, so a picture of W x H inches is exactly
W*DPI x H*DPI pixels. matplotlib is the `plot` extra; without it, drawing raises
`MatplotlibNotFoundError` (computing the arrays never needs it).
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from minigraph.errors import MinigraphError

DPI = 100
TILE = 0.8          # inches per tile of a grid (80 pixels: an 8x8 map gets 10 pixels per cell)
TILE_FONT = 8       # points, for the small labels over tiles
FORMATS = ("png", "svg", "pdf")

# colour maps: signed values (weights, changes) diverge around 0; magnitudes run from dark to bright
SIGNED = "RdBu_r"
MAGNITUDE = "inferno"
ACTIVATION = "viridis"


class MatplotlibNotFoundError(MinigraphError, ImportError):
    """Drawing a picture needs matplotlib (the `plot` extra) and it is not installed."""


def new_figure(width: float, height: float):
    """A matplotlib Figure of `width` x `height` inches on an Agg canvas, constrained layout."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MatplotlibNotFoundError("drawing pictures needs matplotlib: pip install 'minigraph[plot]'") from None
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def check_path(path: Union[str, os.PathLike]) -> Path:
    """`path` as a Path whose suffix is a format we write (.png, .svg, .pdf), else ValueError."""
    path = Path(path)
    if path.suffix.lower().lstrip(".") not in FORMATS:
        raise ValueError(f"cannot tell the picture format from {str(path)!r}: use a suffix among "
                         + ", ".join("." + f for f in FORMATS))
    return path


def save(fig, path: Union[str, os.PathLike]) -> Path:
    """Write `fig` to `path` (folders created; written to a temporary name, then renamed)."""
    path = check_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=DPI)
    os.replace(tmp, path)
    return path


def bare(ax) -> None:
    """No ticks or tick labels on an image axis."""
    ax.set_xticks([])
    ax.set_yticks([])


def as_picture(image: np.ndarray) -> np.ndarray:
    """One example (C, H, W) as matplotlib wants it: (H, W) for one channel, (H, W, 3) in [0, 1]
    (scaled by its range) for three; any other channel count shows the channels' mean."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        return image
    if image.shape[0] == 3:
        rgb = np.moveaxis(image, 0, -1)
        lo, hi = rgb.min(), rgb.max()
        return (rgb - lo) / (hi - lo) if hi > lo else np.zeros_like(rgb)
    return image.mean(axis=0)


def show_input(fig, ax, image: np.ndarray, title: str = "input", orientation: str = "vertical"):
    """Draw one example (C, H, W) in grey (or colour for three channels) with a pixel-value bar."""
    pic = as_picture(image)
    im = ax.imshow(pic, cmap="gray", interpolation="nearest")
    channels = image.shape[0] if np.ndim(image) == 3 else 1
    ax.set_title(title if channels in (1, 3) else f"{title} (mean of {channels} channels)")
    bare(ax)
    if pic.ndim == 2:
        fig.colorbar(im, ax=ax, shrink=0.8, label="pixel value", orientation=orientation)
    return im


def overlay(ax, image: np.ndarray, heat: np.ndarray, cmap: str, vmin: float, vmax: float, title: str):
    """`heat` (H, W) over the input: a grey image's outline (its contour half-way between its
    darkest and brightest pixel, in cyan) drawn on the heat map; a colour image shown under the
    heat map at half opacity. Returns the heat map's image, for a colour bar."""
    pic = as_picture(image)
    if pic.ndim == 2:
        im = ax.imshow(heat, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        lo, hi = float(pic.min()), float(pic.max())
        if hi > lo:  # padded with the darkest value so that outlines close at the border
            h, w = pic.shape
            ax.contour(np.arange(-1, w + 1), np.arange(-1, h + 1), np.pad(pic, 1, constant_values=lo),
                       levels=[(lo + hi) / 2], colors="cyan", linewidths=1.5, linestyles="solid")
            ax.set(xlim=(-0.5, w - 0.5), ylim=(h - 0.5, -0.5))
    else:
        ax.imshow(pic, interpolation="nearest")
        im = ax.imshow(heat, cmap=cmap, vmin=vmin, vmax=vmax, alpha=0.5, interpolation="nearest")
    ax.set_title(title)
    bare(ax)
    return im


def tiles(fig, maps: np.ndarray, labels: Optional[Sequence[str]], cols: int, cmap: str, vmin: float, vmax: float,
          colorbar_label: str, row_labels: Optional[Sequence[str]] = None,
          col_labels: Optional[Sequence[str]] = None):
    """A grid of 2-D `maps` (n, h, w) in `fig` (a figure or subfigure), `cols` per row, one shared
    colour scale [vmin, vmax] and one colour bar. `labels` title each tile; `row_labels` /
    `col_labels` instead name the rows (left) and the columns (top). Drawn as framed images in a
    single axes (hundreds of tiles stay fast to lay out); returns that axes."""
    n = len(maps)
    rows = max(1, -(-n // cols))
    h, w = maps.shape[1:3]
    tw, th = w / max(h, w), h / max(h, w)          # a tile's box, the longer side 1
    pitch_x, pitch_y = 1.2, 1.35 if labels is not None else 1.2
    ax = fig.subplots()
    im = None
    for i in range(n):
        x0, y0 = (i % cols) * pitch_x, (i // cols) * pitch_y
        im = ax.imshow(maps[i], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest",
                       extent=(x0, x0 + tw, y0 + th, y0))
        ax.add_patch(_frame(x0, y0, tw, th))
        if labels is not None:
            ax.text(x0 + tw / 2, y0 - 0.04, labels[i], ha="center", va="bottom", fontsize=TILE_FONT)
    for r, text in enumerate(row_labels or ()):
        ax.text(-0.08, r * pitch_y + th / 2, text, ha="right", va="center", fontsize=TILE_FONT)
    for c, text in enumerate(col_labels or ()):
        ax.text(c * pitch_x + tw / 2, -0.06, text, ha="center", va="bottom", fontsize=TILE_FONT)
    top = 0.3 if (labels is not None or col_labels) else 0.1
    ax.set(xlim=(-0.1 - (0.9 if row_labels else 0), (cols - 1) * pitch_x + tw + 0.1),
           ylim=((rows - 1) * pitch_y + th + 0.1, -top), aspect="equal")
    ax.set_axis_off()
    if im is not None:
        fig.colorbar(im, ax=ax, shrink=0.6, aspect=30, label=colorbar_label)
    return ax


def _frame(x0: float, y0: float, w: float, h: float):
    from matplotlib.patches import Rectangle
    return Rectangle((x0, y0), w, h, fill=False, linewidth=0.6, edgecolor="black")


def symmetric_limit(values: np.ndarray) -> float:
    """The largest |value| (1 for all zeros), for a colour scale centred on 0."""
    top = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return top if top > 0 else 1.0


def upper_limit(values: np.ndarray) -> float:
    """The largest value (1 when nothing is positive), for a colour scale from 0."""
    top = float(np.max(values)) if np.size(values) else 0.0
    return top if top > 0 else 1.0


def grid_columns(n: int, max_cols: int = 12) -> int:
    """Columns for n tiles: close to square, at most `max_cols`."""
    return max(1, min(max_cols, int(np.ceil(np.sqrt(n)))))


def suptitle(fig, title: str, subtitle: Optional[str] = None, size: float = 11) -> None:
    """The figure's title (and a second, smaller line of context), wrapped to the figure's width."""
    chars = max(20, int(fig.get_figwidth() * DPI / (0.6 * size * DPI / 72)))
    text = "\n".join(textwrap.wrap(title, chars))
    if subtitle:
        text += "\n" + "\n".join(textwrap.wrap(subtitle, chars))
    fig.suptitle(text, fontsize=size)


__all__ = ["DPI", "TILE", "MatplotlibNotFoundError", "new_figure", "check_path", "save", "bare",
           "as_picture", "show_input", "overlay", "tiles", "symmetric_limit", "upper_limit",
           "grid_columns", "suptitle", "SIGNED", "MAGNITUDE", "ACTIVATION"]
