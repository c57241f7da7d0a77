"""Graph -> `graphviz.Digraph`: name scopes as nested clusters, one styled box per op.

Walking the graph (which nodes, which box each one is drawn in, which cluster each box sits
in) is kept apart from drawing it (styles.py, labels.py). `to_dot` never runs the `dot`
program; `render` (render.py) does.

What is folded by default, so a diagram reads like a paper's figure:
- variables and constants become part of their consumer's label ("conv 3×3/1, 128");
- a ReLU or a bias add directly after an op in the same scope joins that op's box;
- a flatten in front of a layer in the same scope joins the layer's box;
- a scope that holds a single box is not drawn as a cluster of its own.
Inception branches feeding a concat are kept in concat order, side by side, with their last
ops on one rank (Figure 2(b) of Szegedy et al. 2014).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import graphviz

from minigraph.graph import Graph, Node
from minigraph.scopes import (gradient_owner, group_category, group_kind, is_helper, is_param, is_structural,
                              principal, scope_key, scope_parts, target_nodes)

from . import labels, styles
from .decorate import Decorator

Target = Union[Graph, Node, Sequence[Node]]
GRAD_MARK = "∇"


@dataclasses.dataclass
class Box:
    """One drawn vertex: the nodes it stands for and where it goes."""

    id: str
    members: List[Node]
    category: str
    label: str
    path: Tuple[str, ...]          # the cluster it is drawn in
    home: Tuple[str, ...]          # the scope its main op was built in
    gradient: bool = False
    activation: Optional[str] = None
    collapsed: bool = False
    spine: bool = False

    @property
    def main(self) -> Node:
        return self.members[0]


def to_dot(target: Target, collapse: Optional[int] = None, show_shapes: bool = True,
           show_grads: bool = False, rankdir: str = "TB", show_variables: bool = False,
           legend: bool = True, title: Optional[str] = None,
           decorate: Optional[Decorator] = None) -> graphviz.Digraph:
    """A `graphviz.Digraph` of `target`: a Graph (every node), a node or a list of nodes (them
    and everything they depend on).

    collapse: None draws every op; k >= 1 draws each scope k levels deep as one box
    (collapse=1: one box per top-level scope, an Inception module as its six channel numbers).
    show_shapes: label edges with tensor shapes, C×H×W without the batch.
    show_grads: also draw the gradient nodes of `mg.gradients` (dashed, orange), in a cluster
    beside the top-level scope of the forward node they belong to.
    rankdir: "TB" (inputs on top), "LR", "BT" or "RL".
    show_variables: draw variables and constants as boxes of their own instead of folding them.
    legend: add a legend of the op kinds drawn (below the diagram). title: a caption above
    the legend.
    decorate: a `viz.decorate.Decorator` that retitles clusters and restyles boxes (folded
    repeats, diffs).
    """
    if collapse is not None and (not isinstance(collapse, int) or collapse < 1):
        raise ValueError(f"collapse must be None or a positive int, got {collapse!r}")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"rankdir must be one of TB, LR, BT, RL, got {rankdir!r}")
    decorate = decorate or Decorator()
    nodes = select_nodes(target, show_grads)
    drawn = [n for n in nodes if show_variables or not (is_param(n) or is_structural(n))]
    boxes, rep = _make_boxes(drawn, collapse, decorate)
    edges = _edges(drawn, rep, show_shapes)
    _place_in_clusters(boxes)

    dot = graphviz.Digraph(name="minigraph")
    dot.attr("graph", rankdir=rankdir, **styles.GRAPH_ATTRS)
    if collapse is not None:  # a whole network on one page, its main line straight (Figure 3)
        dot.attr("graph", **styles.COLLAPSED_GRAPH_ATTRS)
        for box in _longest_path(boxes, edges):
            box.spine = True
    dot.attr("node", **styles.NODE_ATTRS)
    dot.attr("edge", **styles.EDGE_ATTRS)
    spacers = _branch_spacers(boxes, rep, edges) if collapse is None else {}
    _emit_clusters(dot, boxes, [sp for chain in spacers.values() for sp in chain], decorate)
    for (tail, head), (label, grad) in edges.items():
        attrs = dict(styles.GRADIENT_EDGE) if grad else {}
        if label:
            attrs["label"] = " " + label
        points = [tail] + [sp.id for sp in spacers.get((tail, head), [])] + [head]
        for i, (a, b) in enumerate(zip(points, points[1:])):
            seg = dict(attrs) if i == 0 else {k: v for k, v in attrs.items() if k != "label"}
            if b != head:
                seg.update(arrowhead="none", headclip="false")
            if a != tail:
                seg.update(tailclip="false")
            dot.edge(a, b, **seg)
    if (legend and boxes) or title:
        cats = {b.category for b in boxes} if legend else ()
        grads = legend and any(b.gradient for b in boxes)
        dot.attr("graph", label=styles.legend_label(cats, grads, legend and show_shapes and bool(edges), title or "",
                                                    extra=decorate.legend() if legend else ()),
                 labelloc="b", labeljust="l", fontsize="9")
    return dot


# ---------------------------------------------------------------------------------------
# which nodes


def select_nodes(target: Target, show_grads: bool) -> List[Node]:
    """The nodes a diagram of `target` shows, in graph order."""
    nodes = target_nodes(target, "to_dot")
    if show_grads and not isinstance(target, Graph):
        graph, owned = nodes[0].graph, {n.index for n in nodes}
        grads = [n for n in graph.nodes if (o := gradient_owner(n)) is not None and o.index in owned]
        nodes = graph.ancestors(nodes + grads)
    if not show_grads:
        nodes = [n for n in nodes if gradient_owner(n) is None]
    return nodes


# ---------------------------------------------------------------------------------------
# boxes: which box each node is drawn in


def _make_boxes(drawn: List[Node], collapse: Optional[int], decorate: Decorator):
    rep: Dict[int, Box] = {}
    boxes: List[Box] = []
    owners = {n.index: gradient_owner(n) for n in drawn}
    consumers: Dict[int, List[Node]] = {}  # forward consumers: drawn gradients do not unfold a layer
    for n in drawn:
        if owners[n.index] is None:
            for x in dict.fromkeys(n.inputs):
                consumers.setdefault(x.index, []).append(n)

    groups: Dict[str, List[Node]] = {}
    if collapse is not None:
        for n in drawn:
            key = _collapse_key(n, owners[n.index], collapse)
            if key is not None:
                groups.setdefault(key, []).append(n)
    for key, members in groups.items():
        box = _group_box(f"g{len(boxes)}", key, members, owners[members[0].index] is not None, decorate.title(key))
        boxes.append(box)
        for n in members:
            rep[n.index] = box

    deferred: Dict[int, List[Node]] = {}
    for n in drawn:
        if n.index in rep:
            continue
        grad = owners[n.index] is not None
        if not grad and _joins_consumer(n, consumers):
            deferred.setdefault(consumers[n.index][0].index, []).append(n)
            continue
        host = None if grad else _joins_producer(n, rep, consumers)
        if host is not None:
            host.members.append(n)
            host.activation = "+".join(filter(None, [host.activation, n.op.activation_name()]))  # BN+ReLU
            rep[n.index] = host
            continue
        box = _op_box(f"n{n.index}", n, owners[n.index])
        boxes.append(box)
        rep[n.index] = box
        for early in deferred.pop(n.index, []):
            box.members.append(early)
            rep[early.index] = box
    for box in boxes:
        if box.activation and not box.collapsed:
            box.label = _with_activation(box.label, box.activation)
    return boxes, rep


def _collapse_key(n: Node, owner: Optional[Node], depth: int) -> Optional[str]:
    if owner is not None:
        return GRAD_MARK + " " + scope_key(owner, depth)
    return scope_key(n, depth) if len(scope_parts(n)) >= depth else None


def _data_inputs(n: Node) -> List[Node]:
    return [x for x in n.inputs if not is_param(x) and not is_structural(x)]


def _joins_producer(n: Node, rep: Dict[int, Box], consumers) -> Optional[Box]:
    """The box an activation (ReLU, BN) or bias add joins: its producer's, in the same scope, if it
    is the only consumer."""
    is_activation = n.op.role == "activation"
    is_bias_add = n.op.role == "bias" and len(_data_inputs(n)) == 1 and len(n.inputs) == 2
    if not is_activation and not is_bias_add:
        return None
    data = _data_inputs(n)
    if len(data) != 1:
        return None
    box = rep.get(data[0].index)
    if box is None or box.gradient or box.collapsed or data[0].scope != n.scope:
        return None
    if len(consumers.get(data[0].index, [])) != 1:
        return None
    if is_activation and n.op.activation_name() in (box.activation or "").split("+"):
        return None  # a chain of different ones joins (conv +BN+ReLU), a repeated one does not
    return box


def _joins_consumer(n: Node, consumers) -> bool:
    """A flatten/reshape (or a dropout mask) that only feeds one op of its own scope is drawn in
    that op's box."""
    users = consumers.get(n.index, [])
    return ((n.op.role == "reshape" or is_helper(n)) and len(users) == 1 and users[0].scope == n.scope
            and gradient_owner(users[0]) is None)


def _op_box(box_id: str, n: Node, owner: Optional[Node]) -> Box:
    if owner is not None:
        top = scope_parts(owner)[:1]
        path = (GRAD_MARK + " " + (top[0] if top else ""),)
        return Box(box_id, [n], n.op.category, labels.op_label(n), path, path, gradient=True)
    home = tuple(scope_parts(n))
    fused = None if n.op.role == "activation" else n.op.activation_name()  # e.g. a conv with activation="relu"
    return Box(box_id, [n], n.op.category, labels.op_label(n), home, home, activation=fused)


def _group_box(box_id: str, key: str, members: List[Node], gradient: bool, title: Optional[str] = None) -> Box:
    if gradient:
        return Box(box_id, members, "other", f"{key} ({len(members)} ops)", (), (), gradient=True, collapsed=True)
    kind = group_kind(members)
    path = tuple(key.split("/")[:-1])
    return Box(box_id, members, group_category(members, kind), labels.group_label(key, kind, members, title),
               path, tuple(key.split("/")), collapsed=True)


def _with_activation(label: str, activation: str) -> str:
    if label.startswith("<"):
        return label
    return f'<{_escape(label)} <FONT POINT-SIZE="8" COLOR="#666666">+{activation}</FONT>>'


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------------------------------
# edges


def _edges(drawn: List[Node], rep: Dict[int, Box], show_shapes: bool):
    """{(tail id, head id): (shape label, is gradient)} in graph order, one per pair of boxes."""
    edges: Dict[Tuple[str, str], Tuple[str, bool]] = {}
    for n in drawn:
        head = rep[n.index]
        for x in dict.fromkeys(n.inputs):
            tail = rep.get(x.index)
            if tail is None or tail is head:
                continue
            key = (tail.id, head.id)
            if key not in edges:
                edges[key] = (labels.dims(x.shape) if show_shapes else "", tail.gradient or head.gradient)
    return edges


def _longest_path(boxes: List[Box], edges) -> List[Box]:
    """The boxes of a longest path through the drawing (the network's main line)."""
    succs: Dict[str, List[str]] = {}
    for tail, head in edges:
        succs.setdefault(tail, []).append(head)
    by_id = {b.id: b for b in boxes}
    best: Dict[str, List[str]] = {}

    def longest_from(box_id: str) -> List[str]:  # iterative memoised DFS (graphs can be deep)
        stack = [box_id]
        while stack:
            cur = stack[-1]
            todo = [h for h in succs.get(cur, []) if h not in best]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            tails = [best[h] for h in succs.get(cur, [])]
            best[cur] = [cur] + max(tails, key=len, default=[])
        return best[box_id]

    paths = [longest_from(b.id) for b in boxes]
    return [by_id[i] for i in max(paths, key=len, default=[])]


# ---------------------------------------------------------------------------------------
# clusters


def _place_in_clusters(boxes: List[Box]) -> None:
    """Drop the clusters of scopes that would hold a single box of their own (a layer's scope)."""
    count: Dict[Tuple[str, ...], int] = {}
    for b in boxes:
        for i in range(1, len(b.path) + 1):
            count[b.path[:i]] = count.get(b.path[:i], 0) + 1
    for b in boxes:
        if b.path and not b.gradient and count[b.path] == 1 and b.home == b.path:
            b.path = b.path[:-1]


def _emit_clusters(dot: graphviz.Digraph, boxes: List[Box], spacers: Sequence["Spacer"] = (),
                   decorate: Optional[Decorator] = None) -> None:
    tree: Dict[Tuple[str, ...], List] = {(): []}
    for b in [*boxes, *spacers]:
        for i in range(1, len(b.path) + 1):
            if b.path[:i] not in tree:
                tree[b.path[:i]] = []
                tree[b.path[:i - 1]].append(b.path[:i])
        tree[b.path].append(b)
    _emit(dot, (), tree, decorate or Decorator())


def _emit(g: graphviz.Digraph, path: Tuple[str, ...], tree, decorate: Decorator) -> None:
    for item in tree[path]:
        if isinstance(item, Spacer):
            g.node(item.id, "", shape="point", width="0.015", height="0.015", color=styles.EDGE_ATTRS["color"])
            continue
        if isinstance(item, Box):
            attrs = styles.node_attrs(item.category, item.gradient)
            tip = item.members[0].name if not item.collapsed else "/".join(item.home) or item.label
            if item.spine:
                attrs["group"] = "spine"
            label, attrs = decorate.box(item, item.label, attrs)
            g.node(item.id, label, tooltip=tip, **attrs)
            continue
        grad = item[0].startswith(GRAD_MARK)
        with g.subgraph(name="cluster_" + _ident("/".join(item))) as sub:
            name = item[-1]
            label = ("gradients of " + name[2:] if name[2:] else "gradients") if grad else (
                decorate.title("/".join(item)) or labels.pretty(name))
            sub.attr(label=label, **styles.cluster_attrs(len(item), grad))
            _emit(sub, item, tree, decorate)


def _ident(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", lambda m: f"_{ord(m.group()):x}_", text)


# ---------------------------------------------------------------------------------------
# Inception columns


@dataclasses.dataclass
class Spacer:
    """An invisible point a long edge passes through, so a short branch starts where the others do."""

    id: str
    path: Tuple[str, ...]


def _branch_spacers(boxes: List[Box], rep: Dict[int, Box], edges) -> Dict[Tuple[str, str], List[Spacer]]:
    """Spacers that bottom-align the branches feeding each concat.

    A branch is the chain of boxes above one concat input, up to the box they share (the
    module's input). A branch shorter than the longest gets its first edge split by spacers
    placed in the branch's cluster, so every branch's last op sits on one rank and the
    columns keep the concat's order (dot keeps out-edge order with `ordering=out`; a long
    edge running past a whole rank would let it move the column).
    """
    preds: Dict[str, List[str]] = {}
    succs: Dict[str, List[str]] = {}
    for tail, head in edges:
        succs.setdefault(tail, []).append(head)
        preds.setdefault(head, []).append(tail)
    by_id = {b.id: b for b in boxes}
    spacers: Dict[Tuple[str, str], List[Spacer]] = {}
    for box in boxes:
        node = principal(box.main)
        if box.gradient or box.collapsed or node.op.category != "concat":
            continue
        ins = list(dict.fromkeys(rep[x.index].id for x in node.inputs if x.index in rep))
        if len(ins) < 2:
            continue
        chains = [_chain(b, preds, succs) for b in ins]
        longest = max(len(c) for c in chains)
        for chain in chains:
            top = chain[-1]
            above = preds.get(top, [])
            if len(chain) == longest or len(above) != 1 or (above[0], top) in spacers:
                continue
            path = by_id[top].path
            spacers[(above[0], top)] = [Spacer(f"{top}_s{i}", path) for i in range(longest - len(chain))]
    return spacers


def _chain(start: str, preds, succs) -> List[str]:
    """`start` and the boxes above it, while each has one input that feeds only it."""
    chain = [start]
    cur = start
    while len(preds.get(cur, [])) == 1 and len(succs.get(cur, [])) == 1:
        up = preds[cur][0]
        if len(succs.get(up, [])) != 1:
            break
        chain.append(up)
        cur = up
    return chain


__all__ = ["to_dot", "select_nodes", "Box", "Spacer"]
