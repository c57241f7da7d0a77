"""The MPI communicator: mpi4py's buffer collectives on the system's MPI (e.g. Open MPI).

Only the upper-case, buffer-based calls are used (`Allreduce(IN_PLACE, ...)`, `Bcast`,
`Barrier`): they move NumPy memory without pickling. mpi4py initialises MPI with
MPI_THREAD_MULTIPLE, so the communication thread may call MPI while the training thread
computes.
"""
from __future__ import annotations

from typing import Optional

from .comm import Communicator, DistributedError


def load_mpi():
    """mpi4py's MPI module, or a `DistributedError` that says what to install."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise DistributedError(
            "backend 'mpi' needs mpi4py and an MPI library: pip install 'minigraph[mpi]' and "
            f"Open MPI from the system's package manager (e.g. apt-get install openmpi-bin) ({exc})") from None
    return MPI


class MPICommunicator(Communicator):
    """Collectives over `MPI.COMM_WORLD` (or `comm`), on NumPy buffers."""

    backend = "mpi"

    def __init__(self, comm=None, timeout: Optional[float] = None):
        MPI = load_mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        super().__init__(self.comm.Get_rank(), self.comm.Get_size(), timeout)

    def run_allreduce(self, array):
        self.comm.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)
        return array

    def run_broadcast(self, array, root):
        self.comm.Bcast(array, root=root)
        return array

    def run_barrier(self):
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        """MPI_Abort: mpirun ends every rank of the job."""
        self.comm.Abort(int(code))
