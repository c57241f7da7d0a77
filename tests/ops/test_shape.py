"""reshape, flatten, transpose: against element-order loops, shape rules, gradients."""
import itertools

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops


def run(build, x, shape=None):
    return mg.testing.evaluate(build, x, shapes=[shape or x.shape])


def test_reshape_keeps_row_major_order():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype("float32")
    y, out = run(lambda p: ops.reshape(p, (4, -1)), x)
    flat = [x[i, j, k] for i, j, k in itertools.product(range(2), range(3), range(4))]
    assert y.shape == (4, 6) and out.shape == (4, 6)
    assert [out[r, c] for r, c in itertools.product(range(4), range(6))] == flat


def test_flatten_keeps_batch_dimension_unknown():
    x = np.arange(24, dtype="float32").reshape(2, 3, 2, 2)
    y, out = run(ops.flatten, x, shape=(None, 3, 2, 2))
    assert y.shape == (None, 12) and out.shape == (2, 12)
    assert all(out[n, c * 4 + h * 2 + w] == x[n, c, h, w]
               for n, c, h, w in itertools.product(range(2), range(3), range(2), range(2)))


def test_flatten_of_an_empty_batch():
    """main: reshape(0, -1) raised NumPy's "cannot reshape array of size 0"."""
    node, out = run(ops.flatten, np.zeros((0, 2, 3), "float32"), shape=(None, 2, 3))
    assert node.shape == (None, 6) and out.shape == (0, 6) and out.dtype == np.float32
    assert run(ops.flatten, np.zeros((0,), "float32"))[1].shape == (0, 1)


def test_transpose_against_index_loop():
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype("float32")
    y, out = run(lambda p: ops.transpose(p, (2, 0, 1)), x)
    assert y.shape == out.shape == (4, 2, 3)
    assert all(out[k, i, j] == x[i, j, k] for i, j, k in itertools.product(range(2), range(3), range(4)))
    assert run(ops.transpose, x)[1].shape == (4, 3, 2)


@pytest.mark.parametrize("build", [
    lambda p: ops.reshape(p, (3, 4)), lambda p: ops.reshape(p, (-1,)), ops.flatten,
    lambda p: ops.transpose(p, (1, 2, 0)), lambda p: ops.transpose(p)])
def test_gradients(build):
    x = np.random.default_rng(2).standard_normal((2, 3, 2))
    mg.testing.gradcheck(build, [x], order=2)


def test_reshape_with_unknown_batch_infers_what_it_can():
    with mg.Graph():
        p = mg.placeholder((None, 3, 4))
        assert ops.reshape(p, (-1, 12)).shape == (None, 12)
        assert ops.reshape(mg.placeholder((2, 6)), (3, -1)).shape == (3, 4)


def test_errors():
    with mg.Graph():
        p = mg.placeholder((2, 3), name="p")
        with pytest.raises(mg.ShapeError, match=r"reshape 'reshape': cannot reshape \(2, 3\) \(6 elements\) to \(4,\)"):
            ops.reshape(p, (4,))
        with pytest.raises(mg.ShapeError, match="reshape 'reshape': invalid target shape"):
            ops.reshape(p, (-1, -1))
        with pytest.raises(mg.ShapeError, match=r"transpose 'transpose': axes \(0, 0\) are not a permutation"):
            ops.transpose(p, (0, 0))


def test_transpose_axes_out_of_range_are_shape_errors():
    with mg.Graph():
        x = mg.placeholder((2, 3))
        with pytest.raises(mg.ShapeError, match=r"axis 3 is out of range for shape \(2, 3\)"):
            ops.transpose(x, (3, 0))
        assert ops.transpose(x, (-1, 0)).shape == (3, 2)
