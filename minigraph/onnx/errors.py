"""The errors of ONNX export and import."""
from __future__ import annotations

from typing import Dict, List

from minigraph.errors import MinigraphError


class OnnxError(MinigraphError):
    """Base class of the errors of `mg.onnx`."""


class OnnxUnavailableError(OnnxError, ImportError):
    """The `onnx` package (or `onnxruntime`, where asked for) is not installed."""


class OnnxFileError(OnnxError, ValueError):
    """A file that is missing, not an ONNX model, or a model that breaks the format's rules
    (a tensor read before it is written, an input without a shape, ...)."""


class OnnxExportError(OnnxError, ValueError):
    """An export asked for something it cannot write: an opset outside the supported range, a
    batch size below 1."""


class UnsupportedOpError(OnnxError, ValueError):
    """Ops that have no counterpart on the other side, all of them in one error.

    `problems` maps each unsupported op (an ONNX op type on import, a minigraph kind on
    export, with the reason when the type itself is supported but this use of it is not) to
    the names of the nodes that use it. Raised before anything is built or written.
    """

    def __init__(self, what: str, problems: Dict[str, List[str]], source: str = ""):
        self.problems = {k: list(v) for k, v in problems.items()}
        count = sum(len(v) for v in self.problems.values())
        lines = []
        for op, names in sorted(self.problems.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            shown = ", ".join(repr(n) for n in names[:6]) + (f", ... ({len(names) - 6} more)" if len(names) > 6 else "")
            lines.append(f"  {op} x{len(names)}: {shown}")
        where = f" in {source}" if source else ""
        super().__init__(f"{what}{where}: {count} node{'s' * (count != 1)} of {len(self.problems)} "
                         f"unsupported op type{'s' * (len(self.problems) != 1)}:\n" + "\n".join(lines))


__all__ = ["OnnxError", "OnnxUnavailableError", "OnnxFileError", "OnnxExportError", "UnsupportedOpError"]
