"""Common-subexpression elimination: two nodes with equal ops on the same inputs are one.

Only pure, deterministic ops merge (never placeholders, variables, random or state-writing
ops). Op equality is the op's own: dataclass fields for most ops, the dtype, shape and bytes
for constants (so `x * 2 + x * 2` keeps one constant 2 and one multiply), identity for
variables and random ops.
"""
from __future__ import annotations

from typing import Dict

from .program import Program, rebuild


def _mergeable(op) -> bool:
    return op.pure and op.deterministic and not op.side_effects


def _duplicates(prog: Program) -> Dict:
    """{node: the earlier node it duplicates} over the live nodes (inputs seen through merges)."""
    canon: Dict = {}
    seen: Dict = {}
    fed = set(prog.fed)
    for node in prog.nodes:
        if node in fed or not _mergeable(node.op):
            continue
        key = (node.op, tuple(canon.get(x, x) for x in node.inputs))
        try:
            first = seen.setdefault(key, node)
        except TypeError:  # an op attribute that cannot be hashed: never merged
            continue
        if first is not node:
            canon[node] = first
    return canon


def eliminate_common_subexpressions(prog: Program):
    """Merge every node into the first equal one (same op, same inputs after merging)."""
    canon = _duplicates(prog)
    if not canon:
        return prog, None

    def rule(node, mapping, b):
        first = canon.get(node)
        return None if first is None else mapping[first]

    return rebuild(prog, rule)


__all__ = ["eliminate_common_subexpressions"]
