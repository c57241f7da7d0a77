"""where and argmax against plain loops; where's gradients of both orders; argmax's int64
output and absent gradient."""
import itertools

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops


def loop_argmax(x, axis):
    """The first index of the maximum along `axis`, by scanning."""
    moved = np.moveaxis(x, axis, -1)
    out = np.empty(moved.shape[:-1], dtype=np.int64)
    for idx in itertools.product(*map(range, moved.shape[:-1])):
        row = moved[idx]
        best = 0
        for i in range(1, len(row)):
            if row[i] > row[best]:
                best = i
        out[idx] = best
    return out


@pytest.mark.parametrize("axis", [0, 1, -1, 2])
def test_argmax_matches_a_scan_with_first_index_on_ties(axis):
    x = np.random.default_rng(0).integers(0, 3, (4, 5, 6)).astype("float32")  # many ties
    node, out = mg.testing.evaluate(lambda a: ops.argmax(a, axis=axis), x)
    want = loop_argmax(x, axis)
    assert out.dtype == np.int64 and node.dtype == np.int64 and node.shape == want.shape
    np.testing.assert_array_equal(out, want)


def test_argmax_of_logits_with_an_unknown_batch_and_no_gradient():
    with mg.Graph() as g:
        logits = mg.placeholder((None, 10), name="logits")
        w = mg.variable(np.ones((10, 10), "float32"), name="w")
        h = ops.matmul(logits, w)
        pred = ops.argmax(h, axis=1)
        assert pred.shape == (None,)
        (gw,) = mg.gradients(ops.sum(h) + 0.0, [w])        # argmax is no path for gradients
    x = np.random.default_rng(1).standard_normal((3, 10)).astype("float32")
    p = mg.Session(g).run(pred, {logits: x})
    np.testing.assert_array_equal(p, (x @ np.ones((10, 10))).argmax(axis=1))
    assert pred.op.gradient(pred, None) == [None]


def test_argmax_errors():
    with mg.Graph():
        with pytest.raises(mg.ShapeError, match="argmax of a scalar"):
            ops.argmax(mg.placeholder(()))
        with pytest.raises(mg.ShapeError, match="axis 2 is out of range for shape"):
            ops.argmax(mg.placeholder((None, 3)), axis=2)
        with pytest.raises(TypeError, match="axis must be an int"):
            ops.argmax(mg.placeholder((None, 3)), axis=None)


def test_where_matches_a_loop_with_broadcasting():
    rng = np.random.default_rng(2)
    cond = rng.random((4, 1, 3)) > 0.5
    a, b = rng.standard_normal((2, 3)).astype("float32"), rng.standard_normal((4, 2, 1)).astype("float32")
    node, out = mg.testing.evaluate(ops.where, cond, a, b)
    want = np.empty((4, 2, 3), np.float32)
    for i, j, k in itertools.product(range(4), range(2), range(3)):
        want[i, j, k] = a[j, k] if cond[i, 0, k] else b[i, j, 0]
    assert node.shape == (4, 2, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, want)


def test_where_gradients_first_and_second_order():
    rng = np.random.default_rng(3)
    cond = rng.random((3, 4)) > 0.5
    mg.testing.gradcheck(lambda c, a, b: ops.where(c, a * a, b * a), [cond, rng.standard_normal((3, 4)),
                                                                    rng.standard_normal((1, 4))], order=2)


def test_where_numbers_take_the_node_dtype_and_mismatches_are_errors():
    with mg.Graph():
        c = mg.placeholder((3,), "bool")
        a = mg.placeholder((3,), "float32")
        assert ops.where(c, a, 0.0).dtype == np.float32
        with pytest.raises(mg.ShapeError, match="condition must be bool"):
            ops.where(a, a, a)
        with pytest.raises(mg.ShapeError, match="dtype mismatch: float32 vs float64"):
            ops.where(c, a, mg.placeholder((3,), "float64"))
