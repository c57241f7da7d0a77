"""Convolution kernels (conv2d, its input and filter gradients, 1x1 conv, channel concat).

Each takes the runtime `rt` first (`rt.xp` is the array namespace); inputs are NCHW-shaped
(any memory order) and results are NCHW-shaped views of channels-last buffers (see `kernels`).
Convolutions are im2col + one GEMM per chunk of the batch, split by `rt.run_chunks`.
"""
from __future__ import annotations

from .kernels import (Pads, Pair, cl, conv_out_hw, has_rows, im2col_nhwc, image_mats, is_zero_padding,
                      masked_rows, nchw, pad_nhwc, rows, tap_nhwc)


def _bias_relu(xp, o, b, relu: bool) -> None:
    """In place on a chunk's GEMM output rows: add the bias (F,), then apply relu if asked."""
    if b is not None:
        o += b
    if relu:
        xp.maximum(o, 0, out=o)


def conv2d_forward(rt, x, w, stride: Pair, pads: Pads, dilation: Pair, b=None, relu: bool = False,
                   x_mask=None):
    """out[n, f, oh, ow] = b[f] + sum_{c,i,j} w[f, c, i, j] * x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw].

    x (N, C, H, W), w (F, C, KH, KW), b (F,) or None -> (N, F, OH, OW) (channels-last memory);
    with `relu`, max(out, 0) (applied while the chunk is in cache); with `x_mask` (x's shape),
    the convolution of x * (x_mask > 0) (a fused relu gradient, applied as each chunk is padded).
    Per chunk of the batch: im2col (rows*, KH*KW*C) and one GEMM with w as (KH*KW*C, F).
    """
    xp = rt.xp
    n, c = x.shape[:2]
    f, _, kh, kw = w.shape
    out_hw = conv_out_hw(x.shape[2:], (kh, kw), stride, pads, dilation)
    v = cl(x)
    mv = None if x_mask is None else cl(x_mask)
    wm = xp.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(kh * kw * c, f))
    out = xp.empty((n, out_hw[0], out_hw[1], f), dtype=xp.result_type(x, w))

    def part(a, z):
        padded = pad_nhwc(xp, v[a:z], pads, mask=None if mv is None else mv[a:z])
        cols = im2col_nhwc(xp, padded, (kh, kw), stride, dilation, out_hw)
        o = rows(out[a:z])
        xp.matmul(cols, wm, out=o)
        _bias_relu(xp, o, b, relu)

    item = out_hw[0] * out_hw[1] * max(kh * kw * c, f) * x.itemsize
    rt.run_chunks(part, n, rt.per_chunk(item), flops=2.0 * out.size * kh * kw * c)
    return nchw(out)


def full_correlation_fits(g_shape, w_shape, stride: Pair, pads: Pads, dilation: Pair) -> bool:
    """Whether `conv2d_backprop_input_full` can compute the input gradient: stride 1, a kernel
    larger than 1x1 and no padding side wider than the dilated kernel's extent."""
    kh, kw = w_shape[2:]
    (t, b), (l, r) = pads
    ext = ((kh - 1) * dilation[0], (kw - 1) * dilation[1])
    return stride == (1, 1) and (kh, kw) != (1, 1) and max(t, b) <= ext[0] and max(l, r) <= ext[1]


def full_correlation_preferred(g_shape, w_shape) -> bool:
    """The rule between the two input-gradient algorithms: the full correlation's im2col has F
    columns per tap, the tap scatter's GEMM C rows; the scatter wins when F >= 2C and C >= 64."""
    f, c = w_shape[:2]
    return f < 2 * c or c < 64


def conv2d_backprop_input_full(rt, g, w, in_hw: Pair, stride: Pair, pads: Pads, dilation: Pair, g_mask=None):
    """The adjoint of `conv2d_forward` in x for stride 1 (see `full_correlation_fits`): the full
    correlation of g (N, F, OH, OW) with the flipped, transposed kernel -> (N, C, H, W); with
    `g_mask`, of g * (g_mask > 0)."""
    kh, kw = w.shape[2:]
    (t, b), (l, r) = pads
    ext = ((kh - 1) * dilation[0], (kw - 1) * dilation[1])
    w_flip = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    full = ((ext[0] - t, ext[0] - b), (ext[1] - l, ext[1] - r))
    return conv2d_forward(rt, g, w_flip, (1, 1), full, dilation, x_mask=g_mask)


def conv2d_backprop_input_scatter(rt, g, w, in_hw: Pair, stride: Pair, pads: Pads, dilation: Pair, g_mask=None):
    """The adjoint of `conv2d_forward` in x, any geometry: g (N, F, OH, OW), w (F, C, KH, KW) ->
    (N, C, H, W). Per chunk: one GEMM g_rows (rows, F) @ w (F, KH*KW*C), then each tap's
    columns added into the strided cells it read (in a padded channels-last buffer). With
    `g_mask`, g * (g_mask > 0) is used (masked as each chunk's rows are gathered)."""
    xp = rt.xp
    n, f, oh, ow = g.shape
    _, c, kh, kw = w.shape
    (t, b_), (l, r) = pads
    gv = cl(g)
    mv = None if g_mask is None else cl(g_mask)
    wm = xp.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(f, kh * kw * c))
    dx = xp.empty((n, in_hw[0], in_hw[1], c), dtype=xp.result_type(g, w))
    direct = (kh, kw) == (1, 1) and stride == (1, 1) and is_zero_padding(pads)

    def part(a, z):
        g_rows = masked_rows(xp, gv[a:z], None if mv is None else mv[a:z])
        if direct:
            xp.matmul(g_rows, wm, out=rows(dx[a:z]))
            return
        cols = xp.matmul(g_rows, wm).reshape(z - a, oh, ow, kh, kw, c)
        buf = xp.zeros((z - a, in_hw[0] + t + b_, in_hw[1] + l + r, c), dtype=dx.dtype)
        for i in range(kh):
            for j in range(kw):
                tap_nhwc(buf, i, j, stride, dilation, (oh, ow))[...] += cols[:, :, :, i, j]
        dx[a:z] = buf[:, t:t + in_hw[0], l:l + in_hw[1]]

    item = oh * ow * kh * kw * c * g.itemsize
    rt.run_chunks(part, n, rt.per_chunk(item), flops=2.0 * g.size * kh * kw * c)
    return nchw(dx)


def conv2d_backprop_filter(rt, x, g, k_hw: Pair, stride: Pair, pads: Pads, dilation: Pair, g_mask=None,
                           with_bias: bool = False):
    """The adjoint of `conv2d_forward` in w: x (N, C, H, W), g (N, F, OH, OW) -> (F, C, KH, KW).

    gw[f, c, i, j] = sum_{n,oh,ow} g[n, f, oh, ow] * x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]:
    per chunk one GEMM (F, rows) @ (rows, KH*KW*C); the chunks' sums added. With `g_mask`, g *
    (g_mask > 0) is used; with `with_bias`, returns (gw, gb), gb (F,) = the sum of that g over
    batch and space, taken from each chunk's rows while they are in cache.
    """
    xp = rt.xp
    f, c = g.shape[1], x.shape[1]
    kh, kw = k_hw
    out_hw = tuple(g.shape[2:])
    v, gv = cl(x), cl(g)
    mv = None if g_mask is None else cl(g_mask)

    def part(a, z):
        cols = im2col_nhwc(xp, pad_nhwc(xp, v[a:z], pads), k_hw, stride, dilation, out_hw)
        g_rows = masked_rows(xp, gv[a:z], None if mv is None else mv[a:z])
        return xp.matmul(g_rows.T, cols), (g_rows.sum(axis=0) if with_bias else None)

    item = out_hw[0] * out_hw[1] * kh * kw * c * x.itemsize
    parts = rt.run_chunks(part, x.shape[0], rt.per_chunk(item), flops=2.0 * g.size * kh * kw * c)
    dtype = xp.result_type(x, g)
    gw = sum_parts(xp, [p[0] for p in parts], (f, kh * kw * c), dtype)
    gw = xp.ascontiguousarray(gw.reshape(f, kh, kw, c).transpose(0, 3, 1, 2))
    return (gw, sum_parts(xp, [p[1] for p in parts], (f,), dtype)) if with_bias else gw


def sum_parts(xp, parts, shape, dtype):
    """The sum of the chunks' partial results (zeros of `shape` when there are none)."""
    if not parts:
        return xp.zeros(shape, dtype=dtype)
    total = parts[0]
    for p in parts[1:]:
        total += p
    return total


def conv1x1_forward(rt, x, w, b=None, relu: bool = False, x_mask=None, into=None):
    """out[n, f] = b[f] + sum_c w[f, c] x[n, c]: x (N, C, H, W), w (F, C) -> (N, F, H, W),
    one GEMM (rows, C) @ (C, F) per chunk of the batch (channels-last memory); with `relu`,
    max(out, 0); with `x_mask`, x * (x_mask > 0) is used (a fused relu gradient). With `into`
    (N, F, H, W), returns into + out, written into `into`'s buffer when its memory is
    channels-last rows (the caller owns it), each chunk's product added while in cache."""
    xp = rt.xp
    n, c, h, wd = x.shape
    f = w.shape[0]
    wt = w.reshape(f, c).T
    dtype = xp.result_type(x, w)
    if into is not None and has_rows(cl(into)) and into.dtype == dtype and getattr(into.flags, "writeable", True):
        out = cl(into)
    else:
        out = xp.empty((n, h, wd, f), dtype=dtype)
        if into is not None:
            out[...] = cl(into)

    def part(a, z):
        for s, e, m in image_mats(xp, x, a, z, x_mask):
            o = rows(out[s:e])
            if into is None:
                xp.matmul(m, wt, out=o)
            else:
                o += xp.matmul(m, wt)
            _bias_relu(xp, o, b, relu)

    rt.run_chunks(part, n, rt.per_chunk(h * wd * max(c, f) * x.itemsize * 2), flops=2.0 * out.size * c)
    return nchw(out)


def conv1x1_backprop_filter(rt, x, g, g_mask=None, with_bias: bool = False):
    """gw[f, c] = sum_{n,h,w} g[n, f, h, w] x[n, c, h, w]: (F, rows) @ (rows, C) per chunk, summed.
    With `g_mask`, g * (g_mask > 0) is used; with `with_bias`, returns (gw, gb), gb (F,) = the
    sum of that g over batch and space (from the chunks' rows, in cache)."""
    xp = rt.xp
    n, c, h, wd = x.shape
    f = g.shape[1]

    def part(a, z):
        xs, gs = image_mats(xp, x, a, z), image_mats(xp, g, a, z, g_mask)
        if len(xs) != len(gs):  # one side per image, the other one block: go per image
            xs = [m for k in range(a, z) for m in image_mats(xp, x, k, k + 1)]
            gs = [m for k in range(a, z) for m in image_mats(xp, g, k, k + 1, g_mask)]
        acc = xp.matmul(gs[0][2].T, xs[0][2])
        for (_, _, xm), (_, _, gm) in zip(xs[1:], gs[1:]):
            acc += xp.matmul(gm.T, xm)
        if not with_bias:
            return acc, None
        gb = gs[0][2].sum(axis=0)
        for _, _, gm in gs[1:]:
            gb += gm.sum(axis=0)
        return acc, gb

    parts = rt.run_chunks(part, n, rt.per_chunk(h * wd * max(c, f) * x.itemsize * 2), flops=2.0 * g.size * c)
    dtype = xp.result_type(x, g)
    gw = sum_parts(xp, [p[0] for p in parts], (f, c), dtype)
    return (gw, sum_parts(xp, [p[1] for p in parts], (f,), dtype)) if with_bias else gw


def concat_channels(rt, xs):
    """(N, C_k, H, W) arrays joined along the channels into one channels-last buffer (NCHW view):
    the next conv, pool or concat reads it without a copy."""
    xp = rt.xp
    n, _, h, w = xs[0].shape
    out = xp.empty((n, h, w, sum(x.shape[1] for x in xs)), dtype=xp.result_type(*xs))

    def part(a, z):
        start = 0
        for x in xs:
            out[a:z, :, :, start:start + x.shape[1]] = x[a:z].transpose(0, 2, 3, 1)
            start += x.shape[1]

    rt.run_chunks(part, n, rt.per_chunk(h * w * out.shape[3] * out.itemsize))
    return nchw(out)
