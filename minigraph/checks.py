"""Checkers of the arguments users pass to minigraph's API.

Each takes the value and `what` (how the error names the argument, e.g. "sum: axis") and
returns the value in its normal form, or raises `ArgumentError` (a TypeError and a
ValueError) naming `what` and the bad value. Nothing is reinterpreted: a bool is not an
int, a float is not an int even when whole, a string is not a number or a list of axes.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from .errors import ArgumentError


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def is_int(value) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value) -> bool:
    """A Python or NumPy integer or float, not a bool (nor a string, nor an array)."""
    return is_int(value) or isinstance(value, (float, np.floating))


def as_int(value, what: str, minimum: Optional[int] = None) -> int:
    """`value` as a Python int: it must be a Python or NumPy integer (not a bool, a float or a
    string) and, when given, >= `minimum`."""
    if not is_int(value):
        raise ArgumentError(f"{what} must be an int, got {_shown(value)}")
    if minimum is not None and value < minimum:
        raise ArgumentError(f"{what} must be >= {minimum}, got {_shown(value)}")
    return int(value)


def as_float(value, what: str, minimum: Optional[float] = None, positive: bool = False) -> float:
    """`value` as a finite Python float: it must be a Python or NumPy int or float (not a bool
    or a string), > 0 when `positive`, >= `minimum` when given."""
    if not is_real(value):
        raise ArgumentError(f"{what} must be a number, got {_shown(value)}")
    out = float(value)
    if not math.isfinite(out):
        raise ArgumentError(f"{what} must be a finite number, got {_shown(value)}")
    if positive and not out > 0:
        raise ArgumentError(f"{what} must be a positive number, got {_shown(value)}")
    if minimum is not None and out < minimum:
        raise ArgumentError(f"{what} must be >= {minimum}, got {_shown(value)}")
    return out


def as_bool(value, what: str) -> bool:
    """`value` as a Python bool: it must be a bool (Python or NumPy); 0, 1 and "False" are
    refused rather than read as truth values."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{what} must be True or False, got {_shown(value)}")
    return bool(value)


def as_str(value, what: str) -> str:
    """`value`, which must be a string."""
    if not isinstance(value, str):
        raise ArgumentError(f"{what} must be a string, got {_shown(value)}")
    return value


def as_axis(value, what: str) -> int:
    """One axis: an int (negative counts from the end; the range is checked against a shape
    later)."""
    return as_int(value, what)


def as_axes(value, what: str) -> Optional[Tuple[int, ...]]:
    """None (all axes), an int, or a sequence of ints (a list or tuple; not a string) -> None or
    a tuple of ints, unchecked against any shape."""
    if value is None:
        return None
    if is_int(value):
        return (int(value),)
    if not isinstance(value, (tuple, list, np.ndarray)) or (isinstance(value, np.ndarray) and value.ndim != 1):
        raise ArgumentError(f"{what} must be None, an int or a sequence of ints, got {_shown(value)}")
    for a in value:
        if not is_int(a):
            raise ArgumentError(f"{what} must be None, an int or a sequence of ints, got {_shown(value)}")
    return tuple(int(a) for a in value)


__all__ = ["is_int", "is_real", "as_int", "as_float", "as_bool", "as_str", "as_axis", "as_axes"]
