"""max_pool, avg_pool, global_avg_pool: plain-loop references (forward and max-pool backward)
over many geometries, the tie and padding rules, the shape rule, and gradients of both orders
through MaxPoolGrad / AvgPoolGrad."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigraph as mg
from minigraph import ops


def tf_same_pads(size, k, stride):
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k - size, 0)
    return (total // 2, total - total // 2)


def explicit_pads(padding, hw, size, stride):
    if padding == "SAME":
        return tuple(tf_same_pads(hw[a], size[a], stride[a]) for a in range(2))
    if padding == "VALID":
        return ((0, 0), (0, 0))
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if isinstance(padding[0], int):
        return ((padding[0], padding[0]), (padding[1], padding[1]))
    return padding


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def first_max(plane, where):
    """The first cell of `where` (row-major window order) holding the window's maximum."""
    best = where[0]
    for r, s in where[1:]:
        if plane[r, s] > plane[best]:
            best = (r, s)
    return best


def window_cells(h, w, size, stride, pads):
    """For each output (p, q): the list of real input cells (r, s) its window covers, in
    row-major order, and the number of cells including padding."""
    (t, b), (l, r) = pads
    oh = (h + t + b - size[0]) // stride[0] + 1
    ow = (w + l + r - size[1]) // stride[1] + 1
    cells = {}
    for p in range(oh):
        for q in range(ow):
            cells[p, q] = [(p * stride[0] + u - t, q * stride[1] + v - l)
                           for u in range(size[0]) for v in range(size[1])
                           if 0 <= p * stride[0] + u - t < h and 0 <= q * stride[1] + v - l < w]
    return oh, ow, cells


def loop_pool(x, size, stride, pads, mode, count_include_pad=False):
    n, c, h, w = x.shape
    oh, ow, cells = window_cells(h, w, size, stride, pads)
    out = np.zeros((n, c, oh, ow))
    for i in range(n):
        for ch in range(c):
            for (p, q), where in cells.items():
                vals = [float(x[i, ch, r, s]) for r, s in where]
                if mode == "max":
                    out[i, ch, p, q] = max(vals)
                else:
                    out[i, ch, p, q] = sum(vals) / (size[0] * size[1] if count_include_pad else len(vals))
    return out


def loop_max_pool_backward(x, g, size, stride, pads):
    """g goes to the first maximum (row-major) of each window; the seed's version never wrote dx."""
    n, c, h, w = x.shape
    _, _, cells = window_cells(h, w, size, stride, pads)
    dx = np.zeros(x.shape)
    for i in range(n):
        for ch in range(c):
            for (p, q), where in cells.items():
                dx[i, ch][first_max(x[i, ch], where)] += g[i, ch, p, q]
    return dx


run = mg.testing.evaluate


# x shape, size, stride, padding
CONFIGS = [
    ((2, 3, 6, 6), 2, None, "VALID"),
    ((1, 2, 7, 9), 3, 2, "VALID"),            # stride != size: the seed's output size was wrong
    ((2, 2, 8, 8), 3, 2, "SAME"),             # asymmetric SAME
    ((1, 2, 7, 7), 3, 1, "SAME"),
    ((2, 1, 9, 8), (2, 3), (3, 1), 1),
    ((1, 2, 7, 6), 3, 3, ((0, 2), (1, 0))),
    ((1, 3, 5, 8), (3, 2), (1, 2), (1, 0)),
    ((2, 2, 5, 5), 5, 1, "VALID"),            # window = input
    ((2, 2, 1, 5), (3, 2), 1, ((1, 1), (0, 0))),  # window rows 0 and 2 are padding at every output
]


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("mode", ["max", "avg", "avg_incl"])
def test_forward_matches_loop(cfg, mode):
    x_shape, size, stride, padding = cfg
    x = np.random.default_rng(0).standard_normal(x_shape).astype("float32") - 3.0  # all negative-ish
    if mode == "max":
        build = lambda a: ops.max_pool(a, size, stride, padding)  # noqa: E731
    else:
        build = lambda a: ops.avg_pool(a, size, stride, padding, count_include_pad=mode == "avg_incl")  # noqa: E731
    node, out = run(build, x)
    size2 = pair(size)
    stride2 = size2 if stride is None else pair(stride)
    ref = loop_pool(x, size2, stride2, explicit_pads(padding, x_shape[2:], size2, stride2),
                    mode[:3], count_include_pad=mode == "avg_incl")
    assert out.dtype == np.float32 and node.shape == out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_max_pool_gradient_matches_loop_backward(cfg):
    x_shape, size, stride, padding = cfg
    rng = np.random.default_rng(1)
    x = rng.integers(-3, 3, size=x_shape).astype("float64")  # many ties
    with mg.Graph() as graph:
        xn = mg.placeholder(x_shape, "float64")
        y = ops.max_pool(xn, size, stride, padding)
        gn = mg.placeholder(y.shape, "float64")
        (dx,) = mg.gradients(y, [xn], grad_ys=[gn])
    g = rng.standard_normal(y.shape)
    out = mg.Session(graph).run(dx, {xn: x, gn: g})
    size2 = pair(size)
    stride2 = size2 if stride is None else pair(stride)
    ref = loop_max_pool_backward(x, g, size2, stride2, explicit_pads(padding, x_shape[2:], size2, stride2))
    assert dx.kind == "max_pool_grad"
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


def test_ties_go_to_the_first_maximum_in_row_major_order():
    x = np.array([[[[1.0, 2.0, 2.0],
                    [2.0, 0.0, 2.0],
                    [0.0, 0.0, 0.0]]]])
    with mg.Graph() as graph:
        xn = mg.placeholder(x.shape, "float64")
        (dx,) = mg.gradients(ops.sum(ops.max_pool(xn, 3)), [xn])
        (dx2,) = mg.gradients(ops.sum(ops.max_pool(xn, 2, stride=1)), [xn])
    out, out2 = mg.Session(graph).run([dx, dx2], {xn: x})
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = 1.0
    np.testing.assert_array_equal(out, expected)
    # 2x2 windows at stride 1: (0,0)->(0,1), (0,1)->(0,1), (1,0)->(1,0), (1,1)->(1,2)
    expected2 = np.zeros_like(x)
    expected2[0, 0, 0, 1], expected2[0, 0, 1, 0], expected2[0, 0, 1, 2] = 2.0, 1.0, 1.0
    np.testing.assert_array_equal(out2, expected2)


def test_padded_cells_never_win():
    x = -np.arange(1.0, 26.0).reshape(1, 1, 5, 5)  # all negative: a zero pad would win
    with mg.Graph() as graph:
        xn = mg.placeholder(x.shape, "float64")
        y = ops.max_pool(xn, 3, stride=2, padding=((2, 2), (2, 2)))
        (dx,) = mg.gradients(ops.sum(y), [xn])
    out, grad = mg.Session(graph).run([y, dx], {xn: x})
    assert np.all(out < 0)
    np.testing.assert_array_equal(out, loop_pool(x, (3, 3), (2, 2), ((2, 2), (2, 2)), "max"))
    assert grad.sum() == y.shape[2] * y.shape[3]  # every window's gradient landed on a real cell


@settings(max_examples=25, deadline=None)
@given(h=st.integers(3, 9), w=st.integers(3, 9), kh=st.integers(1, 3), kw=st.integers(1, 3),
       sh=st.integers(1, 3), sw=st.integers(1, 3),
       padding=st.one_of(st.sampled_from(["SAME", "VALID"]),
                         st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                                   st.tuples(st.integers(0, 2), st.integers(0, 2)))))
def test_shape_rule_matches_output(h, w, kh, kw, sh, sw, padding):
    size, stride = (kh, kw), (sh, sw)
    pads = explicit_pads(padding, (h, w), size, stride)
    if any(max(p) >= k for p, k in zip(pads, size)):
        with pytest.raises(mg.ShapeError, match="must be smaller than the window"):
            with mg.Graph():
                ops.max_pool(mg.placeholder((2, 3, h, w)), size, stride, padding)
        return
    x = np.random.default_rng(0).standard_normal((2, 3, h, w))
    for mode in ("max", "avg"):
        build = ops.max_pool if mode == "max" else ops.avg_pool
        node, out = run(lambda a: build(a, size, stride, padding), x)
        assert node.shape == out.shape
        np.testing.assert_allclose(out, loop_pool(x, size, stride, pads, mode), rtol=1e-12, atol=1e-12)


def spaced_values(shape, seed):
    """Distinct values at least 0.1 apart, so finite differences never change a winner."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))) * 0.1).reshape(shape) - 1.0


@pytest.mark.parametrize("size, stride, padding", [(2, None, "VALID"), (3, 2, "SAME"), ((3, 2), (1, 2), 1)])
def test_max_pool_gradients_first_and_second_order(size, stride, padding):
    x = spaced_values((2, 2, 5, 6), 2)
    mg.testing.gradcheck(lambda a: ops.max_pool(a, size, stride, padding), [x], order=2)
    with mg.Graph():
        out_shape = ops.max_pool(mg.placeholder(x.shape), size, stride, padding).shape
    g = np.random.default_rng(3).standard_normal(out_shape)
    # MaxPoolGrad itself: linear in g (through the winners), zero in x
    mg.testing.gradcheck(lambda a, b: ops.max_pool_grad(a, b, size, stride, padding), [x, g], order=2)


@pytest.mark.parametrize("size, stride, padding, incl", [
    (2, None, "VALID", False), (3, 2, "SAME", False), (3, 2, 1, True), ((2, 3), (1, 2), ((1, 0), (0, 2)), False)])
def test_avg_pool_gradients_first_and_second_order(size, stride, padding, incl):
    x = np.random.default_rng(4).standard_normal((2, 2, 5, 6))
    mg.testing.gradcheck(lambda a: ops.avg_pool(a, size, stride, padding, count_include_pad=incl), [x], order=2)
    with mg.Graph():
        out_shape = ops.avg_pool(mg.placeholder(x.shape), size, stride, padding).shape
    g = np.random.default_rng(5).standard_normal(out_shape)

    def avg_pool_grad(xn, gn):
        (dx,) = mg.gradients(ops.avg_pool(xn, size, stride, padding, count_include_pad=incl), [xn], grad_ys=[gn])
        assert dx.kind == "avg_pool_grad"
        return dx

    mg.testing.gradcheck(avg_pool_grad, [x, g], order=2, wrt=[1])


def test_pool_gradients_random_directions_on_a_bigger_block():
    x = spaced_values((2, 8, 14, 13), 6)
    mg.testing.gradcheck(lambda a: ops.max_pool(a, 3, 2, "SAME"), [x], order=2, mode="random")
    mg.testing.gradcheck(lambda a: ops.avg_pool(a, 3, 1, "SAME"), [x], order=2, mode="random")


def test_global_avg_pool():
    x = np.random.default_rng(7).standard_normal((2, 3, 4, 5)).astype("float32")
    node, out = run(ops.global_avg_pool, x)
    ref = np.array([[sum(float(v) for v in x[i, c].ravel()) / 20 for c in range(3)] for i in range(2)])
    assert node.shape == (2, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-5)
    mg.testing.gradcheck(lambda a: ops.square(ops.global_avg_pool(a)), [x[:, :, :3, :2]], order=2)
    with mg.Graph():
        assert ops.global_avg_pool(mg.placeholder((None, 7, None, None))).shape == (None, 7)


def test_float32_gradients_stay_float32_and_pooling_has_no_cost():
    x = np.random.default_rng(8).standard_normal((2, 3, 6, 6)).astype("float32")
    with mg.Graph() as graph:
        xn = mg.placeholder((None, 3, 6, 6))
        y = ops.avg_pool(ops.max_pool(xn, 3, 2, "SAME"), 2, padding="SAME")
        (dx,) = mg.gradients(ops.sum(ops.square(y)), [xn])
    out = mg.Session(graph).run([y, dx], {xn: x})
    assert [o.dtype for o in out] == [np.float32, np.float32]
    assert y.op.cost(y) == mg.Cost(0, 0)


def test_errors():
    with mg.Graph():
        x = mg.placeholder((None, 3, 4, 4))
        with pytest.raises(mg.ShapeError, match=r"max_pool 'p'.*window \(5, 5\).*larger than the padded input"):
            ops.max_pool(x, 5, name="p")
        with pytest.raises(mg.ShapeError, match=r"avg_pool 'p'.*padding \(2, 2\) along H must be smaller"):
            ops.avg_pool(x, 2, padding=2, name="p")
        with pytest.raises(mg.ShapeError, match="input must have rank 4"):
            ops.max_pool(mg.placeholder((3, 4, 4)), 2)
        with pytest.raises(ValueError, match="size must be >= 1"):
            ops.max_pool(x, 0)
        with pytest.raises(mg.ShapeError, match="floating dtype"):
            ops.global_avg_pool(mg.placeholder((1, 2, 3, 3), dtype="int32"))


@pytest.mark.parametrize("build, message", [
    (lambda x: ops.max_pool(x, 3, name="p"), r"max_pool 'p': window \(3, 3\).*"
                                            r"larger than the padded input \(2 \+ 0 \+ 0 along H\)"),
    (lambda x: ops.avg_pool(x, (2, 4), stride=1, padding=1, name="p"),
     r"avg_pool 'p': .*window \(2, 4\).*larger than the padded input \(1 \+ 1 \+ 1 along W\)"),
])
def test_none_spatial_size_fed_too_small_is_a_feed_error(build, message):
    """Once an error from inside the kernel that named no node (or an empty result)."""
    with mg.Graph() as g:
        x = mg.placeholder((None, 3, None, None), name="x")
        y = build(x)
    with pytest.raises(mg.FeedError, match=message + r".* \(fed values: 'x' \(2, 3, 2, 1\)\)"):
        mg.Session(g).run(y, {x: np.ones((2, 3, 2, 1), "float32")})


@pytest.mark.parametrize("build", [
    lambda x: ops.max_pool(x, 2, stride=1, padding=1, name="p"),
    lambda x: ops.avg_pool(x, 2, stride=1, padding=1, name="p"),
    lambda x: ops.avg_pool(x, 2, stride=1, padding=1, count_include_pad=True, name="p"),
    lambda x: ops.conv2d(x, mg.constant(np.ones((1, 3, 2, 2), "float32")), padding=1, name="p"),
])
def test_an_image_without_pixels_is_refused_even_when_padding_makes_windows(build):
    """An empty H padded by 1 on each side fits a 2-wide window of padding only: max pool's
    result was -inf and avg pool's NaN (0 / 0), without a word."""
    with mg.Graph():
        with pytest.raises(mg.ShapeError, match="no pixels along H .*padding only"):
            build(mg.placeholder((2, 3, 0, 4)))
    with mg.Graph() as g:
        x = mg.placeholder((None, 3, None, None), name="x")
        y = build(x)
    with pytest.raises(mg.FeedError, match=r"'p': the input has no pixels along H .* \(fed values: 'x' \(2, 3, 0, 4\)\)"):
        mg.Session(g).run(y, {x: np.ones((2, 3, 0, 4), "float32")})


def loop_winner_taps(x, size, stride, pads):
    """For each window: the row-major tap i * KW + j of its first maximum among real cells."""
    n, c, h, w = x.shape
    (t, _), (l, _) = pads
    oh, ow, cells = window_cells(h, w, size, stride, pads)
    out = np.zeros((n, c, oh, ow), dtype=np.int64)
    for i in range(n):
        for ch in range(c):
            for (p, q), where in cells.items():
                best = first_max(x[i, ch], where)
                out[i, ch, p, q] = (best[0] - p * stride[0] + t) * size[1] + best[1] - q * stride[1] + l
    return out


@pytest.mark.parametrize("cfg", CONFIGS)
def test_winner_indices_match_loop(cfg):
    x_shape, size, stride, padding = cfg
    x = np.random.default_rng(11).integers(-2, 2, size=x_shape).astype("float32")  # many ties
    size2 = pair(size)
    stride2 = size2 if stride is None else pair(stride)
    pads = explicit_pads(padding, x_shape[2:], size2, stride2)
    with mg.Graph() as graph:
        xn = mg.placeholder(x_shape)
        y = ops.max_pool(xn, size, stride, padding)
        (dx,) = mg.gradients(ops.sum(y), [xn])
    (idx,) = [n for n in graph.nodes if n.kind == "max_pool_argmax"]
    got = mg.Session(graph).run(idx, {xn: x})
    assert got.dtype == np.uint8 and idx.dtype == np.uint8 and idx.shape == y.shape
    np.testing.assert_array_equal(got, loop_winner_taps(x, size2, stride2, pads))


def test_windows_of_more_than_256_cells_use_int32_winners():
    rng = np.random.default_rng(12)
    x = rng.integers(-3, 3, size=(2, 2, 18, 17)).astype("float64")  # ties everywhere
    size, stride, pads = (17, 16), (1, 1), ((0, 0), (0, 0))
    with mg.Graph() as graph:
        xn = mg.placeholder(x.shape, "float64")
        y = ops.max_pool(xn, size, stride)
        gn = mg.placeholder(y.shape, "float64")
        (dx,) = mg.gradients(y, [xn], grad_ys=[gn])
    (idx,) = [n for n in graph.nodes if n.kind == "max_pool_argmax"]
    g = rng.standard_normal(y.shape)
    got_idx, got_dx = mg.Session(graph).run([idx, dx], {xn: x, gn: g})
    assert idx.dtype == np.int32 and got_idx.dtype == np.int32
    np.testing.assert_array_equal(got_idx, loop_winner_taps(x, size, stride, pads))
    np.testing.assert_allclose(got_dx, loop_max_pool_backward(x, g, size, stride, pads), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_gradient_and_its_gradient_in_either_memory_order(layout):
    """Kernels read NCHW-shaped views of either memory order; the results do not depend on it."""
    from minigraph.ops import pool_kernels
    rng = np.random.default_rng(13)
    x = rng.integers(-3, 3, size=(3, 4, 9, 7)).astype("float32")
    g = rng.standard_normal((3, 4, 5, 4)).astype("float32")
    gg = rng.standard_normal(x.shape).astype("float32")
    size, stride, pads = (3, 3), (2, 2), ((1, 1), (1, 1))
    if layout == "nhwc":
        x, g, gg = (np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) for a in (x, g, gg))
    rt = mg.CpuRuntime(threads=2, chunk_bytes=1)  # one image per chunk, on the pool
    y = pool_kernels.max_pool_forward(rt, x, size, stride, pads, (5, 4))
    idx = pool_kernels.max_pool_argmax(rt, x, y, size, stride, pads)
    np.testing.assert_array_equal(idx, loop_winner_taps(x, size, stride, pads))
    dx = pool_kernels.max_pool_scatter(rt, idx, g, (9, 7), size, stride, pads)
    assert dx.dtype == np.float32
    np.testing.assert_allclose(dx, loop_max_pool_backward(x, g, size, stride, pads), rtol=1e-5, atol=1e-5)
    # the gather is the scatter's adjoint: <scatter(g), gg> == <g, gather(gg)>
    back = pool_kernels.max_pool_gather_at(rt, idx, gg, size, stride, pads)
    assert back.dtype == np.float32 and back.shape == g.shape
    np.testing.assert_allclose(float((dx * gg).sum()), float((g * back).sum()), rtol=1e-4)


def test_winner_shape_errors():
    with mg.Graph():
        x = mg.placeholder((2, 3, 6, 6))
        g = mg.placeholder((2, 3, 4, 4))
        with pytest.raises(mg.ShapeError, match=r"max_pool_grad.*gradient \(2, 3, 4, 4\) does not match the winners \(2, 3, 3, 3\)"):
            ops.max_pool_grad(x, g, 2)
        with pytest.raises(mg.ShapeError, match="its gradient needs the input.s height and width"):
            ops.max_pool_grad(mg.placeholder((2, 3, None, 6)), g, 2)
