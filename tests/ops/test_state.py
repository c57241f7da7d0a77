"""stop_gradient: the value passes, gradients do not (first and second order)."""
import numpy as np

import minigraph as mg
from minigraph import ops


def test_stop_gradient_passes_the_value_and_blocks_the_gradient():
    x0 = np.array([1.0, -2.0, 3.0])
    with mg.Graph() as g:
        x = mg.placeholder((3,), "float64", name="x")
        s = ops.stop_gradient(x)
        y = ops.sum(x * s)                      # d/dx = s (s held constant), not 2x
        (gx,) = mg.gradients(y, [x])
        (ggx,) = mg.gradients(ops.sum(gx * gx), [x])  # gx = s: its own gradient is zero
        (only,) = mg.gradients(ops.sum(ops.square(s)), [x])
    value, grad, grad2, blocked = mg.Session(g).run([s, gx, ggx, only], {x: x0})
    np.testing.assert_array_equal(value, x0)
    np.testing.assert_array_equal(grad, x0)
    np.testing.assert_array_equal(grad2, np.zeros(3))
    np.testing.assert_array_equal(blocked, np.zeros(3))
    assert s.kind == "stop_gradient" and s.op.view


def test_gradcheck_sees_the_stopped_part_as_a_constant():
    """f(x) = x * stop(x) has the gradient of x * c with c = x: gradcheck's finite differences
    would see 2x, so check the symbolic gradient against c directly."""
    x0 = np.random.default_rng(0).standard_normal(4)
    node, out = mg.testing.evaluate(lambda x: mg.gradients(ops.sum(x * ops.stop_gradient(x)), [x])[0], x0)
    np.testing.assert_allclose(out, x0)
