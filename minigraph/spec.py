"""Static tensor specs: a shape whose dimensions may be unknown (None) and a dtype."""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np

Shape = Tuple[Optional[int], ...]


class Spec(NamedTuple):
    """What is known about a tensor at build time."""

    shape: Shape
    dtype: np.dtype


def as_shape(shape: Sequence[Optional[int]] | int | None) -> Shape:
    """Normalise a user-given shape to a tuple of ints and Nones, checking it."""
    if shape is None:
        raise TypeError("a shape is required (use None for unknown dimensions, e.g. (None, 3))")
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    out = []
    for d in shape:
        if d is None:
            out.append(None)
        elif isinstance(d, (int, np.integer)) and d >= 0:
            out.append(int(d))
        else:
            raise ValueError(f"invalid dimension {d!r} in shape {tuple(shape)!r}")
    return tuple(out)


def as_dtype(dtype) -> np.dtype:
    """A NumPy dtype from a name or type ('float32', np.int64, ...)."""
    try:
        return np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"unknown dtype {dtype!r}") from exc


def fmt(shape: Shape) -> str:
    """A shape as users read it: '(None, 64)'."""
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def dims_compatible(a: Optional[int], b: Optional[int]) -> bool:
    """Two dimensions can be equal at run time."""
    return a is None or b is None or a == b


def shapes_compatible(a: Shape, b: Shape) -> bool:
    """Two static shapes can describe the same array."""
    return len(a) == len(b) and all(dims_compatible(x, y) for x, y in zip(a, b))


def fully_known(shape: Shape) -> bool:
    return all(d is not None for d in shape)


def num_elements(shape: Shape) -> Optional[int]:
    """The element count, or None when a dimension is unknown."""
    if not fully_known(shape):
        return None
    return int(np.prod(shape, dtype=np.int64))
