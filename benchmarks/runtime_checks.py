"""Runtime measurements behind the runtime issue's note (no PyTorch needed):

  plans    memory kept by the plan cache after fetching 200 different nodes of a 20k-op chain
  threads  runs/s of mini_inception (batch 64) called from the main thread and from a worker
           thread, and whether their results are the same bits
  numerics cost of check-numerics on a mini_inception training step (off vs on)
  overhead per-run cost of Session.run on a tiny graph (optimised, unoptimised)

Usage: .venv/bin/python benchmarks/runtime_checks.py [plans|threads|numerics|overhead ...]
Prints one JSON line per check, with the load average before and after.
"""
from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import threading
import time
import tracemalloc

import numpy as np

import minigraph as mg
from minigraph import ops


def load() -> float:
    return os.getloadavg()[0]


def plans(chain: int = 10_000, fetches: int = 200) -> dict:
    """A chain of `chain` relu(h * c) pairs (2 x chain ops), `fetches` different nodes fetched."""
    with mg.Graph() as g:
        x = mg.placeholder((4,), name="x")
        h, nodes = x, []
        for _ in range(chain):
            h = ops.relu(h * 1.0001)
            nodes.append(h)
    sess = mg.Session(g)
    feed = {x: np.ones(4, "float32")}
    step = max(1, len(nodes) // fetches)
    picks = nodes[::step][:fetches]
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    for node in picks:
        sess.run(node, feed)
    seconds = time.perf_counter() - start
    gc.collect()
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"check": "plans", "ops": 2 * chain, "fetches": len(picks), "kept_mib": kept / 2**20,
            "peak_mib": peak / 2**20, "seconds": seconds}


def threads_check(reps: int = 7, runs: int = 100) -> dict:
    with mg.Graph() as g:
        m = mg.models.mini_inception(rng=0)
    sess = mg.Session(g)
    x = np.random.default_rng(0).random((64, 1, 8, 8), dtype=np.float32)
    ref = sess.run(m.probs, {m.x: x})
    rates = {"main": [], "worker": []}
    same = True

    def burst(where):
        nonlocal same
        t0 = time.perf_counter()
        for _ in range(runs):
            out = sess.run(m.probs, {m.x: x})
        rates[where].append(runs / (time.perf_counter() - t0))
        same = same and np.array_equal(out, ref)

    for _ in range(reps):  # interleaved
        burst("main")
        t = threading.Thread(target=burst, args=("worker",))
        t.start()
        t.join()
    return {"check": "threads", "runs_per_s_main": rates["main"], "runs_per_s_worker": rates["worker"],
            "median_main": statistics.median(rates["main"]), "median_worker": statistics.median(rates["worker"]),
            "bitwise_equal": same}


def numerics(reps: int = 9, steps: int = 20) -> dict:
    with mg.Graph() as g:
        m = mg.models.mini_inception(rng=0)
        train = mg.optim.Adam(1e-3).minimize(m.loss)
    rng = np.random.default_rng(0)
    feed = {m.x: rng.random((32, 1, 8, 8), dtype=np.float32), m.y: rng.integers(0, 10, 32)}
    try:
        sessions = {"off": mg.Session(g), "on": mg.Session(g, check_numerics=True)}
    except TypeError:  # a minigraph without check-numerics
        return {"check": "numerics", "skipped": "no check_numerics in this version"}
    times = {k: [] for k in sessions}
    for s in sessions.values():
        s.run(train, feed)
    for _ in range(reps):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                s.run(train, feed)
            times[k].append((time.perf_counter() - t0) / steps * 1e3)
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    return {"check": "numerics", "ms_per_step_off": off, "ms_per_step_on": on, "ratio": on / off}


def overhead(n: int = 5000) -> dict:
    with mg.Graph() as g:
        x = mg.placeholder((2, 3), dtype="float64")
        y = ops.sum(ops.relu(x) * 2.0 + x)
    feed = {x: np.ones((2, 3))}
    out = {"check": "overhead"}
    for label, kwargs in [("optimized", {}), ("unoptimized", {"optimize": False})]:
        try:
            sess = mg.Session(g, **kwargs)
        except TypeError:  # a minigraph without graph passes
            continue
        sess.run(y, feed)
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n // 5):
                sess.run(y, feed)
            samples.append((time.perf_counter() - t0) / (n // 5) * 1e6)
        out[f"us_per_run_{label}"] = statistics.median(samples)
    return out


CHECKS = {"plans": plans, "threads": threads_check, "numerics": numerics, "overhead": overhead}


def main(argv) -> int:
    for name in argv or list(CHECKS):
        before = load()
        result = CHECKS[name]()
        result.update(load_before=before, load_after=load(), cpus=os.cpu_count())
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
