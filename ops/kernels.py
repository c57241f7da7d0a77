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

from . import threads

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


# ---------------------------------------------------------------------------------
# channels-last internals
#
# The heavy kernels work on channels-last memory: an (N, C, H, W) array is read as the
# (N, H, W, C) array x.transpose(0, 2, 3, 1), whose rows (N*H*W, C) are a matrix that BLAS
# takes as it is. Results are written channels-last too and handed back as NCHW-shaped views
# (out.transpose(0, 3, 1, 2)), as PyTorch's channels_last memory format does: the public
# layout stays NCHW, elementwise ufuncs keep the memory order, and the next conv, pool or
# concat reads its input without a copy. Work is split over the batch by `threads.run_chunks`.

CHUNK_BYTES = 6 << 20  # workspace per chunk (an im2col matrix): a few MiB, to stay in cache


def cl(x):
    """The channels-last (N, H, W, C) view of an (N, C, H, W) array, whatever its memory order."""
    return x.transpose(0, 2, 3, 1)


def has_rows(v) -> bool:
    """Whether the (N, H, W, C) view v reshapes to an (N*H*W, C) BLAS-ready matrix without a copy."""
    s, it = v.strides, v.itemsize
    return (s[3] == it and s[2] >= v.shape[3] * it and s[1] == s[2] * v.shape[2]
            and s[0] == s[1] * v.shape[1])


def rows(v):
    """(N, H, W, C) with `has_rows` -> its (N*H*W, C) matrix, a view."""
    return v.reshape(-1, v.shape[3])


def chunk_rows(xp, v):
    """The (N*H*W, C) matrix of a channels-last chunk: a view when its memory allows, else a copy."""
    return rows(v) if has_rows(v) else rows(xp.ascontiguousarray(v))


def image_mats(xp, x, a: int, z: int):
    """Images a..z of x (N, C, H, W) as [(start, stop, (images*H*W, C) matrix)], BLAS-ready:
    one block when x's memory is channels-last, one transposed view per image when each image
    is a contiguous (C, H*W) matrix (NCHW memory: no copy), else one copied block."""
    v = cl(x)[a:z]
    if has_rows(v):
        return [(a, z, rows(v))]
    n, c, h, w = x.shape
    if x.strides[1:] == (h * w * x.itemsize, w * x.itemsize, x.itemsize):
        return [(k, k + 1, x[k].reshape(c, h * w).T) for k in range(a, z)]
    return [(a, z, chunk_rows(xp, v))]


def nchw(v):
    """The NCHW-shaped view of a channels-last (N, H, W, C) array."""
    return v.transpose(0, 3, 1, 2)


def per_chunk(n_bytes_per_item: int) -> int:
    """Batch items per chunk so that a chunk's workspace is about CHUNK_BYTES."""
    return max(1, CHUNK_BYTES // max(1, int(n_bytes_per_item)))


def pad_nhwc(xp, v, pads: Pads, value=0.0):
    """v (N, H, W, C) padded spatially with `value`; v itself when there is no padding."""
    if is_zero_padding(pads):
        return v
    (t, b), (l, r) = pads
    n, h, w, c = v.shape
    out = xp.empty((n, h + t + b, w + l + r, c), dtype=v.dtype)
    out[:, :t] = value
    out[:, t + h:] = value
    out[:, t:t + h, :l] = value
    out[:, t:t + h, l + w:] = value
    out[:, t:t + h, l:l + w] = v
    return out


def tap_nhwc(v_padded, i: int, j: int, stride: Pair, dilation: Pair, out_hw: Pair):
    """The (N, OH, OW, C) strided slice of a padded channels-last array seen by tap (i, j)."""
    top, left = i * dilation[0], j * dilation[1]
    return v_padded[:, top:top + stride[0] * (out_hw[0] - 1) + 1:stride[0],
                    left:left + stride[1] * (out_hw[1] - 1) + 1:stride[1]]


def im2col_nhwc(xp, v_padded, k_hw: Pair, stride: Pair, dilation: Pair, out_hw: Pair):
    """The patches of a padded channels-last input as one matrix (N*OH*OW, KH*KW*C): rows
    ordered (n, oh, ow), columns (i, j, c). A view for 1x1 kernels with stride 1."""
    n, _, _, c = v_padded.shape
    if k_hw == (1, 1) and stride == (1, 1) and v_padded.shape[1:3] == tuple(out_hw):
        return chunk_rows(xp, v_padded)
    s_n, s_h, s_w, s_c = v_padded.strides
    shape = (n, out_hw[0], out_hw[1], k_hw[0], k_hw[1], c)
    strides = (s_n, s_h * stride[0], s_w * stride[1], s_h * dilation[0], s_w * dilation[1], s_c)
    view = xp.lib.stride_tricks.as_strided(v_padded, shape=shape, strides=strides)
    return view.reshape(n * out_hw[0] * out_hw[1], k_hw[0] * k_hw[1] * c)


def conv2d_forward(xp, x, w, stride: Pair, pads: Pads, dilation: Pair, b=None, relu: bool = False):
    """out[n, f, oh, ow] = b[f] + sum_{c,i,j} w[f, c, i, j] * x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw].

    x (N, C, H, W), w (F, C, KH, KW), b (F,) or None -> (N, F, OH, OW) (channels-last memory);
    with `relu`, max(out, 0) (applied while the chunk is in cache).
    Per chunk of the batch: im2col (rows*, KH*KW*C) and one GEMM with w as (KH*KW*C, F).
    """
    n, c = x.shape[:2]
    f, _, kh, kw = w.shape
    out_hw = conv_out_hw(x.shape[2:], (kh, kw), stride, pads, dilation)
    v = cl(x)
    wm = xp.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(kh * kw * c, f))
    out = xp.empty((n, out_hw[0], out_hw[1], f), dtype=xp.result_type(x, w))

    def part(a, z):
        cols = im2col_nhwc(xp, pad_nhwc(xp, v[a:z], pads), (kh, kw), stride, dilation, out_hw)
        o = rows(out[a:z])
        xp.matmul(cols, wm, out=o)
        if b is not None:
            o += b
        if relu:
            xp.maximum(o, 0, out=o)

    item = out_hw[0] * out_hw[1] * max(kh * kw * c, f) * x.itemsize
    threads.run_chunks(xp, part, n, per_chunk(item), flops=2.0 * out.size * kh * kw * c)
    return nchw(out)


def conv2d_backprop_input(xp, g, w, in_hw: Pair, stride: Pair, pads: Pads, dilation: Pair):
    """The adjoint of `conv2d_forward` in x: g (N, F, OH, OW), w (F, C, KH, KW) -> (N, C, H, W).

    Per chunk: one GEMM g_rows (rows, F) @ w (F, KH*KW*C), then each tap's columns added into
    the strided cells it read (in a padded channels-last buffer).
    """
    n, f, oh, ow = g.shape
    _, c, kh, kw = w.shape
    (t, b_), (l, r) = pads
    ext = ((kh - 1) * dilation[0], (kw - 1) * dilation[1])
    fits = max(t, b_) <= ext[0] and max(l, r) <= ext[1]
    if stride == (1, 1) and (kh, kw) != (1, 1) and fits and (f < 2 * c or c < 64):
        # stride 1: the full correlation of g with the flipped, transposed kernel (its im2col
        # has F columns per tap; the tap scatter below wins when F >= 2C and C rows are long)
        w_flip = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
        full = ((ext[0] - t, ext[0] - b_), (ext[1] - l, ext[1] - r))
        return conv2d_forward(xp, g, w_flip, (1, 1), full, dilation)
    gv = cl(g)
    wm = xp.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(f, kh * kw * c))
    dx = xp.empty((n, in_hw[0], in_hw[1], c), dtype=xp.result_type(g, w))
    direct = (kh, kw) == (1, 1) and stride == (1, 1) and is_zero_padding(pads)

    def part(a, z):
        if direct:
            xp.matmul(chunk_rows(xp, gv[a:z]), wm, out=rows(dx[a:z]))
            return
        cols = xp.matmul(chunk_rows(xp, gv[a:z]), wm).reshape(z - a, oh, ow, kh, kw, c)
        buf = xp.zeros((z - a, in_hw[0] + t + b_, in_hw[1] + l + r, c), dtype=dx.dtype)
        for i in range(kh):
            for j in range(kw):
                tap_nhwc(buf, i, j, stride, dilation, (oh, ow))[...] += cols[:, :, :, i, j]
        dx[a:z] = buf[:, t:t + in_hw[0], l:l + in_hw[1]]

    item = oh * ow * kh * kw * c * g.itemsize
    threads.run_chunks(xp, part, n, per_chunk(item), flops=2.0 * g.size * kh * kw * c)
    return nchw(dx)


def conv2d_backprop_filter(xp, x, g, k_hw: Pair, stride: Pair, pads: Pads, dilation: Pair):
    """The adjoint of `conv2d_forward` in w: x (N, C, H, W), g (N, F, OH, OW) -> (F, C, KH, KW).

    gw[f, c, i, j] = sum_{n,oh,ow} g[n, f, oh, ow] * x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]:
    per chunk one GEMM (F, rows) @ (rows, KH*KW*C); the chunks' sums added.
    """
    f, c = g.shape[1], x.shape[1]
    kh, kw = k_hw
    out_hw = tuple(g.shape[2:])
    v, gv = cl(x), cl(g)

    def part(a, z):
        cols = im2col_nhwc(xp, pad_nhwc(xp, v[a:z], pads), k_hw, stride, dilation, out_hw)
        return xp.matmul(chunk_rows(xp, gv[a:z]).T, cols)

    item = out_hw[0] * out_hw[1] * kh * kw * c * x.itemsize
    parts = threads.run_chunks(xp, part, x.shape[0], per_chunk(item), flops=2.0 * g.size * kh * kw * c)
    gw = sum(parts[1:], parts[0]) if parts else xp.zeros((f, kh * kw * c), dtype=xp.result_type(x, g))
    return xp.ascontiguousarray(gw.reshape(f, kh, kw, c).transpose(0, 3, 1, 2))


def conv1x1_forward(xp, x, w, b=None, relu: bool = False):
    """out[n, f] = b[f] + sum_c w[f, c] x[n, c]: x (N, C, H, W), w (F, C) -> (N, F, H, W),
    one GEMM (rows, C) @ (C, F) per chunk of the batch (channels-last memory); with `relu`,
    max(out, 0)."""
    n, c, h, wd = x.shape
    f = w.shape[0]
    wt = w.reshape(f, c).T
    out = xp.empty((n, h, wd, f), dtype=xp.result_type(x, w))

    def part(a, z):
        for s, e, m in image_mats(xp, x, a, z):
            o = rows(out[s:e])
            xp.matmul(m, wt, out=o)
            if b is not None:
                o += b
            if relu:
                xp.maximum(o, 0, out=o)

    threads.run_chunks(xp, part, n, per_chunk(h * wd * max(c, f) * x.itemsize * 2), flops=2.0 * out.size * c)
    return nchw(out)


def conv1x1_backprop_filter(xp, x, g):
    """gw[f, c] = sum_{n,h,w} g[n, f, h, w] x[n, c, h, w]: (F, rows) @ (rows, C) per chunk, summed."""
    n, c, h, wd = x.shape
    def part(a, z):
        xs, gs = image_mats(xp, x, a, z), image_mats(xp, g, a, z)
        if len(xs) != len(gs):  # one side per image, the other one block: go per image
            xs = [m for k in range(a, z) for m in image_mats(xp, x, k, k + 1)]
            gs = [m for k in range(a, z) for m in image_mats(xp, g, k, k + 1)]
        acc = xp.matmul(gs[0][2].T, xs[0][2])
        for (_, _, xm), (_, _, gm) in zip(xs[1:], gs[1:]):
            acc += xp.matmul(gm.T, xm)
        return acc

    parts = threads.run_chunks(xp, part, n, per_chunk(h * wd * max(c, g.shape[1]) * x.itemsize * 2),
                               flops=2.0 * g.size * c)
    if not parts:
        return xp.zeros((g.shape[1], c), dtype=xp.result_type(x, g))
    return sum(parts[1:], parts[0])


def concat_channels(xp, xs):
    """(N, C_k, H, W) arrays joined along the channels into one channels-last buffer (NCHW view)."""
    n, _, h, w = xs[0].shape
    out = xp.empty((n, h, w, sum(x.shape[1] for x in xs)), dtype=xp.result_type(*xs))

    def part(a, z):
        start = 0
        for x in xs:
            out[a:z, :, :, start:start + x.shape[1]] = x[a:z].transpose(0, 2, 3, 1)
            start += x.shape[1]

    threads.run_chunks(xp, part, n, per_chunk(h * w * out.shape[3] * out.itemsize))
    return nchw(out)


# Max pooling is separable: a window's maximum is the maximum over its KH row segments of
# each segment's maximum (KW-1 + KH-1 passes instead of KH*KW-1).


def _row_taps(vp, kw: int, sw: int, ow: int):
    """The KW (N, Hp, OW, C) views of a padded channels-last array read by each window column."""
    return [vp[:, :, j:j + sw * (ow - 1) + 1:sw] for j in range(kw)]


def _col_taps(r, kh: int, sh: int, oh: int):
    """The KH (N, OH, OW, C) views of the row-segment array read by each window row."""
    return [r[:, i:i + sh * (oh - 1) + 1:sh] for i in range(kh)]


def _max_of(xp, views):
    best = views[0].copy()
    for v in views[1:]:
        xp.maximum(best, v, out=best)
    return best


def _segment_and_window_max(xp, vp, k_hw, stride, out_hw):
    """(row-segment maxima (N, Hp, OW, C), window maxima (N, OH, OW, C)) of a padded input."""
    seg = _max_of(xp, _row_taps(vp, k_hw[1], stride[1], out_hw[1]))
    return seg, _max_of(xp, _col_taps(seg, k_hw[0], stride[0], out_hw[0]))


def max_pool_forward(xp, x, k_hw: Pair, stride: Pair, pads: Pads, out_hw: Pair):
    """out[n, c, oh, ow] = max over the window (padded cells count as -inf)."""
    n, c, h, w = x.shape
    v = cl(x)
    out = xp.empty((n, out_hw[0], out_hw[1], c), dtype=x.dtype)

    def part(a, z):
        out[a:z] = _segment_and_window_max(xp, pad_nhwc(xp, v[a:z], pads, -np.inf), k_hw, stride, out_hw)[1]

    threads.run_chunks(xp, part, n, per_chunk(4 * (h + 2) * (w + 2) * c * x.itemsize))
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


def max_pool_argmax(xp, x, y, k_hw: Pair, stride: Pair, pads: Pads):
    """idx[n, c, oh, ow] = the row-major tap k = i * KW + j of the FIRST maximum of the window
    (padded cells never win), given y = max_pool_forward(x). dtype `argmax_dtype(k_hw)`.

    idx counts the taps before the first one equal to the maximum: per tap, `not found yet`
    &= (tap < max) and idx += `not found yet` (no masked ufuncs, no padding; for uint8, the
    byte-wise steps run on uint64 views, 8 cells at a time)."""
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

    threads.run_chunks(xp, part, n, per_chunk(4 * out_hw[0] * out_hw[1] * c * x.itemsize))
    return nchw(idx)


def max_pool_scatter(xp, idx, g, in_hw: Pair, k_hw: Pair, stride: Pair, pads: Pads):
    """dx (N, C, H, W): each window's g (N, C, OH, OW) added at its winning tap idx (from
    `max_pool_argmax`); one pass per tap over disjoint strided views, channels-last memory."""
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
        share = xp.empty(gs.shape, dtype=g.dtype)
        for k, (oi, oj), (ii, ij) in rest:
            sub = share[:, oi, oj]
            xp.equal(ids[:, oi, oj], k, out=sub, casting="unsafe")
            sub *= gs[:, oi, oj]
            d[:, ii, ij] += sub

    threads.run_chunks(xp, part, n, per_chunk(4 * in_hw[0] * in_hw[1] * c * g.itemsize))
    return nchw(dx)


def max_pool_gather_at(xp, idx, gg, k_hw: Pair, stride: Pair, pads: Pads):
    """The adjoint of `max_pool_scatter`: out (N, C, OH, OW) = gg (N, C, H, W) read at each
    window's winning tap idx."""
    n, c, h, w = gg.shape
    out_hw = tuple(idx.shape[2:])
    iv, ggv = cl(idx), cl(gg)
    taps = _real_taps(k_hw, stride, pads, (h, w), out_hw)
    out = xp.empty((n, out_hw[0], out_hw[1], c), dtype=gg.dtype)

    def part(a, z):
        o, ids, src = out[a:z], iv[a:z], _channels_inner(xp, ggv[a:z])
        o[...] = 0
        share = xp.empty(o.shape, dtype=gg.dtype)
        for k, (oi, oj), (ii, ij) in taps:
            sub = share[:, oi, oj]
            xp.equal(ids[:, oi, oj], k, out=sub, casting="unsafe")
            sub *= src[:, ii, ij]
            o[:, oi, oj] += sub

    threads.run_chunks(xp, part, n, per_chunk(4 * out_hw[0] * out_hw[1] * c * gg.itemsize))
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
    """out[:, c] = sum of x[:, c - before : c + after + 1] along axis 1 (zeros beyond the edges).

    The output keeps x's memory order; the batch is split over `threads.run_chunks`."""
    out = xp.empty_like(x)
    c = x.shape[1]

    def part(a, z):
        xs, os_ = x[a:z], out[a:z]
        os_[...] = xs
        for o in range(1, min(before, c - 1) + 1):
            os_[:, o:] += xs[:, :c - o]
        for o in range(1, min(after, c - 1) + 1):
            os_[:, :c - o] += xs[:, o:]

    item = 2 * x[:1].size * x.itemsize
    threads.run_chunks(xp, part, x.shape[0], per_chunk(item))
    return out


def lrn_forward(xp, x, size: int, alpha: float, beta: float, k: float):
    """y[:, c] = x[:, c] / (k + alpha / size * sum_{c' in window(c)} x[:, c']**2) ** beta, with
    window(c) = c - (size - 1) // 2 ... c + size // 2; per chunk of the batch, memory order kept."""
    before, after = (size - 1) // 2, size // 2
    out = xp.empty_like(x)

    def part(a, z):
        xs = x[a:z]
        sq = xs * xs
        s = xp.empty_like(sq)
        s[...] = sq
        c = x.shape[1]
        for o in range(1, min(before, c - 1) + 1):
            s[:, o:] += sq[:, :c - o]
        for o in range(1, min(after, c - 1) + 1):
            s[:, :c - o] += sq[:, o:]
        s *= alpha / size
        s += k
        xp.power(s, -beta, out=s)
        xp.multiply(xs, s, out=out[a:z])

    threads.run_chunks(xp, part, x.shape[0], per_chunk(3 * x[:1].size * x.itemsize))
    return out


# ---------------------------------------------------------------------------------
# relu's gradient on large arrays, chunked over axis 0 (memory-bound: threads pay only on
# the largest arrays, e.g. GoogLeNet's first layers)

THREADED_ELEMENTS = 1 << 22  # below this, one NumPy call on the calling thread is as fast


def _elementwise(xp, part, like):
    """out = empty_like(like) (same memory order) filled by part(out_chunk, a, z) over chunks
    of axis 0 (the batch); threaded through `threads.run_chunks` when the array is large."""
    out = xp.empty_like(like)
    if like.ndim == 0 or like.size < THREADED_ELEMENTS or like.shape[0] < 2:
        part(out, None, None)  # whole arrays
        return out
    # memory-bound work: one chunk per thread (more, smaller chunks only add pool round trips)
    threads.run_chunks(xp, lambda a, z: part(out[a:z], a, z), like.shape[0], like.shape[0],
                       flops=threads.PARALLEL_FLOPS)
    return out


def _rows_of(x, a, z):
    """x[a:z], or x itself when a is None."""
    return x if a is None else x[a:z]


def relu_grad(xp, g, y):
    """g * (y > 0) for same-shaped g and y, in g's memory order: the mask is written as 0/1
    straight into the output (no boolean temporary), then multiplied by g in place."""
    def part(o, a, z):
        xp.greater(_rows_of(y, a, z), 0, out=o, casting="unsafe")
        xp.multiply(o, _rows_of(g, a, z), out=o)
    return _elementwise(xp, part, g)

