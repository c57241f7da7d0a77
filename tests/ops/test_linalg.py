"""matmul against a triple loop; shape rule; errors; gradients of both orders."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import ops


def loop_matmul(a, b):
    out = np.zeros((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            for k in range(a.shape[1]):
                out[i, j] += a[i, k] * b[k, j]
    return out


@pytest.mark.parametrize("n,k,m", [(1, 1, 1), (2, 3, 4), (5, 7, 3)])
def test_forward_matches_loop(n, k, m):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, k)).astype("float32"), rng.standard_normal((k, m)).astype("float32")
    with mg.Graph() as g:
        pa, pb = mg.placeholder((None, k)), mg.placeholder((k, m))
        y = ops.matmul(pa, pb)
    out = mg.Session(g).run(y, {pa: a, pb: b})
    assert y.shape == (None, m) and out.shape == (n, m) and out.dtype == np.float32
    assert np.allclose(out, loop_matmul(a, b), atol=1e-5)


def test_gradients():
    rng = np.random.default_rng(1)
    mg.testing.gradcheck(ops.matmul, [rng.standard_normal((3, 4)), rng.standard_normal((4, 2))], order=2)


def test_rank_and_inner_dimension_errors():
    with mg.Graph():
        a = mg.placeholder((2, 3), name="a")
        with pytest.raises(mg.ShapeError, match=r"matmul 'matmul': right operand must have rank 2, got shape \(3,\)"):
            ops.matmul(a, mg.placeholder((3,)))
        with pytest.raises(mg.ShapeError, match=r"inner dimensions differ: \(2, 3\) @ \(4, 2\)"):
            ops.matmul(a, mg.placeholder((4, 2)))
