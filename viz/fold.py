"""Folding runs of structurally identical blocks into one box marked "×N".

    folded = mg.viz.fold_repeats(model_outputs)          # a display graph and what was folded
    mg.viz.render(folded.outputs, "net.svg", decorate=folded)
    folded.runs                                          # {'blocks/blocks.0': ['blocks/blocks.0', ...]}

Scopes are compared level by level, outermost first: consecutive sibling scopes whose node
sequences are the same (op classes, attributes, output and weight shapes, constants, and
the wiring inside the block, names aside) and that form a chain (each block reads only the
previous block's output and is the only reader of it) are a run. The display graph keeps the
first block of each run, wired to where the last one went, and the decorator titles it
"<first> … <last> ×N". Inside a scope that is not folded, its children are compared in turn
(the identical blocks of a ResNet stage after its first, downsampling one).
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Dict, List, Optional, Sequence

import numpy as np

from minigraph.graph import Graph, Node
from minigraph.op import Constant, Variable
from minigraph.passes import SKIP, Program, rebuild
from minigraph.scopes import gradient_owner, output_node, scope_parts, target_nodes
from minigraph.text import pretty

from .decorate import Decorator


def _signature(members: Sequence[Node]) -> tuple:
    """What makes two blocks identical: per node its op class and attributes, shapes without the
    batch, constants' bytes, weights' shapes, and where each input comes from (inside: which
    member; outside: which external input, in order of first use)."""
    index = {n: i for i, n in enumerate(members)}
    external: Dict[Node, int] = {}
    sig = []
    for n in members:
        ins = tuple(("in", index[x]) if x in index else ("ext", external.setdefault(x, len(external)))
                    for x in n.inputs)
        extra = ""
        if isinstance(n.op, Constant):
            extra = hashlib.blake2b(np.ascontiguousarray(n.op.value).tobytes(), digest_size=12).hexdigest()
        attrs = tuple(sorted((k, repr(v)) for k, v in n.op.attrs().items()))
        sig.append((type(n.op).__qualname__, attrs, tuple(n.shape[1:]), n.dtype.str, ins, extra))
    return tuple(sig)


def _external_data(members: Sequence[Node]) -> List[Node]:
    inside = set(members)
    out = []
    for n in members:
        for x in n.inputs:
            if x not in inside and x not in out and not isinstance(x.op, (Variable, Constant)):
                out.append(x)
    return out


@dataclasses.dataclass
class Folded(Decorator):
    """A display graph with runs folded, its outputs, and the runs: {kept scope: [scopes of the run]}."""

    graph: Graph
    outputs: List[Node]
    runs: Dict[str, List[str]]

    def title(self, scope: str) -> Optional[str]:
        """'<first> … <last> ×N' for a folded block; '<scope> (<first> … <last> ×N)' for a scope
        holding one (what a collapsed diagram shows)."""
        run = self.runs.get(scope)
        if run:
            return f"{pretty(run[0])} … {pretty(run[-1])}  ×{len(run)}"
        inner = [r for key, r in self.runs.items() if key.startswith(scope + "/")]
        if inner:
            return f"{pretty(scope)}  (" + ", ".join(f"{pretty(r[0])} … {pretty(r[-1])} ×{len(r)}" for r in inner) + ")"
        return None

    def box(self, box, label, attrs):
        """A collapsed box standing for a run (or holding one) is drawn with a double border; a
        plain label gets the ×N."""
        home = "/".join(box.home)
        runs = [r for key, r in self.runs.items() if box.collapsed and (key == home or key.startswith(home + "/"))]
        if runs:
            attrs = dict(attrs, peripheries="2")
            if not label.startswith("<"):
                label = f"{label}  ×{len(runs[0])}"
        return label, attrs


def _children(nodes: Sequence[Node], parent: Sequence[str]) -> Dict[str, List[Node]]:
    """The nodes inside scope `parent`, grouped by their child scope (nodes of `parent` itself left out)."""
    depth = len(parent)
    groups: Dict[str, List[Node]] = {}
    for n in nodes:
        parts = scope_parts(n)
        if len(parts) > depth and parts[:depth] == list(parent):
            groups.setdefault("/".join(parts[:depth + 1]), []).append(n)
    return groups


def _runs(nodes: Sequence[Node], readers: Dict[Node, List[Node]], outputs, parent=()) -> Dict[str, List[str]]:
    groups = _children(nodes, parent)
    keys = list(groups)
    runs: Dict[str, List[str]] = {}
    i = 0
    while i < len(keys):
        j = i
        sig = _signature(groups[keys[i]])
        while j + 1 < len(keys) and _chained(groups[keys[j]], groups[keys[j + 1]], readers, outputs) \
                and _signature(groups[keys[j + 1]]) == sig:
            j += 1
        if j > i:
            runs[keys[i]] = keys[i:j + 1]
        else:
            runs.update(_runs(nodes, readers, outputs, keys[i].split("/")))
        i = j + 1
    return runs


def _chained(a: Sequence[Node], b: Sequence[Node], readers, outputs) -> bool:
    """b reads only a's output, nothing else reads a's nodes from outside a, and a's output
    is no fetch."""
    out = output_node(a)
    if _external_data(b) != [out] or out in outputs:
        return False
    inside_a, inside_b = set(a), set(b)
    for n in a:
        for r in readers.get(n, ()):
            if r not in inside_a and not (n is out and r in inside_b):
                return False
    return True


def fold_repeats(target) -> Folded:
    """`target` (a Graph, a node or a list of nodes; gradients left out) with every run of
    identical chained blocks folded to its first block; see the module docstring."""
    nodes = [n for n in target_nodes(target, "fold_repeats") if gradient_owner(n) is None]
    if isinstance(target, Graph):
        consumed = {x for n in nodes for x in n.inputs}
        outputs = [n for n in nodes if n not in consumed]
    else:
        outputs = [target] if isinstance(target, Node) else list(target)
    readers: Dict[Node, List[Node]] = {}
    for n in nodes:
        for x in dict.fromkeys(n.inputs):
            readers.setdefault(x, []).append(n)
    runs = _runs(nodes, readers, set(outputs))
    dropped, alias = set(), {}
    for keys in runs.values():
        groups = _children(nodes, keys[0].split("/")[:-1])
        for key in keys[1:]:
            dropped.update(groups[key])
        alias[output_node(groups[keys[-1]])] = output_node(groups[keys[0]])

    def rule(node, mapping, b):
        if node in dropped:
            return SKIP
        if any(x in alias for x in node.inputs):
            return b.copy(node, [mapping[alias.get(x, x)] for x in node.inputs])
        return None

    outs = [alias.get(o, o) for o in outputs]
    prog, mapping = rebuild(Program(outputs[0].graph, outs, []), rule if runs else None)
    return Folded(prog.graph, prog.outputs, runs)


__all__ = ["fold_repeats", "Folded"]
