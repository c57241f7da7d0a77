"""concat (gradient: slices), slice_axis and pad_axis: loop references, shape rule, gradients
of both orders, errors."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import ops


def loop_concat(xs, axis):
    """Element by element: output index k along `axis` comes from the input that covers it."""
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    out = np.zeros(shape)
    for index in np.ndindex(*shape):
        k = index[axis]
        for x in xs:
            if k < x.shape[axis]:
                out[index] = x[index[:axis] + (k,) + index[axis + 1:]]
                break
            k -= x.shape[axis]
    return out


run = mg.testing.evaluate


@pytest.mark.parametrize("shapes, axis", [
    ([(2, 3, 4, 5), (2, 1, 4, 5), (2, 6, 4, 5)], 1),
    ([(2, 3, 4, 5), (3, 3, 4, 5)], 0),
    ([(2, 3, 4, 5), (2, 3, 4, 2)], -1),
    ([(2, 3, 4, 5)], 1),
])
def test_forward_matches_loop(shapes, axis):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s).astype("float32") for s in shapes]
    node, out = run(lambda *a: ops.concat(list(a), axis=axis), *xs)
    ref = loop_concat(xs, axis % 4)
    assert node.shape == out.shape == ref.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("shapes, axis", [
    ([(1, 2, 3, 2), (1, 1, 3, 2), (1, 3, 3, 2)], 1),
    ([(2, 2, 3), (1, 2, 3)], 0),
    ([(2, 2, 3), (2, 2, 1)], 2),
])
def test_gradients_are_slices_first_and_second_order(shapes, axis):
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal(s) for s in shapes]
    # squares make the second derivative non-trivial
    mg.testing.gradcheck(lambda *a: ops.concat([ops.square(v) for v in a], axis=axis), xs, order=2)
    with mg.Graph():
        phs = [mg.placeholder(s, dtype="float64") for s in shapes]
        grads = mg.gradients(ops.sum(ops.concat(phs, axis=axis)), phs)
    assert all(g.kind == "slice" for g in grads)


def test_slice_and_pad_axis_match_indexing_and_differentiate():
    x = np.random.default_rng(2).standard_normal((2, 5, 3))
    _, out = run(lambda a: ops.slice_axis(a, 1, 4, axis=1), x)
    np.testing.assert_array_equal(out, np.stack([[x[i, c] for c in range(1, 4)] for i in range(2)]))
    node, padded = run(lambda a: ops.pad_axis(a, 2, 1, axis=2), x)
    assert node.shape == padded.shape == (2, 5, 6)
    np.testing.assert_array_equal(padded[:, :, 2:5], x)
    assert not padded[:, :, :2].any() and not padded[:, :, 5:].any()
    mg.testing.gradcheck(lambda a: ops.square(ops.slice_axis(a, 1, 4, axis=1)), [x], order=2)
    mg.testing.gradcheck(lambda a: ops.square(ops.pad_axis(a, 2, 1, axis=-1)), [x], order=2)


def test_unknown_batch_keeps_channel_gradient():
    with mg.Graph() as g:
        a, b = mg.placeholder((None, 2, 3, 3)), mg.placeholder((None, 4, 3, 3))
        y = ops.concat([a, b])
        ga, gb = mg.gradients(ops.sum(ops.square(y)), [a, b])
    assert y.shape == (None, 6, 3, 3) and ga.shape == (None, 2, 3, 3) and gb.shape == (None, 4, 3, 3)
    av, bv = np.ones((2, 2, 3, 3), "float32"), np.full((2, 4, 3, 3), 2.0, "float32")
    out_a, out_b = mg.Session(g).run([ga, gb], {a: av, b: bv})
    np.testing.assert_array_equal(out_a, 2 * av)
    np.testing.assert_array_equal(out_b, 2 * bv)


def test_errors():
    with mg.Graph():
        a = mg.placeholder((None, 2, 3, 3))
        with pytest.raises(mg.ShapeError, match=r"concat 'j'.*differ outside the concat axis 1"):
            ops.concat([a, mg.placeholder((None, 2, 4, 3))], name="j")
        with pytest.raises(mg.ShapeError, match="dtypes differ: float32 and float64"):
            ops.concat([a, mg.placeholder((None, 2, 3, 3), dtype="float64")])
        with pytest.raises(mg.ShapeError, match="ranks differ"):
            ops.concat([a, mg.placeholder((2, 3, 3))])
        with pytest.raises(mg.ShapeError, match="out of range"):
            ops.concat([a, a], axis=4)
        with pytest.raises(mg.ShapeError, match=r"slice \[1:5\] does not fit axis 1"):
            ops.slice_axis(a, 1, 5)
        y = ops.concat([a, a], axis=0)
        assert y.shape == (None, 2, 3, 3)
        with pytest.raises(mg.ShapeError, match="static sizes along axis 0"):
            mg.gradients(ops.sum(y), [a])
