"""Every op gives the same forward values and gradients (first and second order) on CuPy as
on NumPy: float32 within 1e-4 relative, float64 within 1e-10. Skips where CuPy is unusable."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import ops
from minigraph.backend import unavailable_reason

REASON = unavailable_reason("cupy")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"cupy backend unavailable: {REASON}")

IMG = (2, 3, 9, 8)
CASES = {
    "add": (lambda a, b: ops.add(a, b), [(2, 3, 4), (3, 1)]),
    "sub": (lambda a, b: ops.sub(a, b), [(2, 3), (2, 3)]),
    "mul": (lambda a, b: ops.mul(a, b), [(4, 1), (3,)]),
    "div": (lambda a, b: ops.div(a, ops.exp(b)), [(2, 3), (2, 3)]),
    "neg_relu_square": (lambda a: ops.square(ops.relu(ops.neg(a))), [(3, 4)]),
    "exp_log_sqrt": (lambda a: ops.sqrt(ops.log(ops.exp(a) + 2.0)), [(3, 4)]),
    "sum_mean": (lambda a: ops.mean(ops.sum(a, axis=1), axis=0, keepdims=True), [(3, 4, 2)]),
    "matmul": (ops.matmul, [(3, 5), (5, 2)]),
    "reshape_flatten_transpose": (
        lambda a: ops.transpose(ops.reshape(ops.flatten(a), (4, -1)), (1, 0)), [(2, 2, 3)]),
    "softmax": (lambda a: ops.softmax(a, axis=1), [(3, 5)]),
    "log_softmax": (ops.log_softmax, [(3, 5)]),
    "softmax_cross_entropy": (lambda a, y: ops.softmax_cross_entropy(a, y), [(4, 5), "labels"]),
    "conv2d_same_s2_bias": (lambda x, w, b: ops.conv2d(x, w, b, stride=2, padding="SAME"),
                            [IMG, (4, 3, 3, 3), (4,)]),
    "conv2d_dilated_explicit": (lambda x, w: ops.conv2d(x, w, padding=((1, 2), (0, 1)), dilation=2),
                                [IMG, (2, 3, 3, 2)]),
    "conv1x1": (lambda x, w, b: ops.conv1x1(x, w, b), [IMG, (5, 3), (5,)]),
    "max_pool_same": (lambda x: ops.max_pool(x, 3, stride=2, padding="SAME"), [IMG]),
    "max_pool_valid": (lambda x: ops.max_pool(x, (2, 3), stride=(2, 1)), [IMG]),
    "avg_pool_excl": (lambda x: ops.avg_pool(x, 3, stride=1, padding="SAME"), [IMG]),
    "avg_pool_incl": (lambda x: ops.avg_pool(x, 3, stride=2, padding=1, count_include_pad=True), [IMG]),
    "global_avg_pool": (ops.global_avg_pool, [IMG]),
    "concat": (lambda a, b: ops.concat([a, ops.relu(b)], axis=1), [IMG, (2, 2, 9, 8)]),
    "local_response_norm": (lambda x: ops.local_response_norm(x, size=3, alpha=0.1), [IMG]),
    "dropout_eval": (lambda x: ops.dropout(x, 0.4, training=False), [IMG]),
}


def _inputs(shapes, dtype, rng):
    out = []
    for s in shapes:
        if s == "labels":
            out.append(rng.integers(0, 5, size=4))
        else:
            out.append(rng.standard_normal(s).astype(dtype))
    return out


def _run_everything(fn, values, backend, rng_seed):
    rng = np.random.default_rng(rng_seed)
    with mg.Graph() as g:
        phs = [mg.placeholder(v.shape, dtype=v.dtype) for v in values]
        y = fn(*phs)
        wrt = [p for p in phs if p.dtype.kind == "f"]
        loss = ops.sum(y * mg.constant(rng.standard_normal(y.shape).astype(y.dtype)))
        grads = mg.gradients(loss, wrt)
        second = mg.gradients(ops.add_n([ops.sum(gx * mg.constant(rng.standard_normal(gx.shape).astype(gx.dtype)))
                                         for gx in grads]), wrt)
    return mg.Session(g, backend=backend).run([y] + grads + second, dict(zip(phs, values)))


@pytest.mark.parametrize("dtype,rtol", [("float32", 1e-4), ("float64", 1e-10)])
@pytest.mark.parametrize("case", sorted(CASES))
def test_cupy_matches_numpy(case, dtype, rtol):
    fn, shapes = CASES[case]
    values = _inputs(shapes, dtype, np.random.default_rng(0))
    ref = _run_everything(fn, values, "numpy", 1)
    got = _run_everything(fn, values, "cupy", 1)
    for i, (a, b) in enumerate(zip(got, ref)):
        assert isinstance(a, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        scale = max(float(np.abs(b).max(initial=0.0)), 1e-30)
        err = float(np.abs(a - b).max(initial=0.0)) / scale
        assert err <= rtol, f"{case} {dtype}: output {i} differs by {err:.3g} (relative to max |value|)"


def test_dropout_training_on_device_keeps_or_scales():
    with mg.Graph() as g:
        x = mg.placeholder((1000,))
        y = ops.dropout(x, 0.25, training=True)
    out = mg.Session(g, backend="cupy", seed=3).run(y, {x: np.ones(1000, "float32")})
    kept = out != 0
    assert np.allclose(out[kept], 1 / 0.75) and 0.6 < kept.mean() < 0.9


def test_feeds_results_and_variables_on_device():
    import cupy
    with mg.Graph() as g:
        x = mg.placeholder((None, 3))
        w = mg.variable(np.ones((3, 2), "float32"))
        y = ops.matmul(x, w)
        upd = mg.assign(w, w * 2.0)
    sess = mg.Session(g, backend="cupy")
    dev = cupy.ones((2, 3), "float32")
    out_dev = sess.run(y, {x: dev}, to_host=False)
    assert isinstance(out_dev, cupy.ndarray)
    assert isinstance(sess.run(y, {x: np.ones((2, 3))}), np.ndarray)
    sess.run(upd)
    assert isinstance(sess.get_device_value(w), cupy.ndarray) and sess.get_value(w)[0, 0] == 2
