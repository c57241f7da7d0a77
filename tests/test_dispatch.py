"""Kernel selection: kernels registered per (kind, backend, algorithm), chosen once per node and
input shapes by their scores, forced per session or by the environment, with the op's own
forward as the fallback; every algorithm computes the same values."""
import dataclasses
from typing import ClassVar

import numpy as np
import pytest

import minigraph as mg
from minigraph import dispatch, ops
from minigraph.op import Op


@dataclasses.dataclass(frozen=True)
class Twice(Op):
    kind: ClassVar[str] = "test_dispatch_twice"

    def infer(self, x):
        return x

    def forward(self, xp, x):
        return x * 2


CALLS = []


@dispatch.register_kernel("test_dispatch_twice", "numpy", "wide",
                          score=lambda op, shapes, rt: 3.0 if shapes[0][-1] >= 4 else None)
def _wide(rt, op, x):
    CALLS.append("wide")
    return x + x


@dispatch.register_kernel("test_dispatch_twice", "numpy", "always")
def _always(rt, op, x):
    CALLS.append("always")
    return 2 * x


def twice_graph():
    g = mg.Graph()
    with g:
        x = mg.placeholder((None, None), name="x")
        y = mg.apply(Twice(), [x], name="twice")
    return g, x, y


def test_the_best_applicable_kernel_is_chosen_once_per_shape_and_cached():
    g, x, y = twice_graph()
    sess = mg.Session(g, optimize=False)
    CALLS.clear()
    for _ in range(2):
        np.testing.assert_array_equal(sess.run(y, {x: np.ones((2, 4))}), 2 * np.ones((2, 4)))
        np.testing.assert_array_equal(sess.run(y, {x: np.ones((2, 3))}), 2 * np.ones((2, 3)))
    assert CALLS == ["wide", "always", "wide", "always"]
    assert sess.kernels(y, {x: np.ones((2, 4))}) == {"twice": "wide"}
    assert sess.kernels(y, {x: np.ones((2, 3))}) == {"twice": "always"}
    assert sess.kernels(y, {x: np.ones((5, 5))}) == {}  # not run with those shapes yet


def test_forcing_an_algorithm_per_session_and_by_environment(monkeypatch):
    g, x, y = twice_graph()
    feed = {x: np.ones((2, 4))}
    for forced in ("always", "generic"):
        sess = mg.Session(g, algorithms={"test_dispatch_twice": forced})
        np.testing.assert_array_equal(sess.run(y, feed), 2 * np.ones((2, 4)))
        assert sess.kernels(y, feed) == {"twice": forced}
    monkeypatch.setenv("MINIGRAPH_ALGORITHMS", "test_dispatch_twice=always")
    sess = mg.Session(g)
    sess.run(y, feed)
    assert sess.kernels(y, feed) == {"twice": "always"}
    monkeypatch.setenv("MINIGRAPH_ALGORITHMS", "test_dispatch_twice=nope")
    with pytest.raises(ValueError, match="no 'nope' kernel for test_dispatch_twice on numpy; choose one of wide, always, generic"):
        mg.Session(g).run(y, feed)
    monkeypatch.setenv("MINIGRAPH_ALGORITHMS", "broken")
    with pytest.raises(ValueError, match="expected 'kind=algorithm'"):
        mg.Session(g)


def test_a_forced_algorithm_that_does_not_apply_falls_back_to_the_best_that_does():
    g, x, y = twice_graph()
    sess = mg.Session(g, algorithms={"test_dispatch_twice": "wide"})
    feed = {x: np.ones((2, 3))}  # too narrow for "wide"
    np.testing.assert_array_equal(sess.run(y, feed), 2 * np.ones((2, 3)))
    assert sess.kernels(y, feed) == {"twice": "always"}


def conv_grad_graph(c, f, stride=1, padding=1):
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((2, c, 7, 7)).astype("float32")
    w0 = rng.standard_normal((f, c, 3, 3)).astype("float32") * 0.1
    with mg.Graph() as g:
        x = mg.placeholder(x0.shape, name="x")
        w = mg.variable(w0, name="w")
        y = ops.conv2d(x, w, stride=stride, padding=padding)
        (gx,) = mg.gradients(ops.sum(y * y), [x])
    return g, x, x0, gx


@pytest.mark.parametrize("c,f,stride,expected", [(4, 8, 1, "full_correlation"),
                                                 (64, 128, 1, "tap_scatter"),
                                                 (4, 8, 2, "tap_scatter")])
def test_conv_input_gradient_algorithm_by_shape_and_both_agree(c, f, stride, expected):
    g, x, x0, gx = conv_grad_graph(c, f, stride)
    sess = mg.Session(g)
    got = sess.run(gx, {x: x0})
    chosen = {v for k, v in sess.kernels(gx, {x: x0}).items() if k.startswith(gx.name.split("/")[0])}
    assert expected in chosen
    for algo in dispatch.algorithms("conv2d_backprop_input", "numpy"):
        other = mg.Session(g, algorithms={"conv2d_backprop_input": algo}).run(gx, {x: x0})
        # Winograd's float32 error is bounded relative to the largest magnitude, not per element
        np.testing.assert_allclose(other, got, rtol=1e-4, atol=1e-5 * np.abs(got).max())


def test_concat_and_relu_grad_and_matmul_kernels_by_shape():
    rng = np.random.default_rng(1)
    with mg.Graph() as g:
        a = mg.placeholder((None, 3, 5, 5), name="a")
        b = mg.placeholder((None, 2, 5, 5), name="b")
        chan = ops.concat([a, b], axis=1, name="chan")
        batch = ops.concat([a, a], axis=0, name="batch")
        m = mg.placeholder((None, 300), name="m")
        prod = ops.matmul(m, mg.constant(rng.standard_normal((300, 200)).astype("float32")), name="prod")
        big = mg.placeholder((None, 8, 256, 256), name="big")
        (gbig,) = mg.gradients(ops.sum(ops.relu(big) * 3.0), [big])
    feed = {a: rng.standard_normal((2, 3, 5, 5)).astype("float32"),
            b: rng.standard_normal((2, 2, 5, 5)).astype("float32"),
            m: rng.standard_normal((128, 300)).astype("float32"),
            big: rng.standard_normal((4, 8, 256, 256)).astype("float32")}
    fetches = [chan, batch, prod, gbig]
    results = {}
    for threads in (1, 2):
        sess = mg.Session(g, runtime=mg.CpuRuntime(threads=threads, threaded_elements=1 << 20))
        results[threads] = sess.run(fetches, feed)
        chosen = sess.kernels(fetches, feed)
        assert chosen["chan"] == "channels_last" and chosen["batch"] == "generic"
        relu_grad = [v for k, v in chosen.items() if k.endswith("relu_grad")]
        assert chosen["prod"] == ("row_split" if threads == 2 else "generic")
        assert relu_grad == (["batch_split"] if threads == 2 else ["generic"])
    for one, two in zip(results[1], results[2]):
        np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(results[1][0], np.concatenate([feed[a], feed[b]], axis=1))


def test_describe_lists_the_registered_kernels():
    rows = dispatch.describe("numpy")
    assert ("conv2d", "numpy", "gemm", True) in rows
    assert ("conv2d_backprop_input", "numpy", "full_correlation", True) in rows
    assert all(r[1] == "numpy" for r in rows)
