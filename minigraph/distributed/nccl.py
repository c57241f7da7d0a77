"""The NCCL communicator: gradients reduced on the GPUs by `cupyx.distributed` (NCCL), with
MPI (mpi4py) for start-up, ranks, barriers and host-side broadcasts.

Each rank uses GPU `local rank % device count`. An allreduce is queued on a stream of its
own after the compute stream's work so far (an event), so later kernels of the backward
pass can run meanwhile; `wait()` polls its completion event against the deadline and
then makes the compute stream wait for it.
"""
from __future__ import annotations

import os
import time
from typing import Optional

from .comm import DistributedError, Handle, Timing
from .mpi import MPICommunicator


def load_cupy_distributed():
    """(cupy, cupyx.distributed) when CuPy, NCCL and a CUDA GPU are usable, else a
    `DistributedError` saying what is missing."""
    try:
        import cupy
        import cupyx.distributed
        from cupy.cuda import nccl
    except ImportError as exc:
        raise DistributedError(f"backend 'nccl' needs CuPy with NCCL: pip install 'minigraph[cuda]' ({exc})") from None
    if not getattr(nccl, "available", False):
        raise DistributedError("backend 'nccl': this CuPy was built without NCCL")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device
        raise DistributedError(f"backend 'nccl': no CUDA GPU is usable ({exc})") from None
    if count == 0:
        raise DistributedError("backend 'nccl': no CUDA GPU was found")
    return cupy, cupyx.distributed


class NCCLCommunicator(MPICommunicator):
    """Device-array collectives over NCCL; host-side ones (objects, barriers) over MPI."""

    backend = "nccl"

    def __init__(self, timeout: Optional[float] = None):
        cupy, cupyx_distributed = load_cupy_distributed()
        super().__init__(timeout=timeout)
        self.cupy = cupy
        local = int(os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", os.environ.get("MPI_LOCALRANKID", self.rank)))
        self.device = cupy.cuda.Device(local % cupy.cuda.runtime.getDeviceCount())
        self.device.use()
        self.nccl = cupyx_distributed.NCCLBackend(self.size, self.rank, use_mpi=True)
        self.stream = cupy.cuda.Stream(non_blocking=True)

    def allreduce_async(self, array, what: str = "allreduce") -> Handle:
        if not isinstance(array, self.cupy.ndarray):
            return super().allreduce_async(array, what)
        if not array.flags.c_contiguous:
            raise DistributedError(f"{what}: the buffer must be a C-contiguous array")
        timing = Timing(what, array.nbytes, time.perf_counter())
        self.timings.append(timing)
        ready = self.cupy.cuda.Event()
        ready.record(self.cupy.cuda.get_current_stream())
        self.stream.wait_event(ready)
        timing.started = time.perf_counter()
        self.nccl.all_reduce(array, array, op="sum", stream=self.stream)
        done = self.cupy.cuda.Event()
        done.record(self.stream)
        return _DeviceHandle(f"{what} on rank {self.rank} of {self.size}", self.timeout, timing, array, done, self.cupy)

    def broadcast(self, array, root: int = 0, what: str = "broadcast"):
        if not isinstance(array, self.cupy.ndarray):
            return super().broadcast(array, root, what)
        self._check_root(root)
        self.nccl.broadcast(array, root=root, stream=self.stream)
        done = self.cupy.cuda.Event()
        done.record(self.stream)
        timing = Timing(what, array.nbytes, time.perf_counter())
        return _DeviceHandle(f"{what} on rank {self.rank} of {self.size}", self.timeout, timing, array, done,
                             self.cupy).wait()


class _DeviceHandle(Handle):
    """An NCCL collective queued on the communicator's stream: done when its event is."""

    def __init__(self, what, timeout, timing, array, event, cupy):
        super().__init__(what, timeout, timing)
        self.array, self.event, self.cupy = array, event, cupy

    def done(self) -> bool:
        return self.event.done

    def wait(self):
        if self.timing.waited != self.timing.waited:
            self.timing.waited = time.perf_counter()
        deadline = time.perf_counter() + self.timeout
        pause = 1e-5
        while not self.event.done:
            if time.perf_counter() > deadline:
                raise DistributedError(
                    f"{self.what} did not complete within {self.timeout:g} s: another rank has probably "
                    "died, raised an error or hangs (MINIGRAPH_DIST_TIMEOUT sets the limit)")
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)
        self.timing.finished = time.perf_counter()
        self.cupy.cuda.get_current_stream().wait_event(self.event)
        return self.array
