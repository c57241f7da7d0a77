"""Communicators: the collectives of data-parallel training, with a deadline on every wait.

A communicator has a `rank` in `0 .. size - 1` and collectives that every rank must call in
the same order:

- `allreduce(array)`: sums `array` over the ranks, in place, and returns it;
  `allreduce_async(array)` starts the same and returns a `Handle` whose `wait()` returns it;
- `broadcast(array, root=0)`: `root`'s values into `array` on every rank, in place;
- `broadcast_object(value, root=0)`: a JSON-serialisable value from `root`;
- `barrier()`.

Every collective runs on one communication thread per process, in the order it was issued,
so the training thread can compute while a gradient bucket is being reduced. Every wait
has a deadline (`timeout` seconds): when a rank has died, raised or hangs, the others raise
a `DistributedError` that says which collective timed out instead of waiting forever, and
`install_abort_on_error` turns any uncaught exception into an abort of all ranks.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import sys
import threading
import time
import traceback
from collections import deque
from typing import Any, Callable, Deque, Dict, Optional

import numpy as np

from .. import env
from ..errors import MinigraphError

DEFAULT_TIMEOUT = 300.0  # seconds; MINIGRAPH_DIST_TIMEOUT overrides it


class DistributedError(MinigraphError, RuntimeError):
    """A collective that failed or did not finish in time, or a misconfigured distributed run."""


def default_timeout() -> float:
    """`MINIGRAPH_DIST_TIMEOUT` (seconds) if set, else 300."""
    return env.number("MINIGRAPH_DIST_TIMEOUT", float, lambda v: v > 0, "a positive number of seconds",
                      DEFAULT_TIMEOUT, DistributedError)


@dataclasses.dataclass
class Timing:
    """When one collective was issued, started on the communication thread, first waited
    for and finished (time.perf_counter seconds), and how many bytes it moved per rank."""

    what: str
    nbytes: int
    issued: float
    started: float = float("nan")
    finished: float = float("nan")
    waited: float = float("nan")


class Handle:
    """A collective in flight; `wait()` blocks until it is done (or its deadline passes)
    and returns its result."""

    def __init__(self, what: str, timeout: float, timing: Timing):
        self.what = what
        self.timeout = timeout
        self.timing = timing
        self._done = threading.Event()
        self._result: Any = None
        self._error: Optional[BaseException] = None

    def _finish(self, result=None, error: Optional[BaseException] = None) -> None:
        self._result, self._error = result, error
        self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self):
        if self.timing.waited != self.timing.waited:  # nan: the first wait
            self.timing.waited = time.perf_counter()
        if not self._done.wait(self.timeout):
            raise DistributedError(
                f"{self.what} did not complete within {self.timeout:g} s: another rank has probably "
                "died, raised an error or hangs (MINIGRAPH_DIST_TIMEOUT sets the limit)")
        if self._error is not None:
            raise DistributedError(f"{self.what} failed: {self._error}") from self._error
        return self._result


class Communicator:
    """The base of the MPI and NCCL communicators: the communication thread, deadlines,
    timings and the collectives, built on three blocking primitives that a backend
    implements and that run on that thread: `run_allreduce(array)` (in-place sum),
    `run_broadcast(array, root)` and `run_barrier()`."""

    backend = "none"

    def __init__(self, rank: int, size: int, timeout: Optional[float] = None):
        self.rank, self.size = int(rank), int(size)
        self.timeout = default_timeout() if timeout is None else float(timeout)
        if not self.timeout > 0:
            raise DistributedError(f"timeout must be a positive number of seconds, got {timeout}")
        self.timings: Deque[Timing] = deque(maxlen=100_000)
        self._jobs: "queue.Queue" = queue.Queue()
        self._pending: Dict[int, Handle] = {}
        # a daemon thread: a process whose peer died must still be able to exit
        self._thread = threading.Thread(target=self._serve, name="minigraph-comm", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} rank {self.rank} of {self.size}>"

    # the communication thread ------------------------------------------------------
    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, handle = job
            handle.timing.started = time.perf_counter()
            try:
                result = fn()
            except BaseException as exc:  # handed to the waiting thread
                handle.timing.finished = time.perf_counter()
                handle._finish(error=exc)
            else:
                handle.timing.finished = time.perf_counter()
                handle._finish(result)

    def _submit(self, what: str, nbytes: int, fn: Callable[[], Any]) -> Handle:
        timing = Timing(what, int(nbytes), time.perf_counter())
        self.timings.append(timing)
        handle = Handle(f"{what} on rank {self.rank} of {self.size}", self.timeout, timing)
        self._jobs.put((fn, handle))
        return handle

    # collectives ---------------------------------------------------------------------
    def allreduce_async(self, array, what: str = "allreduce") -> Handle:
        """Start summing `array` (contiguous) over all ranks, in place; `wait()` returns it."""
        _check_contiguous(array, what)
        if self.size == 1:  # nothing to sum: done at once
            timing = Timing(what, array.nbytes, time.perf_counter())
            timing.started = timing.finished = timing.issued
            self.timings.append(timing)
            handle = Handle(what, self.timeout, timing)
            handle._finish(array)
            return handle
        return self._submit(what, array.nbytes, lambda: self.run_allreduce(array))

    def allreduce(self, array, what: str = "allreduce"):
        """Sum `array` over all ranks, in place; returns it."""
        return self.allreduce_async(array, what).wait()

    def broadcast(self, array, root: int = 0, what: str = "broadcast"):
        """Overwrite `array` with `root`'s values on every rank; returns it."""
        _check_contiguous(array, what)
        self._check_root(root)
        if self.size == 1:
            return array
        return self._submit(what, array.nbytes, lambda: self.run_broadcast(array, root)).wait()

    def broadcast_object(self, value=None, root: int = 0, what: str = "broadcast_object"):
        """`root`'s `value` (anything JSON can write) on every rank."""
        self._check_root(root)
        if self.size == 1:
            return json.loads(json.dumps(value))
        data = np.frombuffer(json.dumps(value).encode(), np.uint8) if self.rank == root else None
        length = np.array([0 if data is None else len(data)], np.int64)
        self.broadcast_host(length, root, what + " (length)")
        buf = data.copy() if data is not None else np.empty(int(length[0]), np.uint8)
        self.broadcast_host(buf, root, what)
        return json.loads(buf.tobytes().decode())

    def broadcast_host(self, array: np.ndarray, root: int = 0, what: str = "broadcast"):
        """`broadcast` of a host (NumPy) array, whatever the backend's device."""
        return self.broadcast(array, root, what)

    def barrier(self, what: str = "barrier") -> None:
        """Return once every rank has called barrier."""
        if self.size > 1:
            self._submit(what, 0, self.run_barrier).wait()

    def abort(self, code: int = 1) -> None:
        """End every rank of the job at once (the backend's abort)."""
        os._exit(code)

    def close(self) -> None:
        """Stop the communication thread (after the collectives already issued)."""
        self._jobs.put(None)

    # in-flight buffers, for ops that start a collective in one node and wait in another
    def hold(self, array, handle: Handle) -> None:
        self._pending[id(array)] = handle

    def release(self, array) -> Handle:
        try:
            return self._pending.pop(id(array))
        except KeyError:
            raise DistributedError("no collective in flight for this buffer (was its start node run?)") from None

    def _check_root(self, root: int) -> None:
        if not 0 <= int(root) < self.size:
            raise DistributedError(f"root must lie in [0, {self.size}), got {root}")

    # the backend's primitives: blocking calls, run on the communication thread
    def run_allreduce(self, array):
        raise NotImplementedError(f"{type(self).__name__} has no allreduce")

    def run_broadcast(self, array, root: int):
        raise NotImplementedError(f"{type(self).__name__} has no broadcast")

    def run_barrier(self):
        raise NotImplementedError(f"{type(self).__name__} has no barrier")


def _check_contiguous(array, what: str) -> None:
    if not getattr(array, "flags", None) or not array.flags.c_contiguous:
        raise DistributedError(f"{what}: the buffer must be a C-contiguous array, got {type(array).__name__}")


def install_abort_on_error(comm: Communicator) -> None:
    """Make an uncaught exception on any rank print its traceback and abort every rank (so
    the others do not wait for it until their deadline, and no rank hangs in finalize)."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            return previous(kind, value, tb)
        sys.stderr.write(f"minigraph.distributed: rank {comm.rank} of {comm.size} failed; aborting all ranks\n")
        traceback.print_exception(kind, value, tb, file=sys.stderr)
        sys.stderr.flush()
        comm.abort(1)

    sys.excepthook = hook


@contextlib.contextmanager
def abort_all_on_error(comm: Optional[Communicator]):
    """Inside, an exception on this rank of a run of several (other than KeyboardInterrupt:
    a Ctrl-C the ranks agreed on) prints its traceback and aborts every rank, so that none
    waits for this one until its deadline. Without a communicator, or with one rank, nothing."""
    try:
        yield
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        if comm is None or comm.size == 1:
            raise
        traceback.print_exc()
        print(f"minigraph: error on rank {comm.rank} of {comm.size}: {exc}; aborting all ranks",
              file=sys.stderr, flush=True)
        comm.abort(1)
        raise
