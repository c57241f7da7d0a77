"""The fuzz suite's budget and its report.

`make test` runs a bounded, derandomized number of cases per test (fast, reproducible);
`make fuzz` sets MINIGRAPH_FUZZ_EXAMPLES (cases per test, random each run) and
MINIGRAPH_FUZZ_STATS (a folder): every process then writes how many cases each area tried
and how they ended, and the summary at the end prints the table (cases per area, correct
results, minigraph errors by class, tests that found an escape).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # for `import fuzzing` (pytest's importlib mode)

import fuzzing  # noqa: E402


def pytest_sessionfinish(session):
    folder = os.environ.get("MINIGRAPH_FUZZ_STATS")
    if folder and fuzzing.COUNTS:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"counts-{os.getpid()}.json"), "w") as f:
            json.dump(fuzzing.COUNTS, f)


def pytest_terminal_summary(terminalreporter, config):
    folder = os.environ.get("MINIGRAPH_FUZZ_STATS")
    if not folder or hasattr(config, "workerinput") or not os.path.isdir(folder):
        return
    totals = {}
    for name in sorted(os.listdir(folder)):
        if name.startswith("counts-") and name.endswith(".json"):
            with open(os.path.join(folder, name)) as f:
                for area, outcomes in json.load(f).items():
                    for outcome, n in outcomes.items():
                        totals.setdefault(area, {}).setdefault(outcome, 0)
                        totals[area][outcome] += n
    failed = [os.path.basename(r.nodeid.split("::")[0]) for r in terminalreporter.stats.get("failed", [])]
    terminalreporter.write_sep("=", "fuzz cases per area")
    for line in fuzzing.table(totals, failed):
        terminalreporter.write_line(line)
