"""The NCCL communicator's control flow (device arrays reduced on a stream of their own,
completion events, deadlines) on a stand-in for CuPy and cupyx.distributed written here,
in a subprocess (MPI starts there as a single process). The real thing needs a GPU: see
test_comm.py's test_nccl_backend_explains_what_is_missing_or_runs_on_one_gpu."""
import subprocess
import sys

import pytest

from minigraph import distributed

STAND_IN = r'''
import sys, types
import numpy as np

class DeviceArray(np.ndarray):
    """A host array that passes for cupy.ndarray."""

calls = []

class Event:
    def __init__(self):
        self.recorded_on, self.done = None, False
    def record(self, stream=None):
        self.recorded_on = stream
        self.done = not HANG

class Stream:
    def __init__(self, non_blocking=False):
        self.waits = []
    def wait_event(self, event):
        self.waits.append(event)

compute = Stream()
cupy = types.ModuleType("cupy")
cupy.ndarray = DeviceArray
cupy.cuda = types.ModuleType("cupy.cuda")
cupy.cuda.Event, cupy.cuda.Stream = Event, Stream
cupy.cuda.get_current_stream = lambda: compute
cupy.cuda.Device = lambda i: types.SimpleNamespace(use=lambda: calls.append(("device", i)))
cupy.cuda.runtime = types.SimpleNamespace(getDeviceCount=lambda: 1)
cupy.cuda.nccl = types.ModuleType("cupy.cuda.nccl")
cupy.cuda.nccl.available = True

class NCCLBackend:
    def __init__(self, n_devices, rank, use_mpi=False):
        calls.append(("init", n_devices, rank, use_mpi))
    def all_reduce(self, a, out, op="sum", stream=None):
        calls.append(("all_reduce", a is out, op, stream))
    def broadcast(self, a, root=0, stream=None):
        calls.append(("broadcast", root, stream))

cupyx = types.ModuleType("cupyx")
cupyx.distributed = types.ModuleType("cupyx.distributed")
cupyx.distributed.NCCLBackend = NCCLBackend
sys.modules.update({"cupy": cupy, "cupy.cuda": cupy.cuda, "cupy.cuda.nccl": cupy.cuda.nccl,
                    "cupyx": cupyx, "cupyx.distributed": cupyx.distributed})
HANG = "hang" in sys.argv

import minigraph as mg
comm = mg.distributed.init("nccl", timeout=0.3)
assert (comm.backend, comm.rank, comm.size) == ("nccl", 0, 1)
buf = np.arange(4.0).view(DeviceArray)
handle = comm.allreduce_async(buf, what="allreduce of bucket 0")
if HANG:
    try:
        handle.wait()
    except mg.distributed.DistributedError as exc:
        print("ERROR", exc)
    raise SystemExit(0)
assert handle.wait() is buf
kind, in_place, op, stream = calls[-1]
assert (kind, in_place, op) == ("all_reduce", True, "sum") and stream is comm.stream
assert compute.waits and compute.waits[-1] is handle.event          # compute waits for the sum
assert comm.stream.waits[0].recorded_on is compute                  # the sum waits for compute
assert comm.broadcast(np.ones(3).view(DeviceArray), root=0) is not None and calls[-1][0] == "broadcast"
assert comm.broadcast_object({"a": 1}) == {"a": 1}                  # host side: MPI
assert comm.allreduce(np.ones(2)).tolist() == [1.0, 1.0]            # a host array: MPI
assert calls[:2] == [("device", 0), ("init", 1, 0, True)]
print("OK", [t.what for t in comm.timings])
'''


@pytest.fixture
def needs_mpi4py():
    reason = distributed.unavailable_reason("mpi")
    if reason:
        pytest.skip(reason)


def run(*args):
    return subprocess.run([sys.executable, "-c", STAND_IN, *args], capture_output=True, text=True, timeout=60)


def test_nccl_allreduce_on_its_own_stream_then_the_compute_stream_waits(needs_mpi4py):
    out = run()
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "OK ['allreduce of bucket 0', 'allreduce']"  # one rank: objects need no MPI


def test_nccl_wait_has_a_deadline(needs_mpi4py):
    out = run("hang")
    assert out.returncode == 0, out.stderr
    assert "ERROR allreduce of bucket 0 on rank 0 of 1 did not complete within 0.3 s" in out.stdout
