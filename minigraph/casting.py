"""The rule by which minigraph casts a value the user gave to a tensor's dtype: only when every
value survives. It is the rule of feeds (`session.lossless_cast`), applied to variables' new
values (`Session.set_value`) and to the numbers and arrays an op turns into constants
(`x * 1e300` on float32 would otherwise be `x * inf`)."""
from __future__ import annotations

import numpy as np

from .errors import ArgumentError
from .spec import fmt


def checked_cast(xp, value, dtype, what: str, error=ArgumentError, given: str = ""):
    """`value` (an array of namespace `xp`) cast to `dtype` when every value survives: within
    the kind (NumPy's same_kind rule, bool to anything), integers in the target's range, finite
    floats (integers included) still finite. Otherwise `error`, its message starting with
    `what` and naming both dtypes and the first value that would not survive (`given`, e.g.
    "fed ", qualifies "value" there)."""
    src, dst = np.dtype(value.dtype), np.dtype(dtype)
    if src == dst:
        return value
    if not np.can_cast(src, dst, "same_kind"):
        raise error(f"{what} has dtype {dst}; a value of dtype {src} {fmt(tuple(value.shape))} "
                    "cannot be cast to it safely")
    with np.errstate(over="ignore", invalid="ignore"):  # what overflows is found and reported below
        cast = value.astype(dst)
    if dst.kind in "iu" and src.kind in "iu" and value.size:
        info = np.iinfo(dst)
        bad = (value < info.min) | (value > info.max)
        problem = f"outside {dst}'s range [{info.min}, {info.max}]"
    elif dst.kind == "f" and src.kind in "fiu":
        bad = ~xp.isfinite(cast) & (xp.isfinite(value) if src.kind == "f" else True)
        problem = f"finite, but not in {dst} (it would become {{}})"
    else:
        return cast
    bad = xp.asarray(bad)
    if bool(bad.any()):
        first = tuple(int(i) for i in np.argwhere(np.asarray(bad.get() if hasattr(bad, "get") else bad))[0])
        original = (value[first] if first else value).item()
        shown = problem.format((cast[first] if first else cast).item())
        where = f" at index {first}" if first else ""
        raise error(f"{what} has dtype {dst}; the {given}{src} value {original!r}{where} is {shown}: "
                    f"it would not survive the cast")
    return cast


__all__ = ["checked_cast"]
