"""conv1x1: a plain-loop channel matmul reference, (F, C) and (F, C, 1, 1) weights, gradients
of both orders (including the filter-gradient op), costs and errors."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import ops


def loop_conv1x1(x, w, b):
    n, c, h, wd = x.shape
    f = w.shape[0]
    w2 = w.reshape(f, c)
    out = np.zeros((n, f, h, wd))
    for i in range(n):
        for o in range(f):
            for p in range(h):
                for q in range(wd):
                    out[i, o, p, q] = sum(float(w2[o, ch]) * float(x[i, ch, p, q]) for ch in range(c))
                    out[i, o, p, q] += 0.0 if b is None else float(b[o])
    return out


run = mg.testing.evaluate


@pytest.mark.parametrize("x_shape, w_shape, bias", [
    ((2, 3, 5, 4), (4, 3), True),
    ((1, 3, 5, 4), (4, 3, 1, 1), False),
    ((3, 1, 2, 7), (2, 1), False),
    ((2, 5, 3, 3), (6, 5, 1, 1), True),
])
def test_forward_matches_loop_and_keeps_float32(x_shape, w_shape, bias):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape).astype("float32"), rng.standard_normal(w_shape).astype("float32")
    values = (x, w, rng.standard_normal(w_shape[0]).astype("float32")) if bias else (x, w)
    node, out = run(ops.conv1x1, *values)
    assert node.kind == "conv1x1" and node.shape == out.shape == (x_shape[0], w_shape[0]) + x_shape[2:]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, loop_conv1x1(x, w, values[2] if bias else None), rtol=1e-5, atol=1e-5)


def test_conv2d_with_unit_kernel_agrees_with_conv2d_loop():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 1, 1)), rng.standard_normal(2)
    node, out = run(lambda *a: ops.conv2d(*a, padding="SAME"), x, w, b)
    assert node.kind == "conv1x1"
    np.testing.assert_allclose(out, loop_conv1x1(x, w, b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("w_shape", [(3, 2), (3, 2, 1, 1)])
def test_gradients_first_and_second_order(w_shape):
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 2, 3, 4)), rng.standard_normal(w_shape), rng.standard_normal(3)
    mg.testing.gradcheck(ops.conv1x1, [x, w, b], order=2)
    mg.testing.gradcheck(lambda xn, wn: ops.square(ops.conv1x1(xn, wn)), [x, w], order=2)


def test_filter_gradient_op_first_and_second_order():
    rng = np.random.default_rng(3)
    x, g = rng.standard_normal((2, 3, 3, 2)), rng.standard_normal((2, 4, 3, 2))
    mg.testing.gradcheck(ops.conv1x1_backprop_filter, [x, g], order=2)


def test_random_direction_check_on_a_bigger_block():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((4, 16, 7, 7)), rng.standard_normal((8, 16, 1, 1))
    mg.testing.gradcheck(lambda a, b: ops.relu(ops.conv1x1(a, b)), [x, w], order=2, mode="random")


def test_gradient_shapes_with_unknown_batch():
    with mg.Graph():
        x, w = mg.placeholder((None, 3, 5, 5)), mg.placeholder((4, 3, 1, 1))
        gx, gw = mg.gradients(ops.sum(ops.conv1x1(x, w)), [x, w])
    assert gx.shape == (None, 3, 5, 5) and gw.shape == (4, 3, 1, 1)


def test_cost():
    with mg.Graph():
        y = ops.conv1x1(mg.placeholder((None, 192, 28, 28)), mg.variable(np.zeros((64, 192), "float32")),
                        mg.variable(np.zeros(64, "float32")))
    assert y.op.cost(y) == mg.Cost(64 * 192 + 64, 64 * 28 * 28 * 192, (64 * 192 + 64) * 28 * 28)


@pytest.mark.parametrize("x_shape, w_shape, message", [
    ((None, 3, 5, 5), (4, 2), r"conv1x1 'c'.*3 channels.*expect 2"),
    ((None, 3, 5, 5), (4, 3, 3, 3), r"must be \(F, C\) or \(F, C, 1, 1\), got \(4, 3, 3, 3\)"),
    ((3, 5, 5), (4, 3), r"input must have rank 4"),
    # main: a reshape error at run time
    ((None, 0, 5, 5), (4, 0), r"conv1x1 'c': input \(None, 0, 5, 5\) and weights \(4, 0\) need at least one channel"),
    ((None, 3, 5, 5), (0, 3, 1, 1), r"weights \(0, 3, 1, 1\) need at least one channel and one filter"),
])
def test_errors(x_shape, w_shape, message):
    with mg.Graph():
        with pytest.raises(mg.ShapeError, match=message):
            ops.conv1x1(mg.placeholder(x_shape), mg.placeholder(w_shape), name="c")
        with pytest.raises(mg.ShapeError, match="dtype mismatch"):
            ops.conv1x1(mg.placeholder((1, 2, 3, 3)), mg.placeholder((4, 2), dtype="float64"))


def test_a_none_channel_count_fed_unlike_the_weights_is_a_feed_error():
    with mg.Graph() as g:
        x = mg.placeholder((None, None, 4, 4), name="x")
        y = ops.conv1x1(x, mg.variable(np.ones((5, 3), "float32")), name="c")
    sess = mg.Session(g)
    with pytest.raises(mg.FeedError, match=r"conv1x1 'c': input \(2, 4, 4, 4\) has 4 channels but the weights "
                                           r"\(5, 3\) expect 3 \(fed values: 'x' \(2, 4, 4, 4\)\)"):
        sess.run(y, {x: np.ones((2, 4, 4, 4), "float32")})
    out = sess.run(y, {x: np.ones((2, 3, 4, 4), "float32")})  # a fitting feed: a channel sum
    np.testing.assert_array_equal(out, np.full((2, 5, 4, 4), 3.0, "float32"))


# the variants the backward passes create: a relu-masked input, a packed filter+bias gradient


def test_masked_conv1x1_and_packed_filter_gradient_match_loops():
    from minigraph.ops.conv1x1 import Conv1x1, Conv1x1BackpropFilter
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5))
    w, g = rng.standard_normal((4, 3)), rng.standard_normal((2, 4, 4, 5))
    gy = rng.standard_normal((2, 4, 4, 5))
    with mg.Graph() as graph:
        xn, yn, wn, gn, gyn = (mg.placeholder(v.shape, "float64") for v in (x, y, w, g, gy))
        out = mg.apply(Conv1x1(relu_mask=True), [xn, wn, yn])
        packed = mg.apply(Conv1x1BackpropFilter(relu_mask=True, bias_gradient=True), [xn, gn, gyn])
    got, got_packed = mg.Session(graph).run([out, packed], {xn: x, yn: y, wn: w, gn: g, gyn: gy})
    np.testing.assert_allclose(got, loop_conv1x1(x * (y > 0), w, None), rtol=1e-12, atol=1e-12)
    gm = g * (gy > 0)
    ref_gw = np.einsum("nfhw,nchw->fc", gm, x)
    assert got_packed.shape == (4, 4)
    np.testing.assert_allclose(got_packed[:, :3], ref_gw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_packed[:, 3], gm.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)
    mg.testing.gradcheck(lambda a, b, c: mg.apply(Conv1x1(relu_mask=True), [a, b, c]), [x, w, y], order=2, wrt=[0, 1])
    mg.testing.gradcheck(lambda a, b, c: mg.apply(Conv1x1BackpropFilter(relu_mask=True, bias_gradient=True), [a, b, c]),
                         [x, g, gy], order=2, wrt=[0, 1])


def test_accumulating_conv1x1_adds_into_its_last_input():
    """The accumulator is the op's to overwrite (the backward pass proves it): here a fresh
    product, never a fed array."""
    from minigraph.ops.conv1x1 import Conv1x1
    rng = np.random.default_rng(7)
    x, y, w = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((4, 3))
    acc = rng.standard_normal((2, 4, 4, 5))
    acc_cl = np.ascontiguousarray(acc.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # channels-last memory
    for op, inputs, ref in [
        (Conv1x1(accumulate=True), [x, w, acc], acc + loop_conv1x1(x, w, None)),
        (Conv1x1(relu_mask=True, accumulate=True), [x, w, y, acc_cl], acc + loop_conv1x1(x * (y > 0), w, None)),
    ]:
        def build(*a, op=op):
            return mg.apply(op, list(a[:-1]) + [ops.mul(a[-1], 1.0)])
        fed = [v.copy() for v in inputs]
        _, out = run(build, *inputs)
        np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
        assert all(np.array_equal(a, b) for a, b in zip(fed, inputs))
        mask_at = [2] if op.relu_mask else []
        mg.testing.gradcheck(build, inputs, order=2, wrt=[i for i in range(len(inputs)) if i not in mask_at])
    with mg.Graph():
        with pytest.raises(mg.ShapeError, match="relu mask"):
            mg.apply(Conv1x1(accumulate=True), [mg.placeholder((2, 3, 4, 5)), mg.placeholder((4, 3)),
                                                mg.placeholder((2, 4, 4, 6))])
