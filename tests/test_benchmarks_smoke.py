"""The benchmark harness (benchmarks/) on tiny shapes, so that it cannot rot unnoticed.

The minigraph side runs without PyTorch; the comparison against PyTorch runs only where
torch is installed (the test suite never needs it).
"""
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("bench")
    finally:
        sys.path.remove(str(BENCH))


def test_googlenet_counts_match_table1_of_the_paper(bench):
    """Multiply-adds per layer and in total, against the figures printed in Szegedy et al. 2014,
    Table 1 ("ops", in millions, to within 1M), for one 224x224 image."""
    nets = bench.nets
    rows = {r.name: r for r in nets.count(nets.googlenet(), (1, 3, 224, 224))}
    # (5a is left out: the paper prints 54M, but its own columns give 51.1M, as they do here)
    table1_mops = {"conv1": 118, "inception_3a": 128, "inception_3b": 304, "inception_4a": 73,
                   "inception_4b": 88, "inception_4c": 100, "inception_4d": 119, "inception_4e": 170,
                   "inception_5b": 71, "fc": 1}
    for name, mops in table1_mops.items():
        assert abs(rows[name].macs / 1e6 - mops) <= 1, name
    # Table 1 lists conv2 as one row: its 1x1 reduce and its 3x3 together
    assert abs((rows["conv2_reduce"].macs + rows["conv2"].macs) / 1e6 - 360) <= 1
    assert rows["inception_5b"].out_shape == (1, 1024, 7, 7)
    assert rows["inception_3a"].out_shape == (1, 256, 28, 28)


def test_same_padding_follows_tensorflow(bench):
    same = bench.nets.same_pads
    assert same(224, 7, 2) == (2, 3)      # conv1: out 112
    assert same(112, 3, 2) == (0, 1)      # the stride-2 pools: out 56, extra cell at the end
    assert same(28, 3, 1) == (1, 1)
    assert same(8, 3, 2) == (0, 1)


def test_naive_conv_against_a_direct_sum(bench):
    naive = importlib.import_module("naive_conv")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    out = naive.conv_forward_naive(x, w, b, stride=2, pad=1)
    assert out.dtype == np.float32 and out.shape == (2, 4, 3, 4)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))).astype(np.float64)
    n, f, i, j = 1, 2, 2, 3
    expected = b[f] + sum(w[f, c, p, q] * xp[n, c, 2 * i + p, 2 * j + q]
                          for c in range(3) for p in range(3) for q in range(2))
    assert out[n, f, i, j] == pytest.approx(expected, rel=1e-5)


def test_harness_runs_minigraph_only_on_tiny_shapes(bench, tmp_path):
    out = tmp_path / "bench.json"
    code = bench.main(["--tiny", "--frameworks", "minigraph", "--reps", "2", "--warmup", "1",
                       "--pause", "0", "--only", "inception3a", "--only", "googlenet-fwdbwd",
                       "--only", "naive", "--json", str(out)])
    assert code == 0
    figures = json.loads(out.read_text())
    names = [r["name"] for r in figures["rows"]]
    assert names == ["inception3a-fwd", "inception3a-fwdbwd", "googlenet-fwdbwd"]
    for row in figures["rows"]:
        assert set(row["ms"]) == {"minigraph"} and row["ms"]["minigraph"] > 0
        assert len(row["ms_all"]["minigraph"]) == 2
        assert row["gflops"]["minigraph"] == pytest.approx(row["gflop"] * 1e3 / row["ms"]["minigraph"])
        assert row["peak_mib"]["minigraph"] is None or row["peak_mib"]["minigraph"] >= 0
        kinds = {kind for kind, _, _, _ in row["profile"]}
        assert "conv1x1" in kinds
    backward_kinds = {kind for kind, _, _, _ in figures["rows"][2]["profile"]}
    assert {"conv2d_backprop_input", "conv2d_backprop_filter", "max_pool_grad"} <= backward_kinds
    assert figures["naive_conv"]["max_rel_diff"]["minigraph"] < 1e-5
    assert figures["mismatches"] == []


def test_minigraph_gradients_of_the_tiny_module_against_finite_differences(bench):
    """What the harness times for forward+backward is the gradient of the loss it builds."""
    case = next(c for c in bench.make_cases(tiny=True) if c.name == "inception3a-fwdbwd")
    weights, x, labels = bench.make_data(case)
    runner = bench.MinigraphRunner(case, weights, x, labels)
    loss, *grads = runner.result()
    assert len(grads) == len(weights) + 1 and grads[-1].shape == x.shape
    # one bias entry of the 3x3 reduce conv (through the 3x3 conv), by central differences
    k, idx, eps = 3, 2, 1e-2
    plus, minus = [w.copy() for w in weights], [w.copy() for w in weights]
    plus[k][idx] += eps
    minus[k][idx] -= eps
    f = [bench.MinigraphRunner(case, ws, x, labels).result()[0] for ws in (plus, minus)]
    assert grads[k][idx] == pytest.approx((float(f[0]) - float(f[1])) / (2 * eps), rel=2e-2)


def test_harness_agrees_with_pytorch_on_tiny_shapes(bench, tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "bench.json"
    code = bench.main(["--tiny", "--reps", "1", "--warmup", "0", "--pause", "0", "--no-memory",
                       "--no-profile", "--only", "fwdbwd", "--json", str(out)])
    figures = json.loads(out.read_text())
    assert code == 0 and figures["mismatches"] == []
    for row in figures["rows"]:
        assert row["max_rel_diff"]["minigraph"] < 1e-4
        assert set(row["ratio"]) == {"torch", "torch_cl"}


def test_mg_models_build_the_benchmark_networks(bench):
    """The harness times mg.models' networks on the benchmark's weights: their variables come in
    the canonical order, and the module computes what the benchmark's own builder computes."""
    import minigraph as mg

    gnet = next(c for c in bench.make_cases(tiny=False) if c.name == "googlenet-fwd")
    with mg.Graph():
        _, out, variables = bench.build_from_models(gnet)
    shapes = [w.shape for w in bench.nets.init_weights(gnet.layers, gnet.input_shape)]
    assert [v.shape for v in variables] == shapes
    assert out.shape == (None, 1000)

    case = next(c for c in bench.make_cases(tiny=True) if c.name == "inception3a-fwdbwd")
    data = bench.make_data(case)
    models = bench.MinigraphRunner(case, *data, source="models")
    own = bench.MinigraphRunner(case, *data, source="own")
    assert (models.source, own.source) == ("models", "own")
    for a, b in zip(models.result(), own.result()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bucket_bytes", [0, 65536])
def test_distributed_scaling_worker_runs(bucket_bytes):
    """One rank of benchmarks/distributed_scaling.py (plain optimizer, or DistributedOptimizer
    on a size-1 communicator: needs mpi4py), two steps."""
    import subprocess
    if bucket_bytes:
        from minigraph.distributed import unavailable_reason
        if unavailable_reason("mpi"):
            pytest.skip(unavailable_reason("mpi"))
    out = subprocess.run([sys.executable, str(BENCH / "distributed_scaling.py"), "--worker", "--case",
                          "mini_inception", "--bucket-bytes", str(bucket_bytes), "--steps", "2", "--warmup", "1"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.split("RESULT ", 1)[1])
    assert result["size"] == 1 and len(result["steps"]) == 2 and result["step_s"] > 0
    if bucket_bytes:
        assert result["buckets"] == 2 and result["grad_bytes"] == 4 * 27_826  # mini_inception's parameters
        assert result["allreduce_s"] == 0.0  # one rank: nothing to sum
