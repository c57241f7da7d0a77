"""Kernel selection: which function computes a node, on which backend, with which algorithm.

Kernels register by (op kind, backend, algorithm); the op's own `forward(xp, ...)` is the
generic reference and the fallback when none applies:

    @register_kernel("conv2d", "numpy", "gemm")
    def conv2d_gemm(rt, op, x, w, b=None):          # rt: the session's runtime (rt.xp)
        ...

    @register_kernel("conv2d_backprop_input", "numpy", "full_correlation",
                     score=lambda op, shapes, rt: 2.0 if ... else None)

`score(op, shapes, rt)` says whether the kernel applies to the op's attributes, the run-time
input shapes and the runtime (None: it does not) and how much it is preferred (higher wins;
default 1.0).
The executor calls `select` once per node and per distinct set of input shapes and caches the
choice in the plan. A choice can be forced, most specific first: an op attribute `algorithm`
(when the op has one and it is set), the session's `algorithms={"conv2d": "gemm"}`, the
environment variable MINIGRAPH_ALGORITHMS="conv2d=gemm,conv2d_backprop_input=tap_scatter".
Forcing a name that no kernel of that kind registers is an error; forcing one that does not
apply to a shape falls back to the best kernel that does.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Callable, Dict, List, Mapping, Optional, Tuple

Shapes = Tuple[Tuple[int, ...], ...]
GENERIC = "generic"  # the name of the op's own forward(xp, ...) when it is chosen


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One registered implementation of an op kind on a backend."""

    kind: str
    backend: str
    algorithm: str
    fn: Callable  # fn(rt, op, *arrays) -> array
    score: Optional[Callable] = None  # score(op, shapes, rt) -> float or None (does not apply)
    exact: bool = True  # False when the algorithm rounds differently from the reference (Winograd)

    def rate(self, op, shapes: Shapes, rt=None) -> Optional[float]:
        return 1.0 if self.score is None else self.score(op, shapes, rt)


_KERNELS: Dict[Tuple[str, str], List[Kernel]] = {}


def register_kernel(kind: str, backend: str, algorithm: str, score: Optional[Callable] = None,
                    exact: bool = True):
    """Decorator: register `fn(rt, op, *arrays)` as the `algorithm` kernel of `kind` on `backend`
    ('numpy' or 'cupy'). Registering the same (kind, backend, algorithm) again replaces it."""
    def decorate(fn):
        kernels = _KERNELS.setdefault((kind, backend), [])
        kernels[:] = [k for k in kernels if k.algorithm != algorithm]
        kernels.append(Kernel(kind, backend, algorithm, fn, score, exact))
        return fn
    return decorate


def kernels_for(kind: str, backend: str) -> List[Kernel]:
    """The kernels registered for `kind` on `backend`, in registration order."""
    return list(_KERNELS.get((kind, backend), ()))


def algorithms(kind: str, backend: str) -> List[str]:
    """The algorithm names that can be forced for `kind` on `backend` ('generic' included)."""
    return [k.algorithm for k in kernels_for(kind, backend)] + [GENERIC]


def select(op, shapes: Shapes, backend: str, forced: Mapping[str, str] = (), rt=None) -> Optional[Kernel]:
    """The kernel to run `op` on inputs of `shapes` with runtime `rt` on `backend`, or None for
    the op's generic `forward`. `forced` maps kinds to algorithm names (the session's and the
    environment's); an `algorithm` attribute of the op wins over it."""
    candidates = _KERNELS.get((op.kind, backend), ())
    want = getattr(op, "algorithm", None) or dict(forced).get(op.kind)
    if want is not None:
        if want == GENERIC:
            return None
        chosen = [k for k in candidates if k.algorithm == want]
        if not chosen:
            raise ValueError(f"no {want!r} kernel for {op.kind} on {backend}; "
                             f"choose one of {', '.join(algorithms(op.kind, backend))}")
        if chosen[0].rate(op, shapes, rt) is not None:
            return chosen[0]
    best, best_score = None, None
    for k in candidates:
        s = k.rate(op, shapes, rt)
        if s is not None and (best_score is None or s > best_score):
            best, best_score = k, s
    return best


def env_algorithms() -> Dict[str, str]:
    """The choices forced by MINIGRAPH_ALGORITHMS ('kind=algorithm,kind=algorithm')."""
    raw = os.environ.get("MINIGRAPH_ALGORITHMS", "").strip()
    out = {}
    for item in filter(None, (p.strip() for p in raw.split(","))):
        kind, sep, algo = item.partition("=")
        if not sep or not kind.strip() or not algo.strip():
            raise ValueError(f"MINIGRAPH_ALGORITHMS: expected 'kind=algorithm' items, got {item!r}")
        out[kind.strip()] = algo.strip()
    return out


def describe(backend: Optional[str] = None) -> List[Tuple[str, str, str, bool]]:
    """(kind, backend, algorithm, exact) for every registered kernel, sorted."""
    rows = [(k.kind, k.backend, k.algorithm, k.exact) for ks in _KERNELS.values() for k in ks
            if backend is None or k.backend == backend]
    return sorted(rows)


__all__ = ["Kernel", "register_kernel", "kernels_for", "algorithms", "select", "env_algorithms",
           "describe", "GENERIC"]
