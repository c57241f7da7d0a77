"""Communicators on 2 real ranks (mpirun): each collective against NumPy on the ranks'
inputs; deadlines; the single-process case; clear errors for missing backends."""
import json
import subprocess
import sys

import numpy as np
import pytest

from minigraph import distributed


def load(out, rank):
    with np.load(out / f"rank{rank}.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads((out / f"rank{rank}.json").read_text())


def test_collectives_on_two_ranks(mpirun, tmp_path):
    run = mpirun(2, "collectives", tmp_path)
    assert run.returncode == 0, run.output
    (a0, j0), (a1, j1) = load(tmp_path, 0), load(tmp_path, 1)
    for key in ("f32", "f64", "i64"):
        expected = a0["in_" + key] + a1["in_" + key]  # 2 ranks: one addition, exact in any order
        for arrays in (a0, a1):
            np.testing.assert_array_equal(arrays["out_" + key], expected)
            assert arrays["out_" + key].dtype == expected.dtype
    for arrays in (a0, a1):  # broadcast from the last rank
        np.testing.assert_array_equal(arrays["out_bcast"], np.full(5, 1.0))
        np.testing.assert_array_equal(arrays["out_w"], np.full((2, 3), 1.0))   # rank 0's weights
        np.testing.assert_array_equal(arrays["out_v"], np.arange(4, dtype=np.float32))
    for j in (j0, j1):
        assert j["size"] == 2 and j["object"] == {"from": 1, "nested": [1, "two", None]}
        assert j["state"] == {"Adam/w/m0": [[0.0] * 3] * 2, "Adam/step": 7}  # rank 0's state, its shapes
    assert j0["draw"] == j1["draw"]  # the generator of rank 0 on both


def test_a_missing_rank_is_a_timeout_error_not_a_hang(mpirun, tmp_path):
    run = mpirun(2, "timeout", tmp_path, 2, timeout=60)
    assert run.returncode != 0
    assert "allreduce on rank 0 of 2 did not complete within 2 s" in run.output
    assert "MINIGRAPH_DIST_TIMEOUT" in run.output
    assert run.seconds < 30  # the sleeping rank would take 60 s: it was aborted


def test_one_process_without_mpirun_is_size_one():
    if distributed.unavailable_reason("mpi"):
        pytest.skip(distributed.unavailable_reason("mpi"))
    code = ("import numpy as np, minigraph as mg\n"
            "c = mg.distributed.init('mpi')\n"
            "a = np.arange(4.0); c.allreduce(a); c.barrier()\n"
            "print(c.rank, c.size, a.tolist(), c.broadcast_object({'k': 1}), mg.distributed.init('mpi') is c)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "0 1 [0.0, 1.0, 2.0, 3.0] {'k': 1} True"


def test_errors_name_the_problem(monkeypatch):
    with pytest.raises(distributed.DistributedError, match="unknown distributed backend 'gloo'"):
        distributed.init("gloo")
    comm = distributed.Communicator(0, 1, timeout=5)
    with pytest.raises(distributed.DistributedError, match="C-contiguous"):
        comm.allreduce(np.ones((4, 4))[:, ::2])
    with pytest.raises(distributed.DistributedError, match=r"root must lie in \[0, 1\)"):
        comm.broadcast(np.ones(2), root=3)
    with pytest.raises(distributed.DistributedError, match="positive number of seconds"):
        distributed.Communicator(0, 1, timeout=0)
    monkeypatch.setenv("MINIGRAPH_DIST_TIMEOUT", "soon")
    with pytest.raises(distributed.DistributedError, match="MINIGRAPH_DIST_TIMEOUT must be a positive number"):
        distributed.default_timeout()
    monkeypatch.setenv("MINIGRAPH_DIST_TIMEOUT", "12.5")
    assert distributed.Communicator(0, 1).timeout == 12.5
    comm.close()


class SlowThenFailing(distributed.Communicator):
    """A backend whose first allreduce takes 1 s and whose broadcast raises."""

    def run_allreduce(self, array):
        import time
        time.sleep(1.0)
        return array

    def run_broadcast(self, array, root):
        return 1 / 0


def test_handle_deadline_and_error_reporting():
    """A collective that does not finish in time raises at its deadline, naming itself; one
    that fails reports its cause; a base communicator says what it lacks."""
    comm = SlowThenFailing(0, 2, timeout=0.2)
    handle = comm.allreduce_async(np.ones(2), what="allreduce of bucket 0")
    with pytest.raises(distributed.DistributedError,
                       match=r"allreduce of bucket 0 on rank 0 of 2 did not complete within 0.2 s"):
        handle.wait()
    comm.timeout = 5.0
    with pytest.raises(distributed.DistributedError, match="broadcast on rank 0 of 2 failed: division by zero"):
        comm.broadcast(np.ones(2))  # queued behind the slow allreduce, which finishes first
    assert handle.done() and [t.what for t in comm.timings] == ["allreduce of bucket 0", "broadcast"]
    assert comm.timings[0].finished - comm.timings[0].started >= 1.0
    comm.close()
    bare = distributed.Communicator(0, 2, timeout=5)
    with pytest.raises(distributed.DistributedError, match="Communicator has no barrier"):
        bare.barrier()
    bare.close()


def test_nccl_backend_explains_what_is_missing_or_runs_on_one_gpu():
    reason = distributed.unavailable_reason("nccl")
    if reason is not None:  # no CuPy / NCCL / GPU here: a clear error, nothing imported by force
        assert "nccl" in reason and ("CuPy" in reason or "GPU" in reason)
        with pytest.raises(distributed.DistributedError, match="backend 'nccl'"):
            distributed.init("nccl")
        return
    code = ("import cupy, numpy as np, minigraph as mg\n"
            "c = mg.distributed.init('nccl')\n"
            "a = cupy.arange(6, dtype=cupy.float32); h = c.allreduce_async(a); h.wait()\n"
            "b = c.broadcast(cupy.ones(3)); print(c.size, a.get().tolist(), b.get().tolist())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1 [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] [1.0, 1.0, 1.0]"
