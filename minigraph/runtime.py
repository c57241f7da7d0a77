"""Runtimes: how kernels use the hardware of a backend (threads, BLAS, work splitting).

A `Session` owns one runtime (by default the shared one of its backend, see `default_runtime`);
kernels receive it and ask it to split their work:

    rt.run_chunks(fn, n, per_chunk, flops)   # [fn(start, stop) for chunks of range(n)]
    rt.per_chunk(bytes_per_item)             # batch items per chunk for a given workspace

- `CpuRuntime` (NumPy): NumPy's elementwise work runs on one core while OpenBLAS spreads each
  GEMM over all cores and spins its idle threads between GEMMs. On a small CPU it is faster
  to own the threading: split the batch into chunks, run them on a pool of Python threads
  (NumPy releases the GIL in its loops and BLAS calls), and keep BLAS at one thread while
  they run, so that copies and GEMMs of different chunks overlap. BLAS is held at one thread
  for the whole of every `Session.run` whose plan calls BLAS (`run_scope`) and every kernel
  call, whatever thread calls: counted process-wide, since BLAS's thread count is a
  process-wide setting. Results are therefore the same bits from any thread, alone or
  concurrently.
- `DeviceRuntime` (CuPy): one call over the whole batch; the device parallelises each call
  itself and many small launches would leave it idle.

Configure explicitly: `mg.Session(g, runtime=mg.CpuRuntime(threads=1))`, or the default's
thread count with the environment variable MINIGRAPH_THREADS.
"""
from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Tuple

import numpy as np

from . import env

Chunk = Tuple[int, int]


def chunks(n: int, per_chunk: int) -> List[Chunk]:
    """[start, stop) ranges covering range(n), each of at most `per_chunk` items (>= 1)."""
    per_chunk = max(1, int(per_chunk))
    return [(s, min(s + per_chunk, n)) for s in range(0, n, per_chunk)]


def available_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Runtime:
    """What kernels may ask of the hardware; see the module docstring."""

    name = "runtime"
    xp = None
    threads = 1
    chunk_bytes = 6 << 20  # workspace per chunk (an im2col matrix): a few MiB, to stay in cache
    threaded_elements = 1 << 22  # memory-bound elementwise work below this runs whole, unsplit
    fuses_backward = False  # its kernels take the fused variants of `minigraph.passes.backward`

    def run_chunks(self, fn: Callable[[int, int], object], n: int, per_chunk: int, flops: float = 0) -> list:
        raise NotImplementedError

    def per_chunk(self, bytes_per_item: int) -> int:
        """Batch items per chunk so that a chunk's workspace is about `chunk_bytes`."""
        return max(1, self.chunk_bytes // max(1, int(bytes_per_item)))

    def run_scope(self):
        """A context held around a whole `Session.run`."""
        return contextlib.nullcontext()

    def close(self) -> None:
        """Release threads or other resources (the runtime stays usable: they come back on use)."""


class DeviceRuntime(Runtime):
    """A device backend (CuPy): every split is one call over the whole batch."""

    name = "device"

    def __init__(self, xp):
        self.xp = xp

    def run_chunks(self, fn, n, per_chunk, flops=0):
        return [fn(0, n)] if n else []

    def __repr__(self) -> str:
        return f"<DeviceRuntime {getattr(self.xp, '__name__', self.xp)}>"


class _BlasPin:
    """BLAS held at one thread while any holder is inside (process-wide, counted).

    threadpoolctl (3.x) lets only the first thread that sets an OpenBLAS limit change it later
    and silently ignores the others; a run from a worker thread then left BLAS at its own
    thread count (oversubscribed, and other bits from its K-split GEMMs). Every change here
    happens under one lock, after clearing threadpoolctl's record of that thread, so it
    takes effect from whichever thread makes it.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._count = 0
        self._local = threading.local()  # this thread's depth of held(): nested holds are free
        self._limiter = None
        self._controller = None  # threadpoolctl's view of the BLAS libraries, False when unavailable

    def _blas(self):
        if self._controller is None:
            try:
                from threadpoolctl import ThreadpoolController
                self._controller = ThreadpoolController().select(user_api="blas")
            except Exception:  # threadpoolctl missing or unable to see the libraries
                self._controller = False
        return self._controller

    def threads(self) -> Optional[int]:
        """BLAS's current thread count (None when it cannot be seen)."""
        blas = self._blas()
        if not blas:
            return None
        return max([lib["num_threads"] for lib in blas.info()] + [1])

    def _release_control(self) -> None:
        for lib in getattr(self._blas(), "lib_controllers", ()):
            clear = getattr(type(lib), "clear_controlling_thread", None)
            if clear is not None:
                clear(force=True)

    def held_here(self) -> bool:
        """Whether this thread holds it (inside a run or a kernel call)."""
        return getattr(self._local, "depth", 0) > 0

    @contextlib.contextmanager
    def held(self):
        depth = getattr(self._local, "depth", 0)
        if depth:  # this thread holds it already (a kernel call inside a run)
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
            return
        with self._lock:
            if self._count == 0:
                blas = self._blas()
                if blas:
                    self._release_control()
                    self._limiter = blas.limit(limits=1)
                    self._release_control()
            self._count += 1
        self._local.depth = 1
        try:
            yield
        finally:
            self._local.depth = 0
            with self._lock:
                self._count -= 1
                if self._count == 0 and self._limiter is not None:
                    self._release_control()
                    self._limiter.restore_original_limits()
                    self._release_control()
                    self._limiter = None


BLAS_PIN = _BlasPin()


class CpuRuntime(Runtime):
    """NumPy kernels on a pool of `threads` Python threads with BLAS at one thread.

    threads: pool size (default: the CPUs this process may use, at most 8; 1 runs everything on
    the calling thread). chunk_bytes: the workspace a chunk of a kernel aims at.
    parallel_flops: below this much arithmetic a call runs on the calling thread (a pool round
    trip costs more than it saves). threaded_elements: memory-bound elementwise kernels split
    over the pool only above this many elements.
    """

    name = "cpu"
    xp = np
    fuses_backward = True  # the masks, bias sums and accumulators are applied in each chunk

    def __init__(self, threads: Optional[int] = None, chunk_bytes: int = 6 << 20,
                 parallel_flops: float = 40e6, threaded_elements: int = 1 << 22):
        if threads is None:
            threads = min(available_cpus(), 8)
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"CpuRuntime: threads must be a positive int, got {threads!r}")
        self.threads = threads
        self.chunk_bytes = int(chunk_bytes)
        self.parallel_flops = float(parallel_flops)
        self.threaded_elements = int(threaded_elements)
        self._pool: Optional[ThreadPoolExecutor] = None
        self._lock = threading.Lock()
        self._inside = threading.local()  # set on the pool's threads: nested calls run serially

    def __repr__(self) -> str:
        return f"<CpuRuntime threads={self.threads}>"

    def _get_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="minigraph-kernel")
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def run_scope(self):
        """BLAS at one thread for the whole run (see the module docstring)."""
        return BLAS_PIN.held()

    def split(self, n: int, per_chunk: int, flops: float = 0) -> List[Chunk]:
        """How `run_chunks` splits range(n): chunks of at most `per_chunk` items, work that is
        large (`flops`) split over the threads even when it fits one chunk, the count a multiple
        of the pool's size. With one thread (or one chunk) the calling thread does them in turn."""
        if n == 0:
            return []
        if self.threads < 2:  # one thread: cache-sized chunks, one after the other
            return chunks(n, per_chunk)
        if n >= 2 and flops >= self.parallel_flops:
            per_chunk = min(per_chunk, -(-n // self.threads))
        ranges = chunks(n, per_chunk)
        if len(ranges) == 1:
            return ranges
        k = -(-len(ranges) // self.threads) * self.threads
        return chunks(n, -(-n // k))

    def run_chunks(self, fn, n, per_chunk, flops=0):
        """[fn(start, stop) for (start, stop) in split(n, per_chunk, flops)], in chunk order.
        Several chunks run concurrently on the pool, so `fn` must only write to disjoint parts
        of shared outputs; BLAS stays at one thread meanwhile."""
        ranges = self.split(n, per_chunk, flops)
        if not ranges:
            return []
        if BLAS_PIN.held_here():  # inside a run (the usual case): the pin is taken already
            return self._dispatch(fn, ranges)
        with BLAS_PIN.held():
            return self._dispatch(fn, ranges)

    def _dispatch(self, fn, ranges):
        if len(ranges) == 1 or self.threads < 2 or getattr(self._inside, "flag", False):
            return [fn(a, b) for a, b in ranges]

        errors, callback = np.geterr(), np.geterrcall()  # the caller's np.errstate holds in the workers too

        def call(r):
            self._inside.flag = True
            with np.errstate(call=callback, **errors):
                return fn(*r)

        try:
            return list(self._get_pool().map(call, ranges))
        except RuntimeError:  # the pool was closed under us (`close`): a new one takes the work
            return list(self._get_pool().map(call, ranges))


_defaults = {}
_defaults_lock = threading.Lock()


def default_runtime(xp) -> Runtime:
    """The shared runtime of an array namespace: a `CpuRuntime` for NumPy (threads from
    MINIGRAPH_THREADS when set), a `DeviceRuntime` for anything else (CuPy)."""
    key = id(xp)
    rt = _defaults.get(key)
    if rt is None:
        with _defaults_lock:
            rt = _defaults.get(key)
            if rt is None:
                rt = _defaults[key] = CpuRuntime(_env_threads()) if xp is np else DeviceRuntime(xp)
    return rt


def serial_runtime(xp) -> Runtime:
    """A runtime that runs every kernel call on the calling thread: the one the generic
    `op.forward(xp, ...)` kernels use (a `DeviceRuntime` for a device namespace)."""
    if xp is np:
        return _SERIAL
    return default_runtime(xp)


def _env_threads() -> Optional[int]:
    return env.number("MINIGRAPH_THREADS", int, lambda n: n >= 1, "a positive int")


_SERIAL = CpuRuntime(threads=1)

__all__ = ["Runtime", "CpuRuntime", "DeviceRuntime", "default_runtime", "serial_runtime", "chunks",
           "available_cpus", "BLAS_PIN"]
