"""Translation invariance (the seed's "statistical invariance"): how much a layer's output and the
prediction change when the image moves by a few pixels, next to how much the pixels change.

    inv = mg.viz.translation_invariance(sess, x, logits, images, {"pooled": pool}, labels=y,
                                        path="invariance.png")

Each image is moved by s pixels (s in `shifts`) right, left, down and up in turn, the vacated
pixels set to 0 (`shift_images`). For every layer, and for the pixels themselves, the change
is the relative distance ||f(moved) - f(image)|| / ||f(image)|| averaged over the images (those
with f(image) = 0 left out) and the four directions. The prediction changes when the arg max
of the logits does; with `labels` the accuracy on the moved images is reported too.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Union

import numpy as np

from minigraph.errors import ShapeError
from minigraph.graph import Node

from . import figures
from .class_score import check_logits, check_positive, run_batched

DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))  # (dy, dx) unit moves: right, left, down, up


class Invariance(NamedTuple):
    """Per shift: the mean relative change of each layer (and of "pixels" and "logits"), the
    fraction of unchanged predictions and, with labels, the accuracy."""

    shifts: np.ndarray                  # (S,) pixels
    change: Dict[str, np.ndarray]       # name -> (S,) mean relative L2 change
    same_prediction: np.ndarray         # (S,) fraction of predictions equal to the unmoved image's
    accuracy: Optional[np.ndarray]      # (S,) accuracy on the moved images, or None without labels


def shift_images(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`images` (..., H, W) moved dy pixels down and dx right (negative: up, left), 0 where nothing moved in."""
    out = np.zeros_like(images)
    h, w = images.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src_y = slice(max(0, -dy), h - max(0, dy))
    src_x = slice(max(0, -dx), w - max(0, dx))
    dst_y = slice(max(0, dy), h - max(0, -dy))
    dst_x = slice(max(0, dx), w - max(0, -dx))
    out[..., dst_y, dst_x] = images[..., src_y, src_x]
    return out


def relative_change(moved: np.ndarray, base: np.ndarray) -> np.ndarray:
    """||moved - base|| / ||base|| per example (first axis); NaN where ||base|| = 0."""
    diff = np.sqrt(np.sum((moved - base).reshape(len(base), -1).astype(np.float64) ** 2, axis=1))
    norm = np.sqrt(np.sum(base.reshape(len(base), -1).astype(np.float64) ** 2, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, diff / np.where(norm > 0, norm, 1), np.nan)


def translation_invariance(sess, x: Node, logits: Node, images: np.ndarray, layers: Mapping[str, Node],
                           path: Union[str, os.PathLike, None] = None, labels: Optional[np.ndarray] = None,
                           shifts: Sequence[int] = (0, 1, 2, 3), feed: Optional[dict] = None,
                           batch_size: int = 256, subtitle: Optional[str] = None) -> Invariance:
    """Measure the module docstring's changes on `images` (N, C, H, W) fed to `x`, for each
    named node of `layers` (e.g. {"max-pooled features": pool}); `feed` adds other entries.
    With `path`, plots the changes and the unchanged predictions against the shift."""
    from tqdm.auto import tqdm
    check_logits(logits)
    images = np.asarray(images)
    if images.ndim != 4:
        raise ShapeError(f"translation_invariance: images must be (N, C, H, W), got shape {images.shape}")
    if not len(images):
        raise ShapeError("translation_invariance: images is empty; it needs at least one image")
    shifts = [int(s) for s in shifts]
    if not shifts or min(shifts) < 0:
        raise ValueError(f"shifts must be pixel counts >= 0, got {shifts!r}")
    check_positive(batch_size=batch_size)
    if labels is not None and np.shape(labels) != (len(images),):
        raise ValueError(f"labels must be one per image ({len(images)}), got shape {np.shape(labels)}")
    if path is not None:
        figures.check_path(path)
    names = list(layers)
    fetches = [layers[k] for k in names] + [logits]

    def run(batch: np.ndarray) -> List[np.ndarray]:
        return run_batched(sess, fetches, {**(feed or {}), x: batch}, x, batch_size)

    base = run(images)
    rows = [_measure_shift(s, images, base, run, names, labels)
            for s in tqdm(shifts, desc="translation invariance", unit="shift", leave=False, disable=None)]
    change = {k: np.array([r[k] for r in rows]) for k in ["pixels", *names, "logits"]}
    accuracy = np.array([r["accuracy"] for r in rows]) if labels is not None else None
    result = Invariance(np.array(shifts), change, np.array([r["same"] for r in rows]), accuracy)
    if path is not None:
        draw(result, len(images), path, subtitle)
    return result


def _measure_shift(s: int, images: np.ndarray, base: List[np.ndarray], run: Callable, names: List[str],
                   labels: Optional[np.ndarray]) -> Dict[str, float]:
    """The means of the module docstring for one shift s, over the images and the four directions:
    "pixels", each name, "logits", "same" (unchanged predictions) and "accuracy" (None without labels)."""
    rel: Dict[str, list] = {k: [] for k in ["pixels", *names, "logits"]}
    same, correct = [], []
    for dy, dx in DIRECTIONS:
        moved = shift_images(images, dy * s, dx * s)
        outs = run(moved)
        rel["pixels"].append(relative_change(moved, images))
        for k, out, ref in zip([*names, "logits"], outs, base):
            rel[k].append(relative_change(out, ref))
        pred = outs[-1].argmax(axis=1)
        same.append(pred == base[-1].argmax(axis=1))
        if labels is not None:
            correct.append(pred == np.asarray(labels))
    means: Dict[str, Optional[float]] = {k: _nanmean(np.concatenate(v)) for k, v in rel.items()}
    means["same"] = float(np.mean(np.concatenate(same)))
    means["accuracy"] = float(np.mean(np.concatenate(correct))) if labels is not None else None
    return means


def _nanmean(values: np.ndarray) -> float:
    """The mean of the defined values (NaN marks an all-zero reference), NaN if none is."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


def draw(inv: Invariance, count: int, path, subtitle: Optional[str] = None):
    """Relative change per shift (left) and unchanged predictions / accuracy (right), 11 x 4.5 inches."""
    fig = figures.new_figure(11, 4.5)
    figures.suptitle(fig, f"Translation invariance: {count} images moved 0-{inv.shifts.max()} pixels right, "
                          "left, down and up", subtitle)
    ax_change, ax_pred = fig.subplots(1, 2)
    markers = "osD^v<>ph*"
    for i, (name, values) in enumerate(inv.change.items()):
        ax_change.plot(inv.shifts, values, marker=markers[i % len(markers)], label=name)
    ax_change.set(xlabel="shift (pixels)", ylabel="||f(moved) - f(image)|| / ||f(image)||",
                  title="relative change (mean over images and directions)", xticks=inv.shifts)
    ax_change.set_ylim(bottom=0)
    ax_change.grid(alpha=0.3)
    ax_change.legend(fontsize=9)
    ax_pred.plot(inv.shifts, inv.same_prediction, marker="o", label="prediction unchanged")
    if inv.accuracy is not None:
        ax_pred.plot(inv.shifts, inv.accuracy, marker="s", label="accuracy")
    ax_pred.set(xlabel="shift (pixels)", ylabel="fraction of images", title="the prediction",
                ylim=(0, 1.02), xticks=inv.shifts)
    ax_pred.grid(alpha=0.3)
    ax_pred.legend(fontsize=9, loc="lower left")
    return figures.save(fig, path)


__all__ = ["translation_invariance", "Invariance", "shift_images", "relative_change"]
