"""The seed tutorial's naive loop convolution (seed/000_31100bc4ef456971.txt, section 4.2.3),
corrected, kept only as the slow baseline of the benchmark's "naive conv" row.

Corrections to the seed's `conv_forward_naive`: the output keeps the input's dtype (the seed
allocated float64 with `np.zeros`), the bias is optional, and the output size is checked to
be at least 1. The loops themselves are the seed's: over output rows, columns and filters,
each step an `np.sum` over one (N, C, KH, KW) window.
"""
from __future__ import annotations

import numpy as np


def conv_forward_naive(x: np.ndarray, w: np.ndarray, b=None, stride: int = 1, pad: int = 0) -> np.ndarray:
    """out[n, f, i, j] = b[f] + sum_{c,p,q} w[f, c, p, q] * x_pad[n, c, i*stride + p, j*stride + q].

    x (N, C, H, W), w (F, C, KH, KW), b (F,) or None -> (N, F, OH, OW) with
    OH = 1 + (H + 2*pad - KH) // stride (likewise OW); zero padding `pad` on every side.
    """
    n, c, h, wd = x.shape
    f, c2, kh, kw = w.shape
    if c != c2:
        raise ValueError(f"x has {c} channels, w expects {c2}")
    oh = 1 + (h + 2 * pad - kh) // stride
    ow = 1 + (wd + 2 * pad - kw) // stride
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {kh}x{kw} does not fit the padded {h}x{wd} input")
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    out = np.zeros((n, f, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            window = x_pad[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            for k in range(f):
                out[:, k, i, j] = np.sum(window * w[k], axis=(1, 2, 3))
    if b is not None:
        out += b[None, :, None, None]
    return out
