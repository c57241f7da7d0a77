"""GEMM against Winograd for every 3x3 stride-1 convolution of the benchmark's networks (and a
few probe shapes): the figures behind the kernel selector's rule (`ops.conv.select_winograd`).

    .venv/bin/python benchmarks/conv_algorithms.py                 # default runtime (all CPUs)
    .venv/bin/python benchmarks/conv_algorithms.py --threads 1     # one thread
    taskset -c 1 .venv/bin/python benchmarks/conv_algorithms.py --threads 1 --json one.json

For each layer (GoogLeNet's 3x3 convs at batch 8, Inception(3a)'s at batch 32, the naive-conv
row's), each step (forward, input gradient, filter gradient) is run through the registered
kernels of both algorithms ("gemm": the exact kernels, as `algorithm="gemm"` forces them) on
channels-last float32 arrays, as they arrive inside a network, with BLAS held at one thread as
in a session run; repetitions alternate the two algorithms and the table shows medians, the
ratio winograd / gemm, and what `select_winograd` picks. The load average and the CPU use of
other processes are printed with the figures (`machine_load.py`).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from machine_load import MachineLoad  # noqa: E402

# (name, N, C, H, F): SAME 3x3 stride-1 convs (pad 1)
LAYERS = [
    ("googlenet conv2", 8, 64, 56, 192),
    ("googlenet 3a", 8, 96, 28, 128),
    ("googlenet 3b", 8, 128, 28, 192),
    ("googlenet 4a", 8, 96, 14, 208),
    ("googlenet 4b", 8, 112, 14, 224),
    ("googlenet 4c", 8, 128, 14, 256),
    ("googlenet 4d", 8, 144, 14, 288),
    ("googlenet 4e", 8, 160, 14, 320),
    ("googlenet 5a", 8, 160, 7, 320),
    ("googlenet 5b", 8, 192, 7, 384),
    ("inception3a b32", 32, 96, 28, 128),
    ("naive-conv row", 4, 16, 28, 32),
    # probes for the rule: other batches at the same spatial sizes, narrow channels
    ("probe 28x28 b2", 2, 96, 28, 128),
    ("probe 28x28 narrow b32", 32, 16, 28, 32),
    ("probe 14x14 b32", 32, 128, 14, 256),
    ("probe 7x7 b64", 64, 192, 7, 384),
]
STEPS = ("forward", "backprop_input", "backprop_filter")
KINDS = {"forward": "conv2d", "backprop_input": "conv2d_backprop_input", "backprop_filter": "conv2d_backprop_filter"}


def channels_last(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def make_step(step: str, n: int, c: int, h: int, f: int, rng):
    """(op, arrays, shapes for the selector) of one step of a SAME 3x3 conv (N, C, H, H) -> F."""
    from minigraph.ops.conv import Conv2D, Conv2DBackpropFilter, Conv2DBackpropInput

    pads = ((1, 1), (1, 1))
    x = channels_last(rng.standard_normal((n, c, h, h)).astype(np.float32))
    w = (rng.standard_normal((f, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    g = channels_last(rng.standard_normal((n, f, h, h)).astype(np.float32))
    if step == "forward":
        return Conv2D((1, 1), pads), (x, w)
    if step == "backprop_input":
        return Conv2DBackpropInput((h, h), (1, 1), pads), (g, w)
    return Conv2DBackpropFilter((3, 3), (1, 1), pads), (x, g)


def kernel(kind: str, algorithm: str):
    from minigraph import dispatch
    return next(k for k in dispatch.kernels_for(kind, "numpy") if k.algorithm == algorithm)


def measure(rt, reps: int, only=None):
    from minigraph import dispatch

    rows = []
    rng = np.random.default_rng(0)
    for name, n, c, h, f in LAYERS:
        if only and not any(o in name for o in only):
            continue
        for step in STEPS:
            op, arrays = make_step(step, n, c, h, f, rng)
            shapes = tuple(a.shape for a in arrays)
            chosen = dispatch.select(op, shapes, "numpy", {}, rt).algorithm
            fns = {algo: (lambda k=kernel(op.kind, algo): k.fn(rt, op, *arrays)) for algo in ("gemm", "winograd")}
            times = {algo: [] for algo in fns}
            with rt.run_scope():
                for fn in fns.values():
                    fn()
                for rep in range(reps):
                    order = list(fns) if rep % 2 == 0 else list(fns)[::-1]
                    for algo in order:
                        t0 = time.perf_counter()
                        fns[algo]()
                        times[algo].append(time.perf_counter() - t0)
            ms = {algo: 1e3 * statistics.median(t) for algo, t in times.items()}
            rows.append({"layer": name, "shape": [n, c, h, h, f], "step": step, "ms": ms,
                         "ratio": ms["winograd"] / ms["gemm"], "selected": chosen,
                         "ms_all": {a: [1e3 * s for s in t] for a, t in times.items()}})
            print(f"| {name} | {n}x{c}x{h}x{h} -> {f} | {step} | {ms['gemm']:.2f} | {ms['winograd']:.2f} | "
                  f"{ms['winograd'] / ms['gemm']:.2f} | {chosen} |", flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, help="CpuRuntime threads (default: the default runtime's)")
    p.add_argument("--reps", type=int, default=9, help="timed repetitions per algorithm (default 9)")
    p.add_argument("--only", action="append", help="layers whose name contains this (repeatable)")
    p.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    args = p.parse_args(argv)

    import minigraph as mg
    rt = mg.CpuRuntime(threads=args.threads) if args.threads else mg.runtime.default_runtime(np)
    print(f"numpy {np.__version__}, {rt!r}, CPUs available: {len(os.sched_getaffinity(0))}, "
          f"{args.reps} reps, float32, medians\n")
    print("| layer | input -> filters | step | gemm ms | winograd ms | winograd / gemm | selected |")
    print("|---|---|---|---:|---:|---:|---|")
    with MachineLoad() as load:
        rows = measure(rt, args.reps, args.only)
    print(f"\n{load}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runtime": repr(rt), "reps": args.reps, "load": load.summary(), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
