"""Graphs and nodes: the define-then-run structure every other module builds on.

A `Graph` holds `Node`s in creation order (which is a topological order, since a node's
inputs exist before it). Each node is the result of one `Op` applied to input nodes and
knows its static shape and dtype. networkx mirrors the edges for the graph algorithms
(ancestors, descendants, topological sorts) that the session and autodiff need.
"""
from __future__ import annotations

import contextlib
import re
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

import networkx as nx
import numpy as np

from .errors import GraphError, ShapeError
from .spec import Spec, fmt

_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


class Node:
    """One tensor-valued vertex: `op` applied to `inputs`, with a static spec.

    Nodes are compared by identity. Python operators (`+ - * / @`, unary `-`) build
    elementwise and matmul nodes in the same graph.
    """

    __slots__ = ("graph", "op", "inputs", "name", "shape", "dtype", "index", "__weakref__")

    def __init__(self, graph: "Graph", op, inputs: Sequence["Node"], name: str, spec: Spec, index: int):
        self.graph = graph
        self.op = op
        self.inputs = tuple(inputs)
        self.name = name
        self.shape = spec.shape
        self.dtype = spec.dtype
        self.index = index

    @property
    def spec(self) -> Spec:
        return Spec(self.shape, self.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def kind(self) -> str:
        """The op kind, e.g. 'conv2d', 'placeholder'."""
        return self.op.kind

    @property
    def attrs(self) -> dict:
        """The op's attributes (stride, padding, axis, ...) as a dict."""
        return self.op.attrs()

    @property
    def scope(self) -> str:
        """The name scope the node was built in ('' at top level)."""
        return self.name.rpartition("/")[0]

    def __repr__(self) -> str:
        return f"<Node {self.name!r} {self.op.kind} shape={fmt(self.shape)} dtype={self.dtype}>"

    # Python operators -------------------------------------------------------
    def __add__(self, other):
        from minigraph import ops
        return ops.add(self, other)

    def __radd__(self, other):
        from minigraph import ops
        return ops.add(other, self)

    def __sub__(self, other):
        from minigraph import ops
        return ops.sub(self, other)

    def __rsub__(self, other):
        from minigraph import ops
        return ops.sub(other, self)

    def __mul__(self, other):
        from minigraph import ops
        return ops.mul(self, other)

    def __rmul__(self, other):
        from minigraph import ops
        return ops.mul(other, self)

    def __truediv__(self, other):
        from minigraph import ops
        return ops.div(self, other)

    def __rtruediv__(self, other):
        from minigraph import ops
        return ops.div(other, self)

    def __neg__(self):
        from minigraph import ops
        return ops.neg(self)

    def __matmul__(self, other):
        from minigraph import ops
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        from minigraph import ops
        return ops.matmul(other, self)

    def __bool__(self):
        raise TypeError(f"the truth value of node {self.name!r} is only known when the graph runs")


class Graph:
    """A computation graph; use `with mg.Graph() as g:` to make it the default graph."""

    def __init__(self):
        self.nodes: List[Node] = []
        self._by_name: Dict[str, Node] = {}
        self._used_names: Dict[str, int] = {}
        self._scope: List[str] = []
        self.nx = nx.DiGraph()

    # default-graph context ----------------------------------------------------
    def __enter__(self) -> "Graph":
        _default_stack.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _default_stack.pop()

    def __repr__(self) -> str:
        return f"<Graph with {len(self.nodes)} nodes>"

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __contains__(self, node) -> bool:
        return isinstance(node, Node) and node.graph is self

    # names and scopes -----------------------------------------------------------
    def get(self, name: str) -> Node:
        """The node with this full name, e.g. 'block1/conv_1'."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no node named {name!r} in this graph") from None

    __getitem__ = get

    @property
    def current_scope(self) -> str:
        return self._scope[-1] if self._scope else ""

    def _unique(self, full: str) -> str:
        """`full` if unused, else `full_1`, `full_2`, ... (TensorFlow's rule)."""
        if full not in self._used_names:
            self._used_names[full] = 0
            return full
        i = self._used_names[full]
        while True:
            i += 1
            candidate = f"{full}_{i}"
            if candidate not in self._used_names:
                self._used_names[full] = i
                self._used_names[candidate] = 0
                return candidate

    def _qualify(self, name: str) -> str:
        if not _NAME_RE.match(name):
            raise ValueError(f"invalid name {name!r}: use letters, digits, '_', '.', '-' (scopes nest with name_scope)")
        return f"{self.current_scope}/{name}" if self.current_scope else name

    @contextlib.contextmanager
    def name_scope(self, name: str) -> Iterator[str]:
        """Nest the names of nodes built inside under `name` (made unique, like TF)."""
        full = self._unique(self._qualify(name))
        self._scope.append(full)
        try:
            yield full
        finally:
            self._scope.pop()

    @contextlib.contextmanager
    def absolute_scope(self, full: str, unique: bool = True) -> Iterator[str]:
        """Build inside the scope whose full name is `full` (made unique unless told not to)."""
        full = self._unique(full) if unique else full
        saved, self._scope = self._scope, [full]
        try:
            yield full
        finally:
            self._scope = saved

    # building ----------------------------------------------------------------------
    def add_node(self, op, inputs: Sequence[Node], name: Optional[str] = None) -> Node:
        """Apply `op` to `inputs`: infer the output spec, name the node, record it."""
        for x in inputs:
            if not isinstance(x, Node):
                raise TypeError(f"{op.kind}: inputs must be nodes, got {type(x).__name__}")
            if x.graph is not self:
                raise GraphError(f"{op.kind}: input {x.name!r} belongs to another graph")
        base = self._qualify(name or op.kind)
        try:
            spec = op.infer(*[x.spec for x in inputs])
        except ShapeError as exc:
            shown = self._peek_name(base)
            raise ShapeError(f"{op.kind} {shown!r}: {exc}") from None
        full = self._unique(base)
        node = Node(self, op, inputs, full, Spec(tuple(spec.shape), np.dtype(spec.dtype)), len(self.nodes))
        self.nodes.append(node)
        self._by_name[full] = node
        self.nx.add_node(node.index)
        for x in inputs:
            self.nx.add_edge(x.index, node.index)
        return node

    def _peek_name(self, full: str) -> str:
        if full not in self._used_names:
            return full
        i = self._used_names[full] + 1
        while f"{full}_{i}" in self._used_names:
            i += 1
        return f"{full}_{i}"

    # queries -------------------------------------------------------------------------
    def ancestors(self, nodes: Iterable[Node], stop: Iterable[Node] = ()) -> List[Node]:
        """`nodes` and everything they depend on, not looking past `stop`, in creation order."""
        stop_idx = {n.index for n in stop}
        view = self.nx
        if stop_idx:
            cut = [(p, s) for s in stop_idx for p in self.nx.predecessors(s)]
            view = nx.restricted_view(self.nx, [], cut)
        found = set()
        for n in nodes:
            found.add(n.index)
            found |= nx.ancestors(view, n.index)
        return [self.nodes[i] for i in sorted(found)]

    def descendants(self, nodes: Iterable[Node]) -> List[Node]:
        """`nodes` and everything that depends on them, in creation order."""
        found = set()
        for n in nodes:
            found.add(n.index)
            found |= nx.descendants(self.nx, n.index)
        return [self.nodes[i] for i in sorted(found)]

    def consumers(self, node: Node) -> List[Node]:
        """The nodes that take `node` as an input, in creation order."""
        return [self.nodes[i] for i in sorted(self.nx.successors(node.index))]


_default_stack: List[Graph] = []
_global_default: List[Graph] = []


def get_default_graph() -> Graph:
    """The innermost `with Graph()` graph, or a global one created on first use."""
    if _default_stack:
        return _default_stack[-1]
    if not _global_default:
        _global_default.append(Graph())
    return _global_default[0]


def reset_default_graph() -> None:
    """Forget the global default graph (graphs entered with `with` are unaffected)."""
    _global_default.clear()


def name_scope(name: str):
    """`with mg.name_scope("block1"):` nests node names under block1/ in the default graph."""
    return get_default_graph().name_scope(name)


def graph_of(values: Iterable) -> Graph:
    """The graph the node values belong to (all must agree), else the default graph."""
    graph = None
    for v in values:
        if isinstance(v, Node):
            if graph is None:
                graph = v.graph
            elif v.graph is not graph:
                raise GraphError(f"nodes from different graphs used together (e.g. {v.name!r})")
    return graph if graph is not None else get_default_graph()
