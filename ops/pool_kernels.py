"""Pooling kernels: max pooling (forward, winners, scatter and gather) and average pooling.

Each takes the runtime `rt` first (`rt.xp` is the array namespace; helpers take `xp`); no
Python loop runs over pixels, only over the taps of the window.
"""
from __future__ import annotations

import numpy as np

from .kernels import Pads, Pair, cl, crop, nchw, pad, tap


# Max pooling is separable: a window's maximum is the maximum over its KH row segments of
# each segment's maximum (KW-1 + KH-1 passes instead of KH*KW-1). Each pass runs over the taps
# clipped to real cells (padding never wins, so it is never materialised): the first tap that
# covers every output is copied, the others are folded in with maximum(..., out=...).


def _axis_taps(k: int, s: int, p: int, n_in: int, n_out: int):
    """[(tap, output slice, input slice)] along one axis for the taps that read a real cell."""
    taps = []
    for i in range(k):
        o, src = _clip(i, s, p, n_in, n_out)
        if o is not None:
            taps.append((i, o, src))
    return taps


def _along(axis: int, sl):
    return (slice(None),) * axis + (sl,)


def _clipped_max(xp, src, axis: int, taps, n_out: int, out) -> None:
    """out = the maximum over `taps` (from `_axis_taps`) of src along `axis` (-inf where no
    tap reads a real cell)."""
    full = next((t for t in taps if (t[1].start, t[1].stop) == (0, n_out)), None)
    if full is None:
        out[...] = -np.inf
    else:
        out[...] = src[_along(axis, full[2])]
    for t in taps:
        if t is not full:
            o = out[_along(axis, t[1])]
            xp.maximum(o, src[_along(axis, t[2])], out=o)


def _row_segment_max(xp, src, k_hw: Pair, stride: Pair, pads: Pads, out_w: int):
    """The maxima of each window row segment: (k, H, OW, C) from src (k, H, W, C)."""
    seg = xp.empty(src.shape[:2] + (out_w, src.shape[3]), dtype=src.dtype)
    _clipped_max(xp, src, 2, _axis_taps(k_hw[1], stride[1], pads[1][0], src.shape[2], out_w), out_w, seg)
    return seg


def max_pool_forward(rt, x, k_hw: Pair, stride: Pair, pads: Pads, out_hw: Pair):
    """out[n, c, oh, ow] = max over the window (padded cells count as -inf)."""
    xp = rt.xp
    n, c, h, w = x.shape
    v = cl(x)
    out = xp.empty((n, out_hw[0], out_hw[1], c), dtype=x.dtype)
    rows_taps = _axis_taps(k_hw[0], stride[0], pads[0][0], h, out_hw[0])

    def part(a, z):
        seg = _row_segment_max(xp, _channels_inner(xp, v[a:z]), k_hw, stride, pads, out_hw[1])
        _clipped_max(xp, seg, 1, rows_taps, out_hw[0], out[a:z])

    rt.run_chunks(part, n, rt.per_chunk(2 * h * w * c * x.itemsize))
    return nchw(out)


# Winners as indices: `max_pool_argmax` records, per output, the row-major window tap of its
# FIRST maximum; the backward pass then scatters g (one pass per tap: each tap's output grid
# reads distinct input cells, so `view += g * (idx == k)` over the taps accumulates overlapping
# windows without np.add.at) and its adjoint gathers at the same taps. Taps are clipped to the
# real cells (a padded cell never wins), so nothing is padded or cropped.


def argmax_dtype(k_hw: Pair):
    """The dtype of a window-tap index: uint8 when KH*KW <= 256, else int32."""
    return np.dtype(np.uint8) if k_hw[0] * k_hw[1] <= 256 else np.dtype(np.int32)


def _clip(i: int, s: int, p: int, n: int, o: int):
    """For window offset i (stride s, leading pad p, input length n, output length o): the
    output slice whose tap i reads real cells, and the input slice of those cells (None, None
    when no output does)."""
    lo = max(0, -(-(p - i) // s))
    hi = min(o, (n - 1 + p - i) // s + 1)
    if hi <= lo:
        return None, None
    start = lo * s + i - p
    return slice(lo, hi), slice(start, start + (hi - lo - 1) * s + 1, s)


def _real_taps(k_hw: Pair, stride: Pair, pads: Pads, in_hw: Pair, out_hw: Pair):
    """(k, output (rows, cols) slices, input (rows, cols) slices) for every window tap k that
    reads a real cell for at least one output, in row-major order."""
    out = []
    for i in range(k_hw[0]):
        oi, ii = _clip(i, stride[0], pads[0][0], in_hw[0], out_hw[0])
        for j in range(k_hw[1]):
            oj, ij = _clip(j, stride[1], pads[1][0], in_hw[1], out_hw[1])
            if oi is not None and oj is not None:
                out.append((i * k_hw[1] + j, (oi, oj), (ii, ij)))
    return out


def _channels_inner(xp, v):
    """A channels-last chunk v (N, H, W, C) whose channels are adjacent in memory: v itself,
    or a copy when they are not (NCHW memory: strided taps would be many times slower)."""
    return v if v.strides[3] == v.itemsize or v.shape[3] == 1 else xp.ascontiguousarray(v)


def max_pool_argmax(rt, x, y, k_hw: Pair, stride: Pair, pads: Pads):
    """idx[n, c, oh, ow] = the row-major tap k = i * KW + j of the FIRST maximum of the window
    (padded cells never win), given y = max_pool_forward(x). dtype `argmax_dtype(k_hw)`.

    idx counts the taps before the first one equal to the maximum: per tap, `not found yet`
    &= (tap < max) and idx += `not found yet` (no masked ufuncs, no padding; for uint8, the
    byte-wise steps run on uint64 views, 8 cells at a time)."""
    xp = rt.xp
    n, c, h, w = x.shape
    out_hw = tuple(y.shape[2:])
    v, yv = cl(x), cl(y)
    taps = _real_taps(k_hw, stride, pads, (h, w), out_hw)
    idx = xp.empty((n, out_hw[0], out_hw[1], c), dtype=argmax_dtype(k_hw))
    narrow = idx.dtype == np.uint8

    def part(a, z):
        best, src = _channels_inner(xp, yv[a:z]), _channels_inner(xp, v[a:z])
        size = best.size
        # bytes in buffers of whole 8-byte words: the byte-wise `and` and `+=` run on uint64
        # views, 8 cells per operation (a count stays below KH*KW <= 256: no carry)
        whole = -(-size // 8) * 8
        pending = xp.ones(whole, dtype=np.uint8)  # 1: no maximum among the taps so far
        less = xp.empty(whole, dtype=bool)
        count = xp.zeros(whole, dtype=idx.dtype)
        less_v = less[:size].reshape(best.shape)
        if narrow:
            p64, l64, c64 = (b.view(np.uint64) for b in (pending, less, count))
        else:
            p64, l64, c64 = pending, less.view(np.uint8), count
        real = {k: (o, i) for k, o, i in taps}
        for k in range(taps[-1][0]):  # at the last real tap, nothing is pending any more
            if k in real:
                (oi, oj), (ii, ij) = real[k]
                sub = less_v[:, oi, oj]
                if sub.size != size:  # tap k is padding at some outputs: there it is not the max
                    less[...] = True
                xp.less(src[:, ii, ij], best[:, oi, oj], out=sub)
                xp.bitwise_and(p64, l64, out=p64)
            # where tap k is padding, `pending` stays: the count includes the tap all the same
            c64 += p64
        idx[a:z] = count[:size].reshape(best.shape)

    rt.run_chunks(part, n, rt.per_chunk(4 * out_hw[0] * out_hw[1] * c * x.itemsize))
    return nchw(idx)


def _add_at_winners(xp, taps, ids, src, dst, scatter: bool) -> None:
    """For each real tap k: where the window's winner is k, add the value it moves. scatter:
    src is per window (N, OH, OW, C), dst per cell (N, H, W, C); gather: the other way round."""
    share = xp.empty(ids.shape, dtype=dst.dtype)
    for k, (oi, oj), (ii, ij) in taps:
        sub = share[:, oi, oj]
        xp.equal(ids[:, oi, oj], k, out=sub, casting="unsafe")
        if scatter:
            sub *= src[:, oi, oj]
            dst[:, ii, ij] += sub
        else:
            sub *= src[:, ii, ij]
            dst[:, oi, oj] += sub


def max_pool_scatter(rt, idx, g, in_hw: Pair, k_hw: Pair, stride: Pair, pads: Pads):
    """dx (N, C, H, W): each window's g (N, C, OH, OW) added at its winning tap idx (from
    `max_pool_argmax`); one pass per tap over disjoint strided views, channels-last memory."""
    xp = rt.xp
    n, c = g.shape[:2]
    out_hw = tuple(g.shape[2:])
    iv, gv = cl(idx), cl(g)
    taps = _real_taps(k_hw, stride, pads, in_hw, out_hw)
    # a tap whose cells are all of dx (stride 1, e.g. the centre of a 3x3 SAME window) writes
    # dx first, instead of zeros and an add
    covering = [t for t in taps if all(s.start == 0 and s.step == 1 and s.stop == size for s, size in zip(t[2], in_hw))]
    rest = [t for t in taps if t is not covering[0]] if covering else taps
    dx = xp.empty((n, in_hw[0], in_hw[1], c), dtype=g.dtype)

    def part(a, z):
        d, gs, ids = dx[a:z], _channels_inner(xp, gv[a:z]), iv[a:z]
        if covering:
            k, (oi, oj), _ = covering[0]
            xp.equal(ids[:, oi, oj], k, out=d, casting="unsafe")
            d *= gs[:, oi, oj]
        else:
            d[...] = 0
        _add_at_winners(xp, rest, ids, gs, d, scatter=True)

    rt.run_chunks(part, n, rt.per_chunk(4 * in_hw[0] * in_hw[1] * c * g.itemsize))
    return nchw(dx)


def max_pool_gather_at(rt, idx, gg, k_hw: Pair, stride: Pair, pads: Pads):
    """The adjoint of `max_pool_scatter`: out (N, C, OH, OW) = gg (N, C, H, W) read at each
    window's winning tap idx."""
    xp = rt.xp
    n, c, h, w = gg.shape
    out_hw = tuple(idx.shape[2:])
    iv, ggv = cl(idx), cl(gg)
    taps = _real_taps(k_hw, stride, pads, (h, w), out_hw)
    out = xp.empty((n, out_hw[0], out_hw[1], c), dtype=gg.dtype)

    def part(a, z):
        o, ids, src = out[a:z], iv[a:z], _channels_inner(xp, ggv[a:z])
        o[...] = 0
        _add_at_winners(xp, taps, ids, src, o, scatter=False)

    rt.run_chunks(part, n, rt.per_chunk(4 * out_hw[0] * out_hw[1] * c * gg.itemsize))
    return nchw(out)


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


def avg_pool_forward(rt, x, k_hw: Pair, stride: Pair, pads: Pads, out_hw: Pair, count_include_pad: bool):
    """The mean of each window (padded cells are zeros, excluded from the count unless asked)."""
    xp = rt.xp
    xp_ = pad(xp, x, pads)
    out = tap(xp_, 0, 0, stride, (1, 1), out_hw).copy()
    for t in range(1, k_hw[0] * k_hw[1]):
        out += tap(xp_, t // k_hw[1], t % k_hw[1], stride, (1, 1), out_hw)
    out /= avg_divisor(xp, x.shape[2:], k_hw, stride, pads, out_hw, count_include_pad, x.dtype)
    return out


def avg_pool_backward(rt, g, in_hw: Pair, k_hw: Pair, stride: Pair, pads: Pads, count_include_pad: bool):
    """The adjoint of `avg_pool_forward`: g / divisor spread over each window's cells."""
    xp = rt.xp
    out_hw = g.shape[2:]
    share = g / avg_divisor(xp, in_hw, k_hw, stride, pads, out_hw, count_include_pad, g.dtype)
    (t_, b), (l, r) = pads
    dx = xp.zeros((g.shape[0], g.shape[1], in_hw[0] + t_ + b, in_hw[1] + l + r), dtype=g.dtype)
    for t in range(k_hw[0] * k_hw[1]):
        tap(dx, t // k_hw[1], t % k_hw[1], stride, (1, 1), out_hw)[...] += share
    return xp.ascontiguousarray(crop(dx, pads, in_hw))
