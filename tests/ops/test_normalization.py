"""Batch normalisation against PyTorch's formulas written out in float64 NumPy (per channel,
in loops), moving averages over several training runs, inference, gradients of both orders."""
import threading

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops

EPS = 1e-5
TORCH_MOMENTUM = 0.1          # PyTorch's momentum: running = (1 - 0.1) * running + 0.1 * batch
MOMENTUM = 1 - TORCH_MOMENTUM  # ours is the decay of the moving average (Keras's convention)


def torch_train_forward(x, gamma, beta, running_mean, running_var):
    """BatchNorm in training as PyTorch documents it: normalise with the batch mean and biased
    variance; the running variance is updated with the unbiased one. Returns y, mean, var."""
    y = np.empty_like(x)
    rm, rv = running_mean.copy(), running_var.copy()
    for c in range(x.shape[1]):
        v = x[:, c].ravel()
        n = v.size
        mu = sum(v) / n
        var = sum((t - mu) ** 2 for t in v) / n
        y[:, c] = (x[:, c] - mu) / np.sqrt(var + EPS) * gamma[c] + beta[c]
        rm[c] = (1 - TORCH_MOMENTUM) * rm[c] + TORCH_MOMENTUM * mu
        rv[c] = (1 - TORCH_MOMENTUM) * rv[c] + TORCH_MOMENTUM * var * n / (n - 1)
    return y, rm, rv


def torch_eval_forward(x, gamma, beta, running_mean, running_var):
    y = np.empty_like(x)
    for c in range(x.shape[1]):
        y[:, c] = (x[:, c] - running_mean[c]) / np.sqrt(running_var[c] + EPS) * gamma[c] + beta[c]
    return y


def torch_train_backward(x, g, gamma):
    """PyTorch's batch_norm backward in training: gx = gamma * invstd / n * (n g - sum(g) -
    xhat * sum(g xhat)), ggamma = sum(g xhat), gbeta = sum(g), per channel."""
    gx = np.empty_like(x)
    ggamma, gbeta = np.empty(x.shape[1]), np.empty(x.shape[1])
    for c in range(x.shape[1]):
        xc, gc = x[:, c], g[:, c]
        n = xc.size
        mu = xc.mean()
        invstd = 1 / np.sqrt(((xc - mu) ** 2).mean() + EPS)
        xhat = (xc - mu) * invstd
        gx[:, c] = gamma[c] * invstd / n * (n * gc - gc.sum() - xhat * (gc * xhat).sum())
        ggamma[c], gbeta[c] = (gc * xhat).sum(), gc.sum()
    return gx, ggamma, gbeta


def _params(c, rng):
    return rng.uniform(0.5, 2.0, c), rng.standard_normal(c), rng.standard_normal(c) * 0.1, rng.uniform(0.5, 2.0, c)


def _build(shape, training, momentum=MOMENTUM):
    """x placeholder, the four variables, and the batch-norm output (float64)."""
    rng = np.random.default_rng(0)
    gamma0, beta0, mean0, var0 = _params(shape[1], rng)
    with mg.Graph() as g:
        x = mg.placeholder((None,) + shape[1:], "float64", name="x")
        gamma, beta = mg.variable(gamma0, name="gamma"), mg.variable(beta0, name="beta")
        mm = mg.variable(mean0, name="moving_mean", trainable=False)
        mv = mg.variable(var0, name="moving_variance", trainable=False)
        switch = mg.placeholder_with_default(False, name="training") if training == "switch" else training
        y = ops.batch_norm(x, gamma, beta, mm, mv, switch, momentum=momentum)
    return g, x, y, switch, (gamma0, beta0, mean0, var0), (mm, mv)


@pytest.mark.parametrize("shape", [(3, 4, 5, 2), (6, 3)])
def test_training_forward_and_moving_averages_match_pytorch(shape):
    g, x, y, switch, (gamma0, beta0, mean0, var0), (mm, mv) = _build(shape, "switch")
    sess = mg.Session(g)
    rng = np.random.default_rng(1)
    rm, rv = mean0, var0
    for step in range(3):  # the moving averages follow PyTorch's running statistics run after run
        xv = rng.standard_normal(shape) * 3 + 1
        out = sess.run(y, {x: xv, switch: True})
        want, rm, rv = torch_train_forward(xv, gamma0, beta0, rm, rv)
        np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(sess.get_value(mm), rm, rtol=1e-12)
        np.testing.assert_allclose(sess.get_value(mv), rv, rtol=1e-12)
    # inference uses them and leaves them alone
    before = sess.get_value(mm), sess.get_value(mv)
    xv = rng.standard_normal(shape)
    out = sess.run(y, {x: xv})
    np.testing.assert_allclose(out, torch_eval_forward(xv, gamma0, beta0, rm, rv), rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(sess.get_value(mm), before[0])
    np.testing.assert_array_equal(sess.get_value(mv), before[1])


def test_python_bools_build_a_training_op_or_a_pure_inference_op():
    shape = (4, 3, 2, 3)
    xv = np.random.default_rng(2).standard_normal(shape)
    g, x, y, _, (gamma0, beta0, mean0, var0), (mm, mv) = _build(shape, True)
    sess = mg.Session(g)
    out = sess.run(y, {x: xv})
    want, rm, rv = torch_train_forward(xv, gamma0, beta0, mean0, var0)
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(sess.get_value(mv), rv, rtol=1e-12)
    assert y.kind == "batch_norm" and y.op.side_effects

    g, x, y, _, (gamma0, beta0, mean0, var0), (mm, mv) = _build(shape, False)
    assert y.kind == "batch_normalization" and y.op.pure and not y.op.side_effects
    sess = mg.Session(g)
    np.testing.assert_allclose(sess.run(y, {x: xv}), torch_eval_forward(xv, gamma0, beta0, mean0, var0),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(sess.get_value(mm), mean0)


@pytest.mark.parametrize("shape", [(3, 4, 5, 2), (5, 3)])
def test_training_gradients_match_pytorch_backward(shape):
    g, x, y, switch, (gamma0, beta0, _, _), _ = _build(shape, "switch")
    rng = np.random.default_rng(3)
    xv, gy = rng.standard_normal(shape) * 2, rng.standard_normal(shape)
    gamma, beta = g.get("gamma"), g.get("beta")
    with g:
        weights = mg.constant(gy)
        gx, ggamma, gbeta = mg.gradients(ops.sum(y * weights), [x, gamma, beta])
    out = mg.Session(g).run([gx, ggamma, gbeta], {x: xv, switch: True})
    for got, want in zip(out, torch_train_backward(xv, gy, gamma0)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


def test_inference_gradients_treat_the_moving_averages_as_fixed():
    shape = (3, 4, 2, 2)
    g, x, y, switch, (gamma0, beta0, mean0, var0), (mm, mv) = _build(shape, "switch")
    rng = np.random.default_rng(4)
    xv, gy = rng.standard_normal(shape), rng.standard_normal(shape)
    with g:
        gx, gm, gv = mg.gradients(ops.sum(y * mg.constant(gy)), [x, mm, mv])
    out = mg.Session(g).run([gx, gm, gv], {x: xv})
    invstd = 1 / np.sqrt(var0 + EPS)
    want_gx = np.stack([gy[:, c] * gamma0[c] * invstd[c] for c in range(4)], axis=1)
    want_gm = np.array([-(gy[:, c]).sum() * gamma0[c] * invstd[c] for c in range(4)])
    want_gv = np.array([-0.5 * (gy[:, c] * (xv[:, c] - mean0[c])).sum() * gamma0[c] * invstd[c] ** 3
                        for c in range(4)])
    for got, want in zip(out, (want_gx, want_gm, want_gv)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # in training the moving averages do not reach the output: no gradient
    out = mg.Session(g).run([gm, gv], {x: xv, switch: True})
    assert not np.any(out[0]) and not np.any(out[1])


def _bn_fn(training):
    def fn(x, gamma, beta):
        c = x.shape[1]
        mm = mg.variable(np.linspace(-0.2, 0.3, c), name="moving_mean", trainable=False)
        mv = mg.variable(np.linspace(0.5, 1.5, c), name="moving_variance", trainable=False)
        switch = mg.placeholder_with_default(training == "switch on") if training in ("switch on", "switch off") else training
        return ops.batch_norm(x, gamma, beta, mm, mv, switch)
    return fn


@pytest.mark.parametrize("training", [True, False, "switch on", "switch off"])
@pytest.mark.parametrize("shape", [(4, 3, 2, 3), (5, 2)])
def test_gradcheck_first_and_second_order(training, shape):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape) * 1.5 + 0.5
    mg.testing.gradcheck(_bn_fn(training), [x, rng.uniform(0.5, 2, shape[1]), rng.standard_normal(shape[1])],
                         order=2)


def test_batch_normalization_forward_and_gradcheck_of_all_five_inputs():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 2, 4, 3))
    gamma, beta, mean, var = rng.uniform(0.5, 2, 2), rng.standard_normal(2), rng.standard_normal(2), rng.uniform(0.5, 2, 2)
    _, out = mg.testing.evaluate(lambda *a: ops.batch_normalization(a[0], a[1], a[2], a[3], a[4], epsilon=1e-3),
                                 x, mean, var, gamma, beta)
    want = np.empty_like(x)
    for c in range(2):
        want[:, c] = gamma[c] * (x[:, c] - mean[c]) / np.sqrt(var[c] + 1e-3) + beta[c]
    np.testing.assert_allclose(out, want, rtol=1e-12)
    mg.testing.gradcheck(lambda *a: ops.batch_normalization(*a), [x, mean, var, gamma, beta], order=2)


def test_float32_stays_float32_and_matches_float64():
    shape = (8, 5, 6, 7)
    xv = np.random.default_rng(7).standard_normal(shape) * 4 + 3
    outs = []
    for dtype in ("float32", "float64"):
        with mg.Graph() as g:
            x = mg.placeholder(shape, dtype)
            y = mg.layers.batch_norm(x, training=True)
        outs.append(mg.Session(g).run(y, {x: xv.astype(dtype)}))
    assert outs[0].dtype == np.float32
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-5)


def test_state_writing_runs_share_a_session_without_losing_updates():
    shape = (16, 3, 64, 64)  # big enough that unsynchronised runs would interleave
    g, x, y, switch, (_, _, mean0, _), (mm, _) = _build(shape, "switch")
    sess = mg.Session(g)
    xv = np.random.default_rng(8).standard_normal(shape)
    threads, runs = 4, 5

    def work():
        for _ in range(runs):
            sess.run(y, {x: xv, switch: True})
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    k = threads * runs   # every update applied: moving = m^k * start + (1 - m^k) * batch mean
    batch_mean = xv.mean(axis=(0, 2, 3))
    np.testing.assert_allclose(sess.get_value(mm), MOMENTUM ** k * mean0 + (1 - MOMENTUM ** k) * batch_mean,
                               rtol=1e-10)


def test_passes_never_merge_or_fold_the_state_writing_op():
    with mg.Graph():
        x = mg.placeholder((None, 2), "float64", name="x")
        v = [mg.variable(np.ones(2), name=n, trainable=n in ("gamma", "beta")) for n in ("gamma", "beta", "mm", "mv")]
        a = ops.batch_norm(x, *v, training=True, name="a")
        b = ops.batch_norm(x, *v, training=True, name="b")
        c = ops.batch_norm(x, *v, training=False, name="c")
        d = ops.batch_norm(x, *v, training=False, name="d")
    opt = mg.optimize([a + b, c + d], feed=[x])
    kinds = sorted(n.kind for n in opt.graph.nodes if "batch_norm" in n.kind)
    assert kinds == ["batch_norm", "batch_norm", "batch_normalization"]  # the pure pair is merged


def test_errors_name_what_is_wrong():
    with mg.Graph():
        x = mg.placeholder((None, 3, 4, 4), name="x")
        v = [mg.variable(np.ones(3, "float32"), name=n) for n in ("gamma", "beta", "mm", "mv")]
        with pytest.raises(ValueError, match=r"momentum must be a number in \[0, 1\)"):
            ops.batch_norm(x, *v, training=True, momentum=1.0)
        with pytest.raises(ValueError, match="epsilon must be a positive number"):
            ops.batch_norm(x, *v, training=True, epsilon=0)
        with pytest.raises(TypeError, match="moving_variance must be a variable node"):
            ops.batch_norm(x, v[0], v[1], v[2], mg.constant(np.ones(3, "float32")), training=True)
        with pytest.raises(TypeError, match="training must be a bool"):
            ops.batch_norm(x, *v, training="yes")
        with pytest.raises(mg.ShapeError, match="training must be a scalar bool"):
            ops.batch_norm(x, *v, training=mg.placeholder((), "float32"))
        with pytest.raises(mg.ShapeError, match=r"per-channel inputs must be \(3,\) .* got \(4,\)"):
            ops.batch_norm(x, v[0], v[1], v[2], mg.variable(np.ones(4, "float32")), training=True)
        with pytest.raises(mg.ShapeError, match="dtype mismatch"):
            ops.batch_norm(x, v[0], v[1], v[2], mg.variable(np.ones(3)), training=True)
        y = ops.batch_norm(x, *v, training=True)
    with pytest.raises(mg.FeedError, match=r"more than one value per channel, got an input of shape \(1, 3, 1, 1\)"):
        with mg.Graph() as g:
            x1 = mg.placeholder((None, 3, 1, 1))
            y1 = mg.layers.batch_norm(x1, training=True)
        mg.Session(g).run(y1, {x1: np.ones((1, 3, 1, 1), "float32")})
    assert y.shape == (None, 3, 4, 4)
