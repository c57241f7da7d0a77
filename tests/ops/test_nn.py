"""softmax, log_softmax, softmax_cross_entropy: loops, stability, gradients of both orders."""
import math

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops


def loop_softmax_rows(x):
    out = np.empty_like(x, dtype=float)
    for i, row in enumerate(x):
        m = max(row)
        exps = [math.exp(v - m) for v in row]
        out[i] = [e / sum(exps) for e in exps]
    return out


run = mg.testing.evaluate


def test_softmax_and_log_softmax_match_loops():
    x = np.random.default_rng(0).standard_normal((3, 5)).astype("float32")
    _, sm = run(lambda p: ops.softmax(p, axis=1), x)
    _, lsm = run(ops.log_softmax, x)
    ref = loop_softmax_rows(x.astype(float))
    assert sm.dtype == lsm.dtype == np.float32
    assert np.allclose(sm, ref, atol=1e-6) and np.allclose(lsm, np.log(ref), atol=1e-5)
    _, col = run(lambda p: ops.softmax(p, axis=0), x)
    assert np.allclose(col, loop_softmax_rows(x.T.astype(float)).T, atol=1e-6)


def test_stable_for_large_logits():
    x = np.array([[1000.0, 0.0, -1000.0], [5e4, 5e4, 0.0]], "float32")
    _, sm = run(ops.softmax, x)
    _, lsm = run(ops.log_softmax, x)
    _, loss = run(ops.softmax_cross_entropy, x, np.array([0, 2]))
    assert np.all(np.isfinite(sm)) and np.all(np.isfinite(lsm)) and np.isfinite(loss)
    assert np.allclose(sm[0], [1, 0, 0]) and lsm[0, 2] == pytest.approx(-2000.0)
    assert loss == pytest.approx((0.0 + 5e4 + math.log(2)) / 2, rel=1e-5)


def test_cross_entropy_matches_loop_definition():
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((4, 3)).astype("float32"), np.array([2, 0, 1, 2])
    node, loss = run(ops.softmax_cross_entropy, logits, labels)
    ref = loop_softmax_rows(logits.astype(float))
    expected = sum(-math.log(ref[i, labels[i]]) for i in range(4)) / 4
    assert node.shape == () and loss.dtype == np.float32 and loss == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("build", [lambda p: ops.softmax(p, axis=1), lambda p: ops.softmax(p, axis=0),
                                   ops.log_softmax])
def test_softmax_gradients(build):
    mg.testing.gradcheck(build, [np.random.default_rng(2).standard_normal((3, 4))], order=2)


def test_cross_entropy_gradients():
    logits = np.random.default_rng(3).standard_normal((4, 5))
    mg.testing.gradcheck(ops.softmax_cross_entropy, [logits, np.array([0, 4, 2, 2])], order=2)


def test_one_hot():
    _, out = run(lambda p: ops.one_hot(p, 4), np.array([3, 0, 1]))
    assert out.dtype == np.float32 and np.array_equal(out, np.eye(4)[[3, 0, 1]])


def test_cross_entropy_errors():
    with mg.Graph() as g:
        logits = mg.placeholder((None, 3), name="logits")
        with pytest.raises(mg.ShapeError, match="softmax_cross_entropy 'softmax_cross_entropy': labels must be integers"):
            ops.softmax_cross_entropy(logits, mg.placeholder((None,)))
        with pytest.raises(mg.ShapeError, match=r"batch sizes differ: logits \(2, 3\), labels \(4,\)"):
            ops.softmax_cross_entropy(mg.placeholder((2, 3)), mg.placeholder((4,), dtype="int64"))
        labels = mg.placeholder((None,), dtype="int64", name="labels")
        loss = ops.softmax_cross_entropy(logits, labels)
    with pytest.raises(mg.FeedError, match=r"labels must lie in \[0, 3\), got values from 0 to 3"):
        mg.Session(g).run(loss, {logits: np.zeros((2, 3)), labels: np.array([0, 3])})


def test_one_hot_errors():
    """main: depth -1 was NumPy's "negative dimensions", depth 0 an IndexError, label 5 an
    IndexError, and label -1 silently set the last column."""
    with mg.Graph() as g:
        labels = mg.placeholder((None,), dtype="int64", name="labels")
        for depth in (0, -1, 2.5, True):
            with pytest.raises(mg.ShapeError, match=f"one_hot: depth must be an int >= 1, got {depth}"):
                ops.one_hot(labels, depth)
        y = ops.one_hot(labels, 3, name="oh")
    sess = mg.Session(g)
    for bad in ([0, -1], [5, 1]):
        with pytest.raises(mg.FeedError, match=r"one_hot 'oh': labels must lie in \[0, 3\), got values from "):
            sess.run(y, {labels: np.array(bad)})
    np.testing.assert_array_equal(sess.run(y, {labels: np.array([2, 0])}), np.eye(3)[[2, 0]])
