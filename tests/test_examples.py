"""`python examples/<script>.py` from a shell where minigraph is not importable."""
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
SCRIPT = str(ROOT / "examples" / "googlenet_summary.py")


def run_without_site_packages(env_extra=None):
    """The script under this interpreter with -S: no site-packages, so no minigraph (nor numpy)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-S", SCRIPT], capture_output=True, text=True, env=env, cwd="/",
                          timeout=120)


@pytest.mark.skipif(not VENV_PYTHON.exists(), reason="no .venv in this checkout (make install creates it)")
def test_reruns_itself_with_the_project_venv():
    done = run_without_site_packages()
    assert done.returncode == 0, done.stderr
    assert "12,443,648 MACs" in done.stdout


def test_without_an_installed_minigraph_it_says_how_to_get_one():
    done = run_without_site_packages({"MINIGRAPH_EXAMPLE_REEXEC": "1"})  # as if the re-run found nothing either
    assert done.returncode == 1
    assert "minigraph is not installed for" in done.stderr and "make install" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_example_imports_the_venv_helper_first():
    """An example without it fails with ModuleNotFoundError under a plain `python`, against the
    README's promise (two did)."""
    for script in sorted((ROOT / "examples").glob("*.py")):
        if script.name.startswith("_"):
            continue
        imports = [line for line in script.read_text().splitlines() if line.startswith(("import ", "from "))]
        assert imports and imports[0].startswith("import _venv"), f"{script.name}: first import is {imports[:1]}"
