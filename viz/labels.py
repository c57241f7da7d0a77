"""What a box says: op labels with their variables folded in, and labels of collapsed scopes.

    conv 3×3/1, 128        a Conv2D with a (128, C, 3, 3) filter and stride 1
    conv 1×1, 64           a Conv1x1 with 64 filters
    max pool 3×3/2         a MaxPool, size 3, stride 2
    linear, 1000           a matmul by a (D, 1000) weight variable

A collapsed Inception module shows its four branches and six channel numbers as columns
(#1×1 | #3×3 reduce → #3×3 | #5×5 reduce → #5×5 | pool → pool proj) and its output shape;
each column is headed by what the branch does after its reduction ('3×3', '3×3 → 3×3' for
a double 3×3, '3×3 max pool → 1×1' or '3×3 avg pool → 1×1').
"""
from __future__ import annotations

from typing import List, Optional, Sequence

from minigraph.graph import Node
from minigraph.op import LEAF_OPS
from minigraph.scopes import (CONV_CATEGORIES, is_helper, is_param, is_structural, output_node, passes_along,
                              principal)
from minigraph.text import TIMES, dims, pretty


HEAD_POINTS = 10  # branch headings of a collapsed module: 13 px in an SVG at 100% zoom


def op_label(node: Node) -> str:
    """The text of one op's box, its variables folded in (the op's own `label`)."""
    return node.op.label(node)


def work_nodes(group: Sequence[Node]) -> List[Node]:
    """The nodes of a group worth naming: no parameters, switches, activations or bias adds."""
    work = [n for n in group
            if not isinstance(n.op, LEAF_OPS) and not is_structural(n) and not is_helper(n)
            and not (passes_along(n) and principal(n, group) is not n)]
    return [n for n in work if n.op.role != "reshape"] or work


def branch_steps(start: Node, group: Sequence[Node]) -> List[Node]:
    """The ops of one Inception branch, first to last, walking back from the concat's input."""
    inside = {n.index for n in group}
    steps: List[Node] = []
    node = start
    while node.index in inside:
        node = principal(node, group)
        steps.append(node)
        data = [x for x in node.inputs if not is_param(x) and not is_structural(x)]
        if len(data) != 1:
            break
        node = data[0]
    return steps[::-1]


def _branch_head(steps: Sequence[Node]) -> str:
    """A branch's column heading: its pooling (by kind: '3×3 max pool', '3×3 avg pool') and its
    convolutions after the 1×1 reduction, in order ('3×3', '3×3 → 3×3' for a double 3×3,
    '3×3 max pool → 1×1')."""
    convs = [s for s in steps if s.op.category in CONV_CATEGORIES]
    if len(convs) > 1 and convs[0].op.category == "conv1x1":
        convs = convs[1:]  # the reduction is counted in the channel row, not named
    shown = {s.index for s in convs} | {s.index for s in steps if s.op.category == "pool"}
    parts = [s.op.short_label(s) for s in steps if s.index in shown]
    if not parts and steps:
        parts = [steps[-1].op.short_label(steps[-1])]
    return " → ".join(parts)


def inception_label(title: str, concat: Node, group: Sequence[Node]) -> str:
    """HTML label of a collapsed Inception module: one column per branch, in concat order,
    headed by the branch's kernel and holding its channel numbers (reduce → conv)."""
    heads, counts = [], []
    for x in concat.inputs:
        steps = branch_steps(x, group)
        heads.append(_branch_head(steps))
        counts.append(" → ".join(str(s.shape[1]) for s in steps if s.op.category in CONV_CATEGORIES) or "–")
    head_row = "".join(f'<TD><FONT POINT-SIZE="{HEAD_POINTS}" COLOR="#45818e">{h}</FONT></TD>' for h in heads)
    count_row = "".join(f"<TD>{c}</TD>" for c in counts)
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2" COLUMNS="*" COLOR="#9fc5cc">'
            f'<TR><TD COLSPAN="{len(heads)}"><B>{title}</B>  '
            f'<FONT POINT-SIZE="{HEAD_POINTS}" COLOR="#45818e">{dims(concat.shape)}</FONT></TD></TR>'
            f"<TR>{head_row}</TR><TR>{count_row}</TR></TABLE>>")


def stack_label(title: str, group: Sequence[Node]) -> str:
    """HTML label of a collapsed scope of several ops: its name, then its ops in order, one a
    line (two a line, joined by arrows, when there are more than four)."""
    ops = [op_label(n) for n in work_nodes(group)]
    per_line = 2 if len(ops) > 4 else 1
    lines = [" → ".join(ops[i:i + per_line]) for i in range(0, len(ops), per_line)]
    rows = "".join(f"<TR><TD>{line}</TD></TR>" for line in lines)
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
            f"<TR><TD><B>{title}</B></TD></TR>{rows}</TABLE>>")


def group_label(key: str, kind: str, group: Sequence[Node], title: Optional[str] = None) -> str:
    """The label of a collapsed scope: the Inception table, a stack of ops, or the single op.
    `title` replaces the scope's name as the heading."""
    title = title or pretty(key)
    if kind == "inception":
        return inception_label(title, principal(output_node(group), group), group)
    work = work_nodes(group)
    if len(work) == 1:
        return op_label(work[0])
    return stack_label(title, group)


__all__ = ["dims", "pretty", "op_label", "work_nodes", "branch_steps", "inception_label",
           "stack_label", "group_label", "TIMES"]
