"""The kernels of the convolution ops and how one is chosen per shape (`minigraph.dispatch`).

- "gemm" (exact, NumPy and CuPy): im2col + GEMM (`conv_kernels`); for the input gradient,
  "gemm" names the exact family, the full correlation or the tap scatter, whichever
  `conv_kernels.full_correlation_preferred` picks (each can also be forced by name);
- "winograd" (NumPy, `exact=False`): Winograd F(4x4, 3x3) for 3x3 stride-1 convs
  (`winograd_kernels`), chosen where `select_winograd` says it is faster.

Scores: higher wins; None means a kernel does not apply. A Winograd kernel applies to every 3x3
stride-1 shape (so it can be forced on any) but scores above the GEMM kernels only where
`select_winograd` says it wins. `check_algorithm` and `algorithm_family` serve the ops'
`algorithm` attribute.
"""
from __future__ import annotations

from typing import Optional

from minigraph.dispatch import kernels_for, register_kernel

from . import conv_kernels, grad_fusion, winograd_kernels

WINOGRAD, GEMM = "winograd", "gemm"


@register_kernel("conv2d", "numpy", GEMM)
@register_kernel("conv2d", "cupy", GEMM)
def conv2d_gemm(rt, op, x, w, b=None):
    return conv_kernels.conv2d_forward(rt, x, w, op.stride, op.padding, op.dilation, b, op.activation == "relu")


def _winograd_forward_score(op, shapes, rt):
    x, w = shapes[:2]
    if not winograd_kernels.fits(w[2:], op.stride, op.dilation):
        return None
    return 2.0 if select_winograd("forward", x, w, rt) else 0.5


@register_kernel("conv2d", "numpy", WINOGRAD, score=_winograd_forward_score, exact=False)
def _conv2d_winograd(rt, op, x, w, b=None):
    return winograd_kernels.conv2d_forward(rt, x, w, op.padding, b, op.activation == "relu")


def _full_correlation_score(op, shapes, rt):
    g, w = shapes[:2]
    if not conv_kernels.full_correlation_fits(g, w, op.stride, op.padding, op.dilation):
        return None
    return 2.0 if conv_kernels.full_correlation_preferred(g, w) else 0.5


@register_kernel("conv2d_backprop_input", "numpy", "full_correlation", score=_full_correlation_score)
@register_kernel("conv2d_backprop_input", "cupy", "full_correlation", score=_full_correlation_score)
def _backprop_input_full(rt, op, g, w, y=None):
    return conv_kernels.conv2d_backprop_input_full(rt, g, w, op.input_hw, op.stride, op.padding, op.dilation, y)


@register_kernel("conv2d_backprop_input", "numpy", "tap_scatter")
@register_kernel("conv2d_backprop_input", "cupy", "tap_scatter")
def _backprop_input_scatter(rt, op, g, w, y=None):
    return conv_kernels.conv2d_backprop_input_scatter(rt, g, w, op.input_hw, op.stride, op.padding, op.dilation, y)


@register_kernel("conv2d_backprop_input", "numpy", GEMM, score=lambda op, shapes, rt: 0.0)
@register_kernel("conv2d_backprop_input", "cupy", GEMM, score=lambda op, shapes, rt: 0.0)
def backprop_input_gemm(rt, op, g, w, y=None):
    """The exact family as one name (what `algorithm="gemm"` forces): the full correlation
    where it fits and is preferred, else the tap scatter. Never chosen unforced (score 0)."""
    if _full_correlation_score(op, (g.shape, w.shape), rt) == 2.0:
        return _backprop_input_full(rt, op, g, w, y)
    return _backprop_input_scatter(rt, op, g, w, y)


def _winograd_input_score(op, shapes, rt):
    g, w = shapes[:2]
    if not winograd_kernels.backprop_input_fits(w[2:], op.stride, op.padding, op.dilation):
        return None
    return 3.0 if select_winograd("backprop_input", g, w, rt) else 0.25


@register_kernel("conv2d_backprop_input", "numpy", WINOGRAD, score=_winograd_input_score, exact=False)
def _backprop_input_winograd(rt, op, g, w, y=None):
    return winograd_kernels.conv2d_backprop_input(rt, g, w, op.input_hw, op.padding, g_mask=y)


@register_kernel("conv2d_backprop_filter", "numpy", GEMM)
@register_kernel("conv2d_backprop_filter", "cupy", GEMM)
def backprop_filter_gemm(rt, op, x, g, y=None):
    out = conv_kernels.conv2d_backprop_filter(rt, x, g, op.filter_hw, op.stride, op.padding, op.dilation,
                                              g_mask=y, with_bias=op.bias_gradient)
    return grad_fusion.pack(rt.xp, *out) if op.bias_gradient else out


def _winograd_filter_score(op, shapes, rt):
    x, g = shapes[:2]
    if not winograd_kernels.fits(op.filter_hw, op.stride, op.dilation):
        return None
    return 2.0 if select_winograd("backprop_filter", x, (g[1], x[1]) + tuple(op.filter_hw), rt) else 0.5


@register_kernel("conv2d_backprop_filter", "numpy", WINOGRAD, score=_winograd_filter_score, exact=False)
def _backprop_filter_winograd(rt, op, x, g, y=None):
    out = winograd_kernels.conv2d_backprop_filter(rt, x, g, op.padding, g_mask=y, with_bias=op.bias_gradient)
    return grad_fusion.pack(rt.xp, *out) if op.bias_gradient else out


# The rule, from benchmarks/conv_algorithms.py (float32; winograd / gemm time of the forward,
# input and filter gradient; tables in benchmarks/README.md). One thread: GoogLeNet at batch 8,
# 56x56 and 28x28 layers (392-1568 tiles): 0.44-0.66; 14x14 layers (128 tiles): 0.78-0.93; 7x7
# layers (32 tiles): 1.13-1.28. Two threads, each with half the tiles: the 14x14 layers at
# batch 8 (64 tiles a thread) 0.98-1.38, the same layers at batch 32 and the 7x7 ones at batch
# 64 (256 and 128 a thread) 0.72-0.96. 16 -> 32 channels at 28x28: 0.64-0.97 on one thread,
# up to 2.3 on two (the transforms, linear in C + F, outweigh GEMMs linear in C * F).
WINOGRAD_MIN_TILES_PER_THREAD = 96
WINOGRAD_MIN_CHANNELS = 32


def select_winograd(step: str, x_shape, w_shape, rt) -> bool:
    """Whether Winograd beats the GEMM kernels for `step` ('forward', 'backprop_input',
    'backprop_filter') of a 3x3 stride-1 conv with input (N, C, H, W) (for the input gradient:
    the output gradient (N, F, OH, OW)) and filter (F, C, 3, 3) on the runtime `rt`: at least
    `WINOGRAD_MIN_TILES_PER_THREAD` 4x4 output tiles for each of the runtime's threads (so the
    36 GEMMs are large enough and the filter transform is shared by enough tiles) and
    `WINOGRAD_MIN_CHANNELS` channels on both sides (so the tile transforms stay small beside
    the GEMMs). The same rule for the three steps: their figures differ by less than the rule's
    margins."""
    f, c = w_shape[:2]
    th, tw = winograd_kernels.tile_counts(tuple(x_shape[2:]))
    threads = max(1, getattr(rt, "threads", 1) or 1)
    return (x_shape[0] * th * tw >= WINOGRAD_MIN_TILES_PER_THREAD * threads
            and min(c, f) >= WINOGRAD_MIN_CHANNELS)


ALGORITHM_FAMILIES = (GEMM, WINOGRAD, "generic")


def algorithm_family(algorithm: Optional[str]) -> Optional[str]:
    """The family a gradient op inherits: None (selected per shape), 'winograd', 'generic', or
    'gemm' for any exact kernel ('full_correlation' and 'tap_scatter' included)."""
    if algorithm is None or algorithm in ALGORITHM_FAMILIES:
        return algorithm
    return GEMM


def check_algorithm(kind: str, algorithm: Optional[str]) -> Optional[str]:
    """`algorithm` if some backend registers it for `kind` (or it is None or 'generic'), else a
    ValueError listing the choices."""
    if algorithm is None:
        return None
    names = sorted({k.algorithm for be in ("numpy", "cupy") for k in kernels_for(kind, be)} | {"generic"})
    if algorithm not in names:
        raise ValueError(f"{kind}: algorithm must be None or one of {', '.join(map(repr, names))}, got {algorithm!r}")
    return algorithm
