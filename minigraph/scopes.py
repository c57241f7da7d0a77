"""Reading a graph by name scope: groups of nodes, what a group is, which nodes are gradients.

`summary` (one table row per group) and `viz` (one cluster or collapsed box per group) both
see a graph through these helpers, so a table row and a diagram box always agree.

- A node's scope path is the '/'-separated prefix of its name; `scope_key(node, depth)`
  keeps the first `depth` parts (a top-level node is its own key).
- Gradient nodes are those `mg.gradients` built in a `<forward node>_grad` scope;
  `gradient_owner` finds that forward node.
- A group's `principal` node is the op that characterises it (the conv of a conv+bias+ReLU
  layer, the concat of an Inception module); `group_kind` names the group after it and
  `group_category` says how diagrams colour it.

What a node is comes from its op's declarations (`op.role`, `op.category`, `op.display_kind`,
see minigraph/op.py), never from its kind.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence

from .errors import ArgumentError, GraphError
from .graph import Graph, Node
from .op import LEAF_OPS, Constant, PlaceholderWithDefault, Variable

_GRAD_PART = re.compile(r"^(.*)_grad(?:_\d+)?$")

# Roles of ops that only pass a layer's result along (activation, bias add, reshaping, copies).
PASSTHROUGH = frozenset({"activation", "bias", "reshape", "identity"})
# Categories of the convolutions: a group of nothing else is a conv stack.
CONV_CATEGORIES = frozenset({"conv", "conv1x1"})
# Group kinds that are no op's kind (their diagram category has their name).
GROUP_KINDS = frozenset({"inception", "block"})
STRUCTURAL = (Constant, PlaceholderWithDefault)


def passes_along(node: Node) -> bool:
    """An activation, bias add, reshape or identity: it passes a layer's result along."""
    return node.op.role in PASSTHROUGH


def is_helper(node: Node) -> bool:
    """A helper drawn and counted as part of its consumer (dropout's mask is part of dropout)."""
    return node.op.role == "helper"


def scope_parts(node: Node) -> List[str]:
    """The scope path of `node` as a list ([] at top level)."""
    return node.scope.split("/") if node.scope else []


def scope_key(node: Node, depth: int) -> str:
    """The group `node` falls in when the graph is read `depth` scopes deep.

    'inception_3a/branch_3x3/reduce/conv1x1' -> 'inception_3a' at depth 1,
    'inception_3a/branch_3x3' at depth 2; a node without a scope is its own group.
    """
    parts = scope_parts(node)
    return "/".join(parts[:depth]) if parts else node.name


def gradient_owner(node: Node) -> Optional[Node]:
    """The forward node whose `<name>_grad` scope `node` was built in, or None for forward nodes."""
    parts = node.name.split("/")
    for i in range(1, len(parts)):  # the outermost gradient scope wins
        m = _GRAD_PART.match(parts[i - 1])
        if m:
            forward = "/".join(parts[: i - 1] + [m.group(1)])
            owner = node.graph.find(forward)
            if owner is not None:
                return owner
    return None


def is_gradient(node: Node) -> bool:
    return gradient_owner(node) is not None


def is_param(node: Node) -> bool:
    """A variable or constant: drawn inside its consumer's label, counted as parameters."""
    return isinstance(node.op, (Variable, Constant))


def is_structural(node: Node) -> bool:
    """Constants and defaulted switches (e.g. `training`): no row, no box of their own."""
    return isinstance(node.op, STRUCTURAL)


def group_by_scope(nodes: Sequence[Node], depth: int) -> Dict[str, List[Node]]:
    """Nodes grouped by `scope_key`, groups and members in graph (creation) order."""
    groups: Dict[str, List[Node]] = {}
    for n in sorted(nodes, key=lambda n: n.index):
        groups.setdefault(scope_key(n, depth), []).append(n)
    return groups


def output_node(group: Sequence[Node]) -> Node:
    """The group's result: its last node that is neither a parameter nor a constant."""
    for n in reversed(group):
        if not is_param(n) and not is_structural(n):
            return n
    return group[-1]


def principal(node: Node, members: Sequence[Node] = ()) -> Node:
    """Walk back from `node` through activations, bias adds and reshapes to the op that matters.

    relu(add(matmul(x, w), b)) -> the matmul; relu(conv2d(...)) -> the conv. Stays within
    `members` when it is given.
    """
    inside = {n.index for n in members}
    while passes_along(node):
        data = [x for x in node.inputs if not is_param(x) and not is_structural(x)]
        if len(data) != 1 or (inside and data[0].index not in inside):
            break
        node = data[0]
    return node


def op_kind(node: Node) -> str:
    """The kind a person would name: 'dropout' for x * dropout_mask, 'linear' for a matmul by a
    weight variable, else the op's own kind (the op's `display_kind`)."""
    return node.op.display_kind(node)


def group_kind(group: Sequence[Node]) -> str:
    """What a group is: 'inception' for a multi-branch block joined by a concat, 'conv2d' for
    a stack of convolutions, 'linear' for a matmul with a weight variable, else the kind of
    its principal op ('max_pool', 'softmax', ...); 'block' for any other composite.
    """
    out = output_node(group)
    main = principal(out, group)
    key_depth = len(scope_parts(out))
    sub_scopes = {tuple(scope_parts(n)[: key_depth + 1]) for n in group if len(scope_parts(n)) > key_depth}
    work = [n for n in group if not isinstance(n.op, LEAF_OPS) and not is_structural(n)
            and not passes_along(n) and not is_helper(n)]
    if main.op.category == "concat" and len(main.inputs) > 1 and len(sub_scopes) > 1:
        return "inception"
    if len(work) > 1 and all(n.op.category in CONV_CATEGORIES for n in work):
        return main.kind
    if len(work) > 1 and len(sub_scopes) > 1:
        return "block"
    return op_kind(main)


def group_category(group: Sequence[Node], kind: str) -> str:
    """The diagram category of a group whose `group_kind` is `kind`: 'inception' or 'block' for
    those composites, else its principal op's category."""
    if kind in GROUP_KINDS:
        return kind
    return principal(output_node(group), group).op.category


__all__ = ["scope_parts", "scope_key", "gradient_owner", "is_gradient", "is_param", "is_structural",
           "group_by_scope", "output_node", "principal", "op_kind", "group_kind", "group_category",
           "passes_along", "is_helper", "target_nodes"]


def target_nodes(target, what: str) -> List[Node]:
    """The nodes `target` (a Graph, a node or a non-empty list of nodes) stands for: the whole
    graph, or the outputs and their ancestors, in graph order. `what` names the caller in
    errors; anything else is an ArgumentError (a TypeError) naming the value."""
    if isinstance(target, Graph):
        return list(target.nodes)
    try:
        outs = [target] if isinstance(target, Node) else list(target)
    except TypeError:
        outs = []
    if not outs or not all(isinstance(o, Node) for o in outs):
        raise ArgumentError(f"{what} expects a Graph, a node or a non-empty list of nodes, got {target!r}")
    graph = outs[0].graph
    if any(o.graph is not graph for o in outs):
        raise GraphError(f"{what}: the nodes belong to different graphs")
    return graph.ancestors(outs)
