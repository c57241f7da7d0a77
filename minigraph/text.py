"""How minigraph writes shapes, windows and names for people (diagrams, summaries, labels).

    dims((None, 64, 28, 28)) -> '64×28×28'      window(3) -> '3×3'      stride((2, 1)) -> '2×1'
    pretty('inception_3a') -> 'inception (3a)'   pretty('branch_3x3') -> 'branch 3×3'
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

TIMES = "×"


def dims(shape: Sequence[Optional[int]]) -> str:
    """A tensor shape as edges show it: C×H×W without the batch ('1000' for (None, 1000))."""
    if len(shape) == 0:
        return "scalar"
    shown = shape[1:] if len(shape) > 1 else shape
    return TIMES.join("?" if d is None else str(d) for d in shown)


def pair(p) -> tuple:
    """An int or a pair as a pair."""
    return (p, p) if isinstance(p, int) else tuple(p)


def window(size) -> str:
    """A window or kernel size: '3×3'."""
    h, w = pair(size)
    return f"{h}{TIMES}{w}"


def stride(value) -> str:
    """A stride or dilation: '2' when both axes agree, else '2×1'."""
    h, w = pair(value)
    return str(h) if h == w else f"{h}{TIMES}{w}"


def pretty(name: str) -> str:
    """A scope or node name for people: 'previous_layer' -> 'previous layer',
    'inception_3a' -> 'inception (3a)' as the paper writes it."""
    last = name.rpartition("/")[2]
    m = re.match(r"^inception_(\w+)$", last)
    text = f"inception ({m.group(1)})" if m else last.replace("_", " ")
    return re.sub(r"(\d)x(\d)", "\\1" + TIMES + "\\2", text)


__all__ = ["TIMES", "dims", "pair", "window", "stride", "pretty"]
