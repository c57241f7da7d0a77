"""Data augmentation for image batches: random crops (after zero padding) and mirror flips."""
from __future__ import annotations

import dataclasses

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["RandomCropFlip", "random_crop_flip"]


@dataclasses.dataclass(frozen=True)
class RandomCropFlip:
    """Called as `aug(x, rng)` on a batch x (N, C, H, W): returns a new batch of the same shape.

    Each image is zero-padded by `padding` pixels on every side, then an H x W window at
    a random offset (dy, dx) in [0, 2 * padding]^2 is cut out of it (so the content moves
    by up to `padding` pixels); then, with `flip`, it is mirrored left-right with
    probability 1/2. The draws come from `rng`, offsets first, then flips. The input is
    never modified.
    """

    padding: int = 4
    flip: bool = True

    def __post_init__(self):
        if not isinstance(self.padding, (int, np.integer)) or self.padding < 0:
            raise ValueError(f"random_crop_flip: padding must be an int >= 0, got {self.padding!r}")

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"random_crop_flip: expected a batch (N, C, H, W), got shape {x.shape}")
        n, _, h, w = x.shape
        p = int(self.padding)
        out = x.copy()
        if p:
            padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            windows = sliding_window_view(padded, (h, w), axis=(2, 3))  # (N, C, 2p+1, 2p+1, H, W)
            dy, dx = rng.integers(0, 2 * p + 1, size=(2, n))
            out = windows[np.arange(n), :, dy, dx]                       # (N, C, H, W), a copy
        if self.flip:
            mirror = rng.random(n) < 0.5
            out[mirror] = out[mirror][..., ::-1]
        return out


def random_crop_flip(padding: int = 4, flip: bool = True) -> RandomCropFlip:
    """The standard CIFAR augmentation as a batch transform for `batches(..., augment=)`:
    shift each image by up to `padding` pixels (zero fill) and mirror half of them.
    `padding=0` only flips; `flip=False` only crops."""
    return RandomCropFlip(padding, flip)
