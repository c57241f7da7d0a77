"""On a GPU: the cuDNN and fused kernels are the ones chosen, CUDA graphs capture and replay
repeated runs with results equal to NumPy's, and the path is reported. Skips without CuPy or a
GPU (the CPU-side checks of the same code are the other files of this folder)."""
import numpy as np
import pytest

import minigraph as mg
from minigraph.backend import unavailable_reason
from minigraph.cuda import graphs, status

from inception_like import inception_like

REASON = unavailable_reason("cupy")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"cupy backend unavailable: {REASON}")


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
