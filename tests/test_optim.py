"""Optimizers: each step against updates computed by hand in this file, a tiny problem
that must be solved in a fixed number of steps, and learning rates that change per step."""
import math

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops

TARGET = np.array([0.5, -1.0, 2.0, 0.0])
SCALE = np.array([1.0, 3.0, 0.5, 2.0])
W0 = np.array([1.0, 2.0, -1.0, 0.25])


def quadratic(make_opt, w0=W0):
    """loss = sum(SCALE * (w - TARGET)^2) / 2, whose gradient is SCALE * (w - TARGET)."""
    with mg.Graph() as g:
        with mg.name_scope("quad"):
            w = mg.variable(w0, name="w")
        d = w - mg.constant(TARGET)
        loss = ops.sum(mg.constant(SCALE) * d * d) * 0.5
        train = make_opt().minimize(loss)
    return g, w, loss, train


def grad(w):
    return SCALE * (w - TARGET)


def run_steps(make_opt, steps, w0=W0):
    g, w, loss, train = quadratic(make_opt, w0)
    sess = mg.Session(g)
    out = []
    for _ in range(steps):
        sess.run(train)
        out.append(sess.get_value(w))
    return out, sess


# -- hand-computed updates ---------------------------------------------------------

def test_sgd_first_steps_by_hand():
    # w0 = 1, target 0, scale 1: g = w.  lr 0.1, momentum 0.9:
    # step 1: buf = 1, w = 1 - 0.1 = 0.9; step 2: g = 0.9, buf = 0.9 + 0.9 = 1.8, w = 0.72
    # nesterov: step 1: buf = 1, g' = 1 + 0.9 = 1.9, w = 0.81;
    # step 2: g = 0.81, buf = 0.9 + 0.81 = 1.71, g' = 0.81 + 1.539 = 2.349, w = 0.5751
    for nesterov, expected in ((False, [0.9, 0.72]), (True, [0.81, 0.5751])):
        with mg.Graph() as g:
            w = mg.variable(np.array([1.0]), name="w")
            train = mg.optim.SGD(0.1, momentum=0.9, nesterov=nesterov).minimize(ops.sum(w * w) * 0.5)
        sess = mg.Session(g)
        got = []
        for _ in range(2):
            sess.run(train)
            got.append(sess.get_value(w)[0])
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_adam_first_step_moves_by_lr_times_sign():
    # after one step m_hat = g and v_hat = g^2, so w moves by lr * g / (|g| + eps)
    out, _ = run_steps(lambda: mg.optim.Adam(0.01), 1)
    g = grad(W0)
    np.testing.assert_allclose(out[0], W0 - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-13)
    moved = W0 - out[0]
    np.testing.assert_allclose(np.abs(moved[g != 0]), 0.01, rtol=1e-6)


@pytest.mark.parametrize("momentum,nesterov,weight_decay", [
    (0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 0.0), (0.0, False, 0.1), (0.5, True, 0.01)])
def test_sgd_matches_reference(momentum, nesterov, weight_decay):
    lr, steps = 0.05, 5
    out, sess = run_steps(lambda: mg.optim.SGD(lr, momentum, nesterov, weight_decay), steps)
    w, buf = W0.copy(), np.zeros(4)
    for i in range(steps):
        g = grad(w) + weight_decay * w
        if momentum:
            buf = momentum * buf + g
            g = g + momentum * buf if nesterov else buf
        w = w - lr * g
        np.testing.assert_allclose(out[i], w, rtol=1e-12, atol=1e-15)
    if momentum:
        np.testing.assert_allclose(sess.state["SGD/quad/w/momentum"], buf, rtol=1e-12)
    assert int(sess.state["SGD/step"]) == steps


@pytest.mark.parametrize("betas,eps,weight_decay", [
    ((0.9, 0.999), 1e-8, 0.0), ((0.5, 0.9), 1e-3, 0.0), ((0.9, 0.99), 1e-8, 0.05)])
def test_adam_matches_reference(betas, eps, weight_decay):
    lr, steps = 0.02, 6
    b1, b2 = betas
    out, sess = run_steps(lambda: mg.optim.Adam(lr, betas, eps, weight_decay), steps)
    w, m, v = W0.copy(), np.zeros(4), np.zeros(4)
    for t in range(1, steps + 1):
        g = grad(w) + weight_decay * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(out[t - 1], w, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sess.state["Adam/quad/w/m"], m, rtol=1e-12)
    np.testing.assert_allclose(sess.state["Adam/quad/w/v"], v, rtol=1e-12)
    assert int(sess.state["Adam/quad/w/t"]) == steps


def test_update_node_counts_steps_and_keeps_dtype():
    with mg.Graph() as g:
        w = mg.variable(np.ones(3, "float32"), name="w")
        train = mg.optim.Adam(1e-2).minimize(ops.sum(w * w))
    sess = mg.Session(g)
    assert [int(sess.run(train)) for _ in range(3)] == [1, 2, 3]
    assert sess.get_value(w).dtype == np.float32 and sess.state["Adam/w/m"].dtype == np.float32


def test_gradients_use_values_before_the_update():
    # fetching the loss together with the update gives the loss before the step
    _, w, loss, train = quadratic(lambda: mg.optim.SGD(0.1))
    sess = mg.Session(w.graph)
    before = sess.run(loss)
    l0, _ = sess.run([loss, train])
    assert l0 == before and sess.run(loss) < before


# -- a tiny problem ----------------------------------------------------------------

def blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    x = centers[y] + 0.5 * rng.standard_normal((n, 2))
    return x.astype("float32"), y


@pytest.mark.parametrize("make_opt", [lambda: mg.optim.Adam(0.05),
                                      lambda: mg.optim.SGD(0.5, momentum=0.9)],
                         ids=["adam", "sgd-momentum"])
def test_two_layer_net_learns_three_blobs(make_opt):
    x_data, y_data = blobs()
    rng = np.random.default_rng(1)
    with mg.Graph() as g:
        x = mg.placeholder((None, 2), name="x")
        y = mg.placeholder((None,), "int64", name="y")
        w1 = mg.variable(0.5 * rng.standard_normal((2, 16)).astype("float32"), name="w1")
        b1 = mg.variable(np.zeros(16, "float32"), name="b1")
        w2 = mg.variable(0.5 * rng.standard_normal((16, 3)).astype("float32"), name="w2")
        logits = ops.matmul(ops.relu(ops.matmul(x, w1) + b1), w2)
        loss = ops.softmax_cross_entropy(logits, y)
        train = make_opt().minimize(loss)
    sess = mg.Session(g)
    feed = {x: x_data, y: y_data}
    first = float(sess.run(loss, feed))
    for _ in range(60):
        sess.run(train, feed)
    last = float(sess.run(loss, feed))
    assert first > 0.5 and last < 0.1


# -- learning rates ----------------------------------------------------------------

def test_learning_rate_is_a_scalar_fed_per_step():
    lr = None

    def make():
        nonlocal lr
        lr = mg.optim.learning_rate(0.1, name="lr")
        return mg.optim.SGD(lr)
    g, w, loss, train = quadratic(make)
    sess = mg.Session(g)
    nodes = len(g)
    sess.run(train, {lr: 0.0})
    np.testing.assert_array_equal(sess.get_value(w), W0)
    sess.run(train)  # the default, 0.1
    w1 = W0 - 0.1 * grad(W0)
    np.testing.assert_allclose(sess.get_value(w), w1, rtol=1e-7)
    sess.run(train, {lr: 0.5})
    np.testing.assert_allclose(sess.get_value(w), w1 - 0.5 * grad(w1), rtol=1e-7)
    assert len(g) == nodes


@pytest.mark.parametrize("make_opt", [mg.optim.SGD, lambda lr: mg.optim.SGD(lr, momentum=0.9), mg.optim.Adam])
@pytest.mark.parametrize("bad", [-1.0, -1e-30, float("nan"), float("inf"), -float("inf")])
def test_learning_rate_fed_at_run_time_must_be_finite_and_non_negative(make_opt, bad):
    """SGD(-1.0) is refused when built; the same value fed at run time must be too, before
    any variable or optimizer slot changes."""
    lr = None

    def make():
        nonlocal lr
        lr = mg.optim.learning_rate(0.1, name="lr")
        return make_opt(lr)
    g, w, loss, train = quadratic(make)
    sess = mg.Session(g)
    sess.run(train)
    w1, state = sess.get_value(w), {k: np.array(v) for k, v in sess.state.items()}
    with pytest.raises(mg.FeedError, match=r"apply_\w+ '.*update_quad.w': the learning rate 'lr' "
                                           r"must be a finite number >= 0, got (-|nan|inf)"):
        sess.run(train, {lr: bad})
    np.testing.assert_array_equal(sess.get_value(w), w1)
    assert sess.state.keys() == state.keys()
    for key, value in state.items():
        np.testing.assert_array_equal(sess.state[key], value)
    sess.run(train, {lr: 0.0})  # zero is allowed: the variable stays where it is
    np.testing.assert_array_equal(sess.get_value(w), w1)


def test_learning_rate_can_be_a_variable_assigned_between_steps():
    with mg.Graph() as g:
        w = mg.variable(np.array([1.0]), name="w")
        lr = mg.variable(np.array(0.25), name="lr", trainable=False)
        set_lr = mg.assign(lr, mg.placeholder_with_default(np.array(0.5), name="new_lr"))
        train = mg.optim.SGD(lr).minimize(ops.sum(w * w) * 0.5)
    assert lr not in [n.inputs[0] for n in train.inputs]  # not trained itself
    sess = mg.Session(g)
    sess.run(train)  # w = 1 - 0.25
    sess.run(set_lr)
    sess.run(train)  # w = 0.75 - 0.5 * 0.75
    np.testing.assert_allclose(sess.get_value(w), [0.375])


def test_schedules():
    s = mg.optim.step_schedule(0.1, step_size=3, gamma=0.5)
    assert [s(i) for i in range(7)] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025])
    c = mg.optim.cosine_schedule(1.0, total=10, min_lr=0.1)
    assert c(0) == pytest.approx(1.0) and c(10) == pytest.approx(0.1) and c(20) == pytest.approx(0.1)
    assert c(5) == pytest.approx(0.55)
    assert c(3) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 0.3)) / 2)
    assert all(c(i) >= c(i + 1) for i in range(12))
    w = mg.optim.cosine_schedule(1.0, total=10, warmup=4)
    assert [w(i) for i in range(5)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])


# -- misuse --------------------------------------------------------------------------

def test_errors():
    with mg.Graph():
        w = mg.variable(np.ones(3, "float32"), name="w")
        frozen = mg.variable(np.ones(3, "float32"), name="frozen", trainable=False)
        with pytest.raises(mg.ShapeError, match="scalar"):
            mg.optim.SGD(0.1).minimize(w * 2.0)
        with pytest.raises(TypeError, match="variable"):
            mg.optim.SGD(0.1).minimize(ops.sum(w), var_list=[w * 2.0])
        with pytest.raises(ValueError, match="no trainable variable"):
            mg.optim.SGD(0.1).minimize(ops.sum(frozen))
        with pytest.raises(ValueError, match="positive"):
            mg.optim.SGD(-1.0)
        with pytest.raises(mg.ShapeError, match="scalar"):
            mg.optim.Adam(mg.placeholder((2,)))
        with pytest.raises(ValueError, match="nesterov"):
            mg.optim.SGD(0.1, nesterov=True)
        train = mg.optim.Adam(0.1).minimize(ops.sum(w * frozen))
    updated = [n.inputs[0] for n in train.inputs]
    assert updated == [w]


def test_compute_then_apply_gradients_is_minimize():
    """minimize == apply_gradients(compute_gradients(...)); the pairs can be changed between."""
    w0 = np.array([1.0, -2.0, 3.0])
    with mg.Graph() as g:
        w = mg.variable(w0, name="w")
        loss = ops.sum(w * w) * 0.5  # gradient w
        opt = mg.optim.SGD(0.1, momentum=0.5)
        pairs = opt.compute_gradients(loss)
        assert [v for _, v in pairs] == [w] and pairs[0][0].shape == (3,)
        halved = opt.apply_gradients([(gw * 0.5, v) for gw, v in pairs], name="halved")
        straight = mg.optim.SGD(0.1, momentum=0.5).minimize(loss)
    s1, s2 = mg.Session(g), mg.Session(g)
    s1.run(halved), s2.run(straight)
    np.testing.assert_array_equal(s1.get_value(w), w0 - 0.1 * 0.5 * w0)
    np.testing.assert_array_equal(s2.get_value(w), w0 - 0.1 * w0)
    with pytest.raises(ValueError, match="no .gradient, variable. pairs"):
        opt.apply_gradients([])
    with pytest.raises(TypeError, match="expected .gradient, variable. pairs"):
        opt.apply_gradients([(pairs[0][0], pairs[0][0])])


@pytest.mark.parametrize("optimize", [True, False])
def test_two_optimizers_on_one_variable_in_one_run_both_apply(optimize):
    """Both updates read the value at the start of the run, so the second overwrote the first:
    w ended at 0.9 (only the auxiliary step) instead of 1 - 0.1 * 2 - 0.1 = 0.7."""
    with mg.Graph() as g:
        w = mg.variable(np.ones(2, "float32"), name="w")
        b = mg.variable(np.ones(2, "float32"), name="b")
        main = mg.optim.SGD(0.1).minimize(ops.sum(w * w + b))
        aux = mg.optim.SGD(0.1).minimize(ops.sum(w))
    sess = mg.Session(g, optimize=optimize)
    sess.run([main, aux])
    np.testing.assert_allclose(sess.get_value(w), [0.7, 0.7], rtol=1e-6)
    np.testing.assert_allclose(sess.get_value(b), [0.9, 0.9], rtol=1e-6)


def test_a_var_list_the_loss_does_not_depend_on_is_an_error():
    """It built an update that changed nothing (while no variables at all was an error)."""
    with mg.Graph():
        w = mg.variable(np.ones(2, "float32"), name="w")
        v = mg.variable(np.ones(2, "float32"), name="v")
        loss = ops.sum(w * w)
        with pytest.raises(mg.GraphError, match=r"loss 'sum' depends on none of the variables of var_list \('v'\)"):
            mg.optim.SGD(0.1).minimize(loss, var_list=[v])
        mg.optim.SGD(0.1).minimize(loss, var_list=[w, v])  # some of them: fine, v's gradient is zero
