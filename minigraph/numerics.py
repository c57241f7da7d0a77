"""Check-numerics: find the first node whose value holds NaN or Inf.

    sess = mg.Session(g, check_numerics=True)      # or MINIGRAPH_CHECK_NUMERICS=1
    sess.run(train_op, feed)                       # mg.NumericsError naming the node

Every value a run produces (fed values included) is tested after its step; the first
non-finite one raises `NumericsError` with the node, its op, and for each of its inputs the
shape, the number of NaN and Inf entries and the finite range. A session without the check
runs no test at all.
"""
from __future__ import annotations

from typing import Optional

from . import env
from .errors import NumericsError
from .spec import fmt


def enabled(flag: Optional[bool]) -> bool:
    """The session's setting: `flag`, else the environment variable MINIGRAPH_CHECK_NUMERICS."""
    if flag is not None:
        return bool(flag)
    return env.switch("MINIGRAPH_CHECK_NUMERICS", default=False)


def describe(xp, value) -> str:
    """'shape (4, 3), 1 NaN, 0 Inf, finite range [-2.1, 7]' for a float array."""
    nan = int(xp.isnan(value).sum())
    inf = int(xp.isinf(value).sum())
    finite = value[xp.isfinite(value)]
    span = (f"finite range [{float(finite.min()):.4g}, {float(finite.max()):.4g}]" if finite.size
            else "no finite entry")
    return f"shape {fmt(tuple(value.shape))}, {nan} NaN, {inf} Inf, {span}"


def checker(xp):
    """check(plan, step, value, inputs) for `Plan.execute`: raises NumericsError at the first
    non-finite value."""
    def check(plan, step, value, inputs):
        if getattr(value, "dtype", None) is None or value.dtype.kind not in "fc":
            return
        if bool(xp.isfinite(value).all()):
            return
        node = step.node
        if step.feed is not None:
            user = plan.feed_keys[step.feed]
            raise NumericsError(f"the value fed for placeholder {user.name!r} holds NaN or Inf: "
                                f"{describe(xp, value)}")
        lines = [f"{node.kind} {node.name!r} produced NaN or Inf ({describe(xp, value)}); its inputs:"]
        for x, arg in zip(node.inputs, inputs):
            text = describe(xp, arg) if arg.dtype.kind in "fc" else f"shape {fmt(tuple(arg.shape))} {arg.dtype}"
            lines.append(f"  {x.name!r} ({x.kind}): {text}")
        raise NumericsError("\n".join(lines))
    return check


__all__ = ["enabled", "checker", "describe"]
