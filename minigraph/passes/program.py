"""The unit the passes work on: a graph with its outputs and fed placeholders, and `rebuild`.

A pass is a function `Program -> (Program, mapping)`, where `mapping` sends each node of the
old program to the node of the new one that computes the same value (nodes that have none,
e.g. a convolution fused into its ReLU, are left out). Passes never change a graph: they
build a new one with `rebuild`, which walks the old program's live nodes in topological order
and copies each (same op, name and spec) unless a rule returns a replacement. Only the nodes
the outputs need are copied, so every rebuild also removes dead nodes.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Dict, List, Optional, Sequence

from minigraph.graph import Graph, Node
from minigraph.op import Placeholder

Mapping = Dict[Node, Node]
SKIP = object()  # a rule's answer for a node that is not copied (its consumers are rewritten too)


@dataclasses.dataclass
class Program:
    """What runs: the nodes `outputs` need in `graph`, with `fed` placeholders as inputs.
    `compact`: every node of `graph` is live (true of what `rebuild` makes)."""

    graph: Graph
    outputs: List[Node]
    fed: List[Node]
    compact: bool = False

    @functools.cached_property
    def nodes(self) -> List[Node]:
        """The live nodes, in topological (creation) order."""
        if self.compact:
            return list(self.graph.nodes)
        return self.graph.ancestors(self.outputs, stop=self.fed)

    def consumers(self) -> Dict[Node, List[Node]]:
        """For each live node, the live nodes that read it (each once)."""
        out: Dict[Node, List[Node]] = {}
        fed = set(self.fed)
        for n in self.nodes:
            if n not in fed:
                for x in dict.fromkeys(n.inputs):
                    out.setdefault(x, []).append(n)
        return out


class Builder:
    """Adds nodes to the new graph of a rebuild under exact names."""

    def __init__(self):
        self.graph = Graph()

    def copy(self, node: Node, inputs: Sequence[Node], op=None) -> Node:
        """`node` (or `op` with node's spec) applied to `inputs`, under node's name."""
        return self.add(op or node.op, inputs, node.name, spec=node.spec if op is None else None)

    def add(self, op, inputs: Sequence[Node], name: str, spec=None) -> Node:
        """A node for `op` named `name` (its full name; a suffix is added if it is taken); its
        spec is inferred unless given."""
        if spec is None:
            from minigraph.errors import ShapeError
            try:
                spec = op.infer(*[x.spec for x in inputs])
            except ShapeError as exc:
                raise ShapeError(f"{op.kind} {name!r} (rewritten): {exc}") from None
        return self.graph.add_named(op, tuple(inputs), name, spec)


def rebuild(prog: Program, rule: Optional[Callable] = None) -> "tuple[Program, Mapping]":
    """A copy of `prog`'s live nodes in a new graph. `rule(node, mapping, builder)` sees each
    node with the mapping so far (old node -> new node) and returns a replacement node (already
    in the new graph), `SKIP` (not copied: the rule must replace every reader too), or None to
    copy the node onto its mapped inputs."""
    b = Builder()
    mapping: Mapping = {}
    fed = set(prog.fed)
    for node in prog.nodes:
        if node in fed:
            mapping[node] = b.add(Placeholder(node.shape, node.dtype), [], node.name)
            continue
        new = rule(node, mapping, b) if rule is not None else None
        if new is SKIP:
            continue
        if new is None:
            lost = [x.name for x in node.inputs if x not in mapping]
            if lost:
                raise RuntimeError(f"rebuild: {node.name!r} reads {lost}, which a rule skipped")
            new = b.copy(node, [mapping[x] for x in node.inputs])
        mapping[node] = new
    new_prog = Program(b.graph, [mapping[o] for o in prog.outputs], [mapping[f] for f in prog.fed if f in mapping],
                       compact=rule is None)
    return new_prog, mapping


def compose(first: Mapping, then: Mapping) -> Mapping:
    """The mapping of two passes in a row."""
    return {k: then[v] for k, v in first.items() if v in then}


__all__ = ["Program", "Builder", "rebuild", "compose", "SKIP", "Mapping"]
