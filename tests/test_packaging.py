"""The install layout (ops/ and viz/ mapped into minigraph.*, the digits data inside) and the command's basics."""
import pathlib
import subprocess
import sys
import zipfile

import minigraph

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_subpackages_import_from_the_installed_namespace():
    import minigraph.ops
    import minigraph.viz
    assert pathlib.Path(minigraph.ops.__file__).parent.name == "ops"
    assert pathlib.Path(minigraph.viz.__file__).parent.name == "viz"
    from minigraph import ops
    assert ops is minigraph.ops and ops.matmul.__module__ == "minigraph.ops.linalg"


def test_regular_wheel_maps_ops_and_viz_into_minigraph(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("minigraph-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "minigraph/ops/__init__.py" in names and "minigraph/viz/__init__.py" in names
    assert "minigraph/ops/elementwise.py" in names
    # the digits data ships inside the package, with its source and licence
    assert {"minigraph/data/__init__.py", "minigraph/data/digits.csv.gz", "minigraph/data/DIGITS_DATA.md"} <= set(names)
    assert not any(n.startswith(("ops/", "viz/", "tests/")) for n in names)
    # every subpackage of the source tree is in the wheel (the package list is written by hand)
    for init in (ROOT / "minigraph").rglob("__init__.py"):
        assert str(init.relative_to(ROOT)) in names, f"{init.parent.name} is missing from the wheel"


def test_version_and_help():
    out = subprocess.run([sys.executable, "-m", "minigraph", "--version"], capture_output=True, text=True,
                         check=True, cwd="/")
    assert out.stdout.strip() == f"minigraph {minigraph.__version__}"
    help_text = subprocess.run([sys.executable, "-m", "minigraph", "--help"], capture_output=True, text=True,
                               check=True, cwd="/").stdout
    assert "usage: minigraph" in help_text
    script = pathlib.Path(sys.executable).parent / "minigraph"
    assert subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True).stdout.startswith("minigraph ")


def test_readme_extras_table_lists_every_extra_of_pyproject():
    """The README's table of extras is where a pip user learns what to install; an extra
    missing from it (mpi was) is a feature nobody finds."""
    import re
    section = (ROOT / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1].split("\n[")[0]
    extras = set(re.findall(r"^([a-z]+) = \[", section, re.M))  # (tomllib is Python 3.11+)
    assert {"plot", "onnx", "mpi"} <= extras
    rows = set(re.findall(r"^\| `([a-z]+)` \|", (ROOT / "README.md").read_text(), re.M))
    assert extras <= rows, f"extras missing from the README's table: {sorted(extras - rows)}"
