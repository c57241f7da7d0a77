"""Array backends: the one place that knows NumPy from CuPy.

A session picks a backend once; kernels receive its `xp` namespace and nothing else.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from .errors import BackendError

BACKENDS = ("numpy", "cupy")


@dataclasses.dataclass(frozen=True)
class Backend:
    """An array namespace plus the host/device moves a session needs."""

    name: str
    xp: Any
    asarray: Callable[[Any], Any]
    to_host: Callable[[Any], np.ndarray]
    make_rng: Callable[[int], Any]

    def is_array(self, value) -> bool:
        return isinstance(value, self.xp.ndarray)


def _numpy_backend() -> Backend:
    return Backend("numpy", np, np.asarray, np.asarray, np.random.default_rng)


def _cupy_backend() -> Backend:
    try:
        import cupy
    except ImportError:
        raise BackendError(
            "backend 'cupy' needs CuPy, which is not installed: pip install 'minigraph[cuda]'") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise BackendError(f"backend 'cupy': CuPy is installed but no CUDA GPU is usable ({exc})") from None
    if count == 0:
        raise BackendError("backend 'cupy': CuPy is installed but no CUDA GPU was found")

    def to_host(a):
        return a.get() if isinstance(a, cupy.ndarray) else np.asarray(a)

    return Backend("cupy", cupy, cupy.asarray, to_host, lambda seed: cupy.random.default_rng(seed))


def unavailable_reason(name: str):
    """Why backend `name` cannot be used here, or None when it can."""
    try:
        get_backend(name)
    except BackendError as exc:
        return str(exc)
    return None


def get_backend(name: str) -> Backend:
    """The backend called `name` ('numpy' or 'cupy'), or a `BackendError` saying what is missing."""
    if name == "numpy":
        return _numpy_backend()
    if name == "cupy":
        return _cupy_backend()
    raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
