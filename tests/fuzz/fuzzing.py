"""Shared pieces of the fuzz suite: the budget, the oracle's bookkeeping and the table."""
import os
from collections import defaultdict
from datetime import timedelta

from hypothesis import HealthCheck, settings

import minigraph as mg

EXAMPLES = int(os.environ.get("MINIGRAPH_FUZZ_EXAMPLES") or 0)
COUNTS = defaultdict(lambda: defaultdict(int))  # area -> outcome -> cases
AREAS = {"test_feeds.py": "feeds", "test_cnn_op_builders.py": "op builders", "test_op_builders.py": "op builders",
         "test_checkpoint_files.py": "checkpoint files"}  # test file -> the area its AREA names


def budget(default: int):
    """Hypothesis settings: `default` derandomized cases per test, or MINIGRAPH_FUZZ_EXAMPLES random ones."""
    # long runs: a case slower than 10 s is a finding too (and keeps shrinking from running away)
    return settings(max_examples=EXAMPLES or default, derandomize=not EXAMPLES,
                    deadline=timedelta(seconds=10) if EXAMPLES else None,
                    database=None, print_blob=bool(EXAMPLES),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


def record(area: str, outcome: str) -> None:
    COUNTS[area][outcome] += 1


def expect_minigraph_error(area: str, exc: BaseException, *names: str) -> None:
    """The oracle for an exception: a minigraph error whose message names one of `names`
    (the node, the op, the placeholder or the file at fault); anything else is an escape."""
    if not isinstance(exc, mg.MinigraphError):
        raise AssertionError(f"escape: {type(exc).__name__}: {exc}") from exc
    text = str(exc)
    if names and not any(n in text for n in names):
        raise AssertionError(f"{type(exc).__name__} names none of {names}: {text}") from exc
    record(area, type(exc).__name__)


def table(totals, failed_files) -> list:
    """The report's lines: one per area, its cases, how they ended, and its tests that found
    an escape (a failing test: hypothesis stops at the first escape and shrinks it)."""
    lines = [f"{'area':<18}{'cases':>8}{'correct':>9}  {'minigraph errors':<36}{'tests with an escape':>21}"]
    for area in sorted(set(totals) | {AREAS.get(f, f) for f in failed_files}):
        outcomes = totals.get(area, {})
        errors = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()) if k != "result")
        escapes = sum(1 for f in failed_files if AREAS.get(f, f) == area)
        lines.append(f"{area:<18}{sum(outcomes.values()):>8}{outcomes.get('result', 0):>9}  {errors:<36}{escapes:>21}")
    return lines
