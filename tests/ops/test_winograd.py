"""Winograd F(4x4, 3x3) convolutions: the transform matrices, the three kernels against plain
loops and against the exact GEMM kernels (float64 and float32 within the documented bound),
gradients of first and second order through the op graph, the selector's choices per shape,
and the ways to force an algorithm (per op, per session, by environment variable)."""
from fractions import Fraction

import numpy as np
import pytest

import minigraph as mg
from minigraph import dispatch, ops
from minigraph.ops import winograd_kernels as wk


@pytest.fixture(autouse=True)
def cpu_only(backend):
    if backend != "numpy":
        pytest.skip("the Winograd kernels are registered for the CPU (NumPy) backend only")


# ---------------------------------------------------------------------------------
# plain-loop references: one output (or one gradient cell) at a time


def pad(x, pads):
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pads))


def loop_conv(x, w, b, pads, relu=False):
    xp = pad(x.astype(np.float64), pads)
    n, f = x.shape[0], w.shape[0]
    oh, ow = xp.shape[2] - 2, xp.shape[3] - 2
    out = np.zeros((n, f, oh, ow))
    for i in range(n):
        for p in range(oh):
            for q in range(ow):
                out[i, :, p, q] = np.tensordot(w, xp[i, :, p:p + 3, q:q + 3], axes=3)
    if b is not None:
        out += b[:, None, None]
    return np.maximum(out, 0) if relu else out


def loop_backward(x, w, g, pads):
    """(dx, dw) of sum(conv(x, w) * g): every output's gradient scattered to the cells it read."""
    xp = pad(x.astype(np.float64), pads)
    dxp, dw = np.zeros_like(xp), np.zeros(w.shape)
    for i in range(g.shape[0]):
        for p in range(g.shape[2]):
            for q in range(g.shape[3]):
                dxp[i, :, p:p + 3, q:q + 3] += np.tensordot(g[i, :, p, q], w, axes=1)
                dw += g[i, :, p, q][:, None, None, None] * xp[i, None, :, p:p + 3, q:q + 3]
    (t, _), (l, _) = pads
    return dxp[:, :, t:t + x.shape[2], l:l + x.shape[3]], dw


# x shape, filters, padding: the output sizes cover whole tiles, partial tiles, one cell
CONFIGS = [
    ((2, 3, 8, 8), 4, 1),                      # 8x8: two whole 4x4 tiles each way
    ((1, 2, 7, 9), 3, "SAME"),                 # 7x9: partial tiles at the bottom and right
    ((2, 3, 6, 5), 2, ((0, 2), (1, 0))),       # asymmetric padding
    ((1, 2, 3, 3), 2, "VALID"),                # one output cell
    ((3, 5, 13, 10), 6, ((2, 2), (2, 1))),     # padding 2, several chunks
]


def explicit(padding, h, w):
    if padding == "SAME":
        return ((1, 1), (1, 1))
    if padding == "VALID":
        return ((0, 0), (0, 0))
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    return padding


def data(x_shape, f, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = (rng.standard_normal((f, x_shape[1], 3, 3)) / np.sqrt(9 * x_shape[1])).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    return x, w, b


def relative_error(got, ref):
    return float(np.abs(np.asarray(got, np.float64) - ref).max() / np.abs(ref).max())


EXACT = {"gemm", "full_correlation", "tap_scatter"}


def only_winograd(used):
    """Whether the convolutions of a run (`Session.kernels`) all ran Winograd kernels."""
    return "winograd" in used.values() and not EXACT & set(used.values())


def run_forced(build, values, algorithm):
    """Run `build(*placeholders)` (a list of nodes) with every conv kind forced to `algorithm` by
    the session; returns (values, {node name: algorithm used})."""
    with mg.Graph() as g:
        phs = [mg.placeholder(v.shape, dtype=v.dtype) for v in values]
        fetches = build(*phs)
    forced = {k: algorithm for k in ("conv2d", "conv2d_backprop_input", "conv2d_backprop_filter")}
    sess = mg.Session(g, algorithms=forced)
    feed = dict(zip(phs, values))
    return sess.run(fetches, feed), sess.kernels(fetches, feed)


# ---------------------------------------------------------------------------------
# the matrices


@pytest.mark.parametrize("points", [wk.POINTS, (0, 1, -1, 2, -2), (0, 1, -1, Fraction(1, 2), Fraction(-1, 2))])
def test_toom_cook_matrices_compute_the_correlation_exactly(points):
    at, g, bt = wk.toom_cook(points)
    assert (len(at), len(at[0]), len(g), len(g[0]), len(bt), len(bt[0])) == (4, 6, 6, 3, 6, 6)
    for i in range(4):          # y_i = sum_k g_k d_{i+k}: the coefficient of g_k d_l is [l == i + k]
        for k in range(3):
            for l in range(6):
                coef = sum(at[i][j] * g[j][k] * bt[j][l] for j in range(6))
                assert coef == (1 if l == i + k else 0)


def test_toom_cook_needs_distinct_points():
    with pytest.raises(ValueError, match="5 distinct finite points"):
        wk.toom_cook((0, 1, 1, 2, -2))


def test_float_matrices_are_the_exact_ones_rounded_and_their_kronecker_squares():
    tf = wk.matrices(np, np.float32)
    exact = [np.array([[float(v) for v in row] for row in m]) for m in wk.toom_cook(wk.POINTS)]
    for got, want in zip((tf.at, tf.g, tf.bt), exact):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want.astype(np.float32))
    at, g, bt = exact
    rng = np.random.default_rng(0)
    for kron, left, k in [(tf.inputs, bt, 6), (tf.outputs, at, 6), (tf.output_grads, at.T, 4), (tf.filters, g, 3)]:
        t = rng.standard_normal((k, k))  # one tile: L t L^T, flattened row by row
        np.testing.assert_allclose(kron @ t.reshape(-1), (left @ t @ left.T).reshape(-1), rtol=1e-6, atol=1e-5)


# ---------------------------------------------------------------------------------
# forward, both gradients: against loops (float64) and the GEMM kernels (float32)


@pytest.mark.parametrize("x_shape, f, padding", CONFIGS)
def test_forward_matches_loop_in_float64(x_shape, f, padding):
    x, w, b = data(x_shape, f, np.float64)
    build = lambda xn, wn, bn: [ops.relu(ops.conv2d(xn, wn, bn, padding=padding))]  # noqa: E731
    (out,), used = run_forced(build, [x, w, b], "winograd")
    assert "winograd" in used.values()
    ref = loop_conv(x, w, b, explicit(padding, *x_shape[2:]), relu=True)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("x_shape, f, padding", CONFIGS)
def test_gradients_match_loops_in_float64(x_shape, f, padding):
    x, w, _ = data(x_shape, f, np.float64)
    pads = explicit(padding, *x_shape[2:])
    g = np.random.default_rng(1).standard_normal(loop_conv(x, w, None, pads).shape)

    def build(xn, wn, gn):
        y = ops.conv2d(xn, wn, padding=padding)
        return mg.gradients(y, [xn, wn], grad_ys=[gn])

    (dx, dw), used = run_forced(build, [x, w, g], "winograd")
    assert only_winograd(used)
    ref_dx, ref_dw = loop_backward(x, w, g, pads)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("shape, f", [((2, 16, 28, 28), 32), ((2, 96, 14, 14), 64), ((1, 256, 7, 7), 48)])
def test_float32_within_the_documented_bound_of_the_gemm_kernels(shape, f):
    x, w, b = data(shape, f, np.float32)
    g = np.random.default_rng(2).standard_normal((shape[0], f) + shape[2:]).astype(np.float32)

    def build(xn, wn, bn, gn):
        y = ops.conv2d(xn, wn, bn, padding="SAME")
        return [y] + mg.gradients(y, [xn, wn], grad_ys=[gn])

    exact, used_exact = run_forced(build, [x, w, b, g], "gemm")
    wino, used = run_forced(build, [x, w, b, g], "winograd")
    assert "winograd" not in used_exact.values() and only_winograd(used)
    ref = [a.astype(np.float64) for a in run_forced(build, [a.astype(np.float64) for a in (x, w, b, g)], "gemm")[0]]
    bound = wk.ERROR_BOUND[np.dtype(np.float32)]
    for got, gemm, want in zip(wino, exact, ref):
        assert got.dtype == np.float32
        assert relative_error(gemm, want) < bound / 5  # the exact path: a few float32 ulps
        assert relative_error(got, want) < bound


def test_gradient_of_gradient_through_winograd_ops():
    """gradcheck in float64 with the conv forced to Winograd: its gradient ops (and theirs, in
    the second-order graph) inherit the algorithm."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((1, 2, 6, 5)), rng.standard_normal((3, 2, 3, 3))
    mg.testing.gradcheck(lambda a, b: ops.conv2d(a, b, padding="SAME", algorithm="winograd"), [x, w], order=2)
    g = rng.standard_normal((1, 3, 6, 5))
    mg.testing.gradcheck(lambda gn, wn: ops.conv2d_backprop_input(gn, wn, (6, 5), padding="SAME",
                                                                  algorithm="winograd"), [g, w], order=2)
    mg.testing.gradcheck(lambda xn, gn: ops.conv2d_backprop_filter(xn, gn, (3, 3), padding="SAME",
                                                                   algorithm="winograd"), [x, g], order=2)


def test_second_order_graph_runs_winograd_kernels():
    x, w, _ = data((1, 2, 6, 6), 3, np.float64)

    def build(xn, wn):
        y = ops.conv2d(xn, wn, padding=1, algorithm="winograd")
        gx, gw = mg.gradients(ops.sum(ops.square(y)), [xn, wn])
        return mg.gradients(ops.sum(ops.square(gx)) + ops.sum(ops.square(gw)), [wn])

    with mg.Graph() as graph:
        xn, wn = mg.placeholder(x.shape, "float64"), mg.placeholder(w.shape, "float64")
        fetches = build(xn, wn)
    kinds = {n.kind: n.op.algorithm for n in graph.nodes if n.kind.startswith("conv2d")}
    assert kinds == {"conv2d": "winograd", "conv2d_backprop_input": "winograd", "conv2d_backprop_filter": "winograd"}
    sess = mg.Session(graph)
    got = sess.run(fetches, {xn: x, wn: w})
    assert only_winograd(sess.kernels(fetches, {xn: x, wn: w}))
    with mg.Graph() as g2:
        xe, we = mg.placeholder(x.shape, "float64"), mg.placeholder(w.shape, "float64")
        y = ops.conv2d(xe, we, padding=1, algorithm="gemm")
        gx, gw = mg.gradients(ops.sum(ops.square(y)), [xe, we])
        want = mg.gradients(ops.sum(ops.square(gx)) + ops.sum(ops.square(gw)), [we])
    np.testing.assert_allclose(got[0], mg.Session(g2).run(want, {xe: x, we: w})[0], rtol=1e-10)


# ---------------------------------------------------------------------------------
# the selector and the ways to force an algorithm


def selected(node, shapes, forced=(), rt=None):
    rt = rt or mg.CpuRuntime(threads=2)
    kernel = dispatch.select(node.op, shapes, "numpy", dict(forced), rt)
    return "generic" if kernel is None else kernel.algorithm


def conv_nodes(n, c, h, f, stride=1, **kw):
    """A conv of (N, C, H, H) to F filters and its two gradient nodes, with their input shapes."""
    with mg.Graph():
        x, w = mg.placeholder((n, c, h, h)), mg.placeholder((f, c, 3, 3))
        y = ops.conv2d(x, w, padding="SAME", stride=stride, **kw)
        gx, gw = mg.gradients(ops.sum(y), [x, w])
    g_shape = y.shape
    return [(y, (x.shape, w.shape)), (gx, (g_shape, w.shape)), (gw, (x.shape, g_shape))]


W3, G3 = ("winograd",) * 3, ("gemm", "full_correlation", "gemm")
GS = ("gemm", "tap_scatter", "gemm")


@pytest.mark.parametrize("threads, n, c, h, f, want", [
    (2, 32, 96, 28, 128, W3),   # Inception(3a)'s 3x3 at batch 32: 1568 tiles
    (2, 8, 64, 56, 192, W3),    # GoogLeNet conv2 at batch 8
    (2, 8, 96, 28, 128, W3),    # GoogLeNet 3a at batch 8: 392 tiles, 196 a thread
    (2, 8, 160, 14, 320, GS),   # GoogLeNet 4e at batch 8: 128 tiles, 64 a thread
    (1, 8, 160, 14, 320, W3),   # ... on one thread: 128
    (1, 8, 192, 7, 384, GS),    # GoogLeNet 5b at batch 8: 32 tiles
    (2, 32, 128, 14, 256, W3),  # 14x14 at batch 32: 512 tiles
    (2, 64, 192, 7, 384, W3),   # 7x7 at batch 64: 256 tiles
    (1, 32, 16, 28, 32, G3),    # 16 channels in: too narrow
    (1, 4, 16, 28, 32, G3),     # the naive-conv row's conv
])
def test_selector_picks_per_shape_and_threads(threads, n, c, h, f, want):
    rt = mg.CpuRuntime(threads=threads)
    assert tuple(selected(node, shapes, rt=rt) for node, shapes in conv_nodes(n, c, h, f)) == want


def test_selector_never_picks_winograd_where_it_does_not_apply():
    for node, shapes in conv_nodes(32, 96, 28, 128, stride=2):
        assert selected(node, shapes) != "winograd"
        assert selected(node, shapes, {node.kind: "winograd"}) != "winograd"  # forced: falls back
    with mg.Graph():
        x = mg.placeholder((8, 64, 28, 28))
        for w_shape, kw in [((32, 64, 5, 5), {}), ((32, 64, 3, 3), {"dilation": 2}), ((32, 64, 3, 2), {})]:
            y = ops.conv2d(x, mg.placeholder(w_shape), padding="SAME", **kw)
            assert selected(y, (x.shape, w_shape)) == "gemm"


def test_winograd_kernels_are_marked_inexact():
    rows = {(kind, algo): exact for kind, be, algo, exact in dispatch.describe("numpy")}
    for kind in ("conv2d", "conv2d_backprop_input", "conv2d_backprop_filter"):
        assert rows[(kind, "winograd")] is False and rows[(kind, "gemm")] is True


def test_algorithm_attribute_forces_one_op_and_is_inherited_by_its_gradients():
    nodes = conv_nodes(32, 96, 28, 128, algorithm="gemm")
    for node, shapes in nodes:
        assert node.op.algorithm == "gemm" and selected(node, shapes) == "gemm"
        assert selected(node, shapes, {node.kind: "winograd"}) == "gemm"  # the op's own choice wins
    for node, shapes in conv_nodes(2, 3, 8, 4, algorithm="winograd"):
        assert selected(node, shapes) == "winograd"
    with mg.Graph():
        g, w = mg.placeholder((1, 4, 6, 6)), mg.placeholder((4, 3, 3, 3))
        gx = ops.conv2d_backprop_input(g, w, (6, 6), padding=1, algorithm="tap_scatter")
        gg, gw = mg.gradients(ops.sum(gx), [g, w])
    assert gg.op.algorithm == "gemm" and gw.op.algorithm == "gemm"  # exact stays exact


def test_session_and_environment_force_an_algorithm(monkeypatch):
    x, w, b = data((2, 8, 12, 12), 16, np.float32)
    with mg.Graph() as graph:
        xn = mg.placeholder(x.shape)
        y = ops.conv2d(xn, mg.constant(w), mg.constant(b), padding="SAME", name="conv")
    feed = {xn: x}
    forced = mg.Session(graph, algorithms={"conv2d": "winograd"})
    out_w = forced.run(y, feed)
    assert forced.kernels(y, feed)["conv"] == "winograd"
    monkeypatch.setenv("MINIGRAPH_ALGORITHMS", "conv2d=gemm")
    by_env = mg.Session(graph, algorithms={})
    out_g = by_env.run(y, feed)
    assert by_env.kernels(y, feed)["conv"] == "gemm"
    np.testing.assert_allclose(out_w, out_g, rtol=0, atol=wk.ERROR_BOUND[np.dtype(np.float32)] * np.abs(out_g).max())
    monkeypatch.setenv("MINIGRAPH_ALGORITHMS", "conv2d=winograd")
    assert mg.Session(graph, algorithms={"conv2d": "gemm"}).run(y, feed).tobytes() == out_g.tobytes()


def test_unknown_algorithm_is_a_build_time_error():
    with mg.Graph():
        x, w = mg.placeholder((1, 3, 8, 8)), mg.placeholder((4, 3, 3, 3))
        with pytest.raises(ValueError, match=r"conv2d: algorithm must be None or one of .*'gemm', 'generic', 'winograd', got 'fft'"):
            ops.conv2d(x, w, algorithm="fft")
        with pytest.raises(ValueError, match="conv2d: algorithm must be"):
            ops.conv2d(x, w, algorithm="tap_scatter")  # an input-gradient kernel, not a conv's
        gx = ops.conv2d_backprop_input(mg.placeholder((1, 4, 6, 6)), w, (8, 8), algorithm="tap_scatter")
        assert gx.op.algorithm == "tap_scatter"


def test_cse_merges_equal_algorithms_only():
    with mg.Graph():
        x, w = mg.placeholder((1, 3, 8, 8)), mg.placeholder((4, 3, 3, 3))
        a = ops.conv2d(x, w, padding=1)
        b = ops.conv2d(x, w, padding=1)
        c = ops.conv2d(x, w, padding=1, algorithm="gemm")
        d = ops.conv2d(x, w, padding=1, algorithm="gemm")
        opt = mg.optimize([a, b, c, d], feed=[x, w])
    assert opt.mapping[a] is opt.mapping[b] and opt.mapping[c] is opt.mapping[d]
    assert opt.mapping[a] is not opt.mapping[c] and opt.mapping[c].op.algorithm == "gemm"


@pytest.mark.parametrize("threads, chunk_bytes", [(1, 1 << 30), (1, 1), (3, 1), (2, 1 << 16)])
def test_kernels_agree_however_the_batch_is_split(threads, chunk_bytes):
    """One block or many (a block per image with a tiny workspace), on one thread or several:
    the same values (float64), the filter gradient's per-thread sums included."""
    x, w, b = data((5, 6, 9, 10), 7, np.float64, seed=4)
    g = np.random.default_rng(5).standard_normal((5, 7, 9, 10))

    def run(algorithm, runtime):
        with mg.Graph() as graph:
            xn, wn, bn, gn = (mg.placeholder(v.shape, "float64") for v in (x, w, b, g))
            y = ops.relu(ops.conv2d(xn, wn, bn, padding="SAME", algorithm=algorithm))
            fetches = [y] + mg.gradients(y, [xn, wn, bn], grad_ys=[gn])
        sess = mg.Session(graph, runtime=runtime)
        feed = {xn: x, wn: w, bn: b, gn: g}
        return sess.run(fetches, feed), sess.kernels(fetches, feed)

    rt = mg.CpuRuntime(threads=threads, chunk_bytes=chunk_bytes)
    got, used = run("winograd", rt)
    want, used_exact = run("gemm", mg.CpuRuntime(threads=1))
    assert only_winograd(used) and "winograd" not in used_exact.values()
    for a, r in zip(got, want):
        np.testing.assert_allclose(a, r, rtol=1e-11, atol=1e-11)
    rt.close()
