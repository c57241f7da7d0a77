"""Winograd F(4x4, 3x3) kernels for 3x3 stride-1 convolutions and their two gradients
(Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016).

In one dimension, the 4 outputs y_i = sum_k g_k d_{i+k} of a 3-tap correlation over a tile of
6 inputs are y = A^T [(G g) * (B^T d)]: 6 multiplications instead of 12. Nested in two
dimensions, a 4x4 output tile is

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (d: the 6x6 input tile, g: the 3x3 filter)

so per tile and channel pair there are 36 products instead of 144, and summing them over the
input channels is 36 GEMMs (tiles, C) @ (C, F). Input tiles overlap by 2 (they start every 4
cells); the padded input is extended with zeros to whole tiles and the extra outputs dropped.

The matrices come from Toom-Cook interpolation at the points {0, 1, -1, 1/2, -2} and infinity
(`toom_cook`, exact fractions). With {0, 1, -1, 2, -2}, the usual choice, float32 results are
off by up to ~1.2e-5 of the output's largest magnitude; with 1/2 in place of 2 the entries of
A and B stay smaller and the error is 1.6e-6 to 6.2e-6 for 3 to 832 input channels (plain
im2col: ~6e-7). See `ERROR_BOUND` and tests/ops/test_winograd.py, which checks it.

Gradients, with <a, b> the sum of a * b over all elements:
- input: for stride 1 the input gradient is the forward convolution of g with the flipped,
  transposed kernel and 2 - pad of padding on each side (`backprop_input`);
- filter: the adjoint of the tile formula in g, G^T [ sum_tiles (B^T d B) * (A dY A^T) ] G,
  i.e. 36 GEMMs (C, tiles) @ (tiles, F) in the Winograd domain and one inverse filter transform.

The kernels take the runtime `rt` first; work is split over the batch (`rt.run_chunks`), a few
images per block; each tile transform L t L^T is one GEMM with L (x) L on the gathered
(6 * 6, tiles * C) layout (`Transforms`). Inputs are NCHW-shaped in any memory order; outputs are NCHW-shaped views of
channels-last buffers, as for the GEMM kernels (`conv_kernels`).
"""
from __future__ import annotations

import functools
import threading
from fractions import Fraction
from typing import List, NamedTuple, Sequence, Tuple

import numpy as np

from .kernels import Pads, Pair, cl, masked, nchw

M = 4  # output tile size
R = 3  # filter size
ALPHA = M + R - 1  # input tile size
POINTS = (Fraction(0), Fraction(1), Fraction(-1), Fraction(1, 2), Fraction(-2))
# The documented bound on the error relative to the largest |result|, for unit-normal inputs and
# filters scaled to unit output variance. Measured in float32: forward 1.6e-6 to 6.2e-6 (3 to
# 832 input channels), input and filter gradients up to 4.6e-6; float64 to ~1e-15.
ERROR_BOUND = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}

Matrix = List[List[Fraction]]


def _poly_mul(a: Sequence[Fraction], b: Sequence[Fraction]) -> List[Fraction]:
    out = [Fraction(0)] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] += x * y
    return out


def toom_cook(points: Sequence[Fraction], m: int = M, r: int = R) -> Tuple[Matrix, Matrix, Matrix]:
    """(A^T (m, a), G (a, r), B^T (a, a)) of F(m, r), a = m + r - 1, from a - 1 distinct finite
    interpolation points and infinity, exactly: y = A^T [(G g) * (B^T d)] is the correlation
    y_i = sum_k g_k d_{i+k}.

    The linear convolution s = g * h (degrees r-1 and m-1) is s(x) = sum_j g(p_j) h(p_j) L_j(x) +
    g_{r-1} h_{m-1} M(x), with M(x) = prod_j (x - p_j) and L_j the Lagrange basis of the points.
    Writing it s = C [(G g) * (A h)] (A: powers of the points, G: the same divided by
    f_j = prod_{l != j} (p_j - p_l), C: the coefficients of f_j L_j and of M), correlation is its
    transpose in h: A^T [(G g) * (C^T d)], so B = C.
    """
    pts = [Fraction(p) for p in points]
    a = m + r - 1
    if len(pts) != a - 1 or len(set(pts)) != len(pts):
        raise ValueError(f"F({m}, {r}) needs {a - 1} distinct finite points, got {points}")
    at = [[p ** i for p in pts] + [Fraction(int(i == m - 1))] for i in range(m)]
    g, bt = [], []
    for j, p in enumerate(pts):
        scale, numer = Fraction(1), [Fraction(1)]
        for q in pts[:j] + pts[j + 1:]:
            scale *= p - q
            numer = _poly_mul(numer, [-q, Fraction(1)])
        g.append([p ** k / scale for k in range(r)])
        bt.append(numer + [Fraction(0)])
    g.append([Fraction(int(k == r - 1)) for k in range(r)])
    whole = [Fraction(1)]
    for q in pts:
        whole = _poly_mul(whole, [-q, Fraction(1)])
    bt.append(whole)
    return at, g, bt


class Transforms(NamedTuple):
    """The matrices of `POINTS` in one dtype. A tile transform L t L^T is one GEMM with the
    Kronecker product L (x) L on the row-major flattened tiles (faster in BLAS than two GEMMs
    with 6 rows each): `inputs` = B^T (x) B^T (36, 36), `outputs` = A^T (x) A^T (16, 36),
    `output_grads` = A (x) A (36, 16), `filters` = G (x) G (36, 9)."""

    at: np.ndarray
    g: np.ndarray
    bt: np.ndarray
    inputs: np.ndarray
    outputs: np.ndarray
    output_grads: np.ndarray
    filters: np.ndarray


@functools.lru_cache(maxsize=None)
def _host_matrices(dtype: str) -> Transforms:
    at, g, bt = (np.array([[float(v) for v in row] for row in mat]) for mat in toom_cook(POINTS))
    mats = Transforms(at, g, bt, np.kron(bt, bt), np.kron(at, at), np.kron(at.T, at.T), np.kron(g, g))
    out = Transforms(*(np.ascontiguousarray(m, dtype=dtype) for m in mats))
    for m in out:
        m.setflags(write=False)
    return out


def matrices(xp, dtype) -> Transforms:
    """The `Transforms` of `POINTS` in `dtype`, on xp's device (A^T (4, 6), G (6, 3), B^T (6, 6)
    and their Kronecker squares)."""
    return Transforms(*(xp.asarray(m) for m in _host_matrices(np.dtype(dtype).str)))


def fits(k_hw: Pair, stride: Pair, dilation: Pair) -> bool:
    """Whether the Winograd kernels compute this convolution: a 3x3 kernel, stride 1, no dilation."""
    return tuple(k_hw) == (R, R) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)


def backprop_input_fits(k_hw: Pair, stride: Pair, pads: Pads, dilation: Pair) -> bool:
    """The input gradient is a forward Winograd convolution with 2 - pad of padding: pads <= 2."""
    return fits(k_hw, stride, dilation) and max(max(p) for p in pads) <= R - 1


def tile_counts(out_hw: Pair) -> Pair:
    """Tiles along H and W covering an output of `out_hw`."""
    return (-(-out_hw[0] // M), -(-out_hw[1] // M))


# ---------------------------------------------------------------------------------
# transforms: one GEMM each, with a Kronecker square, on a (k, k, rest) stack of tiles


def _apply(xp, kron, tiles):
    """L t L^T for every k x k tile t of tiles (k, k, rest...), given kron = L (x) L (j*j, k*k)
    -> (j*j, rest...): one GEMM."""
    rest = tuple(tiles.shape[2:])
    return xp.matmul(kron, tiles.reshape(kron.shape[1], -1)).reshape((kron.shape[0],) + rest)


def filter_transform(xp, w, tf: Transforms):
    """U = G w G^T for each filter: w (F, C, 3, 3) -> (36, C, F)."""
    wt = xp.ascontiguousarray(w.transpose(2, 3, 1, 0))  # (3, 3, C, F)
    return _apply(xp, tf.filters, wt)


def filter_untransform(xp, du, tf: Transforms):
    """G^T dU G: the adjoint of `filter_transform`, (36, C, F) -> (F, C, 3, 3)."""
    c, f = du.shape[1:]
    w = _apply(xp, tf.filters.T, du.reshape(ALPHA, ALPHA, c, f)).reshape(R, R, c, f)
    return xp.ascontiguousarray(w.transpose(3, 2, 0, 1))


def _placed(xp, v, top_left: Pair, hw: Pair, mask=None):
    """Zeros (k, hw[0], hw[1], C) with the channels-last chunk v (k, H, W, C) placed at
    `top_left`; with `mask` (v's shape), v * (mask > 0) (the gradient through a fused ReLU)."""
    (t, l), (k, h, w, c) = top_left, v.shape
    buf = xp.empty((k, hw[0], hw[1], c), dtype=v.dtype)
    buf[:, :t] = 0
    buf[:, t + h:] = 0
    buf[:, t:t + h, :l] = 0
    buf[:, t:t + h, l + w:] = 0
    masked(xp, v, mask, out=buf[:, t:t + h, l:l + w])
    return buf


def _gather_tiles(xp, buf, tiles: Pair, size: int, step: int):
    """The (size, size, k * tiles, C) stack of the size x size tiles of `buf` starting every
    `step` cells (a contiguous copy)."""
    k, _, _, c = buf.shape
    s = buf.strides
    view = xp.lib.stride_tricks.as_strided(
        buf, (size, size, k, tiles[0], tiles[1], c), (s[1], s[2], s[0], step * s[1], step * s[2], s[3]))
    return xp.ascontiguousarray(view).reshape(size, size, k * tiles[0] * tiles[1], c)


def input_transform(xp, v, pads: Pads, tiles: Pair, tf: Transforms, mask=None):
    """V = B^T d B for every 6x6 input tile d of the chunk v (k, H, W, C) padded by `pads` and
    zeros up to whole tiles -> (36, T, C), T = k * tiles[0] * tiles[1] in (image, row, column)
    order; with `mask`, v * (mask > 0) is transformed."""
    hw = (M * tiles[0] + R - 1, M * tiles[1] + R - 1)
    d = _gather_tiles(xp, _placed(xp, v, (pads[0][0], pads[1][0]), hw, mask), tiles, ALPHA, M)
    return _apply(xp, tf.inputs, d)


def output_grad_transform(xp, gv, tiles: Pair, tf: Transforms, mask=None):
    """A dY A^T for every 4x4 tile dY of the output gradient chunk gv (k, OH, OW, F), zeros past
    its edge -> (36, T, F); with `mask`, dY * (mask > 0) is transformed."""
    d = _gather_tiles(xp, _placed(xp, gv, (0, 0), (M * tiles[0], M * tiles[1]), mask), tiles, M, M)
    return _apply(xp, tf.output_grads, d)


def output_transform(xp, m_prod, tf: Transforms, k: int, tiles: Pair):
    """Y = A^T m A for every tile of the Winograd-domain product (36, T, F) -> (4, 4, k, th, tw, F)."""
    f = m_prod.shape[2]
    return _apply(xp, tf.outputs, m_prod.reshape(ALPHA, ALPHA, -1, f)).reshape(M, M, k, tiles[0], tiles[1], f)


def _untile(xp, out, y, out_hw: Pair) -> None:
    """Write output tiles y (4, 4, k, th, tw, F) into out (k, OH, OW, F), dropping what lies
    past the edge."""
    k, th, tw, f = y.shape[2:]
    arranged = y.transpose(2, 3, 0, 4, 1, 5)  # (k, th, 4, tw, 4, F)
    if (M * th, M * tw) == tuple(out_hw):
        s = out.strides
        view = xp.lib.stride_tricks.as_strided(out, (k, th, M, tw, M, f),
                                               (s[0], M * s[1], s[1], M * s[2], s[2], s[3]))
        view[...] = arranged
    else:
        out[...] = arranged.reshape(k, M * th, M * tw, f)[:, :out_hw[0], :out_hw[1]]


# ---------------------------------------------------------------------------------
# the kernels


def _per_chunk(rt, tiles: Pair, c: int, f: int, itemsize: int) -> int:
    """Images per chunk. Two bounds: the chunk's transformed tiles (36 x tiles x channels) take
    about a third of the runtime's chunk workspace, so transforms and product stay in cache; and
    a chunk has at least C*F / (C + F) tiles, so that the 36 (C, F) matrices each chunk reads
    (the transformed filters) or writes (the filter gradient's partial sums) are no larger than
    its tiles: on small images with many channels (GoogLeNet's 7x7 layers) the second wins."""
    per_image = tiles[0] * tiles[1]
    by_cache = rt.chunk_bytes // (3 * ALPHA * ALPHA * per_image * max(c, f) * itemsize)
    by_filters = -(-(c * f) // ((c + f) * per_image))
    return max(1, by_cache, by_filters)


def _run_in_blocks(rt, part, n: int, per_block: int, flops: float) -> None:
    """part(a, z) over range(n) in blocks of at most `per_block` images: chunks split over the
    runtime's threads (`rt.run_chunks`), each chunk walked block by block, so that the tiles
    stay in cache also where the runtime hands one thread the whole batch."""
    def walk(a, z):
        for s in range(a, z, per_block):
            part(s, min(s + per_block, z))

    rt.run_chunks(walk, n, per_block, flops=flops)


def conv2d_forward(rt, x, w, pads: Pads, b=None, relu: bool = False, x_mask=None):
    """out[n, f, oh, ow] = b[f] + sum_{c,i,j} w[f, c, i, j] * x_pad[n, c, oh + i, ow + j] for a
    3x3 kernel, stride 1 (see `fits`): x (N, C, H, W), w (F, C, 3, 3), b (F,) or None ->
    (N, F, OH, OW) (channels-last memory); with `relu`, max(out, 0); with `x_mask` (x's shape),
    the convolution of x * (x_mask > 0) (applied as each chunk's tiles are gathered)."""
    xp = rt.xp
    n, c, h, wd = x.shape
    f = w.shape[0]
    dtype = xp.result_type(x, w)
    tf = matrices(xp, dtype)
    out_hw = (h + sum(pads[0]) - R + 1, wd + sum(pads[1]) - R + 1)
    tiles = tile_counts(out_hw)
    u = filter_transform(xp, w.astype(dtype, copy=False), tf)
    v = cl(x)
    mv = None if x_mask is None else cl(x_mask)
    out = xp.empty((n,) + out_hw + (f,), dtype=dtype)

    def part(a, z):
        vt = input_transform(xp, v[a:z], pads, tiles, tf, None if mv is None else mv[a:z])
        y = output_transform(xp, xp.matmul(vt, u), tf, z - a, tiles)
        if b is not None:
            y += b
        if relu:
            xp.maximum(y, 0, out=y)
        _untile(xp, out[a:z], y, out_hw)

    flops = 2.0 * ALPHA * ALPHA * n * tiles[0] * tiles[1] * c * f
    _run_in_blocks(rt, part, n, _per_chunk(rt, tiles, c, f, x.itemsize), flops)
    return nchw(out)


def flipped_filter(w):
    """The kernel of the input gradient of a stride-1 conv: w (F, C, KH, KW) -> (C, F, KH, KW)
    flipped in space."""
    return w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)


def conv2d_backprop_input(rt, g, w, in_hw: Pair, pads: Pads, g_mask=None):
    """The adjoint of `conv2d_forward` in x (see `backprop_input_fits`): the full correlation of
    g (N, F, OH, OW) with the flipped, transposed kernel -> (N, C, H, W). With `g_mask`,
    g * (g_mask > 0) is used (the gradient through a fused ReLU whose output is g_mask)."""
    (t, b), (l, r) = pads
    full = ((R - 1 - t, R - 1 - b), (R - 1 - l, R - 1 - r))
    return conv2d_forward(rt, g, flipped_filter(w), full, x_mask=g_mask)


class _ThreadSums:
    """One running sum per thread of the pool (chunks add into their thread's; `total` adds
    the few sums at the end), so partial results are not kept per chunk."""

    def __init__(self):
        self._sums = {}

    def add(self, xp, value) -> None:
        key = threading.get_ident()
        acc = self._sums.get(key)
        if acc is None:
            self._sums[key] = value
        else:
            acc += value

    def total(self):
        sums = list(self._sums.values())
        out = sums[0]
        for s in sums[1:]:
            out += s
        return out


def conv2d_backprop_filter(rt, x, g, pads: Pads, g_mask=None, with_bias: bool = False):
    """The adjoint of `conv2d_forward` in w: x (N, C, H, W), g (N, F, OH, OW) -> (F, C, 3, 3),
    computed in the Winograd domain: G^T [ sum over tiles of (B^T d B)^T (A dY A^T) ] G.

    With `g_mask`, g * (g_mask > 0) is used; with `with_bias`, returns (gw, gb) where
    gb (F,) = sum of the (masked) g over batch and space, taken from the transformed tiles (at
    the interpolation point 1, where A's row is all ones, a tile's transform is its sum)."""
    xp = rt.xp
    n, c = x.shape[:2]
    f = g.shape[1]
    dtype = xp.result_type(x, g)
    tf = matrices(xp, dtype)
    out_hw = tuple(g.shape[2:])
    tiles = tile_counts(out_hw)
    v, gv = cl(x), cl(g)
    mv = None if g_mask is None else cl(g_mask)
    ones = POINTS.index(1) * ALPHA + POINTS.index(1)  # the (1, 1) point of the 6x6 domain
    sums, bias_sums = _ThreadSums(), _ThreadSums()

    def part(a, z):
        vt = input_transform(xp, v[a:z], pads, tiles, tf)
        gt = output_grad_transform(xp, gv[a:z], tiles, tf, None if mv is None else mv[a:z])
        sums.add(xp, xp.matmul(vt.transpose(0, 2, 1), gt))
        if with_bias:
            bias_sums.add(xp, gt[ones].sum(axis=0))

    flops = 2.0 * ALPHA * ALPHA * n * tiles[0] * tiles[1] * c * f
    _run_in_blocks(rt, part, n, _per_chunk(rt, tiles, c, f, x.itemsize), flops)
    if n == 0:
        gw = xp.zeros((f, c, R, R), dtype=dtype)
        return (gw, xp.zeros(f, dtype=dtype)) if with_bias else gw
    gw = filter_untransform(xp, sums.total(), tf)
    return (gw, bias_sums.total()) if with_bias else gw
