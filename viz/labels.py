"""What a box says: op labels with their variables folded in, and labels of collapsed scopes.

    conv 3×3/1, 128        a Conv2D with a (128, C, 3, 3) filter and stride 1
    conv 1×1, 64           a Conv1x1 with 64 filters
    max pool 3×3/2         a MaxPool, size 3, stride 2
    linear, 1000           a matmul by a (D, 1000) weight variable

A collapsed Inception module shows its four branches and six channel numbers as columns
(#1×1 | #3×3 reduce → #3×3 | #5×5 reduce → #5×5 | pool → pool proj) and its output shape.
"""
from __future__ import annotations

import re
from typing import List, Optional, Sequence

from minigraph.graph import Node
from minigraph.op import LEAF_OPS
from minigraph.scopes import ABSORBED, PASSTHROUGH, is_param, is_structural, op_kind, output_node, principal

TIMES = "×"


def dims(shape: Sequence[Optional[int]]) -> str:
    """A tensor shape as edges show it: C×H×W without the batch ('1000' for (None, 1000))."""
    if len(shape) == 0:
        return "scalar"
    shown = shape[1:] if len(shape) > 1 else shape
    return TIMES.join("?" if d is None else str(d) for d in shown)


def _pair(p) -> tuple:
    return (p, p) if isinstance(p, int) else tuple(p)


def _window(size) -> str:
    h, w = _pair(size)
    return f"{h}{TIMES}{w}"


def _stride(stride) -> str:
    h, w = _pair(stride)
    return str(h) if h == w else f"{h}{TIMES}{w}"


def pretty(name: str) -> str:
    """A scope or node name for people: 'previous_layer' -> 'previous layer',
    'inception_3a' -> 'inception (3a)' as the paper writes it."""
    last = name.rpartition("/")[2]
    m = re.match(r"^inception_(\w+)$", last)
    text = f"inception ({m.group(1)})" if m else last.replace("_", " ")
    return re.sub(r"(\d)x(\d)", "\\1" + TIMES + "\\2", text)


def op_label(node: Node) -> str:
    """The text of one op's box, its variables folded in (see the module docstring)."""
    kind, op = node.kind, node.op
    if kind == "conv2d":
        f, _, kh, kw = node.inputs[1].shape
        text = f"conv {kh}{TIMES}{kw}/{_stride(op.stride)}, {f}"
        if _pair(op.dilation) != (1, 1):
            text += f", dilation {_stride(op.dilation)}"
        return text
    if kind == "conv1x1":
        return f"conv 1{TIMES}1, {node.inputs[1].shape[0]}"
    if kind in ("max_pool", "avg_pool"):
        return f"{kind.split('_')[0]} pool {_window(op.size)}/{_stride(op.stride)}"
    if kind == "global_avg_pool":
        return "global avg pool"
    if kind == "concat":
        return "filter concat" if op.axis == 1 else f"concat, axis {op.axis}"
    if kind == "local_response_norm":
        return "LRN"
    if op_kind(node) == "dropout":
        mask = next(x for x in node.inputs if x.kind == "dropout_mask")
        return f"dropout {mask.op.rate:.0%}"
    if op_kind(node) == "linear":
        return f"linear, {node.shape[1]}"
    if kind == "relu":
        return "ReLU"
    if kind == "placeholder":
        return pretty(node.name)
    if kind in ("variable", "constant"):
        return f"{pretty(node.name)} {dims((None,) + tuple(node.shape))}"
    return kind.replace("_", " ")


def work_nodes(group: Sequence[Node]) -> List[Node]:
    """The nodes of a group worth naming: no parameters, switches, activations or bias adds."""
    work = [n for n in group
            if not isinstance(n.op, LEAF_OPS) and not is_structural(n) and n.kind not in ABSORBED
            and not (n.kind in PASSTHROUGH and principal(n, group) is not n)]
    shaping = ("flatten", "reshape")
    return [n for n in work if n.kind not in shaping] or work


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


def _step_name(node: Node) -> str:
    if node.kind == "conv1x1":
        return f"1{TIMES}1"
    if node.kind == "conv2d":
        return _window(node.inputs[1].shape[2:])
    if node.kind in ("max_pool", "avg_pool"):
        return f"{_window(node.op.size)} {node.kind.split('_')[0]} pool"
    return node.kind.replace("_", " ")


def _branch_head(steps: Sequence[Node]) -> str:
    """A branch's column heading: its last conv's window, after 'pool →' if it starts with a pool."""
    convs = [s for s in steps if s.kind in ("conv1x1", "conv2d")]
    head = _step_name(convs[-1]) if convs else (_step_name(steps[-1]) if steps else "")
    pools = [s for s in steps if s.kind in ("max_pool", "avg_pool")]
    return f"pool → {head}" if pools and convs else head


def inception_label(title: str, concat: Node, group: Sequence[Node]) -> str:
    """HTML label of a collapsed Inception module: one column per branch, in concat order,
    headed by the branch's kernel and holding its channel numbers (reduce → conv)."""
    heads, counts = [], []
    for x in concat.inputs:
        steps = branch_steps(x, group)
        heads.append(_branch_head(steps))
        counts.append(" → ".join(str(s.shape[1]) for s in steps if s.kind in ("conv1x1", "conv2d")) or "–")
    head_row = "".join(f'<TD><FONT POINT-SIZE="8" COLOR="#45818e">{h}</FONT></TD>' for h in heads)
    count_row = "".join(f"<TD>{c}</TD>" for c in counts)
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2" COLUMNS="*" COLOR="#9fc5cc">'
            f'<TR><TD COLSPAN="{len(heads)}"><B>{title}</B>  '
            f'<FONT POINT-SIZE="9" COLOR="#45818e">{dims(concat.shape)}</FONT></TD></TR>'
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


def group_label(key: str, kind: str, group: Sequence[Node]) -> str:
    """The label of a collapsed scope: the Inception table, a stack of ops, or the single op."""
    title = pretty(key)
    if kind == "inception":
        return inception_label(title, principal(output_node(group), group), group)
    work = work_nodes(group)
    if len(work) == 1:
        return op_label(work[0])
    return stack_label(title, group)


__all__ = ["dims", "pretty", "op_label", "work_nodes", "branch_steps", "inception_label",
           "stack_label", "group_label", "TIMES"]
