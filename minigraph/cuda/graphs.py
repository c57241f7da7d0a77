"""CUDA Graphs for repeated runs: a plan run again with feeds of the same shapes is captured
once into a CUDA graph and then replayed, one launch instead of hundreds.

The executor hook is one call: `Session.run` hands the plan to `runner_for(runtime).execute(
plan, ctx, feeds, signature, timings, check)` instead of calling `plan.execute(...)` itself. For a CPU
runtime (and with ``MINIGRAPH_CUDA_GRAPHS=0``) that is `plan.execute` unchanged. For a device
runtime, `GraphRunner.execute`:

1. runs a plan normally while it is not eligible (it writes state, holds a random op, or a
   profile or a numerics check was asked for) and for its first `warmup` runs with a given feed signature (the
   first run chooses kernels and builds cuDNN plans, which must not happen inside a capture);
2. then captures one run on a private stream, with a private memory pool (so no one else
   is ever handed the graph's buffers): feeds are copied into static input buffers first,
   the fetched values are the graph's static outputs;
3. replays: copies the new feeds into the static inputs, launches the graph and returns
   copies of the static outputs (results never alias the graph), all on the private stream,
   ordered after the caller's stream and before its next work (`CupyCapture`).

A captured graph reads the session's variable buffers at fixed addresses, so each replay first
checks that every variable the plan reads is still the same buffer (`set_value` or an
optimizer step replace it); if not, the graph is dropped and captured again, and after
`max_recaptures` of those the signature runs uncaptured for good. Any failure while capturing
(a kernel that synchronises with the host, an API CUDA refuses inside a capture) ends the
capture, the run is done normally, and that signature is never captured again: the fallback
is transparent. `stats()` counts captures, replays and fallbacks.
"""
from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any, Dict, Optional

from minigraph.op import Variable
from minigraph.runtime import DeviceRuntime

from .. import env
from . import status


class CupyCapture:
    """Stream capture with CuPy on a private non-blocking stream with a private memory pool.

    Every write into the graphs' memory happens on that one stream (static inputs, captures,
    replays, the copies of the outputs), ordered after the caller's current stream and before
    its next work, so graphs whose buffers the pool shares never run at the same time."""

    def __init__(self):
        self._stream = None
        self._pool = None

    def _setup(self):
        import cupy
        if self._stream is None:
            self._stream = cupy.cuda.Stream(non_blocking=True)
            self._pool = cupy.cuda.MemoryPool()
        return cupy

    @contextlib.contextmanager
    def _on_private_stream(self):
        """Inside: the private stream is current, after all work queued so far on the caller's;
        on leaving, the caller's stream waits for what was queued inside."""
        cupy = self._setup()
        current = cupy.cuda.get_current_stream()
        self._stream.wait_event(current.record())
        try:
            with self._stream:
                yield cupy
        finally:
            current.wait_event(self._stream.record())

    def static_copies(self, values) -> list:
        """Copies of `values` in the private pool (a graph's static inputs)."""
        with self._on_private_stream() as cupy, cupy.cuda.using_allocator(self._pool.malloc):
            return [v.copy() for v in values]

    def capture(self, fn):
        """(graph, fn's result) with fn's device work recorded on the private stream, not run;
        fn's allocations come from the private pool."""
        with self._on_private_stream() as cupy, cupy.cuda.using_allocator(self._pool.malloc):
            self._stream.begin_capture()
            try:
                result = fn()
            except BaseException:
                with contextlib.suppress(Exception):
                    self._stream.end_capture()
                raise
            graph = self._stream.end_capture()
        return graph, result

    def replay(self, graph, inputs, feeds, outputs) -> list:
        """Copy `feeds` into the static `inputs`, launch `graph`, return copies of its `outputs`
        (ordinary allocations, which the caller's stream may use at once)."""
        with self._on_private_stream():
            for static, value in zip(inputs, feeds):
                static[...] = value
            graph.launch(stream=self._stream)
            return [v.copy() for v in outputs]

    def pool_bytes(self) -> int:
        """Device memory held by the captured graphs' private pool."""
        return self._pool.total_bytes() if self._pool is not None else 0


class _Entry:
    """What the runner knows about one (plan, feed signature)."""

    __slots__ = ("runs", "graph", "inputs", "outputs", "variables", "recaptures", "disabled")

    def __init__(self):
        self.runs = self.recaptures = 0
        self.graph = self.inputs = self.outputs = self.variables = None
        self.disabled = False


def eligible(plan) -> bool:
    """Whether a plan may be captured: it writes no state and every op is deterministic."""
    return not plan.writes_state and all(step.op.deterministic for step in plan.steps)


class GraphRunner:
    """Runs plans, capturing and replaying repeated ones (see the module docstring)."""

    def __init__(self, device=None, warmup: int = 1, max_recaptures: int = 2):
        self.device = device if device is not None else CupyCapture()
        self.warmup, self.max_recaptures = int(warmup), int(max_recaptures)
        self._entries: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        self._lock = threading.RLock()
        self._stats = dict(captures=0, replays=0, fallbacks=0, uncaptured_runs=0, invalidated=0)

    def stats(self) -> Dict[str, int]:
        """Counts: captures, replays, fallbacks (failed captures), invalidated graphs, uncaptured runs."""
        with self._lock:
            return dict(self._stats)

    def execute(self, plan, ctx, feeds, signature, timings: Optional[dict] = None, check=None) -> list:
        """What `plan.execute(ctx, feeds, signature, timings, check)` returns, by replay where
        possible (never with a profile or a numerics check: those look at every step)."""
        if timings is not None or check is not None or not eligible(plan):
            return self._direct(plan, ctx, feeds, signature, timings, check)
        with self._lock:
            entry = self._entries.setdefault(plan, {}).setdefault(signature, _Entry())
            entry.runs += 1
            if self._ready(entry, plan, ctx, feeds, signature):
                self._stats["replays"] += 1
                return self.device.replay(entry.graph, entry.inputs, feeds, entry.outputs)
        return self._direct(plan, ctx, feeds, signature)

    def _ready(self, entry: _Entry, plan, ctx, feeds, signature) -> bool:
        """Whether `entry` has a valid graph now (capturing it if it is time); False: run directly."""
        if entry.disabled or entry.runs <= self.warmup:
            return False
        if entry.graph is not None and not self._variables_unchanged(entry, ctx):
            self._drop(entry)
            self._stats["invalidated"] += 1
            entry.recaptures += 1
            if entry.recaptures > self.max_recaptures:
                entry.disabled = True
                return False
        return entry.graph is not None or self._capture(entry, plan, ctx, feeds, signature)

    def _direct(self, plan, ctx, feeds, signature, timings=None, check=None):
        with self._lock:
            self._stats["uncaptured_runs"] += 1
        return plan.execute(ctx, feeds, signature, timings, check)

    def _capture(self, entry: _Entry, plan, ctx, feeds, signature) -> bool:
        variables = [(step.node, ctx.read_variable(step.node)) for step in plan.steps
                     if isinstance(step.op, Variable)]
        try:
            inputs = self.device.static_copies(feeds)
            graph, outputs = self.device.capture(lambda: plan.execute(ctx, inputs, signature, None))
        except Exception as exc:  # any refusal: this signature runs uncaptured from now on
            entry.disabled = True
            self._stats["fallbacks"] += 1
            status.LOG.info("CUDA graph capture failed (%s: %s); running uncaptured", type(exc).__name__, exc)
            return False
        entry.graph, entry.inputs, entry.outputs, entry.variables = graph, inputs, list(outputs), variables
        self._stats["captures"] += 1
        return True

    @staticmethod
    def _variables_unchanged(entry: _Entry, ctx) -> bool:
        return all(ctx.read_variable(node) is value for node, value in entry.variables)

    @staticmethod
    def _drop(entry: _Entry) -> None:
        entry.graph = entry.inputs = entry.outputs = entry.variables = None


class DirectRunner:
    """Runs every plan as it is (CPU runtimes, or CUDA graphs turned off)."""

    @staticmethod
    def execute(plan, ctx, feeds, signature, timings: Optional[dict] = None, check=None) -> list:
        return plan.execute(ctx, feeds, signature, timings, check)


DIRECT = DirectRunner()
_default: Optional[GraphRunner] = None
_default_lock = threading.Lock()


def enabled() -> bool:
    """Whether CUDA graphs are on (MINIGRAPH_CUDA_GRAPHS is not 0)."""
    return env.switch("MINIGRAPH_CUDA_GRAPHS", default=True)


def default_runner() -> GraphRunner:
    """The process's shared GraphRunner (CuPy capture)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = GraphRunner()
        return _default


def runner_for(runtime) -> Any:
    """The runner a session with `runtime` uses: the shared GraphRunner for a device runtime
    while CUDA graphs are on, else `DIRECT`."""
    if isinstance(runtime, DeviceRuntime) and enabled():
        return default_runner()
    return DIRECT


@contextlib.contextmanager
def use_runner(runner: GraphRunner):
    """Make `runner` the shared one while inside (tests give it a stand-in capture device)."""
    global _default
    with _default_lock:
        saved, _default = _default, runner
    try:
        yield runner
    finally:
        with _default_lock:
            _default = saved


__all__ = ["GraphRunner", "CupyCapture", "DirectRunner", "DIRECT", "eligible", "enabled", "default_runner",
           "runner_for", "use_runner"]
