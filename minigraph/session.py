"""Sessions: evaluate nodes of a graph on a backend, holding variables and optimizer state.

`Session.run` plans each distinct (fetches, fed placeholders) once: only the ancestors of
the fetches, in topological order (pure nodes before state-writing ones), each
intermediate released right after its last use.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np

from .backend import Backend, get_backend
from .errors import FeedError, GraphError
from .graph import Graph, Node, get_default_graph
from .op import Placeholder, PlaceholderWithDefault, Variable
from .spec import fmt

FEEDABLE = (Placeholder, PlaceholderWithDefault)


@dataclasses.dataclass
class RunContext:
    """What an op's `run` may use: the array namespace, the session and its generator."""

    xp: Any
    session: "Session"
    rng: Any
    fuse_relu: bool = False  # set for an op with `fuses_relu`: return relu(output) instead


@dataclasses.dataclass(frozen=True)
class Plan:
    """The steps of one kind of run: (node, input indices, indices to release after)."""

    steps: Tuple[Tuple[Node, Tuple[int, ...], Tuple[int, ...], bool], ...]
    fetch_indices: Tuple[int, ...]
    relu_fused: FrozenSet[int] = frozenset()    # producers that apply the following relu themselves
    relu_aliases: FrozenSet[int] = frozenset()  # those relus: their value is their input's


class Session:
    """Runs nodes of `graph` (default: the default graph) on `backend` ('numpy' or 'cupy').

    >>> sess = mg.Session(g)
    >>> out = sess.run(h, feed={x: batch})

    `backend=None` means the environment variable MINIGRAPH_BACKEND, else 'numpy'.
    `seed` seeds the session's random generator (dropout and other random ops).
    """

    def __init__(self, graph: Optional[Graph] = None, backend: Optional[str] = None, seed: int = 0):
        self.graph = graph if graph is not None else get_default_graph()
        if not isinstance(self.graph, Graph):
            raise TypeError(f"Session expects a Graph, got {type(self.graph).__name__}")
        if backend is None:
            backend = os.environ.get("MINIGRAPH_BACKEND") or "numpy"
        self.backend: Backend = get_backend(backend)
        self.xp = self.backend.xp
        self.rng = self.backend.make_rng(seed)
        self.state: Dict[Any, Any] = {}  # optimizer slots and other per-session state
        self._variables: Dict[Node, Any] = {}
        self._constants: Dict[Node, Any] = {}
        self._plans: Dict[tuple, Plan] = {}

    def __repr__(self) -> str:
        return f"<Session backend={self.backend.name} graph={self.graph!r}>"

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Drop the session's arrays (variables, state, cached plans)."""
        self._variables.clear()
        self._constants.clear()
        self.state.clear()
        self._plans.clear()

    # variables ---------------------------------------------------------------------
    def _variable_value(self, node: Node):
        value = self._variables.get(node)
        if value is None:
            value = self.backend.asarray(np.array(node.op.initial_value))
            self._variables[node] = value
        return value

    def _constant_value(self, node: Node):
        value = self._constants.get(node)
        if value is None:
            value = self.backend.asarray(node.op.value)
            self._constants[node] = value
        return value

    @property
    def variables(self) -> List[Node]:
        """Every variable node of the graph, in creation order."""
        return [n for n in self.graph.nodes if isinstance(n.op, Variable)]

    def get_value(self, var: Node) -> np.ndarray:
        """A host copy of a variable's current value."""
        self._check_variable(var)
        return np.array(self.backend.to_host(self._variable_value(var)))

    def set_value(self, var: Node, value) -> None:
        """Overwrite a variable's value (shape and dtype must match its initial value)."""
        self._check_variable(var)
        arr = np.asarray(value)
        if arr.shape != var.shape:
            raise ValueError(f"variable {var.name!r} has shape {fmt(var.shape)}, value has {fmt(arr.shape)}")
        self._variables[var] = self.backend.asarray(arr.astype(var.dtype, copy=True))

    def _check_variable(self, var: Node) -> None:
        if not isinstance(var, Node) or not isinstance(var.op, Variable):
            raise TypeError(f"expected a variable node, got {var!r}")
        if var.graph is not self.graph:
            raise GraphError(f"variable {var.name!r} belongs to another graph than this session's")

    # running ------------------------------------------------------------------------
    def run(self, fetches, feed: Optional[dict] = None, to_host: bool = True):
        """Evaluate `fetches` (a node, a list/tuple or a dict of nodes), feeding placeholders.

        Returns arrays in the same structure. With `to_host=False` a device backend returns
        device arrays.
        """
        flat, rebuild = _flatten(fetches)
        for node in flat:
            if not isinstance(node, Node):
                raise TypeError(f"fetches must be nodes, got {type(node).__name__}")
            if node.graph is not self.graph:
                raise GraphError(f"cannot fetch {node.name!r}: it belongs to another graph than this session's")
        fed = self._check_feed(feed or {})
        key = (tuple(n.index for n in flat), frozenset(n.index for n in fed))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._make_plan(flat, fed)
        ctx = RunContext(self.xp, self, self.rng)
        ctx_relu = RunContext(self.xp, self, self.rng, fuse_relu=True)
        values: Dict[int, Any] = {}
        with self._kernel_scope():  # NumPy: the CNN kernels pin BLAS once per run, not per call
            for node, inputs, release, is_fed in plan.steps:
                if is_fed:
                    values[node.index] = fed[node]
                elif node.index in plan.relu_aliases:
                    values[node.index] = values[inputs[0]]
                else:
                    run_ctx = ctx_relu if node.index in plan.relu_fused else ctx
                    values[node.index] = node.op.run(run_ctx, node, [values[i] for i in inputs])
                for i in release:
                    del values[i]
        outs = [values[i] for i in plan.fetch_indices]
        outs = [self._deliver(n, v, to_host) for n, v in zip(flat, outs)]
        return rebuild(outs)

    def _kernel_scope(self):
        if self.xp is np:
            from minigraph.ops.threads import blas_scope
            return blas_scope()
        return contextlib.nullcontext()

    def _deliver(self, node: Node, value, to_host: bool):
        if isinstance(node.op, Variable):  # never hand out the session's own buffer
            value = value.copy()
        return self.backend.to_host(value) if to_host else value

    def _make_plan(self, fetches: Sequence[Node], fed: Dict[Node, Any]) -> Plan:
        needed = self.graph.ancestors(fetches, stop=fed)
        for node in needed:
            if isinstance(node.op, Placeholder) and node not in fed:
                raise FeedError(f"placeholder {node.name!r} {fmt(node.shape)} must be fed: "
                                f"it is needed for {', '.join(repr(f.name) for f in fetches)}")
        order = _schedule(self.graph, needed)
        fetch_set = {n.index for n in fetches}
        last_use: Dict[int, int] = {}
        for pos, node in enumerate(order):
            if node not in fed:
                for x in node.inputs:
                    last_use[x.index] = pos
        release: List[List[int]] = [[] for _ in order]
        for idx, pos in last_use.items():
            if idx not in fetch_set:
                release[pos].append(idx)
        steps = []
        for pos, node in enumerate(order):
            is_fed = node in fed
            inputs = () if is_fed else tuple(x.index for x in node.inputs)
            # a value nobody reads (a side-effect node's output) is dropped at once
            drop = tuple(sorted(set(release[pos])))
            if node.index not in last_use and node.index not in fetch_set:
                drop = drop + (node.index,)
            steps.append((node, inputs, drop, is_fed))
        fused = _relu_fusions(order, fed, fetch_set)
        return Plan(tuple(steps), tuple(n.index for n in fetches),
                    frozenset(fused), frozenset(fused.values()))

    def _check_feed(self, feed: dict) -> Dict[Node, Any]:
        if not isinstance(feed, dict):
            raise TypeError(f"feed must be a dict of placeholder -> value, got {type(feed).__name__}")
        out = {}
        for node, value in feed.items():
            if not isinstance(node, Node):
                raise FeedError(f"feed keys must be placeholder nodes, got {node!r}")
            if node.graph is not self.graph:
                raise FeedError(f"cannot feed {node.name!r}: it belongs to another graph than this session's")
            if not isinstance(node.op, FEEDABLE):
                raise FeedError(f"cannot feed {node.name!r}: only placeholders can be fed (it is a {node.kind})")
            out[node] = self._check_value(node, value)
        return out

    def _check_value(self, node: Node, value):
        if not self.backend.is_array(value):
            value = np.asarray(value)
        shape = tuple(value.shape)
        if len(shape) != len(node.shape) or any(d is not None and d != s for d, s in zip(node.shape, shape)):
            raise FeedError(f"placeholder {node.name!r} expects shape {fmt(node.shape)}, "
                            f"got a value of shape {fmt(shape)}")
        if value.dtype != node.dtype:
            if not np.can_cast(value.dtype, node.dtype, "same_kind"):
                raise FeedError(f"placeholder {node.name!r} has dtype {node.dtype}; a value of dtype "
                                f"{value.dtype} {fmt(shape)} cannot be cast to it safely")
            value = value.astype(node.dtype)
        return self.backend.asarray(value)


def _relu_fusions(order: Sequence[Node], fed, fetch_set) -> Dict[int, int]:
    """{producer index: relu index} for every relu whose input comes from an op that can apply
    the relu itself (`fuses_relu`, e.g. a conv adding its bias) and that nothing else in the run
    reads but `step` nodes, which give the same result on relu(v) as on v. The producer then
    returns relu(v) and the relu node shares its value."""
    readers: Dict[int, List[Node]] = {}
    for node in order:
        if node not in fed:
            for x in node.inputs:
                readers.setdefault(x.index, []).append(node)
    fused: Dict[int, int] = {}
    for node in order:
        if node.kind != "relu" or node in fed:
            continue
        src = node.inputs[0]
        rest = [r for r in readers.get(src.index, []) if r is not node]
        if (getattr(src.op, "fuses_relu", False) and src not in fed and src.index not in fetch_set
                and len(rest) == len(readers[src.index]) - 1 and all(r.kind == "step" for r in rest)):
            fused[src.index] = node.index
    return fused


def _schedule(graph: Graph, needed: Sequence[Node]) -> List[Node]:
    """A topological order of `needed`: creation order, state-writing nodes as late as possible."""
    if not any(n.op.side_effects for n in needed):
        return list(needed)  # creation order is topological
    import networkx as nx
    sub = graph.nx.subgraph(n.index for n in needed)
    key = {n.index: (int(n.op.side_effects), n.index) for n in needed}
    order = nx.lexicographical_topological_sort(sub, key=lambda i: key[i])
    return [graph.nodes[i] for i in order]


def _flatten(fetches):
    """A flat list of the fetched nodes and a function that rebuilds the structure."""
    if isinstance(fetches, Node):
        return [fetches], lambda outs: outs[0]
    if isinstance(fetches, dict):
        keys = list(fetches)
        return [fetches[k] for k in keys], lambda outs: dict(zip(keys, outs))
    if isinstance(fetches, (list, tuple)):
        kind = type(fetches)
        if kind not in (list, tuple):  # a namedtuple
            return list(fetches), lambda outs: kind(*outs)
        return list(fetches), lambda outs: kind(outs)
    raise TypeError(f"fetches must be a node, a list/tuple or a dict of nodes, got {type(fetches).__name__}")
