"""Lets `python examples/<script>.py` work from any shell on a checkout.

Imported first by every example: when `minigraph` cannot be imported by the Python that
runs the script, the script is started again with the project's own `.venv/bin/python`
(which `make install`, `make demo` and `make test` create); without that, it says how to
install minigraph and exits.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PYTHON = os.path.join(ROOT, ".venv", "bin", "python")
_GUARD = "MINIGRAPH_EXAMPLE_REEXEC"  # set in the re-run, so it can never loop


def ensure_minigraph() -> None:
    try:
        import minigraph  # noqa: F401
        return
    except ImportError:
        pass
    if os.path.exists(VENV_PYTHON) and not os.environ.get(_GUARD):
        os.environ[_GUARD] = "1"
        os.execv(VENV_PYTHON, [VENV_PYTHON, *sys.argv])
    sys.exit(f"minigraph is not installed for {sys.executable}.\n"
             f"Run `make install` in {ROOT} (it creates .venv), then `source .venv/bin/activate` "
             "or use .venv/bin/python; or `pip install .` into your own environment.")


ensure_minigraph()
