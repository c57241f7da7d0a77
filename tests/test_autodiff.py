"""Autodiff: gradients as graph nodes, summed over paths, of any order."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import ops


def test_sums_over_every_path_and_zeros_for_unrelated():
    with mg.Graph() as g:
        x = mg.placeholder((3,), dtype="float64", name="x")
        u = mg.placeholder((3,), dtype="float64", name="u")
        y = ops.sum(x * x + ops.exp(x) * x)  # x reaches y along four paths
        gx, gu = mg.gradients(y, [x, u])
    v = np.array([0.5, -1.0, 2.0])
    out_gx, out_gu = mg.Session(g).run([gx, gu], {x: v, u: v})
    assert np.allclose(out_gx, 2 * v + np.exp(v) * (1 + v))
    assert np.array_equal(out_gu, np.zeros(3)) and gu.op.kind == "fill"


def test_gradient_nodes_live_in_grad_scopes():
    with mg.Graph() as g:
        x = mg.placeholder((2, 2), name="x")
        with mg.name_scope("block1"):
            h = ops.relu(x, name="act")
        loss = ops.sum(h, name="loss")
        (gx,) = mg.gradients(loss, [x])
    grad_nodes = g.nodes[g.nodes.index(loss) + 1:]
    assert {n.name.split("/")[0] for n in grad_nodes} <= {"loss_grad", "block1"}
    assert any(n.name.startswith("block1/act_grad/") for n in grad_nodes)
    assert gx.name.startswith("block1/act_grad/")


def test_grad_ys_weights_and_multiple_ys():
    with mg.Graph() as g:
        x = mg.placeholder((2,), dtype="float64", name="x")
        a, b = x * 3.0, ops.square(x)
        (gx,) = mg.gradients([a, b], [x], grad_ys=[np.array([1.0, 2.0]), None])
    v = np.array([1.0, 4.0])
    assert np.allclose(mg.Session(g).run(gx, {x: v}), [3.0, 6.0] + 2 * v)


def test_hessian_vector_product_and_gradient_penalty():
    """Second order: d/dx (grad f . v) == H v for f = sum(exp(Ax)) with known Hessian."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((4, 3))
    with mg.Graph() as g:
        x = mg.placeholder((3, 1), dtype="float64", name="x")
        v = mg.placeholder((3, 1), dtype="float64", name="v")
        f = ops.sum(ops.exp(ops.matmul(mg.constant(A), x)))
        (gx,) = mg.gradients(f, [x])
        (hv,) = mg.gradients(ops.sum(gx * v), [x])
        penalty = ops.sum(ops.square(gx))
        (gp,) = mg.gradients(penalty, [x])
    x0, v0 = rng.standard_normal((3, 1)), rng.standard_normal((3, 1))
    e = np.exp(A @ x0)[:, 0]
    hessian = A.T @ np.diag(e) @ A
    out_hv, out_gp = mg.Session(g).run([hv, gp], {x: x0, v: v0})
    assert np.allclose(out_hv, hessian @ v0)
    assert np.allclose(out_gp, 2 * hessian @ (A.T @ e[:, None]))


def test_gradient_errors():
    with mg.Graph():
        labels = mg.placeholder((2,), dtype="int64", name="labels")
        x = mg.placeholder((2,), name="x")
        with pytest.raises(mg.GraphError, match="cannot differentiate with respect to 'labels' of dtype int64"):
            mg.gradients(ops.sum(x), [labels])
        with pytest.raises(mg.ShapeError, match="grad_ys for 'x'"):
            mg.gradients(x, [x], grad_ys=[np.ones(3, "float32")])
        with pytest.raises(mg.GraphError, match="argmax 'am' has dtype int64; only floating-point values have "
                                                "gradients"):
            mg.gradients(ops.argmax(ops.reshape(x, (1, 2)), axis=1, name="am"), [x])  # once zeros, silently


def test_variables_get_gradients_and_graph_is_reusable():
    with mg.Graph() as g:
        w = mg.variable(np.array([1.0, 2.0], "float32"), name="w")
        loss = ops.sum(ops.square(w))
        (gw,) = mg.gradients(loss, [w])
        (ggw,) = mg.gradients(ops.sum(gw), [w])
    sess = mg.Session(g)
    assert np.array_equal(sess.run(gw), [2.0, 4.0]) and sess.run(gw).dtype == np.float32
    assert np.array_equal(sess.run(ggw), [2.0, 2.0])


def test_on_gradient_sees_each_gradient_once_as_soon_as_it_is_complete():
    """Variables created first (as here) get their gradients summed right after their last
    consumer's backward step: the callback runs in backward order, before the backward
    nodes of earlier layers exist."""
    with mg.Graph() as g:
        x = mg.placeholder((2, 3), dtype="float64")
        w1 = mg.variable(np.ones((3, 3)), name="w1")
        w2 = mg.variable(np.ones((3, 3)), name="w2")
        unused = mg.variable(np.ones(2), name="unused")
        h = ops.relu(ops.matmul(x, w1))
        loss = ops.sum(ops.matmul(h, w2) * ops.matmul(h, w2))  # w2 read twice: two parts summed
        seen = []
        grads = mg.gradients(loss, [w1, w2, unused], on_gradient=lambda v, gv: seen.append((v, gv, len(g.nodes))))
    assert [v for v, _, _ in seen] == [w2, w1, unused]
    assert [gv for _, gv, _ in seen] == [grads[1], grads[0], grads[2]]
    assert seen[0][2] < seen[1][2]  # w1's backward nodes were built after w2's callback
    xv = np.random.default_rng(0).standard_normal((2, 3))
    out = mg.Session(g).run(grads, {x: xv})
    hv = np.maximum(xv @ np.ones((3, 3)), 0)
    np.testing.assert_allclose(out[1], hv.T @ (2 * hv @ np.ones((3, 3))))
    np.testing.assert_array_equal(out[2], np.zeros(2))


def test_stop_gradients_gives_partial_derivatives_that_differentiate_again():
    """f(x, u) = x * u with u = x**2: the total derivative is 3x**2, the partials (nothing flowing
    through u) are u and x; and d/dx of the partial in x (which is u) is 2x, through u."""
    with mg.Graph() as g:
        x = mg.placeholder((3,), dtype="float64", name="x")
        u = ops.square(x)
        f = ops.sum(x * u)
        (total,) = mg.gradients(f, [x])
        dx, du = mg.gradients(f, [x, u], stop_gradients=[x, u])
        (ddx,) = mg.gradients(ops.sum(dx), [x])
        (blocked,) = mg.gradients(ops.sum(x * ops.stop_gradient(u)), [x])
        (blocked_again,) = mg.gradients(ops.sum(blocked), [x])
    v = np.array([0.5, -1.0, 2.0])
    out = mg.Session(g).run([total, dx, du, ddx, blocked_again], {x: v})
    np.testing.assert_allclose(out[0], 3 * v ** 2)
    np.testing.assert_allclose(out[1], v ** 2)
    np.testing.assert_allclose(out[2], v)
    np.testing.assert_allclose(out[3], 2 * v)  # through u, which stop_gradient would have cut:
    np.testing.assert_allclose(out[4], 0 * v)
