"""The executor: a plan schedules, runs and frees; it knows no op by name.

A `Plan` is made once per kind of run (fetches, fed placeholders) from the nodes to run
(the optimised copy by default): a topological order with pure nodes first and
state-writing nodes as late as possible, each value's slot released after its last use,
and for each fetch whether its value may be a buffer the session holds (then it is copied
before it is handed out). Kernels are chosen per node by `minigraph.dispatch.select` the
first time the plan runs with a given set of input shapes, and kept for later runs.
"""
from __future__ import annotations

import collections
import dataclasses
import heapq
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from . import dispatch
from .errors import FeedError, MinigraphError, ShapeError
from .graph import Node
from .spec import Spec, fmt

_UNSET = object()


@dataclasses.dataclass
class RunContext:
    """What an op's `run` may use: the array namespace, the runtime, the generator, and the
    session's variables, constants and `state` dict (optimizer slots, step counts), reached
    through the accessors the session hands over."""

    xp: Any
    runtime: Any
    rng: Any
    plan: "Plan"
    graph: Any  # the session's graph (a plan may run a copy of it)
    backend: Any
    state: dict
    _read: Callable[[Node], Any]
    _write: Callable[[Node, Any], None]
    _constant: Callable[[Node], Any]

    def read_variable(self, node: Node):
        """The current value of the variable `node` (the session's buffer: do not write into it)."""
        return self._read(self.plan.origin.get(node, node))

    def write_variable(self, node: Node, value) -> None:
        """Make `value` (an array no one else holds) the variable's new value."""
        self._write(self.plan.origin.get(node, node), value)

    def constant(self, node: Node):
        """The constant's value on the session's device (a user constant is moved there once
        per session, one a pass made once per plan)."""
        user = self.plan.origin.get(node, node)
        if user.graph is self.graph:
            return self._constant(user)
        return self.plan.device_constant(node, self.backend)


class Step:
    """One node of a plan: where its inputs are, what to release after it."""

    __slots__ = ("node", "op", "inputs", "release", "feed")

    def __init__(self, node: Node, inputs: Tuple[int, ...], release: Tuple[int, ...], feed: Optional[int]):
        self.node, self.op = node, node.op
        self.inputs, self.release, self.feed = inputs, release, feed


class Plan:
    """How to run `fetches` given values for `fed` (nodes of the graph the plan runs)."""

    MAX_SIGNATURES = 16  # kernel choices kept per plan (one per distinct set of feed shapes)

    def __init__(self, fetches: Sequence[Node], fed: Sequence[Node], origin: Mapping[Node, Node],
                 backend: str, forced: Mapping[str, str], feed_keys: Optional[Sequence[Node]] = None):
        """`origin` maps plan nodes to the user's nodes they stand for (variables, constants,
        placeholders; empty when the plan runs the user's nodes); `feed_keys` are the user's
        placeholders whose values feed `fed`, in that order (default: `fed` themselves)."""
        order = schedule(fetches, fed)
        slot = {n: i for i, n in enumerate(order)}
        feed_pos = {n: i for i, n in enumerate(fed)}
        last_use: Dict[Node, int] = {}
        for pos, node in enumerate(order):
            if node not in feed_pos:
                for x in node.inputs:
                    last_use[x] = pos
        fetch_set = set(fetches)
        release: List[List[int]] = [[] for _ in order]
        for node, pos in last_use.items():
            if node not in fetch_set:
                release[pos].append(slot[node])
        steps = []
        for pos, node in enumerate(order):
            drop = sorted(set(release[pos]))
            if node not in last_use and node not in fetch_set:
                drop.append(pos)  # a value nobody reads (a side-effect node's result)
            fed_at = feed_pos.get(node)
            inputs = () if fed_at is not None else tuple(slot[x] for x in node.inputs)
            steps.append(Step(node, inputs, tuple(drop), fed_at))
        self.steps: Tuple[Step, ...] = tuple(steps)
        self.fetch_slots = tuple(slot[f] for f in fetches)
        self.fed = tuple(fed)
        self.feed_keys = tuple(feed_keys if feed_keys is not None else fed)
        self.origin = origin
        self._constants: Dict[Node, Any] = {}
        self.backend = backend
        self.forced = dict(forced)
        self.writes_state = any(n.op.side_effects for n in order)
        self.uses_blas = any(n.op.uses_blas for n in order)
        aliased = _may_alias_held(order, feed_pos)
        self.fetch_may_alias = tuple(aliased[slot[f]] for f in fetches)
        self._tables: "collections.OrderedDict[tuple, list]" = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def nodes(self) -> List[Node]:
        """The nodes in the order they run."""
        return [s.node for s in self.steps]

    def device_constant(self, node: Node, backend):
        """A constant of the plan's own graph on the backend's device, moved there once."""
        value = self._constants.get(node)
        if value is None:
            with self._lock:
                value = self._constants.get(node)
                if value is None:
                    value = self._constants[node] = backend.asarray(node.op.value)
        return value

    def kernel_table(self, signature: tuple) -> list:
        """The kernel chosen for each step for feeds of `signature` (filled in as the first run
        with those shapes reaches each step)."""
        with self._lock:
            table = self._tables.get(signature)
            if table is None:
                table = self._tables[signature] = [_UNSET] * len(self.steps)
                while len(self._tables) > self.MAX_SIGNATURES:
                    self._tables.popitem(last=False)
            else:
                self._tables.move_to_end(signature)
            return table

    def kernels(self, signature: tuple) -> Dict[str, str]:
        """{node name: algorithm} for the steps that ran with feeds of `signature` ('generic' for
        the op's own forward); empty before the first such run."""
        table = self._tables.get(signature, ())
        return {s.node.name: (dispatch.GENERIC if k is None else k.algorithm)
                for s, k in zip(self.steps, table) if k is not _UNSET and s.feed is None}

    def execute(self, ctx: RunContext, feeds: Sequence[Any], signature: tuple,
                timings: Optional[dict] = None, check: Optional[Callable] = None) -> list:
        """Run every step; returns the fetched values (not yet copied or moved to the host).

        The first run with feeds of a `signature` checks every node's input shapes against the
        op's shape rule (a `FeedError` naming the placeholders when fed sizes disagree) while it
        chooses the kernels. With `timings`, adds each step's seconds to
        timings[(op kind, algorithm)] = [s, calls] (a device backend is timed as the host sees
        it: launches, not the device's work). With `check`, calls check(plan, step, value, inputs)
        after every step (and fed value)."""
        table = self.kernel_table(signature)
        slots: List[Any] = [None] * len(self.steps)
        rt = ctx.runtime
        clock = time.perf_counter if timings is not None else None
        i = 0
        try:
            for i, step in enumerate(self.steps):
                if step.feed is not None:
                    slots[i] = feeds[step.feed]
                else:
                    args = [slots[j] for j in step.inputs]
                    kernel = table[i]
                    if kernel is _UNSET:
                        self._check_shapes(step, args, feeds)
                        kernel = table[i] = dispatch.select(step.op, tuple(a.shape for a in args),
                                                            self.backend, self.forced, rt)
                    start = clock() if clock else 0.0
                    if check is not None and step.op.overwrites_input is not None:
                        k = step.op.overwrites_input
                        before = list(args)
                        before[k] = args[k].copy()  # what the check reports, if it must
                    if kernel is None:
                        slots[i] = step.op.run(ctx, step.node, args)
                    else:
                        slots[i] = kernel.fn(rt, step.op, *args)
                    if clock:
                        entry = timings.setdefault((step.op.kind, dispatch.GENERIC if kernel is None
                                                    else kernel.algorithm), [0.0, 0])
                        entry[0] += clock() - start
                        entry[1] += 1
                if check is not None:
                    check(self, step, slots[i], () if step.feed is not None else
                          before if step.op.overwrites_input is not None else args)
                for j in step.release:
                    slots[j] = None
        except MinigraphError as exc:
            raise _in_context(exc, self.steps[i]) from None
        except Exception as exc:  # a bug or an unvalidated input: say where it happened
            exc.add_note(f"(minigraph: while running {self.steps[i].op.kind} {self.steps[i].node.name!r})")
            raise
        return [slots[i] for i in self.fetch_slots]

    def _check_shapes(self, step: Step, args, feeds) -> None:
        """The op's shape rule on the run-time inputs: fed sizes that disagree are a FeedError
        naming the placeholders whose values reach the node."""
        try:
            step.op.infer(*[Spec(tuple(a.shape), a.dtype) for a in args])
        except ShapeError as exc:
            shown = " and ".join(f"{self.feed_keys[k].name!r} {fmt(tuple(feeds[k].shape))}"
                                 for k in self.feeds_behind(step.node))
            raise FeedError(f"{step.op.kind} {step.node.name!r}: {exc}"
                            + (f" (fed values: {shown})" if shown else "")) from None

    def feeds_behind(self, node: Node) -> List[int]:
        """The positions in `fed` of the placeholders whose values `node` depends on."""
        found = set(node.graph.ancestors([node], stop=self.fed))
        return [k for k, n in enumerate(self.fed) if n in found]


def _in_context(exc, step: Step):
    """`exc` again, its message prefixed with the node it was raised for (unless it names it)."""
    text = str(exc)
    if step.node.name in text:
        return exc
    return type(exc)(f"{step.op.kind} {step.node.name!r}: {text}")


def _may_alias_held(order: Sequence[Node], feed_pos) -> List[bool]:
    """For each node, whether its value may be (a view of) a buffer someone else holds: the
    session (a variable, a constant, state) or the caller (a fed array)."""
    index = {n: i for i, n in enumerate(order)}
    out = []
    for node in order:
        if node in feed_pos:
            out.append(True)
            continue
        op = node.op
        out.append(op.returns_state or (op.view and any(out[index[x]] for x in node.inputs)))
    return out


def schedule(fetches: Sequence[Node], fed: Sequence[Node]) -> List[Node]:
    """The nodes `fetches` need (not looking past `fed`) in a topological order: creation order,
    except that state-writing nodes run as late as possible (after every pure node)."""
    graph = fetches[0].graph
    needed = graph.ancestors(fetches, stop=fed)
    if not any(n.op.side_effects for n in needed):
        return needed  # creation order is topological
    fed_set = set(fed)
    members = set(needed)
    indeg = {n: 0 for n in needed}
    readers: Dict[Node, List[Node]] = {}
    for n in needed:
        if n in fed_set:
            continue
        for x in dict.fromkeys(n.inputs):
            if x in members:
                indeg[n] += 1
                readers.setdefault(x, []).append(n)
    ready = [(int(n.op.side_effects), n.index, n) for n, d in indeg.items() if d == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, _, n = heapq.heappop(ready)
        order.append(n)
        for r in readers.get(n, ()):
            indeg[r] -= 1
            if indeg[r] == 0:
                heapq.heappush(ready, (int(r.op.side_effects), r.index, r))
    return order


__all__ = ["Plan", "RunContext", "Step", "schedule"]
