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
