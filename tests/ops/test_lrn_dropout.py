"""local_response_norm (loop reference, gradients of both orders) and dropout (identity when
not training, scaled keep-mask when training, seeded per session, gradient through the mask)."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import ops


def loop_lrn(x, size, alpha, beta, k):
    """Caffe's across-channel LRN: the window of `size` channels starts (size - 1) // 2 before c."""
    n, c, h, w = x.shape
    out = np.zeros(x.shape)
    for i in range(n):
        for ch in range(c):
            lo = ch - (size - 1) // 2
            for p in range(h):
                for q in range(w):
                    sq = sum(float(x[i, j, p, q]) ** 2 for j in range(lo, lo + size) if 0 <= j < c)
                    out[i, ch, p, q] = x[i, ch, p, q] / (k + alpha / size * sq) ** beta
    return out


run = mg.testing.evaluate


@pytest.mark.parametrize("size, alpha, beta, k", [(5, 1e-4, 0.75, 2.0), (3, 0.5, 0.75, 1.0),
                                                  (4, 0.3, 0.5, 2.0), (1, 1.0, 1.0, 1.0), (9, 0.2, 0.75, 2.0)])
def test_lrn_matches_loop(size, alpha, beta, k):
    x = np.random.default_rng(0).standard_normal((2, 6, 3, 4)).astype("float32") * 3
    node, out = run(lambda a: ops.local_response_norm(a, size, alpha, beta, k), x)
    assert node.shape == out.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, loop_lrn(x, size, alpha, beta, k), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [5, 3, 4])
def test_lrn_gradients_first_and_second_order(size):
    x = np.random.default_rng(1).standard_normal((1, 5, 2, 3))
    mg.testing.gradcheck(lambda a: ops.local_response_norm(a, size, alpha=0.7, beta=0.75, k=1.5), [x], order=2)


@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn_third_order(size):
    """The gradient op's own gradient held g fixed with stop_gradient, which cut the paths the
    next order needs: order 3 was off by 40-70%."""
    x = np.random.default_rng(2).standard_normal((1, 3, 1, 2))
    mg.testing.gradcheck(lambda a: ops.local_response_norm(a, size, alpha=0.1, beta=0.75, k=2.0), [x], order=3)


def loop_lrn_grad(x, g, size, alpha, beta, k):
    """gx[d] = sum_c g[c] dy[c]/dx[d], with dy[c]/dx[d] = [c == d] s_c**-beta
    - 2 alpha beta / size * x[c] x[d] s_c**(-beta - 1) for d in window(c), one pixel at a time."""
    n, ch, h, w = x.shape
    out = np.zeros(x.shape)
    for i in range(n):
        for p in range(h):
            for q in range(w):
                v, gv = x[i, :, p, q].astype(float), g[i, :, p, q].astype(float)
                for c in range(ch):
                    win = [j for j in range(c - (size - 1) // 2, c - (size - 1) // 2 + size) if 0 <= j < ch]
                    s = k + alpha / size * sum(v[j] ** 2 for j in win)
                    out[i, c, p, q] += gv[c] * s ** -beta
                    for d in win:
                        out[i, d, p, q] -= gv[c] * 2 * alpha * beta / size * v[c] * v[d] * s ** (-beta - 1)
    return out


@pytest.mark.parametrize("size, alpha, beta, k", [(5, 1e-4, 0.75, 1.0), (4, 0.3, 0.5, 2.0), (1, 1.0, 1.0, 1.0)])
def test_lrn_gradient_is_one_op_matching_loop(size, alpha, beta, k):
    rng = np.random.default_rng(2)
    x, g = rng.standard_normal((2, 7, 3, 4)) * 2, rng.standard_normal((2, 7, 3, 4))
    with mg.Graph() as graph:
        xn, gn = mg.placeholder(x.shape, "float64"), mg.placeholder(g.shape, "float64")
        (gx,) = mg.gradients(ops.local_response_norm(xn, size, alpha, beta, k), [xn], grad_ys=[gn])
    assert gx.kind == "local_response_norm_grad"
    out = mg.Session(graph).run(gx, {xn: x, gn: g})
    np.testing.assert_allclose(out, loop_lrn_grad(x, g, size, alpha, beta, k), rtol=1e-10, atol=1e-12)


def test_channel_window_sum_and_its_mirrored_adjoint():
    x = np.random.default_rng(2).standard_normal((2, 5, 2, 2))
    _, out = run(lambda a: ops.channel_window_sum(a, 2, 1), x)
    ref = np.stack([sum(x[:, j] for j in range(c - 2, c + 2) if 0 <= j < 5) for c in range(5)], axis=1)
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    mg.testing.gradcheck(lambda a: ops.square(ops.channel_window_sum(a, 2, 1)), [x], order=2)


def test_lrn_errors():
    with mg.Graph():
        with pytest.raises(mg.ShapeError, match="input must have rank 4"):
            ops.local_response_norm(mg.placeholder((3, 4)))
        for size in (0, True, 2.0):  # main: a ValueError, not a minigraph error
            with pytest.raises(mg.ShapeError, match="local_response_norm: size must be a positive int"):
                ops.local_response_norm(mg.placeholder((1, 3, 4, 4)), size=size)


# ---------------------------------------------------------------------------------
# dropout


def test_dropout_is_identity_when_not_training():
    x = np.random.default_rng(3).standard_normal((4, 3, 5, 5)).astype("float32")
    with mg.Graph() as g:
        xn = mg.placeholder((None, 3, 5, 5))
        y_false = ops.dropout(xn, 0.5, training=False)
        switch = mg.placeholder_with_default(False)
        y_node = ops.dropout(xn, 0.5, training=switch)
        y_zero = ops.dropout(xn, 0.0, training=True)
        (gx,) = mg.gradients(ops.sum(y_node), [xn])
    out = mg.Session(g).run([y_false, y_node, y_zero, gx], {xn: x})
    for o in out[:3]:
        np.testing.assert_array_equal(o, x)
        assert o.dtype == np.float32
    np.testing.assert_array_equal(out[3], np.ones_like(x))


@pytest.mark.parametrize("rate", [0.25, 0.5, 0.9])
def test_dropout_training_keeps_and_scales(rate):
    x = np.random.default_rng(4).uniform(1.0, 2.0, size=(8, 16, 16, 16)).astype("float32")
    with mg.Graph() as g:
        xn = mg.placeholder(x.shape)
        switch = mg.placeholder_with_default(False)
        y = ops.dropout(xn, rate, switch)
        (gx,) = mg.gradients(ops.sum(y), [xn])
    y_out, g_out = mg.Session(g, seed=1).run([y, gx], {xn: x, switch: True})
    kept = y_out != 0
    assert y_out.dtype == np.float32
    np.testing.assert_allclose(y_out[kept], x[kept] / (1 - rate), rtol=1e-6)
    assert abs(kept.mean() - (1 - rate)) < 0.01  # 32768 draws: 0.01 is > 3 standard deviations
    # the gradient goes through the same mask as the forward value in that run
    np.testing.assert_allclose(g_out, kept / (1 - rate), rtol=1e-6)


def test_dropout_is_seeded_per_session_and_redrawn_each_run():
    x = np.ones((2, 3, 8, 8), "float32")
    with mg.Graph() as g:
        xn = mg.placeholder(x.shape)
        y = ops.dropout(xn, 0.5, training=True)
    a1, a2 = (mg.Session(g, seed=7).run(y, {xn: x}) for _ in range(2))
    s = mg.Session(g, seed=7)
    b1, b2 = s.run(y, {xn: x}), s.run(y, {xn: x})
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(a1, b1)
    assert not np.array_equal(b1, b2)
    assert not np.array_equal(a1, mg.Session(g, seed=8).run(y, {xn: x}))


def test_dropout_second_order_when_not_training():
    x = np.random.default_rng(5).standard_normal((2, 3, 2, 2))
    mg.testing.gradcheck(lambda a: ops.square(ops.dropout(a, 0.3, mg.placeholder_with_default(False))), [x], order=2)


def test_dropout_errors():
    with mg.Graph():
        x = mg.placeholder((None, 4))
        for rate in (1.0, -0.1, "0.5"):
            with pytest.raises(ValueError, match=r"rate must be a number in \[0, 1\)"):
                ops.dropout(x, rate, True)
        with pytest.raises(mg.ShapeError, match="training must be a scalar bool"):
            ops.dropout(x, 0.5, mg.placeholder((), dtype="float32"))
        with pytest.raises(TypeError, match="training must be a bool"):
            ops.dropout(x, 0.5, "yes")


def test_dropout_masks_follow_the_example_index():
    """Row i's mask depends on (session seed, draw, first_example + i), not on the batch it
    came in: two half batches with offsets 0 and 4 draw the full batch's masks."""
    x = np.ones((8, 5, 3, 3), "float32")
    with mg.Graph() as g:
        xn = mg.placeholder((None, 5, 3, 3))
        first = mg.placeholder_with_default(np.int64(0))
        y = ops.dropout(xn, 0.5, training=True, first_example=first)
    full = mg.Session(g, seed=3)
    halves = [mg.Session(g, seed=3), mg.Session(g, seed=3)]
    for _ in range(2):  # the second draw of each session differs from the first, equally
        whole = full.run(y, {xn: x})
        parts = [s.run(y, {xn: x[4 * k:4 * k + 4], first: 4 * k}) for k, s in enumerate(halves)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert not np.array_equal(whole[:4], whole[4:])
    assert set(full.state) == {"dropout/key", "dropout_mask/draws"}
    assert int(full.state["dropout_mask/draws"]) == 2


def test_dropout_keep_is_a_uniform_counter_based_draw():
    """dropout_keep against a plain-Python SplitMix64 written here, and its keep rate."""
    from minigraph.ops.nn import dropout_keep
    mask64 = (1 << 64) - 1
    gamma = 0x9E3779B97F4A7C15

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask64
        return z ^ (z >> 31)

    key, draw, rows, per_row, rate = 12345, 7, [0, 5, 9], 6, 0.3
    base = mix((key + draw * gamma) & mask64)
    expected = [[(mix((mix((base + r * gamma) & mask64) + (e + 1) * gamma) & mask64) >> 11) / 2 ** 53 >= rate
                 for e in range(per_row)] for r in rows]
    np.testing.assert_array_equal(dropout_keep(np, key, draw, np.array(rows), per_row, rate), expected)
    many = dropout_keep(np, 99, 0, np.arange(1000), 100, 0.25)
    assert abs(many.mean() - 0.75) < 0.005  # 100,000 draws: 0.005 is > 3.6 standard deviations


def test_dropout_first_example_errors():
    with mg.Graph():
        x = mg.placeholder((None, 4))
        with pytest.raises(mg.ShapeError, match="first_example must be an int scalar"):
            ops.dropout(x, 0.5, True, first_example=mg.placeholder((), dtype="float32"))
        y = ops.dropout(x, 0.5, True, first_example=mg.constant(np.int64(-1)))
    with pytest.raises(ValueError, match="first_example must be >= 0, got -1"):
        mg.Session(y.graph).run(y, {x: np.ones((2, 4), "float32")})


def test_a_negative_channel_window_is_a_shape_error():
    with mg.Graph():
        x = mg.placeholder((1, 5, 2, 2))
        for before, after in [(-1, 2), (0, -1)]:
            with pytest.raises(mg.ShapeError, match="must not be negative"):
                ops.channel_window_sum(x, before, after)
