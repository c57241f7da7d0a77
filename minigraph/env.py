"""minigraph's environment variables (MINIGRAPH_*), read one way: on/off switches and numbers.

    switch("MINIGRAPH_OPTIMIZE", default=True)    # on unless 0/false/no/off
    number("MINIGRAPH_THREADS", int, lambda n: n >= 1, "a positive int")
"""
from __future__ import annotations

import os
from typing import Callable, Optional, TypeVar

T = TypeVar("T")

_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


def switch(name: str, default: bool) -> bool:
    """An on/off switch. Unset or empty: `default`. A switch that is on by default is turned
    off only by 0/false/no/off; one that is off by default is turned on only by 1/true/yes/on
    (any case, surrounding spaces ignored)."""
    text = os.environ.get(name, "").strip().lower()
    if not text:
        return default
    return text not in _OFF if default else text in _ON


def number(name: str, convert: Callable[[str], T], valid: Callable[[T], bool], need: str,
           default: Optional[T] = None, error: type = ValueError) -> Optional[T]:
    """`convert(text)` of the variable, or `default` when it is unset or empty; `error`
    ("NAME must be <need>, got '<text>'") when it does not convert or is not `valid`."""
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = convert(text)
    except ValueError:
        raise error(f"{name} must be {need}, got {text!r}") from None
    if not valid(value):
        raise error(f"{name} must be {need}, got {text!r}")
    return value


__all__ = ["switch", "number"]
