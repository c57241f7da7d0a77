"""Sessions: evaluate nodes of a graph on a backend, holding variables and optimizer state.

`Session.run` makes a plan once per distinct (fetches, fed placeholders): the nodes the
fetches need, optimised by the passes of `minigraph.passes` (unless `optimize=False`), run in
topological order by `minigraph.plan.Plan`, each intermediate released after its last use.
Plans are kept in a bounded least-recently-used cache.

Sessions are safe to share between threads: runs that only read state proceed in parallel,
runs that write it (optimizer updates, `assign`) hold the session alone, so no update is
lost. A fetched array never shares memory with the session's variables or with a fed array.
"""
from __future__ import annotations

import collections
import contextlib
import os
import threading
from typing import Any, Dict, List, Mapping, NamedTuple, Optional

import numpy as np

from . import dispatch, env, numerics
from .backend import Backend, get_backend
from .casting import checked_cast
from .cuda.graphs import runner_for
from .errors import FeedError, GraphError, SessionClosedError
from .fetches import flatten_fetches
from .graph import Graph, Node, get_default_graph
from .op import Placeholder, Variable
from .plan import Plan, RunContext
from .runtime import Runtime, default_runtime
from .spec import fmt, shapes_compatible


class Snapshot(NamedTuple):
    """A session's variables (host arrays by node), state (host arrays by key) and generator state."""

    variables: Dict[Node, np.ndarray]
    state: Dict[Any, np.ndarray]
    rng: Optional[dict]


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer goes before new readers."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting = 0

    def acquire(self, write: bool) -> None:
        with self._cond:
            if write:
                self._waiting += 1
                while self._writer or self._readers:
                    self._cond.wait()
                self._waiting -= 1
                self._writer = True
            else:
                while self._writer or self._waiting:
                    self._cond.wait()
                self._readers += 1

    def release(self, write: bool) -> None:
        with self._cond:
            if write:
                self._writer = False
            else:
                self._readers -= 1
            self._cond.notify_all()


class Session:
    """Runs nodes of `graph` (default: the default graph) on `backend` ('numpy' or 'cupy').

    >>> sess = mg.Session(g)
    >>> out = sess.run(h, feed={x: batch})

    backend: None means the environment variable MINIGRAPH_BACKEND, else 'numpy'.
    seed: seeds the session's random generator (dropout and other random ops).
    optimize: run the graph passes on every plan (`mg.optimize` shows their result); None: on,
    unless the environment variable MINIGRAPH_OPTIMIZE is 0.
    runtime: the threads and BLAS settings kernels use (default: the backend's shared runtime,
    e.g. `mg.CpuRuntime(threads=1)` for one thread).
    algorithms: force kernel choices by op kind, e.g. {"conv2d": "gemm"} (see `minigraph.dispatch`).
    max_plans: plans kept (least recently used dropped first); max_plan_nodes bounds the nodes
    of all kept plans together.
    check_numerics: raise `mg.NumericsError` at the first node whose value holds NaN or Inf
    (None: the environment variable MINIGRAPH_CHECK_NUMERICS); off, it costs nothing.
    """

    def __init__(self, graph: Optional[Graph] = None, backend: Optional[str] = None, seed: int = 0,
                 optimize: Optional[bool] = None, runtime: Optional[Runtime] = None,
                 algorithms: Optional[Mapping[str, str]] = None, max_plans: int = 64,
                 max_plan_nodes: int = 100_000, check_numerics: Optional[bool] = None):
        self.graph = graph if graph is not None else get_default_graph()
        if not isinstance(self.graph, Graph):
            raise TypeError(f"Session expects a Graph, got {type(self.graph).__name__}")
        if backend is None:
            backend = os.environ.get("MINIGRAPH_BACKEND") or "numpy"
        self.backend: Backend = get_backend(backend)
        self.xp = self.backend.xp
        self.runtime: Runtime = runtime if runtime is not None else default_runtime(self.xp)
        if self.runtime.xp is not self.xp:
            raise ValueError(f"runtime {self.runtime!r} is for another array namespace than backend {backend!r}")
        if optimize is None:
            optimize = env.switch("MINIGRAPH_OPTIMIZE", default=True)
        self.optimize = bool(optimize)
        self.algorithms: Dict[str, str] = {**dispatch.env_algorithms(), **dict(algorithms or {})}
        self.check_numerics = numerics.enabled(check_numerics)
        self._check = numerics.checker(self.xp) if self.check_numerics else None
        self.rng = self.backend.make_rng(seed)
        self.state: Dict[Any, Any] = {}  # optimizer slots and other per-session state
        self._variables: Dict[Node, Any] = {}
        self._constants: Dict[Node, Any] = {}
        self._plans: "collections.OrderedDict[tuple, Plan]" = collections.OrderedDict()
        self._plan_nodes = 0
        self.max_plans, self.max_plan_nodes = int(max_plans), int(max_plan_nodes)
        self._lock = _ReadWriteLock()
        self._closed = False
        self._plans_lock = threading.Lock()
        self._values_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Session backend={self.backend.name} graph={self.graph!r}>"

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Drop the session's arrays (variables, state, cached plans); using it afterwards is a
        `SessionClosedError`. Closing twice is harmless."""
        self._lock.acquire(write=True)
        try:
            self._closed = True
            self._variables.clear()
            self._constants.clear()
            self.state.clear()
            with self._plans_lock:
                self._plans.clear()
                self._plan_nodes = 0
        finally:
            self._lock.release(write=True)

    # variables ---------------------------------------------------------------------
    def _variable_value(self, node: Node):
        value = self._variables.get(node)
        if value is None:
            with self._values_lock:
                value = self._variables.get(node)
                if value is None:
                    value = self._variables[node] = self.backend.asarray(np.array(node.op.initial_value))
        return value

    def _store_variable(self, node: Node, value) -> None:
        self._variables[node] = value

    def _constant_value(self, node: Node):
        value = self._constants.get(node)
        if value is None:
            with self._values_lock:
                value = self._constants.get(node)
                if value is None:
                    value = self._constants[node] = self.backend.asarray(node.op.value)
        return value

    @property
    def variables(self) -> List[Node]:
        """Every variable node of the graph, in creation order."""
        return [n for n in self.graph.nodes if isinstance(n.op, Variable)]

    def get_value(self, var: Node) -> np.ndarray:
        """A host copy of a variable's current value."""
        return np.array(self.backend.to_host(self.get_device_value(var)))

    def get_device_value(self, var: Node):
        """A copy of a variable's current value on the session's device (a NumPy array on NumPy)."""
        self._check_variable(var)
        self._acquire(write=False)
        try:
            return self._variable_value(var).copy()
        finally:
            self._lock.release(write=False)

    def set_value(self, var: Node, value) -> None:
        """Overwrite a variable's value. The shape must match; the value is cast to the
        variable's dtype only when every value survives (the rule of feeds: 1e300 on a float32
        variable, 1.5 on an int one are ArgumentErrors, not inf and 1)."""
        self._check_variable(var)
        on_device = self.backend.is_array(value)
        arr = value if on_device else np.asarray(value)
        if tuple(arr.shape) != var.shape:
            raise ValueError(f"variable {var.name!r} has shape {fmt(var.shape)}, value has {fmt(tuple(arr.shape))}")
        arr = checked_cast(self.backend.xp if on_device else np, arr, var.dtype, f"variable {var.name!r}")
        new = self.backend.asarray(arr.astype(var.dtype, copy=True))
        self._acquire(write=True)
        try:
            self._variables[var] = new
        finally:
            self._lock.release(write=True)

    def snapshot(self) -> "Snapshot":
        """Host copies of every variable, of `state` and of the generator's state, taken together
        (no run that writes state can interleave): what `mg.save` writes."""
        self._acquire(write=False)
        try:
            variables = {var: np.array(self.backend.to_host(self._variable_value(var))) for var in self.variables}
            state = {key: np.array(self.backend.to_host(value)) for key, value in self.state.items()}
            rng = self.rng.bit_generator.state if isinstance(self.rng, np.random.Generator) else None
        finally:
            self._lock.release(write=False)
        return Snapshot(variables, state, rng)

    def load(self, variables: Mapping[Node, Any], state: Optional[Mapping[str, Any]] = None,
             rng_state: Optional[dict] = None) -> None:
        """Set variables (shapes and dtypes already checked), replace `state` (unless None) and
        the generator's state (unless None) in one step, no run in between: what `mg.restore`
        does."""
        new = {var: self.backend.asarray(np.array(value, dtype=var.dtype)) for var, value in variables.items()}
        for var, value in new.items():
            self._check_variable(var)
            if tuple(value.shape) != var.shape:
                raise ValueError(f"variable {var.name!r} has shape {fmt(var.shape)}, value has {fmt(tuple(value.shape))}")
        self._acquire(write=True)
        try:
            self._variables.update(new)
            if state is not None:
                self.state.clear()
                self.state.update({k: self.backend.asarray(np.array(v)) for k, v in state.items()})
            if rng_state is not None:
                self.rng.bit_generator.state = rng_state
        finally:
            self._lock.release(write=True)

    def _acquire(self, write: bool) -> None:
        """Take the session's lock for a run or a change of values; SessionClosedError (and the
        lock released) once the session is closed."""
        self._lock.acquire(write=write)
        if self._closed:
            self._lock.release(write=write)
            raise SessionClosedError("this session was closed (Session.close, or the end of its `with` "
                                     "block): its variables are gone; make a new Session")

    def _check_variable(self, var: Node) -> None:
        if not isinstance(var, Node) or not isinstance(var.op, Variable):
            raise TypeError(f"expected a variable node, got {var!r}")
        if var.graph is not self.graph:
            raise GraphError(f"variable {var.name!r} belongs to another graph than this session's")

    # running ------------------------------------------------------------------------
    def run(self, fetches, feed: Optional[dict] = None, to_host: bool = True, timings: Optional[dict] = None,
            trace=None):
        """Evaluate `fetches` (a node, or any nesting of lists, tuples, namedtuples and dicts
        of nodes), feeding placeholders from `feed`.

        Returns arrays in the same structure. With `to_host=False` a device backend returns
        device arrays. No returned array shares memory with the session's variables or the fed arrays.
        `timings`, a dict, collects {(op kind, kernel algorithm): [seconds, calls]} (a profile).
        `trace(node, value, inputs)` is called after every step with the node that ran (of the
        graph that runs: the optimised copy unless optimize=False), its value and its input
        values (none for a fed placeholder); it must not change them.
        """
        flat, rebuild = self._fetch_list(fetches)
        fed = self._check_feed(feed or {})
        if not flat:
            return rebuild([])
        plan = self.plan(flat, list(fed))
        values = [fed[n] for n in plan.feed_keys]
        signature = tuple((tuple(v.shape), v.dtype.str) for v in values)
        ctx = RunContext(self.xp, self.runtime, self.rng, plan, self.graph, self.backend, self.state,
                         self._variable_value, self._store_variable, self._constant_value)
        self._acquire(write=plan.writes_state)
        try:
            with self.runtime.run_scope() if plan.uses_blas else contextlib.nullcontext():
                outs = runner_for(self.runtime).execute(plan, ctx, values, signature, timings,
                                                        _with_trace(self._check, trace))
            outs = [v.copy() if alias else v for v, alias in zip(outs, plan.fetch_may_alias)]
        finally:
            self._lock.release(write=plan.writes_state)
        if to_host:
            outs = [self.backend.to_host(v) for v in outs]
        return rebuild(outs)

    def _fetch_list(self, fetches):
        """The fetched nodes (all of this session's graph) and the function rebuilding the structure."""
        flat, rebuild = flatten_fetches(fetches)
        for node in flat:
            if node.graph is not self.graph:
                raise GraphError(f"cannot fetch {node.name!r}: it belongs to another graph than this session's")
        return flat, rebuild

    def plan(self, fetches: List[Node], fed: List[Node]) -> Plan:
        """The (cached) plan that runs `fetches` with `fed` placeholders fed."""
        key = (tuple(n.index for n in fetches), frozenset(n.index for n in fed))
        with self._plans_lock:
            plan = self._plans.get(key)
            if plan is not None:
                self._plans.move_to_end(key)
                return plan
        plan = self._make_plan(fetches, sorted(fed, key=lambda n: n.index))
        with self._plans_lock:
            if key not in self._plans:
                self._plans[key] = plan
                self._plan_nodes += len(plan)
                while len(self._plans) > 1 and (len(self._plans) > self.max_plans
                                                or self._plan_nodes > self.max_plan_nodes):
                    _, old = self._plans.popitem(last=False)
                    self._plan_nodes -= len(old)
            return self._plans[key]

    def kernels(self, fetches, feed: Optional[dict] = None) -> Dict[str, str]:
        """{node name: algorithm} the last runs of `fetches` with feeds shaped like `feed` used
        (names are those of the graph that runs: the optimised copy unless optimize=False)."""
        flat, _ = self._fetch_list(fetches)
        fed = self._check_feed(feed or {})
        if not flat:
            return {}
        plan = self.plan(flat, list(fed))
        values = [fed[n] for n in plan.feed_keys]
        return plan.kernels(tuple((tuple(v.shape), v.dtype.str) for v in values))

    def _make_plan(self, fetches: List[Node], fed: List[Node]) -> Plan:
        needed = self.graph.ancestors(fetches, stop=fed)
        for node in needed:
            if isinstance(node.op, Placeholder) and node not in fed:
                raise FeedError(f"placeholder {node.name!r} {fmt(node.shape)} must be fed: "
                                f"it is needed for {', '.join(repr(f.name) for f in fetches)}")
        if not self.optimize:
            return Plan(fetches, fed, {}, self.backend.name, self.algorithms)
        from .passes import run_passes
        opt = run_passes(fetches, fed, backward=self.runtime.fuses_backward)
        origin = {new: old for old, new in opt.mapping.items() if not old.inputs or old in fed}
        return Plan(opt.outputs, opt.fed, origin, self.backend.name, self.algorithms,
                    feed_keys=[origin[n] for n in opt.fed])

    def _check_feed(self, feed: dict) -> Dict[Node, Any]:
        if not isinstance(feed, dict):
            raise TypeError(f"feed must be a dict of placeholder -> value, got {type(feed).__name__}")
        out = {}
        for node, value in feed.items():
            if not isinstance(node, Node):
                raise FeedError(f"feed keys must be placeholder nodes, got {node!r}")
            if node.graph is not self.graph:
                raise FeedError(f"cannot feed {node.name!r}: it belongs to another graph than this session's")
            if not node.op.feedable:
                raise FeedError(f"cannot feed {node.name!r}: only placeholders can be fed (it is a {node.kind})")
            out[node] = self._check_value(node, value)
        return out

    def _check_value(self, node: Node, value):
        if not self.backend.is_array(value):
            try:
                value = np.asarray(value)
            except (ValueError, TypeError) as exc:  # e.g. ragged nested lists
                raise FeedError(f"placeholder {node.name!r}: the fed value is not an array ({exc})") from None
        shape = tuple(value.shape)
        if not shapes_compatible(node.shape, shape):
            raise FeedError(f"placeholder {node.name!r} expects shape {fmt(node.shape)}, "
                            f"got a value of shape {fmt(shape)}")
        if value.dtype != node.dtype:
            value = lossless_cast(self.backend.xp if self.backend.is_array(value) else np, node, value)
        return self.backend.asarray(value)


def _with_trace(check, trace):
    """The executor's per-step hook: the numerics check and the caller's trace, as they are set."""
    if trace is None:
        return check

    def both(plan, step, value, inputs):
        if check is not None:
            check(plan, step, value, inputs)
        trace(step.node, value, inputs)
    return both


def lossless_cast(xp, node: Node, value):
    """`value` cast to the placeholder's dtype when every value survives (the rule of
    `casting.checked_cast`); otherwise a FeedError naming the placeholder, both dtypes and the
    first value that would not survive."""
    return checked_cast(xp, value, node.dtype, f"placeholder {node.name!r}", FeedError, given="fed ")


__all__ = ["Session", "Snapshot", "lossless_cast"]
