"""Hooks that change what a diagram's boxes and clusters say and how they look, without
changing how `to_dot` walks the graph: folded repeats (`fold.py`) and diffs (`diff.py`) are
decorators.

    class Marked(Decorator):
        def box(self, box, label, attrs):
            return label, dict(attrs, color="red")
    mg.viz.to_dot(outputs, decorate=Marked())
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

LegendEntry = Tuple[str, str, str]  # (fill colour, border colour, text)


class Decorator:
    """The identity decoration; subclasses override what they change."""

    def title(self, scope: str) -> Optional[str]:
        """The title of the cluster or collapsed box of `scope` ('a/b'), or None for the usual one."""
        return None

    def box(self, box, label: str, attrs: Dict[str, str]) -> Tuple[str, Dict[str, str]]:
        """The label and Graphviz attributes of a box (`viz.dot.Box`: its member nodes, whether it
        is a collapsed scope, its scope path)."""
        return label, attrs

    def legend(self) -> List[LegendEntry]:
        """Extra legend entries."""
        return []


def add_line(label: str, text: str, color: str = "#7f4f00") -> str:
    """`label` with a smaller second line `text` (plain labels and simple HTML labels; a table
    label gets a last row)."""
    note = f'<FONT POINT-SIZE="8" COLOR="{color}">{escape(text)}</FONT>'
    if not label.startswith("<"):
        return f"<{escape(label)}<BR/>{note}>"
    if label.rstrip().endswith("</TABLE>>"):
        return re.sub(r"</TABLE>>\s*$", f"<TR><TD>{note}</TD></TR></TABLE>>", label)
    return label[:-1] + f"<BR/>{note}>"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["Decorator", "LegendEntry", "add_line", "escape"]
