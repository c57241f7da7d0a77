"""Suite-wide reporting: skipped tests are summarised as one line per reason.

pytest's own `-rs` prints one line per skipped test location (the CuPy cases alone give
about a hundred when no GPU is present); this prints each distinct reason once, with its count.
"""
import collections
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "support"))  # shared builders (importlib mode)


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


# ---------------------------------------------------------------------------------
# what a plain `pip install minigraph` (no extras) lacks

import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

EXTRA_MODULES = ("sklearn", "scipy", "matplotlib", "PIL", "pdoc", "cupy", "torch")

_BLOCKER = """
import sys
class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, _NotInstalled())
"""


@pytest.fixture
def without_modules(monkeypatch):
    """`without_modules("matplotlib", ...)`: in this process, importing those packages (or
    anything below them) raises ImportError until the test ends, as if not installed."""
    def block(*names):
        for name in list(sys.modules):
            if name.split(".")[0] in names:
                monkeypatch.setitem(sys.modules, name, None)
        for name in names:
            monkeypatch.setitem(sys.modules, name, None)
    return block


@pytest.fixture
def plain_install():
    """`plain_install(args, cwd)`: run `minigraph ARGS` in a fresh interpreter in which
    every optional dependency (EXTRA_MODULES) fails to import, as after `pip install minigraph`."""
    def run(args, cwd, env=None):
        code = _BLOCKER.format(blocked=EXTRA_MODULES) + "from minigraph.cli import main\nsys.exit(main(sys.argv[1:]))\n"
        return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                              env=env, timeout=300)
    return run
