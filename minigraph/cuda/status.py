"""Which GPU path minigraph takes on the CuPy backend, decided once per process and said once.

Three paths, best first:

- ``cudnn``: convolutions through NVIDIA's cuDNN graph API (the ``nvidia-cudnn-frontend``
  Python package over the ``nvidia-cudnn-cu13`` libraries), plus the fused CuPy kernels;
- ``fused``: no usable cuDNN, but the fused CuPy kernels (pooling, LRN, softmax
  cross-entropy, concat) are used; convolutions stay im2col + cuBLAS GEMMs;
- ``generic``: only the generic ``xp`` kernels (what every op's ``forward`` does).

Switches (environment, read when the probe first runs): ``MINIGRAPH_CUDNN=0`` turns cuDNN
off, ``MINIGRAPH_FUSED=0`` the fused kernels. Kernels ask `cudnn_enabled()` /
`fused_enabled()` from their `score` (so only at plan time on the CuPy backend: nothing
here touches CUDA on NumPy), and the first of those calls announces the path with one
`logging` line on the ``minigraph.cuda`` logger (INFO) or, when the GPU runs without cuDNN
although cuDNN was wanted, one `RuntimeWarning` saying why.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import warnings
from typing import Callable, Optional

from .. import env

LOG = logging.getLogger("minigraph.cuda")


@dataclasses.dataclass(frozen=True)
class GpuPath:
    """What the probe found: the path's name, the cuDNN version (or None) and why cuDNN is
    not used (None when it is)."""

    name: str  # "cudnn", "fused" or "generic"
    cudnn_version: Optional[int] = None
    reason: Optional[str] = None

    def describe(self) -> str:
        """One line for people: the path and, where cuDNN is off, why."""
        if self.name == "cudnn":
            return f"minigraph GPU path: cuDNN {self.cudnn_version} convolutions + fused CuPy kernels"
        head = "fused CuPy kernels, convolutions as im2col + cuBLAS" if self.name == "fused" else "generic CuPy kernels"
        return f"minigraph GPU path: {head} (no cuDNN: {self.reason})"


def _flag(name: str) -> bool:
    """An on/off environment switch, on unless set to 0/false/no/off."""
    return env.switch(name, default=True)


def probe_cudnn() -> "tuple[Optional[int], Optional[str]]":
    """(cuDNN version, None) when cuDNN can run here, else (None, why not). Imports CuPy and
    the cuDNN frontend and asks the library for its version: needs a GPU only for the last."""
    try:
        import cupy
    except ImportError:
        return None, "CuPy is not installed"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None, "no CUDA GPU"
    except Exception as exc:  # driver missing or broken
        return None, f"no usable CUDA GPU ({exc})"
    try:
        import cudnn
    except ImportError:
        return None, "the nvidia-cudnn-frontend package is not installed (pip install 'minigraph[cuda]')"
    except Exception as exc:
        return None, f"the cuDNN frontend does not load ({exc})"
    try:
        return int(cudnn.backend_version()), None
    except Exception as exc:  # the cuDNN library itself is missing or too old for the driver
        return None, f"the cuDNN library does not load ({exc}); pip install nvidia-cudnn-cu13"


class _Probe:
    """The process's answer, computed on first use (thread-safe) and announced once."""

    def __init__(self, find: Callable[[], "tuple[Optional[int], Optional[str]]"] = probe_cudnn):
        self._find = find
        self._lock = threading.Lock()
        self._path: Optional[GpuPath] = None

    def path(self) -> GpuPath:
        if self._path is None:
            with self._lock:
                if self._path is None:
                    self._path = self._decide()
                    self._announce(self._path)
        return self._path

    def _decide(self) -> GpuPath:
        fused = _flag("MINIGRAPH_FUSED")
        if not _flag("MINIGRAPH_CUDNN"):
            return GpuPath("fused" if fused else "generic", None, "turned off by MINIGRAPH_CUDNN=0")
        version, reason = self._find()
        if version is not None:
            return GpuPath("cudnn", version, None)
        return GpuPath("fused" if fused else "generic", None, reason)

    @staticmethod
    def _announce(path: GpuPath) -> None:
        line = path.describe()
        if path.name == "cudnn" or (path.reason or "").startswith("turned off"):
            LOG.info(line)
        else:
            warnings.warn(line, RuntimeWarning, stacklevel=4)


_PROBE = _Probe()


def gpu_path() -> GpuPath:
    """The path of this process (probed and announced on the first call)."""
    return _PROBE.path()


def cudnn_enabled() -> bool:
    """Whether cuDNN kernels may be chosen (cuDNN loads and MINIGRAPH_CUDNN is not 0)."""
    return gpu_path().name == "cudnn"


def fused_enabled() -> bool:
    """Whether the fused CuPy kernels may be chosen (MINIGRAPH_FUSED is not 0)."""
    return gpu_path().name != "generic"


def reset(find: Optional[Callable[[], "tuple[Optional[int], Optional[str]]"]] = None) -> None:
    """Forget the decision (tests; after changing the switches): the next call probes again,
    with `find` instead of `probe_cudnn` when given."""
    global _PROBE
    _PROBE = _Probe(find or probe_cudnn)


__all__ = ["GpuPath", "gpu_path", "cudnn_enabled", "fused_enabled", "probe_cudnn", "reset", "LOG"]
