"""Static tensor specs: a shape whose dimensions may be unknown (None) and a dtype."""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .checks import is_int
from .errors import ArgumentError

Shape = Tuple[Optional[int], ...]


class Spec(NamedTuple):
    """What is known about a tensor at build time."""

    shape: Shape
    dtype: np.dtype


def as_shape(shape: Sequence[Optional[int]] | int | None) -> Shape:
    """Normalise a user-given shape (an int, or a list or tuple of ints >= 0 and Nones) to a
    tuple of ints and Nones; anything else (a bool or float dimension, a string) is an
    ArgumentError (a TypeError and a ValueError)."""
    if shape is None:
        raise ArgumentError("a shape is required (use None for unknown dimensions, e.g. (None, 3))")
    if is_int(shape):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise ArgumentError(f"a shape must be an int or a tuple of ints and Nones, got {shape!r}")
    out = []
    for d in shape:
        if d is None:
            out.append(None)
        elif is_int(d) and d >= 0:
            out.append(int(d))
        else:
            raise ArgumentError(f"invalid dimension {d!r} in shape {tuple(shape)!r}: "
                                f"dimensions are ints >= 0 or None")
    return tuple(out)


NUMERIC_KINDS = "biufc"  # bool, signed and unsigned ints, floats, complex


def as_dtype(dtype) -> np.dtype:
    """A numeric or bool NumPy dtype from a name or type ('float32', np.int64, ...); an unknown
    dtype or one that holds no numbers (object, str, bytes, dates) is an ArgumentError."""
    try:
        out = np.dtype(dtype)
    except TypeError as exc:
        raise ArgumentError(f"unknown dtype {dtype!r}") from exc
    check_numeric(out, f"dtype {dtype!r}")
    return out


def check_numeric(dtype: np.dtype, what: str) -> None:
    """ArgumentError naming `what` unless `dtype` holds bools or numbers."""
    if np.dtype(dtype).kind not in NUMERIC_KINDS:
        raise ArgumentError(f"{what}: minigraph tensors hold bools or numbers, not {np.dtype(dtype)} values")


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
