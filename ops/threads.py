"""How the CNN kernels use the CPU's cores: the one place that decides it.

NumPy's elementwise work (im2col copies, padding, pooling, bias adds) runs on one core, while
OpenBLAS spreads each GEMM over all cores and spins its idle threads between GEMMs. On a
small CPU it is faster to own the threading: split the batch into chunks, run the chunks on a
pool of Python threads (NumPy releases the GIL in its loops and in BLAS calls), and keep
OpenBLAS at one thread while they run, so that copies and GEMMs of different chunks overlap.

`run_chunks(xp, fn, n, per_chunk)` is the only entry point. With NumPy on a machine of more
than one core it uses the thread pool; with any other array namespace (CuPy) it makes one
call over the whole batch, since the device parallelises each call itself and many small
launches would leave it idle.

`blas_scope()` is the executor's: inside it (a whole `Session.run` on NumPy), BLAS is pinned
at the first kernel call and released at the end, instead of once per kernel call.
"""
from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Tuple

import numpy as np

Chunk = Tuple[int, int]

_lock = threading.Lock()
_inside = threading.local()  # set on the pool's threads: a nested call runs serially
_pool: Optional[ThreadPoolExecutor] = None
_blas = None  # threadpoolctl controller of the BLAS libraries, or False when unavailable
_blas_threads = 1  # BLAS's own thread count, as found
_scope = threading.local()  # depth: open blas_scope()s on this thread; limiter: its pin, once taken


def workers() -> int:
    """Threads used for NumPy kernels: the CPUs this process may run on (at most 8)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def _get_pool() -> ThreadPoolExecutor:
    global _pool, _blas, _blas_threads
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(workers(), thread_name_prefix="minigraph-kernel")
            try:
                from threadpoolctl import ThreadpoolController
                _blas = ThreadpoolController().select(user_api="blas")
                _blas_threads = max([lib["num_threads"] for lib in _blas.info()] + [1])
            except Exception:  # threadpoolctl missing or unable to see the libraries
                _blas = False
    return _pool


def chunks(n: int, per_chunk: int) -> List[Chunk]:
    """[start, stop) ranges covering range(n), each of at most `per_chunk` items (>= 1)."""
    per_chunk = max(1, int(per_chunk))
    return [(s, min(s + per_chunk, n)) for s in range(0, n, per_chunk)]


@contextlib.contextmanager
def blas_scope():
    """Inside: the NumPy kernels' BLAS pin (one thread) is taken once, at the first kernel
    call, and kept until the outermost scope on this thread exits (then BLAS gets its threads
    back). Runs without kernel calls (plain matmuls) never pin. Nested scopes are free."""
    depth = getattr(_scope, "depth", 0)
    _scope.depth = depth + 1
    if depth == 0:
        _scope.limiter = None
    try:
        yield
    finally:
        _scope.depth = depth
        if depth == 0 and _scope.limiter is not None:
            limiter, _scope.limiter = _scope.limiter, None
            limiter.restore_original_limits()


def _pinned():
    """A context that keeps BLAS at one thread around a kernel call: a no-op inside a
    `blas_scope` (the scope holds the pin, taken here on first use)."""
    if not _blas:
        return contextlib.nullcontext()
    if getattr(_scope, "depth", 0):
        if _scope.limiter is None:
            _scope.limiter = _blas.limit(limits=1)
        return contextlib.nullcontext()
    return _blas.limit(limits=1)


def _unpinned():
    """A context that gives BLAS its own threads back inside a `blas_scope` (one item too big
    for a chunk); a no-op outside, where BLAS has them anyway."""
    if _blas and getattr(_scope, "depth", 0) and _scope.limiter is not None:
        return _blas.limit(limits=_blas_threads)
    return contextlib.nullcontext()


PARALLEL_FLOPS = 40e6  # below this much arithmetic, a pool round trip costs more than it saves


def run_chunks(xp, fn: Callable[[int, int], object], n: int, per_chunk: int, flops: float = 0) -> list:
    """[fn(start, stop) for every chunk of range(n)], chunks of at most `per_chunk` items;
    `flops`, the arithmetic of the whole call, splits work that fits one chunk when large.

    With NumPy, BLAS is pinned to one thread meanwhile and, when there are several chunks,
    they run concurrently on the kernel thread pool (rebalanced to a multiple of the pool's
    size); `fn` must then only write to disjoint parts of shared outputs. Work that fits in
    one chunk runs on the calling thread (a pool round trip would cost more than it saves),
    except one item too big for a chunk, which leaves BLAS its own threads. Results come back
    in chunk order.
    """
    if n == 0:
        return []
    if xp is not np:  # a device: one launch per kernel over the whole batch
        return [fn(0, n)]
    if n >= 2 and flops >= PARALLEL_FLOPS:
        per_chunk = min(per_chunk, -(-n // workers()))
    ranges = chunks(n, per_chunk)
    if getattr(_inside, "flag", False):
        return [fn(a, b) for a, b in ranges]
    pool = _get_pool()
    if len(ranges) == 1 and (n > 1 or per_chunk > 1 or workers() < 2):
        with _pinned():
            return [fn(0, n)]
    if len(ranges) == 1 or workers() < 2:  # one item bigger than a chunk: BLAS's threads
        with _unpinned():
            return [fn(a, b) for a, b in ranges]
    k = -(-len(ranges) // workers()) * workers()
    ranges = chunks(n, -(-n // k))

    def call(r):
        _inside.flag = True
        return fn(*r)

    with _pinned():
        return list(pool.map(call, ranges))
