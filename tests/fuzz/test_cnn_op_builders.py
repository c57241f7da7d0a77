"""Fuzzed CNN op builders: conv2d, conv1x1, its backprop ops, pooling, concat and LRN.

Each case draws static shapes (None dimensions included, zero sizes too), arguments in and
out of range (zero, negative, huge, wrongly typed), builds the op, and feeds values whose
None dimensions are drawn afresh (so they may not fit). It must end in a result equal to the
NumPy reference written below (float64 loops over kernel taps, independent of the im2col
kernels), with the static shape the builder promised, or in a minigraph error naming the node
or the op. A wrong result or any other exception is an escape.
"""
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minigraph as mg
from minigraph import ops

from fuzzing import budget, expect_minigraph_error, record

AREA = "op builders"


class Invalid(Exception):
    """The reference's verdict: the documented rules refuse these arguments or shapes."""


# ---------------------------------------------------------------------------------
# the reference: documented argument forms and NumPy loops over taps


def ref_pair(v, minimum=1):
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        pair = (int(v), int(v))
    elif isinstance(v, (tuple, list)) and len(v) == 2 and all(
            isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)) for a in v):
        pair = (int(v[0]), int(v[1]))
    else:
        raise Invalid(f"not an int or a pair: {v!r}")
    if min(pair) < minimum or max(pair) > 2 ** 31 - 1:
        raise Invalid(f"{v!r} outside [{minimum}, 2**31 - 1]")
    return pair


def tf_same(size, k, stride, dilation):
    """TensorFlow's SAME padding for one axis, written from its documentation."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return (total // 2, total - total // 2)


def ref_pads(padding, in_hw, k_hw, stride, dilation):
    if isinstance(padding, str):
        if padding.upper() == "VALID":
            return ((0, 0), (0, 0))
        if padding.upper() == "SAME":
            return tuple(tf_same(n, k, s, d) for n, k, s, d in zip(in_hw, k_hw, stride, dilation))
        raise Invalid(padding)
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(isinstance(p, (tuple, list)) for p in padding):
        return (ref_pair(padding[0], 0), ref_pair(padding[1], 0))
    p = ref_pair(padding, 0)
    return ((p[0], p[0]), (p[1], p[1]))


def ref_out_hw(in_hw, k_hw, stride, pads, dilation, pad_limit):
    """Output size per the documented rules: an input with pixels, non-empty kernels, each
    padding side below `pad_limit(k, d)`, at least one output."""
    out = []
    for n, k, s, p, d in zip(in_hw, k_hw, stride, pads, dilation):
        extent = (k - 1) * d + 1
        if n < 1:
            raise Invalid("an input without pixels: windows of padding only")
        if k < 1 or max(p) >= pad_limit(k, d):
            raise Invalid("empty kernel or padding reaching the kernel's extent")
        o = (n + p[0] + p[1] - extent) // s + 1
        if o < 1:
            raise Invalid("kernel larger than the padded input")
        out.append(o)
    return tuple(out)


def padded(x, pads, value=0.0):
    (t, b), (l, r) = pads
    return np.pad(x.astype(np.float64), ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def taps(k_hw, stride, dilation, out_hw):
    """(i, j, row slice, column slice) of every kernel tap over a padded input."""
    for i in range(k_hw[0]):
        for j in range(k_hw[1]):
            rows = slice(i * dilation[0], i * dilation[0] + stride[0] * (out_hw[0] - 1) + 1, stride[0])
            cols = slice(j * dilation[1], j * dilation[1] + stride[1] * (out_hw[1] - 1) + 1, stride[1])
            yield i, j, rows, cols


def ref_conv(x, w, b, stride, padding, dilation):
    stride, dilation = ref_pair(stride), ref_pair(dilation)
    if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[1] or 0 in (x.shape[1], w.shape[0]):
        raise Invalid("ranks or channels")
    pads = ref_pads(padding, x.shape[2:], w.shape[2:], stride, dilation)
    out_hw = ref_out_hw(x.shape[2:], w.shape[2:], stride, pads, dilation, lambda k, d: (k - 1) * d + 1)
    xp = padded(x, pads)
    out = np.zeros((x.shape[0], w.shape[0]) + out_hw)
    for i, j, rows, cols in taps(w.shape[2:], stride, dilation, out_hw):
        out += np.einsum("nchw,fc->nfhw", xp[:, :, rows, cols], w[:, :, i, j].astype(np.float64))
    if b is not None:
        if b.shape != (w.shape[0],):
            raise Invalid("bias")
        out += b.astype(np.float64)[None, :, None, None]
    return out


def ref_pool(x, kind, size, stride, padding, include_pad=False):
    size = ref_pair(size)
    stride = size if stride is None else ref_pair(stride)
    if x.ndim != 4:
        raise Invalid("rank")
    pads = ref_pads(padding, x.shape[2:], size, stride, (1, 1))
    out_hw = ref_out_hw(x.shape[2:], size, stride, pads, (1, 1), lambda k, d: k)
    real = padded(np.ones((1, 1) + x.shape[2:]), pads)
    if kind == "max":
        xp = padded(x, pads, -np.inf)
        out = np.full(x.shape[:2] + out_hw, -np.inf)
        for _, _, rows, cols in taps(size, stride, (1, 1), out_hw):
            out = np.maximum(out, xp[:, :, rows, cols])
        return out
    xp, total, count = padded(x, pads), 0.0, 0.0
    for _, _, rows, cols in taps(size, stride, (1, 1), out_hw):
        total = total + xp[:, :, rows, cols]
        count = count + (1.0 if include_pad else real[:, :, rows, cols])
    return total / count


# ---------------------------------------------------------------------------------
# strategies: true sizes (zero now and then), some hidden as None in the static shape;
# the values fed take the true size of a hidden dimension, or now and then another one


def mostly(good, bad, times=6):
    """`good` about `times` times as often as `bad` (one_of alone leans towards its first branches)."""
    return st.sampled_from([True] * times + [False]).flatmap(lambda ok: good if ok else bad)


SIZE = mostly(st.integers(1, 5), st.just(0))
SMALL = st.integers(1, 3)
BAD = st.sampled_from([0, -1, 10 ** 5, 2 ** 70, True, 1.5, "2", None, (1,), (1, 2, 3), (0, 1)])
GEOMETRY = mostly(st.one_of(SMALL, SMALL, st.tuples(SMALL, SMALL)), BAD)
# no 10**5 dilation: with padding 10**5 it asks for a 10**5 x 10**5 output, a true out-of-memory
# (the executor's to report), not a bad argument
DILATION = mostly(st.one_of(SMALL, SMALL, st.tuples(SMALL, SMALL)), BAD.filter(lambda v: v != 10 ** 5))
PAD_SIDE = st.integers(0, 2)
PADDING = mostly(st.one_of(st.sampled_from(["SAME", "VALID", "same"]), PAD_SIDE, st.tuples(PAD_SIDE, PAD_SIDE),
                           st.tuples(st.tuples(PAD_SIDE, PAD_SIDE), st.tuples(PAD_SIDE, PAD_SIDE))),
                 st.sampled_from(["FULL", -1, 10 ** 5, None, 1.5, (1,), ((1,), (2,)), 3]), times=4)
DTYPE = st.sampled_from(["float32"] * 10 + ["float64"] * 4 + ["int32"])


def image():
    batch = mostly(st.integers(1, 2), st.just(0), times=4)
    return mostly(st.tuples(batch, SIZE, st.integers(1, 8), st.integers(1, 8)), st.tuples(batch, SIZE, SIZE, SIZE),
                  times=3)


def same_or_other(data, value, other=SIZE):
    """`value` three times in four, else a fresh draw."""
    return value if data.draw(st.integers(0, 3)) else data.draw(other)


class Spec:
    """A placeholder to build: its true shape, the static shape (some dims hidden), its dtype."""

    def __init__(self, data, true, dtype):
        self.true, self.dtype = tuple(true), dtype
        self.static = tuple(None if data.draw(st.integers(0, 3)) == 0 else d for d in true)


def fill(data, spec):
    """The fed shape: hidden dimensions take their true size, or now and then another."""
    return tuple(same_or_other(data, t, st.integers(0, 6)) if d is None else d
                 for d, t in zip(spec.static, spec.true))


def check(data, build, specs, reference, names=()):
    """Build `build(*placeholders)` over `specs`, feed drawn values and judge the outcome."""
    with mg.Graph() as g:
        phs = [mg.placeholder(sp.static, sp.dtype, name=f"in{i}") for i, sp in enumerate(specs)]
        try:
            y = build(*phs)
        except Exception as exc:  # noqa: BLE001 - the oracle judges every exception
            expect_minigraph_error(AREA, exc, "'op'", *names)
            return
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    arrays = [rng.standard_normal(fill(data, sp)).astype(sp.dtype) for sp in specs]
    try:
        out = mg.Session(g).run(y, dict(zip(phs, arrays)))
    except Exception as exc:  # noqa: BLE001
        expect_minigraph_error(AREA, exc, "'op'", *(f"'in{i}'" for i in range(len(specs))))
        return
    try:
        ref = reference(*arrays)
    except Invalid as why:
        raise AssertionError(f"escape: a result {out.shape} where the documented rules refuse ({why}): "
                             f"{[a.shape for a in arrays]}")
    assert out.shape == ref.shape, (out.shape, ref.shape)
    assert len(y.shape) == out.ndim and all(d is None or d == n for d, n in zip(y.shape, out.shape)), \
        (y.shape, out.shape)
    assert out.dtype == y.dtype == arrays[0].dtype
    tol = 1e-4 if out.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * 10)
    record(AREA, "result")


# ---------------------------------------------------------------------------------
# the fuzz tests


@budget(60)
@given(data=st.data(), x=image(), f=SIZE, k=st.tuples(SMALL, SMALL), stride=GEOMETRY, padding=PADDING,
       dilation=DILATION, bias=st.sampled_from([None, "F", "F", "other"]), dtype=DTYPE,
       w_dtype=st.sampled_from([None] * 7 + ["float64"]))
def test_conv2d(data, x, f, k, stride, padding, dilation, bias, dtype, w_dtype):
    k = tuple(same_or_other(data, d, st.integers(0, 4)) for d in k)
    specs = [Spec(data, x, dtype), Spec(data, (f, same_or_other(data, x[1])) + k, w_dtype or dtype)]
    if bias:
        specs.append(Spec(data, (f if bias == "F" else data.draw(SIZE),), dtype))

    def build(xn, wn, bn=None):
        return ops.conv2d(xn, wn, bn, stride=stride, padding=padding, dilation=dilation, name="op")

    def reference(xa, wa, ba=None):
        return ref_conv(xa, wa, ba, stride, padding, dilation)
    check(data, build, specs, reference, names=("conv2d", "conv1x1"))


@budget(40)
@given(data=st.data(), x=image(), f=SIZE, square=st.booleans(), bias=st.booleans(), dtype=DTYPE)
def test_conv1x1(data, x, f, square, bias, dtype):
    c = same_or_other(data, x[1])
    specs = [Spec(data, x, dtype), Spec(data, (f, c, 1, 1) if square else (f, c), dtype)]
    if bias:
        specs.append(Spec(data, (same_or_other(data, f),), dtype))

    def build(xn, wn, bn=None):
        return ops.conv1x1(xn, wn, bn, name="op")

    def reference(xa, wa, ba=None):
        return ref_conv(xa, wa.reshape(wa.shape[:2] + (1, 1)), ba, 1, 0, 1)
    check(data, build, specs, reference, names=("conv1x1",))


@budget(60)
@given(data=st.data(), x=image(), kind=st.sampled_from(["max", "avg", "avg_pad"]), size=GEOMETRY,
       stride=st.one_of(st.none(), GEOMETRY), padding=PADDING, dtype=DTYPE)
def test_pooling(data, x, kind, size, stride, padding, dtype):
    include = kind == "avg_pad"

    def build(xn):
        if kind == "max":
            return ops.max_pool(xn, size, stride, padding, name="op")
        return ops.avg_pool(xn, size, stride, padding, count_include_pad=include, name="op")

    def reference(xa):
        return ref_pool(xa, kind[:3], size, stride, padding, include)
    check(data, build, [Spec(data, x, dtype)], reference, names=("max_pool", "avg_pool"))


def conv_geometry(x_shape, w_shape, stride, padding, dilation):
    """(stride, dilation, pads, output size) of a conv of x_shape by w_shape, or Invalid."""
    stride, dilation = ref_pair(stride), ref_pair(dilation)
    if len(x_shape) != 4 or len(w_shape) != 4 or x_shape[1] != w_shape[1] or 0 in (x_shape[1], w_shape[0]):
        raise Invalid("ranks or channels")
    pads = ref_pads(padding, x_shape[2:], w_shape[2:], stride, dilation)
    out_hw = ref_out_hw(x_shape[2:], w_shape[2:], stride, pads, dilation, lambda k, d: (k - 1) * d + 1)
    return stride, dilation, pads, out_hw


def ref_backprop_input(g, w, in_hw, stride, padding, dilation):
    """dx: every output gradient scattered back through the taps that read each input cell."""
    stride, dilation, pads, out_hw = conv_geometry((g.shape[0], w.shape[1]) + tuple(in_hw), w.shape,
                                                   stride, padding, dilation)
    if g.shape[1:] != (w.shape[0],) + out_hw:
        raise Invalid("output gradient shape")
    (t, b), (l, r) = pads
    dx = np.zeros((g.shape[0], w.shape[1], in_hw[0] + t + b, in_hw[1] + l + r))
    for i, j, rows, cols in taps(w.shape[2:], stride, dilation, out_hw):
        dx[:, :, rows, cols] += np.einsum("nfhw,fc->nchw", g.astype(np.float64), w[:, :, i, j].astype(np.float64))
    return dx[:, :, t:t + in_hw[0], l:l + in_hw[1]]


def ref_backprop_filter(x, g, k_hw, stride, padding, dilation):
    """dw[f, c, i, j]: the sum over outputs of g times the input cell tap (i, j) read."""
    w_shape = (g.shape[1], x.shape[1]) + tuple(k_hw)
    stride, dilation, pads, out_hw = conv_geometry(x.shape, w_shape, stride, padding, dilation)
    if g.shape != (x.shape[0], w_shape[0]) + out_hw:
        raise Invalid("output gradient shape")
    xp, dw = padded(x, pads), np.zeros(w_shape)
    for i, j, rows, cols in taps(k_hw, stride, dilation, out_hw):
        dw[:, :, i, j] = np.einsum("nfhw,nchw->fc", g.astype(np.float64), xp[:, :, rows, cols])
    return dw


@budget(40)
@given(data=st.data(), x=image(), f=SIZE, k=st.tuples(SMALL, SMALL), stride=GEOMETRY, padding=PADDING,
       dilation=DILATION, which=st.sampled_from(["input", "filter"]), dtype=DTYPE)
def test_conv_backprop_ops(data, x, f, k, stride, padding, dilation, which, dtype):
    """The gradient ops as users may call them, against scatter loops over the taps."""
    try:  # the output gradient's true shape: the forward conv's output, when there is one
        out_hw = conv_geometry(x, (f, x[1]) + k, stride, padding, dilation)[3]
    except Invalid:
        out_hw = (data.draw(SIZE), data.draw(SIZE))
    g_true = (x[0], f) + tuple(same_or_other(data, d) for d in out_hw)
    if which == "input":
        in_hw = data.draw(st.one_of(st.just(x[2:]), st.just(x[2:]), st.tuples(SMALL, st.integers(1, 6)), BAD))
        specs = [Spec(data, g_true, dtype), Spec(data, (f, x[1]) + k, dtype)]

        def build(gn, wn):
            return ops.conv2d_backprop_input(gn, wn, in_hw, stride=stride, padding=padding, dilation=dilation,
                                             name="op")

        def reference(ga, wa):
            return ref_backprop_input(ga, wa, ref_pair(in_hw), stride, padding, dilation)
    else:
        specs = [Spec(data, x, dtype), Spec(data, g_true, dtype)]

        def build(xn, gn):
            return ops.conv2d_backprop_filter(xn, gn, k, stride=stride, padding=padding, dilation=dilation,
                                              name="op")

        def reference(xa, ga):
            return ref_backprop_filter(xa, ga, k, stride, padding, dilation)
    check(data, build, specs, reference, names=("conv2d_backprop_input", "conv2d_backprop_filter"))


@budget(40)
@given(data=st.data(), shapes=st.lists(image(), min_size=1, max_size=3), axis=st.integers(-5, 4), dtype=DTYPE)
def test_concat(data, shapes, axis, dtype):
    first = shapes[0]
    shapes = [tuple(d if i == axis % 4 else same_or_other(data, first[i]) for i, d in enumerate(s)) for s in shapes]

    def build(*xs):
        return ops.concat(list(xs), axis=axis, name="op")

    def reference(*xs):
        if not -4 <= axis < 4:
            raise Invalid("axis")
        try:
            return np.concatenate([x.astype(np.float64) for x in xs], axis=axis)
        except ValueError as exc:
            raise Invalid(str(exc))
    check(data, build, [Spec(data, s, dtype) for s in shapes], reference, names=("concat",))


@budget(40)
@given(data=st.data(), x=image(), size=mostly(st.integers(1, 6), BAD), global_pool=st.booleans(), dtype=DTYPE)
def test_local_response_norm_and_global_pool(data, x, size, global_pool, dtype):
    def build(xn):
        if global_pool:
            return ops.global_avg_pool(xn, name="op")
        return ops.local_response_norm(xn, size=size, alpha=1e-2, beta=0.75, k=2.0, name="op")

    def reference(xa):
        xa = xa.astype(np.float64)
        if global_pool:
            if 0 in xa.shape[2:]:
                raise Invalid("mean of no cells")
            return xa.mean(axis=(2, 3))
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise Invalid(f"size {size!r}")
        n, c = size, xa.shape[1]
        before, after = (n - 1) // 2, n // 2
        window = np.zeros_like(xa)
        for ch in range(c):  # channels ch - before ... ch + after, those that exist
            window[:, ch] = (xa[:, max(0, ch - before):ch + after + 1] ** 2).sum(axis=1)
        return xa / (2.0 + 1e-2 / n * window) ** 0.75
    check(data, build, [Spec(data, x, dtype)], reference, names=("local_response_norm", "global_avg_pool"))
