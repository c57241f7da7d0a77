"""On a GPU: the cuDNN and fused kernels are the ones chosen, CUDA graphs capture and replay
repeated runs with results equal to NumPy's, and the path is reported. Skips without CuPy or a
GPU (the CPU-side checks of the same code are the other files of this folder)."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import ops
from minigraph.backend import unavailable_reason
from minigraph.cuda import graphs, status

REASON = unavailable_reason("cupy")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"cupy backend unavailable: {REASON}")


def inception_like(dtype):
    rng = np.random.default_rng(0)
    g = mg.Graph()
    with g:
        x = mg.placeholder((None, 3, 12, 11), dtype=dtype, name="x")
        labels = mg.placeholder((None,), dtype="int64", name="labels")
        w1 = mg.variable(rng.standard_normal((8, 3, 3, 3)).astype(dtype) * 0.3, name="w1")
        b1 = mg.variable(rng.standard_normal((8, 1, 1)).astype(dtype) * 0.1, name="b1")
        w2 = mg.variable(rng.standard_normal((4, 8)).astype(dtype) * 0.3, name="w2")
        w3 = mg.variable(rng.standard_normal((5, 8, 5, 5)).astype(dtype) * 0.1, name="w3")
        wd = mg.variable(rng.standard_normal((9 * 6 * 6, 7)).astype(dtype) * 0.1, name="wd")
        h = ops.relu(ops.conv2d(x, w1, padding="SAME", stride=1) + b1)        # conv + bias + relu (fused)
        h = ops.local_response_norm(ops.max_pool(h, 3, 2, padding="SAME"), size=5, alpha=0.1)
        h = ops.concat([ops.relu(ops.conv1x1(h, w2)), ops.conv2d(h, w3, padding="SAME")], axis=1)
        h = ops.avg_pool(h, 3, 1, padding="SAME")
        logits = ops.matmul(ops.flatten(h), wd)
        loss = ops.softmax_cross_entropy(logits, labels)
        grads = mg.gradients(loss, [w1, b1, w2, w3, wd])
    return g, x, labels, [loss] + grads


def feeds(x, labels, seed, n=4, dtype="float32"):
    rng = np.random.default_rng(seed)
    return {x: rng.standard_normal((n, 3, 12, 11)).astype(dtype), labels: rng.integers(0, 7, n)}


@pytest.mark.parametrize("dtype,rtol", [("float32", 2e-4), ("float64", 1e-10)])
def test_gpu_kernels_and_replayed_runs_match_numpy(dtype, rtol):
    g, x, labels, fetches = inception_like(dtype)
    gpu, cpu = mg.Session(g, backend="cupy"), mg.Session(g, backend="numpy")
    runner = graphs.default_runner()
    before = runner.stats()
    for seed in range(4):
        f = feeds(x, labels, seed, dtype=dtype)
        for got, ref in zip(gpu.run(fetches, f), cpu.run(fetches, f)):
            scale = max(float(np.abs(ref).max()), 1e-30)
            assert float(np.abs(got - ref).max()) / scale <= rtol
    chosen = gpu.kernels(fetches, feeds(x, labels, 0, dtype=dtype))
    algos = set(chosen.values())
    path = status.gpu_path()
    print(path.describe(), sorted(algos))
    if path.name != "generic":
        assert "fused" in algos
    if path.name == "cudnn":
        assert "cudnn" in algos
    after = runner.stats()
    if graphs.enabled():
        assert after["fallbacks"] == before["fallbacks"], "a capture failed: see the minigraph.cuda log"
        assert after["captures"] > before["captures"] and after["replays"] - before["replays"] >= 2


def test_replay_follows_new_variable_values():
    g, x, labels, fetches = inception_like("float32")
    gpu, cpu = mg.Session(g, backend="cupy"), mg.Session(g, backend="numpy")
    f = feeds(x, labels, 1)
    for _ in range(3):
        gpu.run(fetches, f)
    w1 = next(v for v in gpu.variables if v.name == "w1")
    new = np.full(w1.shape, 0.05, "float32")
    gpu.set_value(w1, new)
    cpu.set_value(w1, new)
    for got, ref in zip(gpu.run(fetches, f), cpu.run(fetches, f)):
        np.testing.assert_allclose(got, ref, rtol=2e-4, atol=2e-5)


def test_a_training_loop_on_the_gpu_follows_numpy():
    g, x, labels, fetches = inception_like("float32")
    with g:
        update = mg.optim.SGD(0.01, momentum=0.5).minimize(fetches[0])
    gpu, cpu = mg.Session(g, backend="cupy"), mg.Session(g, backend="numpy")
    for seed in range(3):
        f = feeds(x, labels, seed)
        losses = [s.run([fetches[0], update], f)[0] for s in (gpu, cpu)]
        np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)
