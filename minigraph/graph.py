"""Graphs and nodes: the define-then-run structure every other module builds on.

A `Graph` holds `Node`s in creation order (which is a topological order, since a node's
inputs exist before it). Each node is the result of one `Op` applied to input nodes and
knows its static shape and dtype. `Node.inputs` is the one record of the edges; the
consumers index and the networkx view (`graph.nx`, for algorithms that want one) are
derived from it.

The default graph (`with mg.Graph():`) and the current name scope are per thread, so two
threads can build graphs at the same time; adding nodes to one graph is serialised.
"""
from __future__ import annotations

import contextlib
import contextvars
import difflib
import re
import threading
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import networkx as nx
import numpy as np

from .checks import as_str
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
    # NumPy defers to the node: `array + node` is add(array, node), not an object array of nodes
    __array_ufunc__ = None

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
        self._consumers: Dict[int, List[Node]] = {}
        self._local = threading.local()  # this thread's name-scope stack
        self._lock = threading.RLock()
        self._nx = None  # the networkx view, rebuilt when nodes were added since

    # default-graph context ----------------------------------------------------
    def __enter__(self) -> "Graph":
        _default_stack.set(_default_stack.get() + (self,))
        return self

    def __exit__(self, *exc) -> None:
        stack = _default_stack.get()
        _default_stack.set(stack[:-1])

    def __repr__(self) -> str:
        return f"<Graph with {len(self.nodes)} nodes>"

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __contains__(self, node) -> bool:
        return isinstance(node, Node) and node.graph is self

    # names and scopes -----------------------------------------------------------
    def find(self, name: str) -> Optional[Node]:
        """The node with this full name, or None."""
        return self._by_name.get(name)

    def get(self, name: str) -> Node:
        """The node with this full name ('block1/conv_1'), or, for the name of a scope (a layer
        such as 'block1/conv'), the scope's output: its last node that is not a variable, a
        constant or a gradient. A miss is a KeyError naming the closest existing names; a name
        that is not a string is an ArgumentError."""
        as_str(name, "Graph.get: name")
        node = self._by_name.get(name)
        if node is not None:
            return node
        node = self._scope_output(name)
        if node is not None:
            return node
        scopes = {n.name.rsplit("/", i)[0] for n in self.nodes for i in range(1, n.name.count("/") + 1)}
        close = difflib.get_close_matches(name, list(self._by_name) + sorted(scopes), n=4)
        hint = f"; closest: {', '.join(map(repr, close))}" if close else ""
        raise KeyError(f"no node or scope named {name!r} in this graph{hint}") from None

    __getitem__ = get

    def _scope_output(self, scope: str) -> Optional[Node]:
        from .scopes import is_gradient  # scopes builds on graph
        prefix = scope + "/"
        for n in reversed(self.nodes):
            if n.name.startswith(prefix) and n.op.role != "param" and not is_gradient(n):
                return n
        return None

    @property
    def current_scope(self) -> str:
        stack = self._scope_stack()
        return stack[-1] if stack else ""

    def _scope_stack(self) -> List[str]:
        stack = getattr(self._local, "scopes", None)
        if stack is None:
            stack = self._local.scopes = []
        return stack

    def unique_name(self, full: str) -> str:
        """Reserve and return `full` if unused, else `full_1`, `full_2`, ... (TensorFlow's rule)."""
        with self._lock:
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
        as_str(name, "name")
        if not _NAME_RE.match(name):
            raise ValueError(f"invalid name {name!r}: use letters, digits, '_', '.', '-' (scopes nest with name_scope)")
        return f"{self.current_scope}/{name}" if self.current_scope else name

    @contextlib.contextmanager
    def name_scope(self, name: str) -> Iterator[str]:
        """Nest the names of nodes built inside under `name` (made unique, like TF)."""
        full = self.unique_name(self._qualify(as_str(name, "name_scope: name")))
        stack = self._scope_stack()
        stack.append(full)
        try:
            yield full
        finally:
            stack.pop()

    @contextlib.contextmanager
    def absolute_scope(self, full: str, unique: bool = True) -> Iterator[str]:
        """Build inside the scope whose full name is `full` (made unique unless told not to)."""
        full = self.unique_name(full) if unique else full
        saved = self._scope_stack()
        self._local.scopes = [full]
        try:
            yield full
        finally:
            self._local.scopes = saved

    # building ----------------------------------------------------------------------
    def add_node(self, op, inputs: Sequence[Node], name: Optional[str] = None, *,
                 spec: Optional[Spec] = None) -> Node:
        """Apply `op` to `inputs`: infer the output spec (unless `spec` is given, e.g. when a
        pass copies a node), name the node uniquely inside the current scope, record it."""
        for x in inputs:
            if not isinstance(x, Node):
                raise TypeError(f"{op.kind}: inputs must be nodes, got {type(x).__name__}")
            if x.graph is not self:
                raise GraphError(f"{op.kind}: input {x.name!r} belongs to another graph")
        base = self._qualify(name or op.kind)
        if spec is None:
            try:
                spec = op.infer(*[x.spec for x in inputs])
            except ShapeError as exc:
                shown = self._peek_name(base)
                raise ShapeError(f"{op.kind} {shown!r}: {exc}") from None
        return self._record(op, inputs, base, spec)

    def add_named(self, op, inputs: Sequence[Node], full_name: str, spec: Spec) -> Node:
        """Record a node under the full name `full_name` (a suffix is added if it is taken) with a
        known spec, outside any scope: how a pass copies nodes into a new graph."""
        for x in inputs:
            if not isinstance(x, Node) or x.graph is not self:
                raise GraphError(f"{op.kind}: input {getattr(x, 'name', x)!r} is not a node of this graph")
        return self._record(op, inputs, full_name, spec)

    def _record(self, op, inputs: Sequence[Node], full_name: str, spec: Spec) -> Node:
        """Append the node under `full_name` (made unique) and index it, atomically."""
        spec = Spec(tuple(spec.shape), np.dtype(spec.dtype))
        with self._lock:
            full = self.unique_name(full_name)
            node = Node(self, op, inputs, full, spec, len(self.nodes))
            self.nodes.append(node)
            self._by_name[full] = node
            for x in dict.fromkeys(inputs):
                self._consumers.setdefault(x.index, []).append(node)
            self._nx = None
        return node

    def _peek_name(self, full: str) -> str:
        if full not in self._used_names:
            return full
        i = self._used_names[full] + 1
        while f"{full}_{i}" in self._used_names:
            i += 1
        return f"{full}_{i}"

    # queries -------------------------------------------------------------------------
    @property
    def nx(self):
        """A networkx DiGraph over node indices with an edge input -> consumer (derived from
        `Node.inputs`, rebuilt after nodes are added)."""
        view = self._nx
        if view is None:
            view = nx.DiGraph()
            view.add_nodes_from(range(len(self.nodes)))
            view.add_edges_from((x.index, n.index) for n in self.nodes for x in n.inputs)
            self._nx = view
        return view

    def ancestors(self, nodes: Iterable[Node], stop: Iterable[Node] = ()) -> List[Node]:
        """`nodes` and everything they depend on, not looking past `stop`, in creation order."""
        stop_idx = {n.index for n in stop}
        found = set()
        todo = [n for n in nodes]
        while todo:
            n = todo.pop()
            if n.index in found:
                continue
            found.add(n.index)
            if n.index not in stop_idx:
                todo.extend(x for x in n.inputs if x.index not in found)
        return [self.nodes[i] for i in sorted(found)]

    def descendants(self, nodes: Iterable[Node]) -> List[Node]:
        """`nodes` and everything that depends on them, in creation order."""
        found = set()
        todo = list(nodes)
        while todo:
            n = todo.pop()
            if n.index in found:
                continue
            found.add(n.index)
            todo.extend(c for c in self._consumers.get(n.index, ()) if c.index not in found)
        return [self.nodes[i] for i in sorted(found)]

    def consumers(self, node: Node) -> List[Node]:
        """The nodes that take `node` as an input, in creation order."""
        return list(self._consumers.get(node.index, ()))


_default_stack: contextvars.ContextVar[Tuple[Graph, ...]] = contextvars.ContextVar("minigraph_graphs", default=())
_global_default: List[Graph] = []
_global_lock = threading.Lock()


def get_default_graph() -> Graph:
    """The innermost `with Graph()` graph of this thread, or a global one created on first use."""
    stack = _default_stack.get()
    if stack:
        return stack[-1]
    with _global_lock:
        if not _global_default:
            _global_default.append(Graph())
        return _global_default[0]


def reset_default_graph() -> None:
    """Forget the global default graph (graphs entered with `with` are unaffected)."""
    with _global_lock:
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
