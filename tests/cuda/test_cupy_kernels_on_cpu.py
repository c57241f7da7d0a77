"""The whole CuPy kernel set on the CPU: a small Inception-like network (conv + bias + ReLU,
max pool, LRN, 1x1 and 5x5 branches joined by a concat, average pool, dense, softmax
cross-entropy) runs forward, gradients and gradients of gradients with the kernels chosen for
backend 'cupy' as if cuDNN were there (cuDNN, fused kernels and CUDA graphs stood in for on
NumPy by conftest's fixtures), and equals a plain NumPy session. This checks how the GPU
kernels fit together (memory orders one produces and the next reads, epilogues, crops) before
any GPU sees them."""
import collections

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops
from minigraph.cuda import status
from minigraph.runtime import CpuRuntime, DeviceRuntime

from inception_like import inception_like


@pytest.fixture
def pretend_cudnn():
    status.reset(lambda: (91900, None))
    yield
    status.reset()


@pytest.mark.parametrize("dtype,rtol", [("float32", 2e-4), ("float64", 1e-10)])
def test_the_cupy_kernels_together_equal_numpy(cpu_kernels, numpy_cudnn, fake_graphs, pretend_cudnn, dtype, rtol):
    g, x, labels, fetches = inception_like(dtype, second_order=True)
    dev = mg.Session(g, runtime=DeviceRuntime(np), optimize=True)
    dev.plan(fetches, [x, labels]).backend = "cupy"  # the kernels chosen for CuPy, run on NumPy
    ref = mg.Session(g, runtime=CpuRuntime(threads=1))
    for seed in range(3):
        rng = np.random.default_rng(seed)
        feed = {x: rng.standard_normal((4, 3, 12, 11)).astype(dtype), labels: rng.integers(0, 7, 4)}
        for i, (got, want) in enumerate(zip(dev.run(fetches, feed), ref.run(fetches, feed))):
            scale = max(float(np.abs(want).max()), 1e-30)
            assert float(np.abs(got - want).max()) / scale <= rtol, f"output {i}, run {seed}"
    used = collections.Counter(dev.kernels(fetches, feed).values())
    assert used["cudnn"] >= 9 and used["fused"] >= 8, used  # 3 convs x (fprop, dgrad, wgrad) and more
    assert {p.kind for p in numpy_cudnn.problems} == {"fprop", "dgrad", "wgrad"}
    assert any(p.relu for p in numpy_cudnn.problems)  # a fused epilogue reached cuDNN
    assert fake_graphs.stats()["captures"] == 1 and fake_graphs.stats()["replays"] == 2  # runs 2 and 3


def test_a_fused_conv_bias_relu_node_is_one_cudnn_problem(numpy_cudnn, pretend_cudnn):
    rng = np.random.default_rng(3)
    g = mg.Graph()
    with g:
        x = mg.placeholder((2, 3, 9, 9), name="x")
        w = mg.variable(rng.standard_normal((4, 3, 3, 3)).astype("float32"), name="w")
        b = mg.variable(rng.standard_normal((4, 1, 1)).astype("float32"), name="b")
        y = ops.relu(ops.conv2d(x, w, stride=2, padding="SAME") + b)
    dev = mg.Session(g, runtime=DeviceRuntime(np), optimize=True)
    dev.plan([y], [x]).backend = "cupy"
    feed = {x: rng.standard_normal((2, 3, 9, 9)).astype("float32")}
    np.testing.assert_allclose(dev.run(y, feed), mg.Session(g).run(y, feed), rtol=1e-5, atol=1e-6)
    (p,) = numpy_cudnn.problems
    assert (p.kind, p.bias, p.relu, p.x, p.padding) == ("fprop", True, True, (2, 3, 9, 9), (1, 1))
