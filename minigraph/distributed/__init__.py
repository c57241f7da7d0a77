"""Data-parallel training over MPI (NumPy, through mpi4py) or NCCL (CuPy, through
cupyx.distributed): one process per rank, each on its part of every global batch.

    comm = mg.distributed.init("mpi")            # under `mpirun -n 4 python train.py`
    opt = mg.distributed.DistributedOptimizer(mg.optim.SGD(0.1, momentum=0.9), comm)
    train_op = opt.minimize(loss)
    sess = mg.Session(g, seed=0)
    mg.distributed.broadcast_variables(sess, comm)

- `init(backend="mpi"|"nccl", timeout=None)` -> the process's `Communicator` (`rank`,
  `size`, `allreduce`, `broadcast`, `barrier`, ...; see `comm.py`);
- `DistributedOptimizer(opt, comm, bucket_bytes=4 MiB)`: gradients averaged by bucketed,
  in-place allreduces that start during the backward pass (`optimizer.py`, `buckets.py`);
- `broadcast_variables(sess, comm, root=0)`: variables, optimizer state and generator of
  the root on every rank (`broadcast.py`);
- `mg.data.batches(..., rank=, size=)` gives each rank its part of the global batches.
"""
from __future__ import annotations

from typing import Optional

from .broadcast import broadcast_variables
from .buckets import DEFAULT_BUCKET_BYTES, AllreduceStart, AllreduceWait, BucketSlice
from .comm import (Communicator, DistributedError, Handle, Timing, abort_all_on_error, default_timeout,
                   install_abort_on_error)
from .optimizer import DistributedOptimizer

BACKENDS = ("mpi", "nccl")

_world: dict = {}


def init(backend: str = "mpi", timeout: Optional[float] = None, abort_on_error: bool = True) -> Communicator:
    """The communicator of this process (created on the first call, the same one after).

    `backend`: "mpi" (NumPy arrays, mpi4py on the system's MPI) or "nccl" (CuPy arrays on
    GPU `local rank % GPUs`, NCCL through cupyx.distributed, MPI for start-up). `timeout`:
    seconds any collective may wait for the other ranks before raising `DistributedError`
    (default: $MINIGRAPH_DIST_TIMEOUT, else 300). With `abort_on_error`, an uncaught
    exception on one rank aborts every rank (`install_abort_on_error`). Started without
    mpirun, the communicator has size 1.
    """
    if backend not in BACKENDS:
        raise DistributedError(f"unknown distributed backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    comm = _world.get("comm")
    if comm is not None:
        if comm.backend != backend:
            raise DistributedError(f"this process already runs the {comm.backend!r} backend; "
                                   f"it cannot switch to {backend!r}")
        return comm
    if backend == "mpi":
        from .mpi import MPICommunicator
        comm = MPICommunicator(timeout=timeout)
    else:
        from .nccl import NCCLCommunicator
        comm = NCCLCommunicator(timeout=timeout)
    if abort_on_error and comm.size > 1:
        install_abort_on_error(comm)
    _world["comm"] = comm
    return comm


def unavailable_reason(backend: str) -> Optional[str]:
    """Why `backend` cannot start in this process, or None when it can. For "mpi" this only
    looks for mpi4py (importing it would initialise MPI); for "nccl" it loads CuPy and
    counts the GPUs."""
    try:
        if backend == "mpi":
            import importlib.util
            if importlib.util.find_spec("mpi4py") is None:
                raise DistributedError("backend 'mpi' needs mpi4py: pip install 'minigraph[mpi]'")
        elif backend == "nccl":
            from .nccl import load_cupy_distributed
            load_cupy_distributed()
        else:
            raise DistributedError(f"unknown distributed backend {backend!r}")
    except DistributedError as exc:
        return str(exc)
    return None


__all__ = ["init", "unavailable_reason", "Communicator", "DistributedError", "DistributedOptimizer",
           "broadcast_variables", "Handle", "Timing", "default_timeout", "install_abort_on_error", "abort_all_on_error",
           "AllreduceStart", "AllreduceWait", "BucketSlice", "DEFAULT_BUCKET_BYTES", "BACKENDS"]
