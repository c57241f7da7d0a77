"""sigmoid and tanh against math's formulas element by element, at large |x| too, and their
gradients of both orders."""
import math

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops

REFERENCE = {
    "sigmoid": (ops.sigmoid, lambda v: 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))),
    "tanh": (ops.tanh, math.tanh),
}


@pytest.mark.parametrize("name", REFERENCE)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_matches_math_including_large_inputs(name, dtype):
    build, ref = REFERENCE[name]
    x = np.concatenate([np.linspace(-6, 6, 25), [-1000.0, -90.0, 90.0, 1000.0]]).reshape(29, 1)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow, even at -1000
        node, out = mg.testing.evaluate(build, x.astype(dtype))
    want = np.vectorize(ref)(x.astype(dtype).astype(float))
    assert out.dtype == np.dtype(dtype) and node.shape == out.shape == x.shape
    np.testing.assert_allclose(out, want, rtol=1e-6 if dtype == "float32" else 1e-14, atol=1e-30)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("name", REFERENCE)
def test_gradients_first_and_second_order(name):
    x = np.random.default_rng(0).uniform(-3, 3, (3, 4))
    mg.testing.gradcheck(REFERENCE[name][0], [x], order=2)


@pytest.mark.parametrize("name", REFERENCE)
def test_declared_as_activations_that_join_their_producer_in_diagrams(name):
    with mg.Graph():
        x = mg.placeholder((None, 3, 4, 4), name="x")
        w = mg.variable(np.zeros((5, 3, 3, 3), "float32"), name="weights")
        y = REFERENCE[name][0](ops.conv2d(x, w, padding="SAME"))
    assert y.op.role == "activation" and y.op.fusable_activation == name
    labels = [line for line in mg.viz.to_dot(y, legend=False).source.splitlines() if "label=" in line]
    assert any("conv 3×3/1, 5" in line and f"+{name}" in line for line in labels), labels
