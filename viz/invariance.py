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
from typing import Dict, Mapping, NamedTuple, Optional, Sequence, Union

import numpy as np

from minigraph.errors import ShapeError
from minigraph.graph import Node

from . import figures
from .class_score import check_logits

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
    shifts = [int(s) for s in shifts]
    if not shifts or min(shifts) < 0:
        raise ValueError(f"shifts must be pixel counts >= 0, got {shifts!r}")
    if labels is not None and np.shape(labels) != (len(images),):
        raise ValueError(f"labels must be one per image ({len(images)}), got shape {np.shape(labels)}")
    if path is not None:
        figures.check_path(path)
    names = list(layers)
    fetches = [layers[k] for k in names] + [logits]

    def outputs(batch: np.ndarray):
        parts = []
        for start in range(0, len(batch), batch_size):
            chunk = batch[start:start + batch_size]
            parts.append([np.asarray(v) for v in sess.run(fetches, {**(feed or {}), x: chunk})])
        return [np.concatenate(col) for col in zip(*parts)]

    base = outputs(images)
    base_pred = base[-1].argmax(axis=1)
    keys = ["pixels"] + names + ["logits"]
    change = {k: np.zeros(len(shifts)) for k in keys}
    same = np.zeros(len(shifts))
    accuracy = np.zeros(len(shifts)) if labels is not None else None
    moves = [(s, dy, dx) for s in shifts for dy, dx in DIRECTIONS]
    per_shift: Dict[int, Dict[str, list]] = {s: {k: [] for k in keys + ["same", "correct"]} for s in shifts}
    for s, dy, dx in tqdm(moves, desc="translation invariance", unit="shift", leave=False, disable=None):
        moved = shift_images(images, dy * s, dx * s)
        outs = outputs(moved)
        record = per_shift[s]
        record["pixels"].append(relative_change(moved, images))
        for k, out, ref in zip(names + ["logits"], outs, base):
            record[k].append(relative_change(out, ref))
        pred = outs[-1].argmax(axis=1)
        record["same"].append(pred == base_pred)
        if labels is not None:
            record["correct"].append(pred == np.asarray(labels))
    for i, s in enumerate(shifts):
        for k in keys:
            values = np.concatenate(per_shift[s][k])
            change[k][i] = float(np.nanmean(values)) if np.any(~np.isnan(values)) else np.nan
        same[i] = float(np.mean(np.concatenate(per_shift[s]["same"])))
        if accuracy is not None:
            accuracy[i] = float(np.mean(np.concatenate(per_shift[s]["correct"])))
    result = Invariance(np.array(shifts), change, same, accuracy)
    if path is not None:
        draw(result, len(images), path, subtitle)
    return result


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
