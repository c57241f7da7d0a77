"""Elementwise ops against per-element Python references, with broadcasting and gradients."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigraph as mg
from minigraph import ops

BINARY = {
    "add": (ops.add, lambda a, b: a + b),
    "sub": (ops.sub, lambda a, b: a - b),
    "mul": (ops.mul, lambda a, b: a * b),
    "div": (ops.div, lambda a, b: a / b),
}
UNARY = {
    "neg": (ops.neg, lambda a: -a),
    "relu": (ops.relu, lambda a: a if a > 0 else 0.0),
    "exp": (ops.exp, math.exp),
    "log": (ops.log, math.log),
    "sqrt": (ops.sqrt, math.sqrt),
    "square": (ops.square, lambda a: a * a),
}


def loop_broadcast(f, a, b):
    """Apply f element by element under NumPy's broadcasting rule, written out by hand."""
    n = max(a.ndim, b.ndim)
    sa = (1,) * (n - a.ndim) + a.shape
    sb = (1,) * (n - b.ndim) + b.shape
    shape = tuple(max(x, y) for x, y in zip(sa, sb))
    a, b = a.reshape(sa), b.reshape(sb)
    out = np.empty(shape)
    for idx in itertools.product(*map(range, shape)):
        ia = tuple(i if d > 1 else 0 for i, d in zip(idx, sa))
        ib = tuple(i if d > 1 else 0 for i, d in zip(idx, sb))
        out[idx] = f(float(a[ia]), float(b[ib]))
    return out


def run(fn, *values):
    return mg.testing.evaluate(fn, *values, dtype="float32")


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("shapes", [((2, 3), (2, 3)), ((4, 1, 3), (5, 1)), ((3,), (2, 1)), ((), (2, 2))])
def test_binary_forward_matches_loop(name, shapes):
    build, ref = BINARY[name]
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 2, shapes[0]).astype("float32")
    b = rng.uniform(0.5, 2, shapes[1]).astype("float32")
    node, out = run(build, a, b)
    expected = loop_broadcast(ref, a, b)
    assert out.dtype == np.float32 and node.shape == expected.shape == out.shape
    assert np.allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize("name", UNARY)
def test_unary_forward_matches_loop(name):
    build, ref = UNARY[name]
    a = np.random.default_rng(1).uniform(0.1, 3, (3, 4)) * np.where(name in ("log", "sqrt"), 1, [1, -1, 1, -1])
    node, out = run(build, a.astype("float32"))
    expected = np.vectorize(ref)(a.astype("float32").astype(float))
    assert out.dtype == np.float32 and np.allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("shapes", [((2, 3), (2, 3)), ((2, 1, 3), (4, 1)), ((3,), ())])
def test_binary_gradients_first_and_second_order(name, shapes):
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.5, 2, shapes[0]), rng.uniform(0.5, 2, shapes[1])
    mg.testing.gradcheck(BINARY[name][0], [a, b], order=2)


@pytest.mark.parametrize("name", UNARY)
def test_unary_gradients_first_and_second_order(name):
    x = np.random.default_rng(3).uniform(0.3, 2, (2, 3))
    if name in ("neg", "relu", "square", "exp"):
        x = x * np.array([1, -1, 1])  # both signs, away from relu's kink
    mg.testing.gradcheck(UNARY[name][0], [x], order=2)


def test_add_n_and_broadcast_helpers_gradients():
    rng = np.random.default_rng(4)
    a, b, c = rng.random((2, 3)), rng.random((2, 3)), rng.random((3,))
    mg.testing.gradcheck(lambda a, b, c: ops.add_n([a, b, c]), [a, b, c])
    mg.testing.gradcheck(lambda c, a: ops.broadcast_like(c, a), [c, a], wrt=[0])
    mg.testing.gradcheck(lambda a, c: ops.sum_like(a, c), [a, c], wrt=[0])


def test_broadcast_against_unknown_batch_at_run_time():
    """A (None, 3) input fed with one row and broadcast against (4, 3) still gets a (1, 3) gradient."""
    with mg.Graph() as g:
        x = mg.placeholder((None, 3), dtype="float64")
        y = mg.placeholder((4, 3), dtype="float64")
        (gx,) = mg.gradients(ops.sum(x * y), [x])
    out = mg.Session(g).run(gx, {x: np.ones((1, 3)), y: np.arange(12.0).reshape(4, 3)})
    assert np.array_equal(out, np.arange(12.0).reshape(4, 3).sum(0, keepdims=True))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=0, max_size=3), st.lists(st.booleans(), min_size=3, max_size=3),
       st.integers(0, 2))
def test_shape_rule_matches_real_output(dims, ones, drop):
    a_shape = tuple(dims)
    b_shape = tuple(1 if o else d for d, o in zip(dims, ones))[drop:]
    a, b = np.ones(a_shape, "float32"), np.ones(b_shape, "float32")
    for build, _ in BINARY.values():
        node, out = run(build, a, b)
        assert node.shape == out.shape


def loop_relu_grad(g, y):
    """g where y > 0 else 0, element by element."""
    out = np.empty(g.shape, dtype=g.dtype)
    for idx in itertools.product(*map(range, g.shape)):
        out[idx] = g[idx] if y[idx] > 0 else 0.0
    return out


@pytest.mark.parametrize("shape", [(2, 3), (3, 4, 5, 6)])
def test_relu_grad_matches_loop_and_its_gradients(shape):
    from minigraph.ops.elementwise import relu_grad
    rng = np.random.default_rng(5)
    g, y = rng.standard_normal(shape), np.maximum(rng.standard_normal(shape), 0)
    node, out = run(relu_grad, g.astype("float32"), y.astype("float32"))
    assert out.dtype == np.float32 and node.kind == "relu_grad"
    assert np.array_equal(out, loop_relu_grad(g.astype("float32"), y.astype("float32")))
    mg.testing.gradcheck(relu_grad, [g, y + 0.1 * (y > 0)], order=2, wrt=[0])


def test_relu_gradient_is_one_relu_grad_node():
    with mg.Graph():
        x = mg.placeholder((2, 3))
        y = ops.relu(x)
        (gx,) = mg.gradients(ops.sum(y), [x])
    assert gx.kind == "relu_grad" and gx.inputs[1] is y


def test_relu_grad_threaded_path_keeps_memory_order():
    """The batch split over threads, on NCHW-shaped views of channels-last buffers."""
    from minigraph.ops import kernels
    rng = np.random.default_rng(6)
    n, c, h, w = 4, 3, 5, 7
    g = rng.standard_normal((n, h, w, c)).astype("float32").transpose(0, 3, 1, 2)
    y = np.maximum(rng.standard_normal((n, h, w, c)), 0).astype("float32").transpose(0, 3, 1, 2)
    out = kernels.relu_grad(mg.CpuRuntime(threads=2), g, y, split=True)
    assert out.strides == g.strides
    assert np.array_equal(out, loop_relu_grad(g, y))


@pytest.mark.parametrize("shapes", [[(6, 5, 4, 3)] * 4, [(6, 5, 4, 3), (5, 1, 3), (6, 5, 4, 3)], [(7,)] * 2])
def test_add_n_sums_in_chunks_in_any_memory_order(shapes, backend):
    """The chunked add_n kernel (split over the batch on two threads here) against a plain sum,
    with one input in channels-last memory and, where shapes differ, NumPy's broadcasting."""
    if backend != "numpy":
        pytest.skip("a CpuRuntime is for NumPy")
    rng = np.random.default_rng(4)
    values = [rng.standard_normal(s) for s in shapes]
    if len(shapes[0]) == 4:
        values[0] = np.ascontiguousarray(values[0].transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    with mg.Graph() as g:
        phs = [mg.placeholder(v.shape, "float64") for v in values]
        s = ops.add_n(phs)
    out = mg.Session(g, runtime=mg.CpuRuntime(threads=2, chunk_bytes=256)).run(s, dict(zip(phs, values)))
    expected = values[0]
    for v in values[1:]:
        expected = expected + v
    np.testing.assert_allclose(out, expected, rtol=1e-15, atol=1e-15)
