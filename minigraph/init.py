"""Initial values for variables, drawn reproducibly from a seeded NumPy generator.

Every initializer takes a shape and returns a fresh array (float32 unless `dtype` says
otherwise). Shapes follow minigraph's layouts:

- dense weights are `(in, out)`: fan_in = in, fan_out = out;
- conv filters are `(F, C, KH, KW)`: fan_in = C*KH*KW, fan_out = F*KH*KW;
- anything else of rank >= 2 is treated like a conv filter (dims after the first two are
  the receptive field); rank 0 and 1 (biases) have fan_in = fan_out = size.

Random initializers take `rng`: None draws from the module's default generator, an int
seeds a fresh `numpy.random.Generator`, and a Generator is used as is. The default
generator starts from seed 0, so a program that builds the same graph twice in two runs
gets the same weights; `mg.init.seed(n)` restarts it from seed `n`:

    mg.init.seed(42)
    w = mg.init.he((64, 3, 7, 7))          # N(0, 2/fan_in), fan_in = 3*7*7
    v = mg.init.glorot((1024, 10), rng=7)   # U(-a, a), a = sqrt(6/(fan_in+fan_out))
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple, Union

import numpy as np

RngLike = Union[None, int, np.random.Generator]

_default = [np.random.default_rng(0)]


def seed(n: int) -> None:
    """Restart the default generator from seed `n` (every later draw is reproducible)."""
    _default[0] = np.random.default_rng(n)


def default_rng() -> np.random.Generator:
    """The module's default generator (the one used when `rng` is None)."""
    return _default[0]


def generator(rng: RngLike = None) -> np.random.Generator:
    """The Generator `rng` stands for: the default one for None, a fresh one seeded by an int,
    or the Generator itself. Builders of several layers call this once, so that an int seed
    gives each layer different values drawn from one stream."""
    return _rng(rng)


def _rng(rng: RngLike) -> np.random.Generator:
    if rng is None:
        return _default[0]
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")


def _shape(shape) -> Tuple[int, ...]:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if any(not isinstance(d, (int, np.integer)) or d < 0 for d in shape):
        raise ValueError(f"an initializer needs a fully known shape of non-negative ints, got {shape!r}")
    return tuple(int(d) for d in shape)


def fans(shape: Sequence[int]) -> Tuple[int, int]:
    """(fan_in, fan_out) of a weight of this shape (see the module docstring for layouts)."""
    shape = _shape(shape)
    if len(shape) < 2:
        size = int(np.prod(shape, dtype=np.int64))
        return size, size
    if len(shape) == 2:
        return shape[0], shape[1]
    field = int(np.prod(shape[2:], dtype=np.int64))
    return shape[1] * field, shape[0] * field


def zeros(shape, dtype="float32") -> np.ndarray:
    """All zeros (the usual bias initializer)."""
    return np.zeros(_shape(shape), dtype=dtype)


def constant(shape, value: float, dtype="float32") -> np.ndarray:
    """Every element equal to `value`."""
    return np.full(_shape(shape), value, dtype=dtype)


def normal(shape, std: float = 0.01, mean: float = 0.0, rng: RngLike = None, dtype="float32") -> np.ndarray:
    """Independent draws from N(mean, std**2)."""
    return _rng(rng).normal(mean, std, size=_shape(shape)).astype(dtype)


def uniform(shape, low: float = -0.05, high: float = 0.05, rng: RngLike = None, dtype="float32") -> np.ndarray:
    """Independent draws from U(low, high)."""
    return _rng(rng).uniform(low, high, size=_shape(shape)).astype(dtype)


def glorot(shape, rng: RngLike = None, dtype="float32", distribution: str = "uniform") -> np.ndarray:
    """Glorot/Xavier initialisation: variance 2 / (fan_in + fan_out).

    "uniform": U(-a, a) with a = sqrt(6 / (fan_in + fan_out)); "normal": N(0, 2 / (fan_in + fan_out)).
    """
    fan_in, fan_out = fans(shape)
    return _scaled(shape, 2.0 / max(1, fan_in + fan_out), rng, dtype, distribution)


def he(shape, rng: RngLike = None, dtype="float32", distribution: str = "normal") -> np.ndarray:
    """He/Kaiming initialisation for ReLU layers: variance 2 / fan_in.

    "normal": N(0, 2 / fan_in); "uniform": U(-a, a) with a = sqrt(6 / fan_in).
    """
    fan_in, _ = fans(shape)
    return _scaled(shape, 2.0 / max(1, fan_in), rng, dtype, distribution)


def _scaled(shape, variance: float, rng: RngLike, dtype, distribution: str) -> np.ndarray:
    if distribution == "normal":
        return normal(shape, std=math.sqrt(variance), rng=rng, dtype=dtype)
    if distribution == "uniform":
        limit = math.sqrt(3.0 * variance)
        return uniform(shape, -limit, limit, rng=rng, dtype=dtype)
    raise ValueError(f"distribution must be 'normal' or 'uniform', got {distribution!r}")


__all__ = ["seed", "default_rng", "generator", "fans", "zeros", "constant", "normal", "uniform", "glorot", "he"]
