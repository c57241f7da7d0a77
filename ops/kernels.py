"""Shared kernels and geometry of the CNN ops: padding rules, output sizes, strided windows.

Layout is NCHW. Padding is always handled in its resolved form `((top, bottom), (left, right))`;
`resolve_padding` turns the user forms (int, pair, explicit, "SAME", "VALID") into it.

Array functions take the array namespace `xp` (NumPy or CuPy) as their first argument and
know nothing else about the backend. Nothing here loops over pixels: windows are strided
views, convolutions are GEMMs, and the few Python loops run over kernel taps (KH * KW).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from minigraph.errors import ShapeError

Pair = Tuple[int, int]
Pads = Tuple[Pair, Pair]


# ---------------------------------------------------------------------------------
# geometry (pure Python, build time)


def as_pair(value, what: str, minimum: int = 1) -> Pair:
    """An int or a pair of ints -> (a, b), each >= `minimum`; ValueError naming `what` otherwise."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    else:
        try:
            a, b = value
        except (TypeError, ValueError):
            raise ValueError(f"{what} must be an int or a pair of ints, got {value!r}") from None
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (a, b)):
            raise ValueError(f"{what} must be an int or a pair of ints, got {value!r}")
        pair = (int(a), int(b))
    if min(pair) < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value!r}")
    return pair


def effective_size(k: int, dilation: int) -> int:
    """The extent of a dilated kernel: (k - 1) * dilation + 1."""
    return (k - 1) * dilation + 1


def same_padding(size: int, k: int, stride: int, dilation: int) -> Pair:
    """TensorFlow's SAME rule for one dimension: out = ceil(size / stride), the total padding
    max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0), the odd cell at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + effective_size(k, dilation) - size, 0)
    return (total // 2, total - total // 2)


def resolve_padding(padding, in_hw: Sequence[Optional[int]], k_hw: Pair, stride: Pair,
                    dilation: Pair = (1, 1), what: str = "padding") -> Pads:
    """The padding forms users write -> ((top, bottom), (left, right)).

    `padding` is an int, a pair (ph, pw), explicit ((top, bottom), (left, right)), "SAME"
    (TensorFlow's rule, needs the static input size `in_hw`) or "VALID" (no padding).
    """
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0), (0, 0))
        if mode != "SAME":
            raise ValueError(f"{what} must be an int, a pair, ((top, bottom), (left, right)), "
                             f"'SAME' or 'VALID', got {padding!r}")
        if any(d is None for d in in_hw):
            raise ShapeError(f"{what}='SAME' needs static spatial dimensions, got {tuple(in_hw)}")
        return tuple(same_padding(n, k, s, d)  # type: ignore[return-value]
                     for n, k, s, d in zip(in_hw, k_hw, stride, dilation))
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        p = as_pair(padding, what, minimum=0)
        return ((p[0], p[0]), (p[1], p[1]))
    try:
        first, second = padding
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an int, a pair, ((top, bottom), (left, right)), "
                         f"'SAME' or 'VALID', got {padding!r}") from None
    if isinstance(first, (int, np.integer)):
        p = as_pair((first, second), what, minimum=0)
        return ((p[0], p[0]), (p[1], p[1]))
    return (as_pair(first, what, minimum=0), as_pair(second, what, minimum=0))


def out_size(size: Optional[int], k: int, stride: int, dilation: int, pad: Pair) -> Optional[int]:
    """Output length of a strided window sweep: (size + pads - effective k) // stride + 1.

    None when `size` is unknown; may be < 1 when the kernel does not fit (callers check).
    """
    if size is None:
        return None
    return (size + pad[0] + pad[1] - effective_size(k, dilation)) // stride + 1


def check_fits(in_hw, k_hw: Pair, stride: Pair, dilation: Pair, pads: Pads, what: str = "kernel"):
    """The output (OH, OW) of a window sweep, or a ShapeError if the kernel outgrows the padded input."""
    out = []
    for axis, n, k, s, d, p in zip("HW", in_hw, k_hw, stride, dilation, pads):
        o = out_size(n, k, s, d, p)
        if o is not None and o < 1:
            raise ShapeError(f"{what} {k_hw} (extent {effective_size(k, d)} along {axis} with dilation {d}) "
                             f"is larger than the padded input ({n} + {p[0]} + {p[1]} along {axis})")
        out.append(o)
    return tuple(out)


def is_zero_padding(pads: Pads) -> bool:
    return pads == ((0, 0), (0, 0))


# ---------------------------------------------------------------------------------
# array kernels (take xp)


def pad(xp, x, pads: Pads, value=0.0):
    """x (N, C, H, W) padded spatially with `value`; x itself when there is no padding."""
    if is_zero_padding(pads):
        return x
    (t, b), (l, r) = pads
    n, c, h, w = x.shape
    out = xp.full((n, c, h + t + b, w + l + r), value, dtype=x.dtype)
    out[:, :, t:t + h, l:l + w] = x
    return out


def crop(x, pads: Pads, in_hw: Pair):
    """The inverse of `pad`: the (H, W) interior of a padded (N, C, Hp, Wp) array."""
    if is_zero_padding(pads):
        return x
    (t, _), (l, _) = pads
    return x[:, :, t:t + in_hw[0], l:l + in_hw[1]]


def windows(xp, x_padded, k_hw: Pair, stride: Pair, dilation: Pair, out_hw: Pair):
    """A read-only strided view (N, C, KH, KW, OH, OW) of every window of a padded input:

    view[n, c, i, j, oh, ow] = x_padded[n, c, oh * sh + i * dh, ow * sw + j * dw].
    """
    n, c = x_padded.shape[:2]
    s_n, s_c, s_h, s_w = x_padded.strides
    shape = (n, c, k_hw[0], k_hw[1], out_hw[0], out_hw[1])
    strides = (s_n, s_c, s_h * dilation[0], s_w * dilation[1], s_h * stride[0], s_w * stride[1])
    return xp.lib.stride_tricks.as_strided(x_padded, shape=shape, strides=strides)


def im2col(xp, x_padded, k_hw: Pair, stride: Pair, dilation: Pair, out_hw: Pair):
    """The patches of a padded input as one matrix (C * KH * KW, N * OH * OW): rows ordered
    (c, i, j), columns (n, oh, ow). The copy reads the window view along OW, its inner axis."""
    view = windows(xp, x_padded, k_hw, stride, dilation, out_hw)
    n, c = x_padded.shape[:2]
    rows = view.transpose(1, 2, 3, 0, 4, 5)
    return rows.reshape(c * k_hw[0] * k_hw[1], n * out_hw[0] * out_hw[1])


def channels_first(xp, x):
    """(N, C, H, W) -> the matrix (C, N * H * W) (a copy unless N == 1)."""
    n, c, h, w = x.shape
    return x.transpose(1, 0, 2, 3).reshape(c, n * h * w)


def batch_first(xp, m, n: int, hw: Pair):
    """The inverse of `channels_first`: (C, N * H * W) -> a contiguous (N, C, H, W)."""
    return xp.ascontiguousarray(m.reshape(m.shape[0], n, hw[0], hw[1]).transpose(1, 0, 2, 3))


def tap(x_padded, i: int, j: int, stride: Pair, dilation: Pair, out_hw: Pair):
    """The (N, C, OH, OW) strided slice of a padded array seen by kernel tap (i, j).

    tap[n, c, oh, ow] = x_padded[n, c, oh * sh + i * dh, ow * sw + j * dw]; writable when
    x_padded is, so `tap(dst, ...) += v` scatters v back to the cells the tap read.
    """
    top, left = i * dilation[0], j * dilation[1]
    return x_padded[:, :, top:top + stride[0] * (out_hw[0] - 1) + 1:stride[0],
                    left:left + stride[1] * (out_hw[1] - 1) + 1:stride[1]]


def conv_out_hw(in_hw, k_hw: Pair, stride: Pair, pads: Pads, dilation: Pair) -> Pair:
    return tuple(out_size(n, k, s, d, p) for n, k, s, d, p in zip(in_hw, k_hw, stride, dilation, pads))


def conv2d_forward(xp, x, w, stride: Pair, pads: Pads, dilation: Pair):
    """out[n, f, oh, ow] = sum_{c,i,j} w[f, c, i, j] * x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw].

    x (N, C, H, W), w (F, C, KH, KW) -> (N, F, OH, OW): im2col and one GEMM,
    (F, C*KH*KW) @ (C*KH*KW, N*OH*OW).
    """
    f, c, kh, kw = w.shape
    out_hw = conv_out_hw(x.shape[2:], (kh, kw), stride, pads, dilation)
    cols = im2col(xp, pad(xp, x, pads), (kh, kw), stride, dilation, out_hw)
    return batch_first(xp, xp.matmul(w.reshape(f, c * kh * kw), cols), x.shape[0], out_hw)


def conv2d_backprop_input(xp, g, w, in_hw: Pair, stride: Pair, pads: Pads, dilation: Pair):
    """The adjoint of `conv2d_forward` in x: g (N, F, OH, OW), w (F, C, KH, KW) -> (N, C, H, W).

    One GEMM per kernel tap, w[:, :, i, j].T @ g as (C, F) @ (F, N*OH*OW), added into the
    strided cells the tap read (in a (C, N, H_pad, W_pad) buffer).
    """
    n, f, oh, ow = g.shape
    _, c, kh, kw = w.shape
    (t, b), (l, r) = pads
    dx = xp.zeros((c, n, in_hw[0] + t + b, in_hw[1] + l + r), dtype=g.dtype)
    g2 = channels_first(xp, g)
    for i in range(kh):
        for j in range(kw):
            contrib = xp.matmul(w[:, :, i, j].T, g2).reshape(c, n, oh, ow)
            tap(dx, i, j, stride, dilation, (oh, ow))[...] += contrib
    return xp.ascontiguousarray(crop(dx, pads, in_hw).transpose(1, 0, 2, 3))


def conv2d_backprop_filter(xp, x, g, k_hw: Pair, stride: Pair, pads: Pads, dilation: Pair):
    """The adjoint of `conv2d_forward` in w: x (N, C, H, W), g (N, F, OH, OW) -> (F, C, KH, KW).

    gw[f, c, i, j] = sum_{n,oh,ow} g[n, f, oh, ow] * x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]:
    one GEMM, (F, N*OH*OW) @ (N*OH*OW, C*KH*KW).
    """
    f, c = g.shape[1], x.shape[1]
    cols = im2col(xp, pad(xp, x, pads), k_hw, stride, dilation, tuple(g.shape[2:]))
    return xp.matmul(channels_first(xp, g), cols.T).reshape(f, c, k_hw[0], k_hw[1])


def max_pool_winners(xp, x, k_hw: Pair, stride: Pair, pads: Pads, out_hw: Pair):
    """(max, winner) of every window: winner = the flat tap index i * KW + j of the FIRST
    maximum in row-major order. Padded cells hold -inf, so they never win over a real cell."""
    xp_ = pad(xp, x, pads, value=-np.inf)
    best = tap(xp_, 0, 0, stride, (1, 1), out_hw).copy()
    winner = xp.zeros(best.shape, dtype=np.int32)
    for t in range(1, k_hw[0] * k_hw[1]):
        cand = tap(xp_, t // k_hw[1], t % k_hw[1], stride, (1, 1), out_hw)
        better = cand > best  # strict: ties keep the earlier tap
        winner = xp.where(better, t, winner).astype(np.int32, copy=False)
        best = xp.maximum(best, cand)
    return best, winner


def max_pool_forward(xp, x, k_hw: Pair, stride: Pair, pads: Pads, out_hw: Pair):
    """out[n, c, oh, ow] = max over the window (padded cells count as -inf)."""
    xp_ = pad(xp, x, pads, value=-np.inf)
    out = tap(xp_, 0, 0, stride, (1, 1), out_hw).copy()
    for t in range(1, k_hw[0] * k_hw[1]):
        xp.maximum(out, tap(xp_, t // k_hw[1], t % k_hw[1], stride, (1, 1), out_hw), out=out)
    return out


def max_pool_backward(xp, x, g, k_hw: Pair, stride: Pair, pads: Pads):
    """Each window's incoming gradient g (N, C, OH, OW) added to its winner -> (N, C, H, W)."""
    out_hw = g.shape[2:]
    _, winner = max_pool_winners(xp, x, k_hw, stride, pads, out_hw)
    dx = xp.zeros(pad(xp, x, pads).shape, dtype=g.dtype)
    for t in range(k_hw[0] * k_hw[1]):
        tap(dx, t // k_hw[1], t % k_hw[1], stride, (1, 1), out_hw)[...] += g * (winner == t)
    return xp.ascontiguousarray(crop(dx, pads, x.shape[2:]))


def max_pool_gather(xp, x, gg, k_hw: Pair, stride: Pair, pads: Pads, out_hw: Pair):
    """The adjoint of `max_pool_backward` in g: gg (N, C, H, W) read at each window's winner."""
    _, winner = max_pool_winners(xp, x, k_hw, stride, pads, out_hw)
    gp = pad(xp, gg, pads)
    out = xp.zeros(winner.shape, dtype=gg.dtype)
    for t in range(k_hw[0] * k_hw[1]):
        out += tap(gp, t // k_hw[1], t % k_hw[1], stride, (1, 1), out_hw) * (winner == t)
    return out


def pool_counts(xp, in_hw: Pair, k_hw: Pair, stride: Pair, pads: Pads, out_hw: Pair, dtype):
    """(OH, OW): how many real (unpadded) cells each window covers."""
    axes = []
    for n, k, s, p, o in zip(in_hw, k_hw, stride, pads, out_hw):
        start = xp.arange(o) * s - p[0]
        axes.append(xp.minimum(start + k, n) - xp.maximum(start, 0))
    return (axes[0][:, None] * axes[1][None, :]).astype(dtype)


def avg_divisor(xp, in_hw, k_hw, stride, pads, out_hw, count_include_pad: bool, dtype):
    """What each window's sum is divided by: KH * KW, or the count of real cells."""
    if count_include_pad:
        return xp.asarray(k_hw[0] * k_hw[1], dtype=dtype)
    return pool_counts(xp, in_hw, k_hw, stride, pads, out_hw, dtype)


def avg_pool_forward(xp, x, k_hw: Pair, stride: Pair, pads: Pads, out_hw: Pair, count_include_pad: bool):
    """The mean of each window (padded cells are zeros, excluded from the count unless asked)."""
    xp_ = pad(xp, x, pads)
    out = tap(xp_, 0, 0, stride, (1, 1), out_hw).copy()
    for t in range(1, k_hw[0] * k_hw[1]):
        out += tap(xp_, t // k_hw[1], t % k_hw[1], stride, (1, 1), out_hw)
    out /= avg_divisor(xp, x.shape[2:], k_hw, stride, pads, out_hw, count_include_pad, x.dtype)
    return out


def avg_pool_backward(xp, g, in_hw: Pair, k_hw: Pair, stride: Pair, pads: Pads, count_include_pad: bool):
    """The adjoint of `avg_pool_forward`: g / divisor spread over each window's cells."""
    out_hw = g.shape[2:]
    share = g / avg_divisor(xp, in_hw, k_hw, stride, pads, out_hw, count_include_pad, g.dtype)
    (t_, b), (l, r) = pads
    dx = xp.zeros((g.shape[0], g.shape[1], in_hw[0] + t_ + b, in_hw[1] + l + r), dtype=g.dtype)
    for t in range(k_hw[0] * k_hw[1]):
        tap(dx, t // k_hw[1], t % k_hw[1], stride, (1, 1), out_hw)[...] += share
    return xp.ascontiguousarray(crop(dx, pads, in_hw))


def channel_window_sum(xp, x, before: int, after: int):
    """out[:, c] = sum of x[:, c - before : c + after + 1] along axis 1 (zeros beyond the edges)."""
    out = x.copy()
    c = x.shape[1]
    for o in range(1, before + 1):
        if o < c:
            out[:, o:] += x[:, :c - o]
    for o in range(1, after + 1):
        if o < c:
            out[:, :c - o] += x[:, o:]
    return out
