"""One diagram of two versions of a network: what was added, removed or changed.

    d = mg.viz.diff(old_outputs, new_outputs)       # nodes, lists of nodes or graphs
    d.added, d.removed, d.changed                   # names; changed: {name: ["stride 1 → 2", ...]}
    mg.viz.render(d.graph, "diff.svg", decorate=d)

Nodes are matched by name (scopes included), which is what stays put when a model is edited
or re-exported. A matched node is changed when its op class, an attribute, its output shape,
the names of its inputs, or the shape of a weight it reads differ; weights themselves are
not drawn (they are part of their reader's label), so a weight that appears, disappears or
changes shape marks its reader. The drawing is of a union graph: every node of the new
version, plus the removed nodes of the old one wired to their old inputs. Added boxes are
green, removed ones red and dashed, changed ones orange with one line per change.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List

import networkx as nx
import numpy as np

from minigraph.graph import Graph, Node
from minigraph.op import Constant, Variable
from minigraph.passes import Builder
from minigraph.scopes import gradient_owner, target_nodes
from minigraph.text import dims

from .decorate import Decorator, add_line

MARKS = {  # mark -> (fill, border, legend text); bolder than the category colours they replace
    "added": ("#b6d7a8", "#274e13", "added (bold green)"),
    "removed": ("#ea9999", "#990000", "removed (bold red, dashed)"),
    "changed": ("#f9cb9c", "#b45f06", "changed (bold orange; the changes below the label)"),
}


def _weights(node: Node) -> Dict[str, Node]:
    return {x.name: x for x in node.inputs if isinstance(x.op, (Variable, Constant))}


def _value(v) -> str:
    if isinstance(v, np.ndarray):
        return f"array{tuple(v.shape)}"
    if isinstance(v, tuple) and v and all(isinstance(p, tuple) for p in v):
        return "(" + ", ".join(str(tuple(p)) for p in v) + ")"
    return str(v)


def changes(a: Node, b: Node) -> List[str]:
    """How node `b` differs from node `a` of the same name (empty when it does not)."""
    out = []
    if type(a.op) is not type(b.op):
        return [f"{a.kind} → {b.kind}"]
    va, vb = a.op.attrs(), b.op.attrs()
    for key in sorted(set(va) | set(vb)):
        x, y = va.get(key), vb.get(key)
        if _value(x) != _value(y):
            out.append(f"{key} {_value(x)} → {_value(y)}")
    if tuple(a.shape) != tuple(b.shape):
        out.append(f"output {dims(a.shape)} → {dims(b.shape)}")
    wa, wb = _weights(a), _weights(b)
    for name in sorted(set(wa) | set(wb)):
        sa = dims((None,) + tuple(wa[name].shape)) if name in wa else "none"
        sb = dims((None,) + tuple(wb[name].shape)) if name in wb else "none"
        if sa != sb:
            out.append(f"{name.rpartition('/')[2]} {sa} → {sb}")
    ia = [x.name for x in a.inputs if x.name not in wa]
    ib = [x.name for x in b.inputs if x.name not in wb]
    if ia != ib:
        lost = [_relative(n, b) for n in ia if n not in ib]
        gained = [_relative(n, b) for n in ib if n not in ia]
        out.append("inputs " + ", ".join([f"−{n}" for n in lost] + [f"+{n}" for n in gained]) if lost or gained
                   else "inputs reordered")
    return out


def _relative(name: str, node: Node) -> str:
    """`name` without the scope it shares with `node`."""
    prefix = node.scope + "/" if node.scope else ""
    return name[len(prefix):] if prefix and name.startswith(prefix) else name


@dataclasses.dataclass
class GraphDiff(Decorator):
    """The union graph of two versions and what differs (names of the union graph's nodes)."""

    graph: Graph
    added: List[str]
    removed: List[str]
    changed: Dict[str, List[str]]
    drawn: set = dataclasses.field(default_factory=set, repr=False)  # marks drawn so far (for the legend)

    def mark(self, name: str):
        if name in self.changed:
            return "changed"
        if name in self.added:
            return "added"
        if name in self.removed:
            return "removed"
        return None

    def box(self, box, label, attrs):
        marks = [m for m in (self.mark(n.name) for n in box.members) if m]
        if not marks:
            return label, attrs
        mark = "changed" if "changed" in marks else marks[0]
        self.drawn.add(mark)
        fill, border, _ = MARKS[mark]
        attrs = dict(attrs, fillcolor=fill, color=border, penwidth="2.2")
        if mark == "removed":
            attrs["style"] = attrs.get("style", "filled").replace("filled", "filled,dashed")
        if mark == "changed" and not box.collapsed:
            lines = dict.fromkeys(line for n in box.members for line in self.changed.get(n.name, []))
            for line in lines:
                label = add_line(label, line)
        return label, attrs

    def legend(self):
        """Entries for the marks of the boxes drawn (a removed dropout mask is part of no box)."""
        return [MARKS[m] for m in ("added", "removed", "changed") if m in self.drawn]

    def __str__(self) -> str:
        lines = [f"{len(self.added)} added, {len(self.removed)} removed, {len(self.changed)} changed"]
        lines += [f"+ {n}" for n in self.added] + [f"- {n}" for n in self.removed]
        lines += [f"~ {n}: {'; '.join(c)}" for n, c in self.changed.items()]
        return "\n".join(lines)


def _forward(target) -> Dict[str, Node]:
    return {n.name: n for n in target_nodes(target, "diff") if gradient_owner(n) is None}


def diff(old, new) -> GraphDiff:
    """Compare two networks (each a Graph, a node or a list of nodes) node by node; see the module."""
    a, b = _forward(old), _forward(new)
    added = [n for n in b if n not in a and not isinstance(b[n].op, (Variable, Constant))]
    removed = [n for n in a if n not in b and not isinstance(a[n].op, (Variable, Constant))]
    changed = {}
    for name in b:
        if name in a and not isinstance(b[name].op, (Variable, Constant)):
            found = changes(a[name], b[name])
            if found:
                changed[name] = found

    source = {name: b[name] for name in b}
    source.update({name: a[name] for name in a if name not in b})
    order = nx.DiGraph()
    order.add_nodes_from(source)
    for name, node in source.items():
        order.add_edges_from((x.name, name) for x in node.inputs)
    builder = Builder()
    made: Dict[str, Node] = {}
    rank = {name: i for i, name in enumerate(list(b) + [n for n in a if n not in b])}
    for name in nx.lexicographical_topological_sort(order, key=lambda n: rank[n]):
        node = source[name]
        made[name] = builder.add(node.op, [made[x.name] for x in node.inputs], name, spec=node.spec)
    return GraphDiff(builder.graph, added, removed, changed)


__all__ = ["diff", "GraphDiff", "changes", "MARKS"]
