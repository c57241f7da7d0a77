"""Fused CuPy kernels for the CuPy backend: one launch per op instead of one per window tap.

Registered through `minigraph.dispatch` as the ``fused`` algorithm on backend ``cupy`` for
max pooling (forward, winners, gradient scatter written as a gather, gradient of gradient),
average pooling and its gradient, the LRN forward pass and its channel-window sum, softmax
and softmax cross-entropy over rows, and the channel concat of 4-D arrays. Their C source is
in `fused_src` (checked on the CPU against NumPy by the tests); here they are compiled with
NVRTC through `cupy.RawModule` once per (kernel, dtype) and launched with strides in
elements, so inputs in any memory order are read in place. Outputs are channels-last NCHW
views, like the generic kernels' results.

They apply only where `status.fused_enabled()` (MINIGRAPH_FUSED is not 0), which on the NumPy
backend is never asked.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Callable, Dict, Tuple

import numpy as np

from minigraph.dispatch import register_kernel

from . import fused_src, status

BLOCK = 256
MAX_BLOCKS = 1 << 20  # the grid-stride loop covers the rest

_modules: Dict[Tuple[str, str, str], object] = {}
_lock = threading.Lock()


def _function(spec: fused_src.KernelSpec, dtype, index_dtype="int32"):
    """The compiled `cupy.RawKernel` of `spec` for element type `dtype` (cached)."""
    key = (spec.name, np.dtype(dtype).name, np.dtype(index_dtype).name)
    fn = _modules.get(key)
    if fn is None:
        import cupy
        with _lock:
            fn = _modules.get(key)
            if fn is None:
                src = fused_src.cuda_source(spec, key[1], key[2])
                fn = _modules[key] = cupy.RawModule(code=src, options=("--std=c++14",)).get_function(spec.name)
    return fn


def _strides(a) -> Tuple[np.int64, ...]:
    """An array's strides in elements (NCHW order for 4-D arrays), as kernel arguments."""
    return tuple(np.int64(s // a.itemsize) for s in a.strides)


def cuda_launch(spec: fused_src.KernelSpec, dtype, n: int, args, index_dtype="int32") -> None:
    """Run `spec` over i in [0, n) on the current CUDA stream (args: arrays and scalars in the
    order of its parameters)."""
    blocks = min(-(-n // BLOCK), MAX_BLOCKS)
    _function(spec, dtype, index_dtype)((blocks,), (BLOCK,), tuple(args) + (np.int64(n),))


_launcher: Callable = cuda_launch


@contextlib.contextmanager
def use_launcher(launch: Callable):
    """Run the kernels of this module through `launch(spec, dtype, n, args, index_dtype)` instead
    of CUDA while inside (the tests launch the C compiler's build of the same source on NumPy
    arrays this way)."""
    global _launcher
    saved, _launcher = _launcher, launch
    try:
        yield
    finally:
        _launcher = saved


def _launch(spec, dtype, n: int, args, index_dtype="int32") -> None:
    if n:
        _launcher(spec, dtype, n, args, np.dtype(index_dtype))


def _nhwc_empty(xp, n, c, h, w, dtype):
    """An (N, C, H, W) array whose memory is channels-last."""
    return xp.empty((n, h, w, c), dtype=dtype).transpose(0, 3, 1, 2)


def _i64(*values):
    return tuple(np.int64(v) for v in values)


def _window(op):
    (kh, kw), (sh, sw), ((pt, _), (pl, _)) = op.size, op.stride, op.padding
    return _i64(kh, kw, sh, sw, pt, pl)


# scores: the fused kernels win over the chunked generic ones wherever they apply


def _rank4(op, shapes, rt):
    return 3.0 if len(shapes[0]) == 4 and status.fused_enabled() else None


def _rows(op, shapes, rt):
    return 3.0 if len(shapes[0]) == 2 and status.fused_enabled() else None


def _softmax_rows(op, shapes, rt):
    return 3.0 if len(shapes[0]) == 2 and op.axis in (1, -1) and status.fused_enabled() else None


def _channel_concat(op, shapes, rt):
    ok = op.axis == 1 and len(shapes[0]) == 4 and len(shapes) <= 16
    return 3.0 if ok and status.fused_enabled() else None


# pooling ---------------------------------------------------------------------------


@register_kernel("max_pool", "cupy", "fused", score=_rank4)
def max_pool(rt, op, x):
    n, c, h, w = x.shape
    oh, ow = op.out_hw(x)
    y = _nhwc_empty(rt.xp, n, c, oh, ow, x.dtype)
    _launch(fused_src.MAX_POOL, x.dtype, y.size,
            (x, y) + _i64(c, h, w, oh, ow) + _window(op) + _strides(x) + _strides(y))
    return y


@register_kernel("max_pool_argmax", "cupy", "fused", score=_rank4)
def max_pool_argmax(rt, op, x, y):
    from minigraph.ops.pool_kernels import argmax_dtype
    n, c, h, w = x.shape
    oh, ow = y.shape[2:]
    idx = _nhwc_empty(rt.xp, n, c, oh, ow, argmax_dtype(op.size))
    _launch(fused_src.MAX_POOL_ARGMAX, x.dtype, idx.size,
            (x, y, idx) + _i64(c, h, w, oh, ow) + _window(op) + _strides(x) + _strides(y) + _strides(idx),
            index_dtype=idx.dtype)
    return idx


@register_kernel("max_pool_grad", "cupy", "fused", score=_rank4)
def max_pool_grad(rt, op, idx, g):
    n, c, oh, ow = g.shape
    h, w = op.input_hw
    dx = _nhwc_empty(rt.xp, n, c, h, w, g.dtype)
    _launch(fused_src.MAX_POOL_GRAD, g.dtype, dx.size,
            (idx, g, dx) + _i64(c, h, w, oh, ow) + _window(op) + _strides(idx) + _strides(g) + _strides(dx),
            index_dtype=idx.dtype)
    return dx


@register_kernel("max_pool_grad_grad", "cupy", "fused", score=_rank4)
def max_pool_grad_grad(rt, op, idx, gg):
    n, c, oh, ow = idx.shape
    out = _nhwc_empty(rt.xp, n, c, oh, ow, gg.dtype)
    _launch(fused_src.MAX_POOL_GRAD_GRAD, gg.dtype, out.size,
            (idx, gg, out) + _i64(c, oh, ow) + _window(op) + _strides(idx) + _strides(gg) + _strides(out),
            index_dtype=idx.dtype)
    return out


@register_kernel("avg_pool", "cupy", "fused", score=_rank4)
def avg_pool(rt, op, x):
    n, c, h, w = x.shape
    oh, ow = op.out_hw(x)
    y = _nhwc_empty(rt.xp, n, c, oh, ow, x.dtype)
    _launch(fused_src.AVG_POOL, x.dtype, y.size,
            (x, y) + _i64(c, h, w, oh, ow) + _window(op) + _i64(op.count_include_pad) + _strides(x) + _strides(y))
    return y


@register_kernel("avg_pool_grad", "cupy", "fused", score=_rank4)
def avg_pool_grad(rt, op, g):
    n, c, oh, ow = g.shape
    h, w = op.input_hw
    dx = _nhwc_empty(rt.xp, n, c, h, w, g.dtype)
    _launch(fused_src.AVG_POOL_GRAD, g.dtype, dx.size,
            (g, dx) + _i64(c, h, w, oh, ow) + _window(op) + _i64(op.count_include_pad) + _strides(g) + _strides(dx))
    return dx


# local response normalisation --------------------------------------------------------


@register_kernel("channel_window_sum", "cupy", "fused", score=_rank4)
def channel_window_sum(rt, op, x):
    n, c, h, w = x.shape
    y = _nhwc_empty(rt.xp, n, c, h, w, x.dtype)
    _launch(fused_src.CHANNEL_WINDOW_SUM, x.dtype, y.size,
            (x, y) + _i64(c, h, w, op.before, op.after) + _strides(x) + _strides(y))
    return y


@register_kernel("local_response_norm", "cupy", "fused", score=_rank4)
def local_response_norm(rt, op, x):
    n, c, h, w = x.shape
    before, after = op.window
    y = _nhwc_empty(rt.xp, n, c, h, w, x.dtype)
    t = x.dtype.type
    _launch(fused_src.LRN, x.dtype, y.size,
            (x, y) + _i64(c, h, w, before, after) + (t(op.alpha / op.size), t(op.k), t(op.beta))
            + _strides(x) + _strides(y))
    return y


# rows: softmax and softmax cross-entropy ------------------------------------------------


def _capturing(xp) -> bool:
    """Whether the current stream is being captured into a CUDA graph (no host syncs then)."""
    try:
        return bool(xp.cuda.get_current_stream().is_capturing())
    except Exception:  # not CuPy, or the query itself is refused
        return False


@register_kernel("softmax_cross_entropy", "cupy", "fused", score=_rows)
def softmax_cross_entropy(rt, op, logits, labels):
    """Mean over rows of logsumexp(row) - row[label]: one row per thread, then a mean. An empty
    batch or out-of-range labels raise FeedError as the generic kernel does (one small host
    check), except while a CUDA graph is captured, where a bad label makes the loss NaN instead
    (no host sync is allowed then)."""
    from minigraph.errors import FeedError
    xp = rt.xp
    n, k = logits.shape
    if n == 0:
        raise FeedError("the batch is empty: the mean loss over 0 examples is undefined")
    if not _capturing(xp):
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= k:
            raise FeedError(f"labels must lie in [0, {k}), got values from {lo} to {hi}")
    labels = labels if labels.dtype == np.int64 else labels.astype(np.int64)
    rows = xp.empty(n, dtype=logits.dtype)
    _launch(fused_src.SOFTMAX_XENT_ROWS, logits.dtype, n, (logits, labels, rows) + _i64(k) + _strides(logits))
    return rows.mean().astype(logits.dtype)


@register_kernel("softmax", "cupy", "fused", score=_softmax_rows)
def softmax(rt, op, x):
    n, k = x.shape
    y = rt.xp.empty_like(x, order="C")
    _launch(fused_src.SOFTMAX_ROWS, x.dtype, n, (x, y) + _i64(k) + _strides(x) + _strides(y))
    return y


# concat ----------------------------------------------------------------------------------


@register_kernel("concat", "cupy", "fused", score=_channel_concat)
def concat(rt, op, *xs):
    n, _, h, w = xs[0].shape
    c = sum(x.shape[1] for x in xs)
    y = _nhwc_empty(rt.xp, n, c, h, w, xs[0].dtype)
    args = [y] + list(_i64(c, h, w)) + list(_strides(y))
    for x in xs:
        args += [x, np.int64(x.shape[1])] + list(_strides(x))
    _launch(fused_src.concat_spec(len(xs)), y.dtype, y.size, args)
    return y


# scalars made on the device, not copied from the host (a host copy cannot be captured) ----


def _any(op, shapes, rt):
    return 3.0 if status.fused_enabled() else None


@register_kernel("reciprocal_count", "cupy", "fused", score=_any)
def reciprocal_count(rt, op, x):
    """1 / the number of elements of x along op.axes, filled on the device."""
    count = 1
    for a in op.axes:
        count *= x.shape[a]
    return rt.xp.full((), 1.0 / max(count, 1), dtype=x.dtype)


__all__ = ["reciprocal_count", "max_pool", "max_pool_argmax", "max_pool_grad", "max_pool_grad_grad", "avg_pool", "avg_pool_grad",
           "channel_window_sum", "local_response_norm", "softmax_cross_entropy", "softmax", "concat"]
