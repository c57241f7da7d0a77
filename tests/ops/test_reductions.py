"""sum and mean against loops; shape rules; gradients of both orders."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigraph as mg
from minigraph import ops


def loop_reduce(x, axes, keepdims, mean):
    axes = tuple(range(x.ndim)) if axes is None else tuple(a % x.ndim for a in np.atleast_1d(axes))
    out_shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    out = np.zeros(out_shape)
    for idx in itertools.product(*map(range, x.shape)):
        out[tuple(0 if i in axes else j for i, j in enumerate(idx))] += x[idx]
    if mean:
        out /= int(np.prod([x.shape[a] for a in axes]))
    return out if keepdims else out.reshape([d for i, d in enumerate(x.shape) if i not in axes])


@pytest.mark.parametrize("build,mean", [(ops.sum, False), (ops.mean, True)])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), 1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_forward_matches_loop_and_shape_rule(build, mean, axis, keepdims):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype("float32")
    with mg.Graph() as g:
        p = mg.placeholder((2, 3, 4))
        y = build(p, axis=axis, keepdims=keepdims)
    out = mg.Session(g).run(y, {p: x})
    expected = loop_reduce(x.astype(float), axis, keepdims, mean)
    assert y.shape == out.shape == expected.shape and out.dtype == np.float32
    assert np.allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("build", [ops.sum, ops.mean])
@pytest.mark.parametrize("axis,keepdims", [(None, False), (1, False), ((0, 2), True), (-1, True)])
def test_gradients(build, axis, keepdims):
    x = np.random.default_rng(1).standard_normal((2, 3, 2))
    mg.testing.gradcheck(lambda p: build(p, axis=axis, keepdims=keepdims), [x], order=2)


def test_mean_over_unknown_batch_divides_by_run_time_count():
    with mg.Graph() as g:
        x = mg.placeholder((None, 2), dtype="float64")
        (gx,) = mg.gradients(ops.mean(x), [x])
    assert np.allclose(mg.Session(g).run(gx, {x: np.ones((5, 2))}), 0.1)


def test_axis_errors():
    with mg.Graph():
        x = mg.placeholder((2, 3), name="x")
        with pytest.raises(mg.ShapeError, match=r"sum 'sum': axis 2 is out of range for shape \(2, 3\)"):
            ops.sum(x, axis=2)
        with pytest.raises(mg.ShapeError, match="repeated axis"):
            ops.mean(x, axis=(1, -1))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4).flatmap(
    lambda dims: st.tuples(st.just(tuple(dims)), st.sets(st.integers(0, len(dims) - 1)), st.booleans())))
def test_shape_rule_hypothesis(case):
    shape, axes, keepdims = case
    x = np.ones(shape, "float32")
    with mg.Graph() as g:
        p = mg.placeholder(shape)
        y = ops.sum(p, axis=tuple(axes) or None, keepdims=keepdims)
    assert mg.Session(g).run(y, {p: x}).shape == y.shape


def test_a_mean_of_no_values_is_an_error_not_nan():
    """An empty batch fed to a mean over the batch gave NaN (and a NumPy warning)."""
    with mg.Graph() as g:
        x = mg.placeholder((None, 3), name="x")
        over_batch, per_row = ops.mean(x, name="m"), ops.mean(x, axis=1, name="rows")
    sess = mg.Session(g)
    with pytest.raises(mg.FeedError, match=r"mean 'm': the mean over axis 0 of \(0, 3\) is a mean of no values"):
        sess.run(over_batch, {x: np.zeros((0, 3), "float32")})
    assert sess.run(per_row, {x: np.zeros((0, 3), "float32")}).shape == (0,)  # no mean of nothing: fine
    with mg.Graph(), pytest.raises(mg.ShapeError, match="mean of no values"):
        ops.mean(mg.placeholder((2, 0)), axis=1)
