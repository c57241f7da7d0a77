"""Writing a diagram to a file: the format is the file's suffix (svg, png, pdf; dot or gv for
the Graphviz source alone). Images need Graphviz's `dot` program; the source never does."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import graphviz

from minigraph.errors import MinigraphError

from .dot import Target, to_dot

IMAGE_FORMATS = ("svg", "png", "pdf")
SOURCE_FORMATS = ("dot", "gv")

INSTALL_HINT = ("install Graphviz, which provides the `dot` program: `sudo apt-get install graphviz` "
                "(Debian/Ubuntu), `sudo dnf install graphviz` (Fedora), `brew install graphviz` (macOS), "
                "`conda install graphviz`, or see https://graphviz.org/download/ (`make dot` does it here)")


class RenderFormatError(MinigraphError, ValueError):
    """The file name's suffix names no format a diagram can be written in."""


class GraphvizNotFoundError(MinigraphError, RuntimeError):
    """Rendering an image needs Graphviz's `dot` program and it was not found."""


def render(target: Union[Target, graphviz.Digraph], path: Union[str, os.PathLike], dpi: int = 150,
           **options) -> Path:
    """Draw `target` (anything `to_dot` takes, or a ready Digraph) into `path` and return the path.

    The suffix picks the format: .svg, .png, .pdf, or .dot/.gv for the source. `options` go
    to `to_dot` (collapse, show_shapes, show_grads, rankdir, ...); `dpi` sets the resolution
    of a PNG (vector formats are unaffected). Without `dot`, the source
    is written next to `path` as <stem>.gv and `GraphvizNotFoundError` says how to install it.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in IMAGE_FORMATS + SOURCE_FORMATS:
        raise RenderFormatError(f"cannot tell the format from {str(path)!r}: use a suffix among "
                         + ", ".join("." + f for f in IMAGE_FORMATS + SOURCE_FORMATS))
    dot = target if isinstance(target, graphviz.Digraph) else to_dot(target, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in SOURCE_FORMATS:
        path.write_text(dot.source, encoding="utf-8")
        return path
    if fmt == "png":
        dot = dot.copy()
        dot.attr("graph", dpi=str(int(dpi)))
    try:
        data = dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        source = path.with_suffix(".gv")
        source.write_text(dot.source, encoding="utf-8")
        raise GraphvizNotFoundError(f"cannot render {path}: Graphviz's `dot` program was not found. "
                                    f"The diagram's source was written to {source}. To draw images, "
                                    f"{INSTALL_HINT}; then run `dot -T{fmt} {source} -o {path}`.") from None
    path.write_bytes(data)
    return path


__all__ = ["render", "GraphvizNotFoundError", "RenderFormatError", "INSTALL_HINT"]
