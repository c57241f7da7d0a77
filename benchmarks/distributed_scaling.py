"""Data-parallel scaling on this machine: 2 ranks x 1 thread against 1 rank x 1 thread.

    .venv/bin/python benchmarks/distributed_scaling.py [--reps 5] [--json out.json]

For each case (mini_inception on 8x8 images and Inception(3a) on (32, 192, 28, 28), both
with a global batch of 32, float32, SGD) the driver starts, interleaved and `--reps` times,
`mpirun -n 1` (the plain optimizer: the baseline) and `mpirun -n 2` (DistributedOptimizer
with the default 4 MiB buckets, and with 64 KiB buckets so that several allreduces can
start during the backward pass). Every rank is bound to its own core (`--bind-to core`)
and BLAS to one thread, so "1 thread" holds for the kernels too.

A control row runs 2 independent processes x 1 thread, each training on 16 images with
the plain optimizer and no communication at all: the most 2 ranks could gain on this
machine (2 cores shared by two processes: memory bandwidth, caches, other jobs).

Each worker times `--steps` training steps after `--warmup` and reports the median step;
the 2-rank workers also report, per step, the allreduce time (start to end on the
communication thread: it includes waiting for the other rank), the part of it that
overlapped the backward pass (before the training thread first waited for a bucket) and
the time the training thread was blocked waiting. The driver records the load average and
the CPU time that other processes used during each run (from /proc/stat, minus this
benchmark's own processes), since the machine is shared.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

CASES = {
    "mini_inception": dict(steps=150, warmup=20),
    "inception3a": dict(steps=12, warmup=3),
}
GLOBAL_BATCH = 32


# ---------------------------------------------------------------------------------
# worker (one rank)


def build(case: str, dtype="float32"):
    """(graph, loss, feed function(rank, size) -> feed dict, extra placeholders) of `case`."""
    import minigraph as mg
    from minigraph import ops
    rng = np.random.default_rng(0)
    with mg.Graph() as g:
        if case == "mini_inception":
            m = mg.models.mini_inception(rng=1)
            x = rng.random((GLOBAL_BATCH, 1, 8, 8), dtype=np.float32)
            y = rng.integers(0, 10, GLOBAL_BATCH)

            def feed(lo, hi):
                return {m.x: x[lo:hi], m.y: y[lo:hi], m.training: True, m.first_example: lo}
            return g, m.loss, feed
        xin = mg.placeholder((None, 192, 28, 28), name="x")
        out = mg.models.inception_module(xin, 64, 96, 128, 16, 32, 32, name="inception_3a", rng=1)
        loss = ops.mean(ops.square(out))
        x = rng.standard_normal((GLOBAL_BATCH, 192, 28, 28)).astype(np.float32)

        def feed(lo, hi):
            return {xin: x[lo:hi]}
        return g, loss, feed


def worker(args) -> None:
    import minigraph as mg
    from minigraph import distributed
    distributed_run = args.bucket_bytes > 0
    comm = distributed.init("mpi") if distributed_run else None
    if comm:
        rank, size = comm.rank, comm.size
    else:  # the plain optimizer; --independent N: one of N processes that never talk
        rank, size = int(os.environ.get("OMPI_COMM_WORLD_RANK", 0)), args.independent
    g, loss, feed_of = build(args.case)
    with g:
        opt = mg.optim.SGD(0.01)
        if comm:
            opt = distributed.DistributedOptimizer(opt, comm, bucket_bytes=args.bucket_bytes)
        train = opt.minimize(loss)
    sess = mg.Session(g, seed=0)
    if comm:
        distributed.broadcast_variables(sess, comm)
    per = GLOBAL_BATCH // size
    feed = feed_of(rank * per, (rank + 1) * per)
    steps, comm_s, hidden_s, blocked_s = [], [], [], []
    for i in range(args.warmup + args.steps):
        if comm:
            comm.timings.clear()
            comm.barrier()  # every step starts together: step times are not skewed by the last one
            comm.timings.clear()
        t0 = time.perf_counter()
        sess.run(train, feed)
        t1 = time.perf_counter()
        if i < args.warmup:
            continue
        steps.append(t1 - t0)
        if comm:
            buckets = [t for t in comm.timings if t.what.startswith("allreduce of")]
            first_wait = min(t.waited for t in buckets)
            comm_s.append(sum(t.finished - t.started for t in buckets))
            hidden_s.append(sum(max(0.0, min(t.finished, first_wait) - t.started) for t in buckets))
            blocked_s.append(sum(max(0.0, t.finished - max(t.waited, t.started)) for t in buckets))
    result = {"case": args.case, "rank": rank, "size": size, "bucket_bytes": args.bucket_bytes,
              "independent": comm is None and size > 1, "step_s": statistics.median(steps), "steps": steps}
    if comm:
        result.update(buckets=len(opt.buckets), grad_bytes=sum(b.nbytes for b in opt.buckets),
                      allreduce_s=statistics.median(comm_s), overlapped_s=statistics.median(hidden_s),
                      blocked_s=statistics.median(blocked_s))
        # the same bytes reduced alone, without compute: the transfer's own cost
        buf = np.zeros(result["grad_bytes"] // 4, np.float32)
        alone = []
        for _ in range(30):
            comm.barrier()
            t0 = time.perf_counter()
            comm.allreduce(buf)
            alone.append(time.perf_counter() - t0)
        result["allreduce_alone_s"] = statistics.median(alone)
    if rank == 0 or comm is None:
        print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------
# driver


def cpu_busy() -> float:
    """Busy CPU seconds of the whole machine so far (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - fields[3] - fields[4]) / ticks


def own_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def launch(case: str, ranks: int, bucket_bytes: int) -> dict:
    cmd = ["mpirun", "-n", str(ranks), "--bind-to", "core"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    cfg = CASES[case]
    cmd += [sys.executable, os.path.abspath(__file__), "--worker", "--case", case,
            "--bucket-bytes", str(bucket_bytes), "--steps", str(cfg["steps"]), "--warmup", str(cfg["warmup"]),
            "--independent", str(ranks if bucket_bytes == 0 else 1)]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    load_before = os.getloadavg()[0]
    busy0, own0, t0 = cpu_busy(), own_cpu(), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    elapsed = time.perf_counter() - t0
    busy, own = cpu_busy() - busy0, own_cpu() - own0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    results = [json.loads(s[len("RESULT "):]) for s in out.stdout.splitlines() if s.startswith("RESULT ")]
    result = max(results, key=lambda r: r["step_s"])  # independent processes: the slower one
    result.update(load_before=load_before, wall_s=elapsed,
                  other_cpu_share=max(0.0, busy - own) / (elapsed * os.cpu_count()))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=sorted(CASES), default=None)
    parser.add_argument("--bucket-bytes", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--independent", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions of each configuration")
    parser.add_argument("--json", default=None, help="write every run to this file")
    parser.add_argument("--quiet", type=float, default=0.05,
                        help="the first table keeps the runs during which other processes used less than "
                             "this share of the CPUs (default 0.05)")
    parser.add_argument("--from-json", default=None, help="print the tables of an earlier --json file")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    from minigraph.distributed import DEFAULT_BUCKET_BYTES
    configs = [(1, 0), (2, 0), (2, DEFAULT_BUCKET_BYTES), (2, 64 << 10)]  # (2, 0): independent processes
    cases = [args.case] if args.case else list(CASES)
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()}, numpy {np.__version__}")
    runs = []
    if args.from_json:
        with open(args.from_json) as f:
            runs = json.load(f)["runs"]
        args.reps = 0
    for rep in range(args.reps):
        for case in cases:
            order = configs if rep % 2 == 0 else configs[::-1]  # interleaved, rotating
            for ranks, bucket_bytes in order:
                r = launch(case, ranks, bucket_bytes)
                runs.append(r)
                what = "independent" if r["independent"] else f"buckets {bucket_bytes:>8d}"
                print(f"rep {rep} {case:15s} ranks {ranks} {what}: step {r['step_s'] * 1e3:7.1f} ms"
                      + (f"  allreduce {r['allreduce_s'] * 1e3:6.2f} ms (overlapped {r['overlapped_s'] * 1e3:5.2f}, "
                         f"blocked {r['blocked_s'] * 1e3:5.2f}, alone {r['allreduce_alone_s'] * 1e3:5.2f})"
                         if bucket_bytes else "")
                      + f"  load {r['load_before']:.2f} other cpu {r['other_cpu_share']:.0%}", flush=True)
    quiet = [r for r in runs if r["other_cpu_share"] < args.quiet]
    print(f"\nruns while other processes used < {args.quiet:.0%} of the CPUs ({len(quiet)} of {len(runs)}):")
    table(quiet, cases, configs)
    print("\nall runs:")
    table(runs, cases, configs)
    loads = [r["load_before"] for r in runs]
    others = [r["other_cpu_share"] for r in runs]
    print(f"\nload average before runs: min {min(loads):.2f}, median {statistics.median(loads):.2f}, max {max(loads):.2f}; "
          f"other processes' CPU share during runs: median {statistics.median(others):.0%}, max {max(others):.0%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "cpus": os.cpu_count()}, f, indent=1)
    return 0


def table(runs, cases, configs) -> None:
    """The markdown table of medians over `runs` (n: how many runs each row has)."""
    print("| case | ranks x threads | buckets | n | step ms (median) | images/s | speedup | allreduce ms/step | "
          "overlapped with backward | training thread blocked ms | same bytes alone ms |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for case in cases:
        ones = [r["step_s"] for r in runs if r["case"] == case and r["size"] == 1]
        if not ones:
            continue
        base = statistics.median(ones)
        for ranks, bucket_bytes in configs:
            sel = [r for r in runs if r["case"] == case and r["size"] == ranks and r["bucket_bytes"] == bucket_bytes]
            if not sel:
                continue
            step = statistics.median(r["step_s"] for r in sel)
            row = f"| {case} | {ranks} x 1 | "
            if ranks == 1:
                row += f"- | {len(sel)} | {step * 1e3:.1f} | {GLOBAL_BATCH / step:.0f} | 1.00 | - | - | - | - |"
            elif not bucket_bytes:
                row = (f"| {case} | 2 independent x 1, {GLOBAL_BATCH // 2} images each (ceiling) | - | {len(sel)} | "
                       f"{step * 1e3:.1f} | "
                       f"{GLOBAL_BATCH / step:.0f} | {base / step:.2f} | - | - | - | - |")
            else:
                med = {k: statistics.median(r[k] for r in sel) for k in
                       ("allreduce_s", "overlapped_s", "blocked_s", "allreduce_alone_s")}
                row += (f"{sel[0]['buckets']} x {sel[0]['grad_bytes'] / sel[0]['buckets'] / 1024:.0f} KiB | {len(sel)} | "
                        f"{step * 1e3:.1f} | {GLOBAL_BATCH / step:.0f} | {base / step:.2f} | "
                        f"{med['allreduce_s'] * 1e3:.2f} | {med['overlapped_s'] / max(med['allreduce_s'], 1e-12):.0%} | "
                        f"{med['blocked_s'] * 1e3:.2f} | {med['allreduce_alone_s'] * 1e3:.2f} |")
            print(row)


if __name__ == "__main__":
    sys.exit(main())
