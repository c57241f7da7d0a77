"""conv2d and its backprop ops: plain-loop references over many geometries, the shape rule,
gradients of first and second order, 1x1 routing, costs and build-time errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigraph as mg
from minigraph import ops


# ---------------------------------------------------------------------------------
# plain-loop references (the seed's loops, corrected: any padding, stride and dilation)


def tf_same_pads(size, k, stride, dilation):
    """TensorFlow's SAME padding for one dimension, written out from its documentation."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return (total // 2, total - total // 2)


def explicit_pads(padding, x_shape, w_shape, stride, dilation):
    if padding == "SAME":
        return tuple(tf_same_pads(x_shape[2 + a], w_shape[2 + a], stride[a], dilation[a]) for a in range(2))
    if padding == "VALID":
        return ((0, 0), (0, 0))
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if isinstance(padding[0], int):
        return ((padding[0], padding[0]), (padding[1], padding[1]))
    return padding


def padded(x, pads):
    (t, b), (l, r) = pads
    out = np.zeros(x.shape[:2] + (x.shape[2] + t + b, x.shape[3] + l + r))
    out[:, :, t:t + x.shape[2], l:l + x.shape[3]] = x
    return out


def loop_conv(x, w, b, stride, pads, dilation):
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = padded(x.astype(float), pads)
    oh = (xp.shape[2] - (kh - 1) * dilation[0] - 1) // stride[0] + 1
    ow = (xp.shape[3] - (kw - 1) * dilation[1] - 1) // stride[1] + 1
    out = np.zeros((n, f, oh, ow))
    for i in range(n):
        for o in range(f):
            for p in range(oh):
                for q in range(ow):
                    total = 0.0 if b is None else float(b[o])
                    for ch in range(c):
                        for u in range(kh):
                            for v in range(kw):
                                total += w[o, ch, u, v] * xp[i, ch, p * stride[0] + u * dilation[0],
                                                             q * stride[1] + v * dilation[1]]
                    out[i, o, p, q] = total
    return out


def loop_conv_backward(x, w, g, stride, pads, dilation):
    """dx and dw by scattering every output's gradient back to the cells it read."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = padded(x.astype(float), pads)
    dxp, dw = np.zeros_like(xp), np.zeros(w.shape)
    for i in range(n):
        for o in range(f):
            for p in range(g.shape[2]):
                for q in range(g.shape[3]):
                    for u in range(kh):
                        for v in range(kw):
                            r, s = p * stride[0] + u * dilation[0], q * stride[1] + v * dilation[1]
                            dxp[i, :, r, s] += g[i, o, p, q] * w[o, :, u, v]
                            dw[o, :, u, v] += g[i, o, p, q] * xp[i, :, r, s]
    (t, _), (l, _) = pads
    return dxp[:, :, t:t + h, l:l + wd], dw


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# x shape, w shape, stride, padding, dilation, bias
CONFIGS = [
    ((2, 3, 7, 9), (4, 3, 3, 3), 1, 0, 1, True),
    ((1, 3, 7, 9), (4, 3, 3, 3), 1, 1, 1, False),
    ((2, 2, 6, 5), (3, 2, 3, 3), 2, (1, 2), 1, True),
    ((2, 2, 6, 5), (3, 2, 3, 2), 1, ((0, 2), (1, 0)), 1, False),
    ((2, 3, 8, 8), (2, 3, 3, 3), 2, "SAME", 1, True),       # asymmetric SAME: pads (0, 1)
    ((1, 2, 9, 7), (3, 2, 3, 3), 3, "VALID", 1, False),
    ((2, 2, 9, 8), (3, 2, 3, 3), 1, "SAME", 2, True),       # dilation 2
    ((1, 2, 10, 9), (3, 2, 3, 2), (3, 2), "SAME", (2, 1), False),
    ((2, 3, 7, 8), (2, 3, 2, 5), (2, 1), 0, 1, True),       # rectangular kernel
    ((1, 2, 11, 10), (2, 2, 4, 3), (3, 2), (2, 1), (1, 2), False),
    ((2, 3, 5, 6), (4, 3, 1, 1), 2, 0, 1, True),            # 1x1 with stride: still conv2d
    ((1, 3, 5, 6), (4, 3, 1, 1), (1, 2), 0, 1, False),      # 1x1 strided along W only: still conv2d
    ((1, 1, 5, 5), (1, 1, 5, 5), 1, 0, 1, False),           # kernel = input
]


run = mg.testing.evaluate


def data(cfg, dtype="float64", seed=0):
    x_shape, w_shape, *_rest, bias = cfg
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    return x, w, b


@pytest.mark.parametrize("cfg", CONFIGS)
def test_forward_matches_loop(cfg):
    x_shape, w_shape, stride, padding, dilation, bias = cfg
    x, w, b = data(cfg, "float32")
    values = (x, w) if b is None else (x, w, b)
    node, out = run(lambda *a: ops.conv2d(*a, stride=stride, padding=padding, dilation=dilation), *values)
    pads = explicit_pads(padding, x_shape, w_shape, pair(stride), pair(dilation))
    ref = loop_conv(x, w, b, pair(stride), pads, pair(dilation))
    assert out.dtype == np.float32 and node.dtype == np.float32
    assert out.shape == ref.shape == node.shape
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_backprop_ops_match_loop_backward(cfg):
    x_shape, w_shape, stride, padding, dilation, _ = cfg
    x, w, _ = data(cfg)
    stride, dilation = pair(stride), pair(dilation)
    pads = explicit_pads(padding, x_shape, w_shape, stride, dilation)
    oh = (x_shape[2] + sum(pads[0]) - (w_shape[2] - 1) * dilation[0] - 1) // stride[0] + 1
    ow = (x_shape[3] + sum(pads[1]) - (w_shape[3] - 1) * dilation[1] - 1) // stride[1] + 1
    g = np.random.default_rng(1).standard_normal((x_shape[0], w_shape[0], oh, ow))
    args = dict(stride=stride, padding=padding, dilation=dilation)
    with mg.Graph() as graph:
        xn, wn, gn = mg.placeholder(x.shape, "float64"), mg.placeholder(w.shape, "float64"), mg.placeholder(g.shape, "float64")
        dx = ops.conv2d_backprop_input(gn, wn, x_shape[2:], **args)
        dw = ops.conv2d_backprop_filter(xn, gn, w_shape[2:], **args)
        # the same through autodiff of conv2d
        y = ops.conv2d(xn, wn, **args)
        adx, adw = mg.gradients(y, [xn, wn], grad_ys=[gn])
    out = mg.Session(graph).run([dx, dw, adx, adw], {xn: x, wn: w, gn: g})
    ref_dx, ref_dw = loop_conv_backward(x, w, g, stride, pads, dilation)
    for got, ref in zip(out, [ref_dx, ref_dw, ref_dx, ref_dw]):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


def test_same_is_tensorflow_asymmetric_rule():
    """8x8 input, 3x3 kernel, stride 2: TF pads 0 on top/left and 1 at the bottom/right."""
    x, w, _ = data(((1, 2, 8, 8), (3, 2, 3, 3), 0, 0, 0, False))
    _, same = run(lambda a, b: ops.conv2d(a, b, stride=2, padding="SAME"), x, w)
    _, explicit = run(lambda a, b: ops.conv2d(a, b, stride=2, padding=((0, 1), (0, 1))), x, w)
    assert same.shape == (1, 3, 4, 4)
    np.testing.assert_array_equal(same, explicit)
    _, stride1 = run(lambda a, b: ops.conv2d(a, b, stride=1, padding="SAME"), x, w)
    assert stride1.shape == (1, 3, 8, 8)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), f=st.integers(1, 3), h=st.integers(4, 9),
       w=st.integers(4, 9), kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 3),
       sw=st.integers(1, 3), dh=st.integers(1, 2), dw=st.integers(1, 2),
       padding=st.one_of(st.sampled_from(["SAME", "VALID"]), st.integers(0, 2),
                         st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                                   st.tuples(st.integers(0, 2), st.integers(0, 2)))))
def test_shape_rule_matches_output(n, c, f, h, w, kh, kw, sh, sw, dh, dw, padding):
    x_shape, w_shape, stride, dilation = (n, c, h, w), (f, c, kh, kw), (sh, sw), (dh, dw)
    pads = explicit_pads(padding, x_shape, w_shape, stride, dilation)
    extent = [(w_shape[2 + a] - 1) * dilation[a] + 1 for a in range(2)]
    if any(max(pads[a]) >= extent[a] for a in range(2)):  # some window would see padding only
        with pytest.raises(mg.ShapeError, match="must be smaller than the kernel's extent"):
            with mg.Graph():
                ops.conv2d(mg.placeholder(x_shape), mg.placeholder(w_shape), stride=stride,
                           padding=padding, dilation=dilation)
        return
    if any(x_shape[2 + a] + sum(pads[a]) < extent[a] for a in range(2)):
        with pytest.raises(mg.ShapeError, match="larger than the padded input"):
            with mg.Graph():
                ops.conv2d(mg.placeholder(x_shape), mg.placeholder(w_shape), stride=stride,
                           padding=padding, dilation=dilation)
        return
    rng = np.random.default_rng(0)
    x, wv = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    node, out = run(lambda a, b: ops.conv2d(a, b, stride=stride, padding=padding, dilation=dilation), x, wv)
    assert node.shape == out.shape
    np.testing.assert_allclose(out, loop_conv(x, wv, None, stride, pads, dilation), rtol=1e-10, atol=1e-10)


def test_shape_rule_with_unknown_batch_and_distinct_dims():
    with mg.Graph():
        x = mg.placeholder((None, 3, 11, 7))
        y = ops.conv2d(x, mg.placeholder((5, 3, 3, 2)), stride=(2, 3), padding="SAME")
        z = ops.conv2d(x, mg.placeholder((5, 3, 3, 2)), padding=((1, 0), (0, 1)), dilation=(2, 1))
    assert y.shape == (None, 5, 6, 3)
    assert z.shape == (None, 5, 11 + 1 - 5 + 1, 7 + 1 - 2 + 1)


# ---------------------------------------------------------------------------------
# gradients


GRAD_CONFIGS = [
    ((1, 2, 5, 4), (2, 2, 3, 3), 1, 0, 1, True),
    ((2, 2, 6, 5), (2, 2, 3, 2), 2, "SAME", 1, True),
    ((1, 2, 8, 8), (2, 2, 3, 3), 2, "SAME", 1, False),
    ((1, 1, 7, 6), (2, 1, 2, 3), (2, 1), ((0, 2), (1, 0)), 2, False),
    ((1, 2, 7, 7), (1, 2, 3, 3), 3, 1, 1, True),
]


@pytest.mark.parametrize("cfg", GRAD_CONFIGS)
def test_conv2d_gradients_first_and_second_order(cfg):
    _, _, stride, padding, dilation, bias = cfg
    x, w, b = data(cfg)
    values = [x, w] if b is None else [x, w, b]
    mg.testing.gradcheck(lambda *a: ops.conv2d(*a, stride=stride, padding=padding, dilation=dilation),
                         values, order=2)


@pytest.mark.parametrize("cfg", GRAD_CONFIGS[1:4])
def test_backprop_op_gradients_first_and_second_order(cfg):
    x_shape, w_shape, stride, padding, dilation, _ = cfg
    x, w, _ = data(cfg)
    args = dict(stride=stride, padding=padding, dilation=dilation)
    with mg.Graph():
        out_shape = ops.conv2d(mg.placeholder(x_shape), mg.placeholder(w_shape), **args).shape
    g = np.random.default_rng(2).standard_normal(out_shape)
    mg.testing.gradcheck(lambda gn, wn: ops.conv2d_backprop_input(gn, wn, x_shape[2:], **args), [g, w], order=2)
    mg.testing.gradcheck(lambda xn, gn: ops.conv2d_backprop_filter(xn, gn, w_shape[2:], **args), [x, g], order=2)


def test_gradients_in_random_directions_on_a_bigger_block():
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 6, 12, 11)), rng.standard_normal((8, 6, 3, 3)), rng.standard_normal(8)
    mg.testing.gradcheck(lambda *a: ops.relu(ops.conv2d(*a, stride=2, padding="SAME")), [x, w, b],
                         order=2, mode="random")


def test_gradient_nodes_are_dedicated_ops_in_grad_scope():
    with mg.Graph():
        x, w = mg.placeholder((None, 3, 8, 8)), mg.placeholder((4, 3, 3, 3))
        y = ops.conv2d(x, w, padding=1, name="conv")
        gx, gw = mg.gradients(ops.sum(y), [x, w])
    assert gx.kind == "conv2d_backprop_input" and gw.kind == "conv2d_backprop_filter"
    assert gx.name.startswith("conv_grad/") and gx.shape == (None, 3, 8, 8) and gw.shape == (4, 3, 3, 3)


# ---------------------------------------------------------------------------------
# 1x1 routing, dtypes, costs, errors


def test_unit_kernel_builds_conv1x1_only_without_stride_padding_dilation():
    with mg.Graph():
        x, w = mg.placeholder((None, 3, 6, 6)), mg.placeholder((4, 3, 1, 1))
        assert ops.conv2d(x, w).kind == "conv1x1"
        assert ops.conv2d(x, w, padding="SAME").kind == "conv1x1"
        assert ops.conv2d(x, w, stride=2).kind == "conv2d"
        with pytest.raises(mg.ShapeError, match="a window would hold padding only"):
            ops.conv2d(x, w, padding=1)  # a 1x1 kernel padded by 1: border outputs see no input
        assert ops.conv2d(x, w, dilation=2).kind == "conv2d"


def test_float32_stays_float32_through_gradients():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype("float32")
    w = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype("float32")
    with mg.Graph() as g:
        xn, wn = mg.placeholder(x.shape), mg.variable(w)
        y = ops.conv2d(xn, wn, mg.variable(np.zeros(4, "float32")), stride=2, padding="SAME")
        grads = mg.gradients(ops.sum(ops.square(y)), [xn, wn])
        second = mg.gradients(ops.sum(ops.square(grads[0])), [wn])
    outs = mg.Session(g).run([y] + grads + second, {xn: x})
    assert all(o.dtype == np.float32 for o in outs)


def test_cost_counts_filter_and_bias_and_per_example_macs():
    with mg.Graph():
        x = mg.placeholder((None, 3, 8, 8))
        y = ops.conv2d(x, mg.variable(np.zeros((4, 3, 3, 3), "float32")), mg.variable(np.zeros(4, "float32")),
                       stride=2, padding="SAME")
        y2 = ops.conv2d(mg.placeholder((5, 3, 8, 8)), mg.variable(np.zeros((4, 3, 3, 3), "float32")))
    # without weight sharing: the filter and bias once per output position (4 x 4, then 6 x 6)
    assert y.op.cost(y) == mg.Cost(4 * 3 * 3 * 3 + 4, (4 * 4 * 4) * (3 * 3 * 3), (4 * 3 * 3 * 3 + 4) * 4 * 4)
    assert y2.op.cost(y2) == mg.Cost(4 * 3 * 3 * 3, 5 * (4 * 6 * 6) * (3 * 3 * 3), 4 * 3 * 3 * 3 * 6 * 6)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, message", [
    ((None, 3, 8, 8), (4, 2, 3, 3), {}, r"conv2d 'c'.*3 channels.*\(4, 2, 3, 3\) expects 2"),
    ((None, 3, 4, 4), (4, 3, 5, 5), {}, r"conv2d 'c'.*larger than the padded input"),
    ((None, 3, 4, 4), (4, 3, 3, 3), {"dilation": 2}, r"extent 5 along H with dilation 2"),
    ((3, 8, 8), (4, 3, 3, 3), {}, r"conv2d 'c'.*input must have rank 4, got shape \(3, 8, 8\)"),
    ((None, 3, 8, 8), (4, 3, 3), {}, r"filter must have rank 4"),
    ((None, 3, None, 8), (4, 3, 3, 3), {"padding": "SAME"}, r"SAME.*static spatial"),
    # main: TypeError in kernels.py, zeros larger than the input, reshape errors, MemoryError
    ((None, 3, 8, 8), (4, 3, None, None), {}, r"conv2d 'c': the filter needs a static kernel size, "
                                              r"got \(4, 3, None, None\)"),
    ((None, 3, 8, 8), (4, 3, 0, 3), {}, r"conv2d 'c': kernel \(0, 3\) is empty along H"),
    ((None, 0, 8, 8), (4, 0, 3, 3), {}, r"conv2d 'c': input \(None, 0, 8, 8\) and filter \(4, 0, 3, 3\) "
                                        r"need at least one channel and one filter"),
    ((None, 3, 8, 8), (0, 3, 3, 3), {}, r"conv2d 'c': .*filter \(0, 3, 3, 3\) need at least one channel"),
    ((None, 3, 8, 8), (4, 3, 3, 3), {"padding": 10 ** 5},
     r"conv2d 'c': padding \(100000, 100000\) along H must be smaller than the kernel's extent 3"),
    ((None, 3, 8, 8), (4, 3, 3, 2), {"padding": ((0, 0), (2, 0))}, r"along W must be smaller than.*extent 2"),
])
def test_build_time_errors_name_node_and_shapes(x_shape, w_shape, kwargs, message):
    with mg.Graph():
        with pytest.raises(mg.ShapeError, match=message):
            ops.conv2d(mg.placeholder(x_shape), mg.placeholder(w_shape), name="c", **kwargs)


@pytest.mark.parametrize("x_shape, fed, kwargs, message", [
    # a None spatial size fed too small (once "negative dimensions are not allowed" / an empty result)
    ((None, 3, None, None), (2, 3, 2, 5), {}, r"larger than the padded input \(2 \+ 0 \+ 0 along H\)"),
    ((None, 3, None, None), (2, 3, 4, 2), {"stride": 2, "padding": 1, "dilation": 2},
     r"\(2 \+ 1 \+ 1 along W\)"),
    ((None, 3, None, 7), (1, 3, 3, 7), {"dilation": 2}, r"extent 5 along H with dilation 2"),
    # a None channel count fed unlike the filter's (once a NumPy matmul error)
    ((None, None, 6, 6), (1, 2, 6, 6), {}, r"input \(1, 2, 6, 6\) has 2 channels but the filter "
                                            r"\(4, 3, 3, 3\) expects 3"),
])
def test_fed_shapes_that_do_not_fit_are_feed_errors(x_shape, fed, kwargs, message):
    with mg.Graph() as g:
        x = mg.placeholder(x_shape, name="x")
        y = ops.conv2d(x, mg.variable(np.ones((4, 3, 3, 3), "float32"), name="w"), name="c", **kwargs)
    with pytest.raises(mg.FeedError, match=r"conv2d 'c': .*" + message + r".* \(fed values: 'x' "):
        mg.Session(g).run(y, {x: np.ones(fed, "float32")})


def test_a_none_spatial_size_fed_large_enough_matches_the_loop():
    x, w, b = data(((2, 3, 9, 7), (4, 3, 3, 2), 2, 1, 1, True), "float32")
    node, out = run(lambda *a: ops.conv2d(*a, stride=2, padding=1), x, w, b,
                    shapes=[(None, 3, None, None), w.shape, b.shape])
    assert node.shape == (None, 4, None, None)
    np.testing.assert_allclose(out, loop_conv(x, w, b, (2, 2), ((1, 1), (1, 1)), (1, 1)), rtol=1e-4, atol=1e-4)


def test_dtype_bias_and_argument_errors():
    with mg.Graph():
        x = mg.placeholder((None, 3, 8, 8))
        with pytest.raises(mg.ShapeError, match="dtype mismatch: float32 vs float64"):
            ops.conv2d(x, mg.placeholder((4, 3, 3, 3), dtype="float64"))
        with pytest.raises(mg.ShapeError, match=r"bias \(5,\) does not match the 4 filters"):
            ops.conv2d(x, mg.placeholder((4, 3, 3, 3)), mg.placeholder((5,)))
        with pytest.raises(ValueError, match="stride must be >= 1"):
            ops.conv2d(x, mg.placeholder((4, 3, 3, 3)), stride=0)
        with pytest.raises(ValueError, match="padding must be"):
            ops.conv2d(x, mg.placeholder((4, 3, 3, 3)), padding="FULL")
        with pytest.raises(ValueError, match="padding must be >= 0"):
            ops.conv2d(x, mg.placeholder((4, 3, 3, 3)), padding=-1)


def test_gradient_needs_static_spatial_size():
    with mg.Graph():
        x = mg.placeholder((None, 3, None, None))
        y = ops.conv2d(x, mg.placeholder((4, 3, 3, 3)), padding=1)
        assert y.shape == (None, 4, None, None)
        with pytest.raises(mg.ShapeError, match="its gradient needs the input.s height and width"):
            mg.gradients(ops.sum(y), [x])


# ---------------------------------------------------------------------------------
# the variants the backward passes create (minigraph.passes.backward): a relu mask read as an
# extra input, and the filter gradient packed with the bias gradient


def masked_and_packed(algo_input, algo_filter, dtype="float64"):
    from minigraph.ops.conv import Conv2DBackpropFilter, Conv2DBackpropInput
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 7, 6)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    g = rng.standard_normal((2, 4, 7, 6)).astype(dtype)
    y = rng.standard_normal((2, 4, 7, 6)).astype(dtype)
    pads = ((1, 1), (1, 1))
    bpi = Conv2DBackpropInput((7, 6), (1, 1), pads, (1, 1), algo_input, relu_mask=True)
    bpf = Conv2DBackpropFilter((3, 3), (1, 1), pads, (1, 1), algo_filter, relu_mask=True, bias_gradient=True)
    return bpi, bpf, x, w, g, y


@pytest.mark.parametrize("algo_input, algo_filter", [("full_correlation", "gemm"), ("tap_scatter", "gemm"),
                                                     ("winograd", "winograd")])
def test_masked_and_packed_gradient_ops_match_the_ops_they_replace(algo_input, algo_filter, backend):
    if algo_input == "winograd" and backend != "numpy":
        pytest.skip("the Winograd kernels are registered for the CPU only")
    bpi, bpf, x, w, g, y = masked_and_packed(algo_input, algo_filter)
    masked = g * (y > 0)
    with mg.Graph() as graph:
        xn, wn, gn, yn = (mg.placeholder(v.shape, "float64") for v in (x, w, g, y))
        dx = mg.apply(bpi, [gn, wn, yn])
        packed = mg.apply(bpf, [xn, gn, yn])
    assert dx.shape == x.shape and packed.shape == (4, 3 * 3 * 3 + 1)
    got_dx, got_packed = mg.Session(graph).run([dx, packed], {xn: x, wn: w, gn: g, yn: y})
    ref_dx, ref_dw = loop_conv_backward(x, w, masked, (1, 1), ((1, 1), (1, 1)), (1, 1))
    np.testing.assert_allclose(got_dx, ref_dx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_packed[:, :-1].reshape(ref_dw.shape), ref_dw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_packed[:, -1], masked.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)


def test_masked_and_packed_gradient_ops_differentiate_to_second_order():
    bpi, bpf, x, w, g, y = masked_and_packed(None, None)
    # the mask y > 0 is piecewise constant in y: differentiate in the other inputs
    mg.testing.gradcheck(lambda gn, wn, yn: mg.apply(bpi, [gn, wn, yn]), [g, w, y], order=2, wrt=[0, 1])
    mg.testing.gradcheck(lambda xn, gn, yn: mg.apply(bpf, [xn, gn, yn]), [x, g, y], order=2, wrt=[0, 1])


def test_masked_ops_check_their_extra_input():
    from minigraph.ops.conv import Conv2DBackpropInput
    op = Conv2DBackpropInput((7, 6), (1, 1), ((1, 1), (1, 1)), (1, 1), relu_mask=True)
    with mg.Graph():
        g, w = mg.placeholder((2, 4, 7, 6)), mg.placeholder((4, 3, 3, 3))
        with pytest.raises(mg.ShapeError, match=r"relu mask \(2, 4, 7, 5\) does not match the output gradient"):
            mg.apply(op, [g, w, mg.placeholder((2, 4, 7, 5))])
        with pytest.raises(mg.ShapeError, match="expected 3 inputs, got 2"):
            mg.apply(op, [g, w])


@pytest.mark.parametrize("build, kind, name", [
    (lambda x, w: ops.conv2d(x, w, padding=1, name="conv"), "conv2d", "conv"),
    (lambda x, w: ops.max_pool(x, 2, name="pool"), "max_pool", "pool"),
    (lambda x, w: ops.avg_pool(x, 2, name="pool"), "avg_pool", "pool"),
])
def test_gradient_with_unknown_height_and_width_names_the_op_not_its_input(build, kind, name):
    """Once "conv2d 'x': ..." (the placeholder's name under the conv's kind)."""
    with mg.Graph():
        x = mg.placeholder((None, 3, None, None), name="x")
        y = build(x, mg.variable(np.ones((4, 3, 3, 3), "float32"), name="w"))
        with pytest.raises(mg.ShapeError, match=rf"^{kind} '{name}': its gradient needs the input's height and "
                                                rf"width when the graph is built, but 'x' is \(None, 3, None, None\)"):
            mg.gradients(ops.sum(y), [x])
