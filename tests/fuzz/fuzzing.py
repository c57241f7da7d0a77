"""Shared pieces of the fuzz suite: the budget, the oracle's bookkeeping and the table."""
import os
from collections import defaultdict

from hypothesis import HealthCheck, settings

import minigraph as mg

EXAMPLES = int(os.environ.get("MINIGRAPH_FUZZ_EXAMPLES") or 0)
COUNTS = defaultdict(lambda: defaultdict(int))  # area -> outcome -> cases


def budget(default: int):
    """Hypothesis settings: `default` derandomized cases per test, or MINIGRAPH_FUZZ_EXAMPLES random ones."""
    return settings(max_examples=EXAMPLES or default, derandomize=not EXAMPLES, deadline=None,
                    database=None, print_blob=bool(EXAMPLES),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


def record(area: str, outcome: str) -> None:
    COUNTS[area][outcome] += 1


def expect_minigraph_error(area: str, exc: BaseException, *names: str) -> None:
    """The oracle for an exception: a minigraph error whose message names one of `names`
    (the node, the op, the placeholder or the file at fault); anything else is an escape."""
    if not isinstance(exc, mg.MinigraphError):
        record(area, "escape")
        raise AssertionError(f"escape: {type(exc).__name__}: {exc}") from exc
    text = str(exc)
    if names and not any(n in text for n in names):
        record(area, "escape")
        raise AssertionError(f"{type(exc).__name__} names none of {names}: {text}") from exc
    record(area, type(exc).__name__)


def table(totals) -> list:
    """The report's lines: one per area, its cases and how they ended."""
    lines = [f"{'area':<22}{'cases':>8}{'correct':>9}{'escapes':>9}  minigraph errors"]
    for area in sorted(totals):
        outcomes = totals[area]
        cases = sum(outcomes.values())
        errors = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()) if k not in ("result", "escape"))
        lines.append(f"{area:<22}{cases:>8}{outcomes.get('result', 0):>9}{outcomes.get('escape', 0):>9}  {errors}")
    return lines
