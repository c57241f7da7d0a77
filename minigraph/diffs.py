"""`minigraph diff A B`: one diagram of two networks with what was added, removed or changed.

    minigraph diff old.onnx new.onnx [-o diff.svg] [--collapse]
    minigraph diff googlenet model.onnx

A and B are built-in networks or ONNX files (see `minigraph.targets`); nodes are matched by
name (see `mg.viz.diff`). The list of differences is printed, the diagram written.
"""
from __future__ import annotations

import os

import minigraph as mg

from .targets import NETWORKS, is_model_file, resolve, spec_argument


def _stem(spec: str) -> str:
    return os.path.splitext(os.path.basename(spec))[0] if is_model_file(spec) else spec


def _diff(args) -> int:
    old, new = resolve(args.old), resolve(args.new)
    d = mg.viz.diff(list(old.outputs.values()), list(new.outputs.values()))
    path = mg.viz.render(d.graph, args.output or f"diff_{_stem(args.old)}_{_stem(args.new)}.svg", decorate=d,
                         collapse=1 if args.collapse else None,
                         title=f"{_stem(args.old)} → {_stem(args.new)}: {len(d.added)} added, "
                               f"{len(d.removed)} removed, {len(d.changed)} changed")
    print(d)
    print(path)
    return 0


def add_command(subparsers) -> None:
    """Register `minigraph diff` on the CLI's subparsers."""
    p = subparsers.add_parser("diff", help="draw two versions of a network in one diagram, differences marked",
                              description="Compare two networks node by node (matched by name) and draw the "
                                          "union: added boxes green, removed red and dashed, changed orange "
                                          "with the changed attributes, shapes and inputs.")
    for name in ("old", "new"):
        p.add_argument(name, type=spec_argument, metavar=name.upper(), help=f"{', '.join(NETWORKS)} or a .onnx file")
    p.add_argument("-o", "--output", help="output file (default: diff_<old>_<new>.svg)")
    p.add_argument("--collapse", action="store_true", help="one box per top-level scope")
    p.set_defaults(func=_diff)


__all__ = ["add_command"]
