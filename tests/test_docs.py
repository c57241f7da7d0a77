"""The API reference (docs/build_api.py, `make docs`) builds, and a broken reference fails it."""
import importlib
import sys
import types
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def build_api():
    pytest.importorskip("pdoc")
    sys.path.insert(0, str(DOCS))
    try:
        yield importlib.import_module("build_api")
    finally:
        sys.path.remove(str(DOCS))


def test_reference_builds_with_the_readme_concepts_as_its_front_page(build_api, tmp_path):
    problems = build_api.build(tmp_path)
    assert problems == []
    front = (tmp_path / "minigraph.html").read_text()
    assert "define-then-run" in front and "Core concepts" in front and "Build-time checks" in front
    assert "Performance (CPU)" not in front and "With pip" not in front  # set-up and speed stay in the README
    assert 'href="minigraph/data.html"' in front or "minigraph/data.html" in front
    assert (tmp_path / "docs" / "inception_module.png").exists()  # the README's pictures come along
    data_page = (tmp_path / "minigraph" / "data.html").read_text()
    assert "image_folder" in data_page and "load_cifar10" in data_page
    import minigraph
    assert "Core concepts" not in minigraph.__doc__  # the package docstring is left as it was


def test_a_broken_reference_is_reported(build_api):
    module = types.ModuleType("minigraph_fake")
    module.__doc__ = "Uses `mg.data.digits()` and `ops.conv2d`, but also `mg.data.no_such_loader`."

    def helper():
        """Returns `minigraph.summary.Summary.rows` and `ops.conv3d(x)`."""
    helper.__module__ = module.__name__
    module.helper = helper
    assert build_api.broken_references([module]) == [
        "minigraph_fake: `mg.data.no_such_loader` does not exist",
        "minigraph_fake.helper: `ops.conv3d` does not exist",
    ]
    assert build_api.broken_references([], (("README.md", "see `mg.nope`"),)) == ["README.md: `mg.nope` does not exist"]
