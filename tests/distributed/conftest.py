"""Running scripts on several ranks: `mpirun` fixture (skips when Open MPI or mpi4py is missing).

Every distributed test really starts its ranks with Open MPI's mpirun, as a user would.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
WORKERS = os.path.join(HERE, "workers.py")


def mpirun_missing():
    if shutil.which("mpirun") is None:
        return "Open MPI's mpirun is not installed (make test installs it)"
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'minigraph[mpi]')"
    return None


def mpirun_command(n):
    """mpirun for `n` local ranks: as root it needs --allow-run-as-root; --oversubscribe lets
    a 1-core machine run 2 ranks; --bind-to none leaves placement to the OS (tests run in
    parallel)."""
    cmd = ["mpirun", "-n", str(n), "--oversubscribe", "--bind-to", "none"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    return cmd


class Run:
    def __init__(self, proc, seconds):
        self.returncode, self.stdout, self.stderr, self.seconds = proc.returncode, proc.stdout, proc.stderr, seconds

    @property
    def output(self):
        return self.stdout + self.stderr


@pytest.fixture
def mpirun():
    """mpirun(n, *args, env=None, timeout=120, script=WORKERS) -> Run: `args` run on n ranks
    (the worker script, or a command when script=None)."""
    reason = mpirun_missing()
    if reason:
        pytest.skip(reason)
    tmp_base = tempfile.mkdtemp(prefix="mg-mpi-")  # short: Open MPI puts sockets under it

    def run(n, *args, env=None, timeout=120, script=WORKERS):
        # a session folder of its own: concurrent mpiruns race to create the shared one
        full_env = {**os.environ, "MINIGRAPH_DIST_TIMEOUT": "60", "PYTHONUNBUFFERED": "1",
                    "TMPDIR": tmp_base, **(env or {})}
        head = [sys.executable, script] if script else []
        start = time.perf_counter()
        proc = subprocess.run(mpirun_command(n) + head + [str(a) for a in args], capture_output=True,
                              text=True, env=full_env, timeout=timeout)
        return Run(proc, time.perf_counter() - start)
    yield run
    shutil.rmtree(tmp_base, ignore_errors=True)
