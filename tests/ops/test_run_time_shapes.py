"""Ops built on None dimensions, fed sizes that do not fit: the executor runs each op's shape
rule on the run-time shapes, so these are FeedErrors naming the node, the op and the fed
placeholders, never a NumPy error or a result of the wrong shape (the rules for empty axes
and images without pixels are the ops' own). Each case also runs a feed that fits and
compares with NumPy, so the rules refuse only what they must.

Found by the fuzz suite (tests/fuzz); the conv and pool cases live in test_conv.py and test_pool.py.
"""
import numpy as np
import pytest

import minigraph as mg
from minigraph import ops

# build(placeholders) -> node, static shapes, a feed that does not fit, one that fits, NumPy's answer, message
CASES = {
    # before the executor checked shapes: a NumPy concatenate error, or a silently concatenated mismatch
    "concat": (lambda a, b: ops.concat([a, b], axis=1, name="op"), [(None, 2, None, 3), (None, 1, 4, 3)],
               [(2, 2, 5, 3), (2, 1, 4, 3)], [(2, 2, 4, 3), (2, 1, 4, 3)],
               lambda a, b: np.concatenate([a, b], axis=1), r"concat 'op': .*differ outside the concat axis"),
    # before the executor checked shapes: NumPy's matmul error
    "matmul": (lambda a, b: ops.matmul(a, b, name="op"), [(2, None), (3, 4)], [(2, 5), (3, 4)],
               [(2, 3), (3, 4)], lambda a, b: a @ b, r"matmul 'op': .*inner dimensions differ: \(2, 5\) @ \(3, 4\)"),
    # before the executor checked shapes: "cannot reshape array of size 2 into shape ()"
    "reshape": (lambda a: ops.reshape(a, (), name="op"), [(None,)], [(2,)], [(1,)], lambda a: a.reshape(()),
                r"reshape 'op': .*cannot reshape \(2,\) \(2 elements\) to \(\)"),
    # before the executor checked shapes: a result of shape (0,) for a node that promised (1,)
    "slice": (lambda a: ops.slice_axis(a, 0, 1, axis=0, name="op"), [(None,)], [(0,)], [(3,)], lambda a: a[0:1],
              r"slice 'op': .*slice \[0:1\] does not fit axis 0 of \(0,\)"),
    # main: "zero-size array to reduction operation maximum which has no identity"
    "softmax": (lambda a: ops.softmax(a, axis=1, name="op"), [(2, None)], [(2, 0)], [(2, 3)],
                lambda a: np.exp(a) / np.exp(a).sum(axis=1, keepdims=True),
                r"softmax 'op': .*axis 1 of \(2, 0\) is empty"),
    # main: NaN means (and RuntimeWarnings) for an image without pixels
    "global_avg_pool": (lambda a: ops.global_avg_pool(a, name="op"), [(1, 2, None, None)], [(1, 2, 0, 3)],
                        [(1, 2, 2, 3)], lambda a: a.mean(axis=(2, 3)), r"global_avg_pool 'op': .*has no pixels"),
    # before the executor checked shapes: NumPy's matmul error inside the kernel
    "conv2d_backprop_filter": (
        lambda x, g: ops.conv2d_backprop_filter(x, g, (1, 2), name="op"), [(None, 2, 3, 3), (None, 1, 3, 2)],
        [(2, 2, 3, 3), (1, 1, 3, 2)], [(2, 2, 3, 3), (2, 1, 3, 2)],
        lambda x, g: np.stack([np.einsum("nfhw,nchw->fc", g, x[:, :, :, j:j + 2]) for j in range(2)], -1)[:, :, None],
        r"conv2d_backprop_filter 'op': .*batch sizes differ"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_that_do_not_fit_are_feed_errors_and_values_that_fit_are_right(name):
    build, statics, bad, good, expected, message = CASES[name]
    rng = np.random.default_rng(0)
    with mg.Graph() as g:
        phs = [mg.placeholder(s, "float64", name=f"in{i}") for i, s in enumerate(statics)]
        y = build(*phs)
    sess = mg.Session(g)
    with pytest.raises(mg.FeedError, match=message + r".* \(fed values: 'in0' "):
        sess.run(y, {p: rng.standard_normal(s) for p, s in zip(phs, bad)})
    arrays = [rng.standard_normal(s) for s in good]
    np.testing.assert_allclose(sess.run(y, dict(zip(phs, arrays))), expected(*arrays), rtol=1e-12, atol=1e-12)

