"""CUDA-graph capture and replay, driven through Session.run on NumPy with a stand-in capture
device: a 'graph' re-runs the captured function and writes into the captured outputs, as a
replayed CUDA graph writes into its fixed buffers. Checks what the runner decides (when it
captures, replays, recaptures or falls back) and that replayed results equal plain runs.
The real CuPy capture runs in tests/cuda/test_gpu.py on a GPU."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import ops
from minigraph.cuda import graphs
from minigraph.runtime import CpuRuntime, DeviceRuntime


@pytest.fixture
def runner(fake_graphs):
    return fake_graphs


def net():
    g = mg.Graph()
    with g:
        x = mg.placeholder((None, 3), name="x")
        w = mg.variable(np.arange(6, dtype="float32").reshape(3, 2), name="w")
        y = ops.relu(ops.matmul(x, w))
        loss = ops.sum(y)
        (gw,) = mg.gradients(loss, [w])
        step = mg.assign(w, w - 0.1 * gw)
    return g, x, w, y, gw, step


def batch(seed, n=4):
    return np.random.default_rng(seed).standard_normal((n, 3)).astype("float32")


def test_a_repeated_run_is_captured_once_then_replayed_with_new_feeds(runner):
    g, x, w, y, gw, _ = net()
    sess = mg.Session(g, runtime=DeviceRuntime(np))
    plain = mg.Session(g, runtime=CpuRuntime(threads=1))
    outs = []
    for seed in range(5):
        got = sess.run([y, gw], {x: batch(seed)})
        ref = plain.run([y, gw], {x: batch(seed)})
        for a, b in zip(got, ref):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        outs.append(got)
    s = runner.stats()
    assert (s["captures"], s["replays"], s["uncaptured_runs"]) == (1, 4, 1)
    assert runner.device.launched == 4
    assert outs[1][0] is not outs[2][0] and not np.shares_memory(outs[1][0], outs[2][0])  # copies
    assert not np.allclose(outs[3][0], outs[4][0])  # the feeds did change


def test_each_feed_shape_gets_its_own_graph(runner):
    g, x, _, y, _, _ = net()
    sess = mg.Session(g, runtime=DeviceRuntime(np))
    for n in (2, 3, 2, 3, 2):
        assert sess.run(y, {x: batch(n, n)}).shape == (n, 2)
    assert runner.stats()["captures"] == 2 and runner.stats()["replays"] == 3


def test_a_replaced_variable_invalidates_the_graph(runner):
    g, x, w, y, _, _ = net()
    sess = mg.Session(g, runtime=DeviceRuntime(np))
    for _ in range(3):
        sess.run(y, {x: batch(0)})
    sess.set_value(w, np.ones((3, 2), "float32"))
    out = sess.run(y, {x: batch(0)})
    np.testing.assert_allclose(out, np.maximum(batch(0) @ np.ones((3, 2), "float32"), 0), rtol=1e-6)
    assert runner.stats()["invalidated"] == 1 and runner.stats()["captures"] == 2


def test_training_steps_are_not_captured_and_a_variable_changing_every_step_stops_recapturing(runner):
    g, x, w, y, gw, step = net()
    sess = mg.Session(g, runtime=DeviceRuntime(np))
    plain = mg.Session(g, runtime=CpuRuntime(threads=1))
    for seed in range(8):
        for s in (sess, plain):
            s.run(step, {x: batch(seed)})  # writes state: never captured
        np.testing.assert_allclose(sess.run(y, {x: batch(seed)}), plain.run(y, {x: batch(seed)}), rtol=1e-5)
    s = runner.stats()
    assert s["captures"] == 1 + runner.max_recaptures  # then that signature runs uncaptured
    assert s["invalidated"] == runner.max_recaptures + 1


def test_a_failed_capture_falls_back_for_good(runner):
    runner.device.fail = True
    g, x, _, y, _, _ = net()
    sess = mg.Session(g, runtime=DeviceRuntime(np))
    plain = mg.Session(g, runtime=CpuRuntime(threads=1))
    for seed in range(4):
        np.testing.assert_allclose(sess.run(y, {x: batch(seed)}), plain.run(y, {x: batch(seed)}), rtol=1e-6)
    assert runner.stats()["fallbacks"] == 1 and runner.stats()["replays"] == 0


def test_random_ops_profiles_and_cpu_runtimes_are_never_captured(runner):
    g = mg.Graph()
    with g:
        x = mg.placeholder((4, 3), name="x")
        d = ops.dropout(x, 0.5, training=True)
    sess = mg.Session(g, runtime=DeviceRuntime(np))
    for _ in range(3):
        sess.run(d, {x: batch(0)})
    g2, x2, _, y2, _, _ = net()
    sess2 = mg.Session(g2, runtime=DeviceRuntime(np))
    for _ in range(3):
        sess2.run(y2, {x2: batch(0)}, timings={})
    mg.Session(g2).run(y2, {x2: batch(0)})
    assert runner.stats()["captures"] == 0 and runner.device.captured == 0
    assert graphs.runner_for(CpuRuntime(threads=1)) is graphs.DIRECT


def test_the_switch_turns_graphs_off(runner, monkeypatch):
    monkeypatch.setenv("MINIGRAPH_CUDA_GRAPHS", "0")
    assert graphs.runner_for(DeviceRuntime(np)) is graphs.DIRECT
    monkeypatch.setenv("MINIGRAPH_CUDA_GRAPHS", "1")
    assert graphs.runner_for(DeviceRuntime(np)) is runner
