"""Suite-wide reporting: skipped tests are summarised as one line per reason.

pytest's own `-rs` prints one line per skipped test location (the CuPy cases alone give
about a hundred when no GPU is present); this prints each distinct reason once, with its count.
"""
import collections
import os


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    groups = collections.defaultdict(list)
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            where, line, reason = longrepr
            where = os.path.relpath(where, config.rootpath) if os.path.isabs(where) else where
            groups[reason.removeprefix("Skipped: ")].append(f"{where}:{line}")
    if not groups:
        return
    terminalreporter.write_sep("=", "skipped, by reason")
    for reason, places in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        files = sorted({p.rsplit(":", 1)[0] for p in places})
        where = places[0] if len(places) == 1 else f"in {len(files)} file{'s' * (len(files) > 1)}"
        terminalreporter.write_line(f"SKIPPED {len(places)} ({where}): {reason}")

