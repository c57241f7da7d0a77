"""Build minigraph's HTML API reference with pdoc, and check the names its docstrings cite.

    python docs/build_api.py [--out build/docs]          (`make docs`)

The front page is the README's introduction and its sections from "## Example" up to
"## Performance" (how minigraph works: graphs, autodiff, sessions, ops, models, training),
followed by the package docstring; every public module, class and function gets its page from its
docstrings. The build fails (exit status 1, one line per problem) when

- a docstring (of any module under minigraph, documented or not) or those README sections
  name something as `mg.x`, `minigraph.x`, `ops.x` or `viz.x` that does not exist, or
- pdoc warns about a docstring (except its known complaint about postponed annotations on
  NamedTuple classes, which says nothing about our text).

The test suite runs this build (tests/test_docs.py), so a broken reference fails `make test`.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re
import shutil
import sys
import warnings
from pathlib import Path
from typing import Iterator, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
FRONT_START, FRONT_END = "## Example", "## Performance"
ALIASES = {"mg": "minigraph", "minigraph": "minigraph", "ops": "minigraph.ops", "viz": "minigraph.viz"}
REFERENCE = re.compile(r"(?<![\w./-])(mg|minigraph|ops|viz)((?:\.[A-Za-z_]\w*)+)")
IGNORED_WARNINGS = ("Error parsing type annotation",)  # pdoc vs. `from __future__ import annotations` on NamedTuples


def front_page(readme: str) -> str:
    """The README's introduction (below its title, above its first section) and its concept
    sections (from FRONT_START up to FRONT_END)."""
    try:
        intro_start = readme.index("\n") + 1
        intro_end = readme.index("\n## ")
        start = readme.index("\n" + FRONT_START + "\n")
        end = readme.index("\n" + FRONT_END, start)
    except ValueError:
        raise SystemExit(f"README.md has no '{FRONT_START}' ... '{FRONT_END}' sections to use as the front page")
    return readme[intro_start:intro_end].strip() + "\n\n" + readme[start:end].strip() + "\n"


# ---------------------------------------------------------------------------------
# references


def resolve(name: str) -> bool:
    """Whether a dotted name (`mg.data.digits`, `ops.conv2d`, `minigraph.scopes`) exists:
    a module, an attribute of one, or an attribute of a class (including one its
    `__init__` assigns or its annotations declare)."""
    head, _, rest = name.partition(".")
    parts = (ALIASES[head] + "." + rest).split(".")
    obj, i = None, len(parts)
    while i > 0:
        try:
            obj = importlib.import_module(".".join(parts[:i]))
            break
        except ImportError:
            i -= 1
    if obj is None:
        return False
    for attr in parts[i:]:
        if hasattr(obj, attr):
            obj = getattr(obj, attr)
        elif inspect.isclass(obj) and _declares(obj, attr):
            return attr == parts[-1]
        else:
            return False
    return True


def _declares(cls, attr: str) -> bool:
    for klass in cls.__mro__:
        if attr in getattr(klass, "__annotations__", {}):
            return True
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if re.search(rf"\bself\.{attr}\b\s*(?::[^=]*)?=(?!=)", source):
            return True
    return False


def references(text: str) -> Iterator[str]:
    for match in REFERENCE.finditer(text):
        yield match.group(1) + match.group(2)


def package_modules() -> List[object]:
    """minigraph and every module below it (ops/ and viz/ included), imported."""
    import minigraph
    found = [minigraph]
    for package in (minigraph, minigraph.ops, minigraph.viz):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith(".__main__"):  # importing it would run the command
                found.append(importlib.import_module(info.name))
    return list({m.__name__: m for m in found}.values())


def docstrings(module) -> Iterator[Tuple[str, str]]:
    """(qualified name, docstring) of the module and of what it defines (classes, their
    methods and properties, functions), not of what it imports."""
    if module.__doc__:
        yield module.__name__, module.__doc__
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != module.__name__ or not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if obj.__doc__:
            yield f"{module.__name__}.{name}", obj.__doc__
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                member = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                if inspect.isfunction(member) and member.__doc__:
                    yield f"{module.__name__}.{name}.{attr}", member.__doc__


def broken_references(modules, extra: Tuple[Tuple[str, str], ...] = ()) -> List[str]:
    """'where: `name` does not exist' for every unresolvable name in the docstrings of
    `modules` and in the (where, text) pairs of `extra`."""
    problems = []
    for where, text in [*extra, *(d for m in modules for d in docstrings(m))]:
        for name in dict.fromkeys(references(text)):
            if not resolve(name):
                problems.append(f"{where}: `{name}` does not exist")
    return problems


# ---------------------------------------------------------------------------------
# the build


def build(out: Path) -> List[str]:
    """Write the reference into `out`; returns the problems found (empty when all is well)."""
    import pdoc
    import pdoc.render

    import minigraph
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    front = front_page(readme)
    problems = broken_references(package_modules(), (("README.md", front),))
    pdoc.render.configure(docformat="markdown", footer_text=f"minigraph {minigraph.__version__}", search=True,
                          show_source=True)
    package_doc = minigraph.__doc__
    minigraph.__doc__ = front + "\n## The package\n\n" + inspect.cleandoc(package_doc)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if out.exists():
                shutil.rmtree(out)
            pdoc.pdoc("minigraph", output_directory=out)
    finally:
        minigraph.__doc__ = package_doc
    problems += [f"pdoc: {w.message}" for w in caught if not str(w.message).startswith(IGNORED_WARNINGS)]
    for image in sorted(set(re.findall(r"\]\((docs/[^)\s]+)\)", front))):  # the README's pictures, same relative paths
        (out / image).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / image, out / image)
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "build" / "docs"), help="output folder (default build/docs)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    problems = build(out)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"API reference: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"API reference: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
