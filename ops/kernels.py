"""Shared kernels and geometry of the CNN ops: padding rules, output sizes, strided windows.

Layout is NCHW. Padding is always handled in its resolved form `((top, bottom), (left, right))`;
`resolve_padding` turns the user forms (int, pair, explicit, "SAME", "VALID") into it.

Array functions take the array namespace `xp` (NumPy or CuPy), or the runtime `rt` (which
holds `rt.xp` and splits work over the batch, see `minigraph.runtime`), as their first
argument and know nothing else about the backend. Nothing here loops over pixels: windows are
strided views, convolutions are GEMMs, and the few Python loops run over kernel taps (KH * KW).
The op families' kernels build on these: `conv_kernels`, `pool_kernels`, `lrn_kernels`.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from minigraph.errors import ShapeError

Pair = Tuple[int, int]
Pads = Tuple[Pair, Pair]


# ---------------------------------------------------------------------------------
# geometry (pure Python, build time)


MAX_GEOMETRY = 2 ** 31 - 1  # the largest stride, dilation, size or padding (a 32-bit int, as in TensorFlow)


def as_pair(value, what: str, minimum: int = 1) -> Pair:
    """An int or a pair of ints -> (a, b), each in [`minimum`, 2**31 - 1]; ShapeError (a
    ValueError) naming `what` otherwise."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    else:
        try:
            a, b = value
        except (TypeError, ValueError):
            raise ShapeError(f"{what} must be an int or a pair of ints, got {value!r}") from None
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (a, b)):
            raise ShapeError(f"{what} must be an int or a pair of ints, got {value!r}")
        pair = (int(a), int(b))
    if min(pair) < minimum:
        raise ShapeError(f"{what} must be >= {minimum}, got {value!r}")
    if max(pair) > MAX_GEOMETRY:  # NumPy's slicing overflows on such ints
        raise ShapeError(f"{what} must be at most 2**31 - 1, got {value!r}")
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
    Anything else is a ShapeError (a ValueError) naming `what`.
    """
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0), (0, 0))
        if mode != "SAME":
            raise ShapeError(f"{what} must be an int, a pair, ((top, bottom), (left, right)), "
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
        raise ShapeError(f"{what} must be an int, a pair, ((top, bottom), (left, right)), "
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
    """The output (OH, OW) of a window sweep, or a ShapeError if the input or the kernel has an
    empty axis, if a padding side reaches the kernel's extent (windows of padding only: a
    padding of 10**5 would build, then exhaust memory) or if the kernel outgrows the padded
    input."""
    for axis, n, k, d, p in zip("HW", in_hw, k_hw, dilation, pads):
        if k < 1:
            raise ShapeError(f"{what} {k_hw} is empty along {axis}")
        if n is not None and n < 1:  # padding alone: max pool's windows were -inf, avg pool's NaN
            raise ShapeError(f"the input has no pixels along {axis} ({n}): a window would hold nothing, or "
                             f"padding only")
        if max(p) >= effective_size(k, d):
            raise ShapeError(f"padding {p} along {axis} must be smaller than the {what}'s extent "
                             f"{effective_size(k, d)} (size {k}, dilation {d}): a window would hold padding only")
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
    """x (N, C, H, W) padded spatially with `value` (an NCHW-shaped view of a channels-last
    buffer); x itself when there is no padding."""
    return x if is_zero_padding(pads) else nchw(pad_nhwc(xp, cl(x), pads, value))


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
# concat reads its input without a copy. Work is split over the batch by `rt.run_chunks`.


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


def image_mats(xp, x, a: int, z: int, mask=None):
    """Images a..z of x (N, C, H, W) as [(start, stop, (images*H*W, C) matrix)], BLAS-ready:
    one block when x's memory is channels-last, one transposed view per image when each image
    is a contiguous (C, H*W) matrix (NCHW memory: no copy), else one copied block. With `mask`
    (x's shape), one block of x * (mask > 0)."""
    v = cl(x)[a:z]
    if mask is not None:
        return [(a, z, masked_rows(xp, v, cl(mask)[a:z]))]
    if has_rows(v):
        return [(a, z, rows(v))]
    n, c, h, w = x.shape
    if x.strides[1:] == (h * w * x.itemsize, w * x.itemsize, x.itemsize):
        return [(k, k + 1, x[k].reshape(c, h * w).T) for k in range(a, z)]
    return [(a, z, chunk_rows(xp, v))]


def nchw(v):
    """The NCHW-shaped view of a channels-last (N, H, W, C) array."""
    return v.transpose(0, 3, 1, 2)


def pad_nhwc(xp, v, pads: Pads, value=0.0, mask=None):
    """v (N, H, W, C) padded spatially with `value`; v itself when there is no padding. With
    `mask` (v's shape), v * (mask > 0) is padded instead (relu's gradient applied on the way)."""
    if is_zero_padding(pads):
        return v if mask is None else masked(xp, v, mask)
    (t, b), (l, r) = pads
    n, h, w, c = v.shape
    out = xp.empty((n, h + t + b, w + l + r, c), dtype=v.dtype)
    out[:, :t] = value
    out[:, t + h:] = value
    out[:, t:t + h, :l] = value
    out[:, t:t + h, l + w:] = value
    masked(xp, v, mask, out=out[:, t:t + h, l:l + w])
    return out


def masked(xp, v, mask=None, out=None):
    """v * (mask > 0) (relu's gradient for relu output `mask`) written into `out` (a new
    contiguous array by default): the 0/1 mask goes straight into `out`, then v multiplies it.
    Without `mask`, a copy of v."""
    if out is None:
        out = xp.empty(v.shape, dtype=v.dtype)
    if mask is None:
        out[...] = v
    else:
        xp.greater(mask, 0, out=out, casting="unsafe")
        out *= v
    return out


def masked_rows(xp, v, mask=None):
    """The (N*H*W, C) matrix of the channels-last chunk v, times (mask > 0) when a mask is given:
    a view when no mask is given and v's memory allows, else a copy."""
    return chunk_rows(xp, v) if mask is None else rows(masked(xp, v, mask))


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


# ---------------------------------------------------------------------------------
# relu's gradient (memory-bound: the batch split over threads pays only on the largest
# arrays, e.g. GoogLeNet's first layers; `rt.threaded_elements` is the threshold)


def relu_grad(rt, g, y, split: bool = False):
    """g * (y > 0) for same-shaped g and y, in g's memory order: the mask is written as 0/1
    straight into the output (no boolean temporary), then multiplied by g in place. With
    `split`, chunks of the batch (axis 0), one per thread of `rt`."""
    xp = rt.xp
    out = xp.empty_like(g)

    def part(a, z):
        o = out[a:z]
        xp.greater(y[a:z], 0, out=o, casting="unsafe")
        xp.multiply(o, g[a:z], out=o)

    if split and g.ndim and g.shape[0] >= 2:
        rt.run_chunks(part, g.shape[0], -(-g.shape[0] // rt.threads), flops=float("inf"))
    else:
        xp.greater(y, 0, out=out, casting="unsafe")
        xp.multiply(out, g, out=out)
    return out


def add_n(rt, xs, in_place: bool = False):
    """The sum of the arrays xs (broadcasting). When all have one shape and dtype, per chunk of
    the batch (so the running sum stays in cache) over the runtime's threads; with `in_place`,
    into xs[0] (the caller guarantees nothing else reads it). Otherwise NumPy's sum in order."""
    xp = rt.xp
    first = xs[0]
    same = all(x.shape == first.shape and x.dtype == first.dtype for x in xs[1:]) and first.ndim > 0
    if not same:
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out += x
        return out
    reuse = in_place and getattr(getattr(first, "flags", None), "writeable", True)
    out = first if reuse else xp.empty_like(first)

    def part(a, z):
        o = out[a:z]
        xp.add(xs[0][a:z], xs[1][a:z], out=o)
        for x in xs[2:]:
            o += x[a:z]

    item = max(1, first.size // max(1, first.shape[0])) * first.itemsize * len(xs)
    rt.run_chunks(part, first.shape[0], rt.per_chunk(item),
                  flops=float("inf") if first.size >= rt.threaded_elements else 0)
    return out
