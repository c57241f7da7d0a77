"""minigraph against PyTorch on the CPU: Inception(3a) and GoogLeNet, forward and forward+backward.

    make bench                                  # or: .venv/bin/python benchmarks/bench.py
    .venv/bin/python benchmarks/bench.py --quick --only inception --json out.json

Everything runs in one process, float32: for each case the minigraph session and the two
PyTorch variants (default NCHW tensors, channels_last) are built on the same weights and
input, checked to agree (max relative difference of outputs and gradients), warmed up, then
timed in interleaved repetitions (the order rotates every repetition, with a short pause
between steps so that no library's idle threads spin into another's step); the table shows
medians. Peak memory is measured per framework in a fresh child process (see `peak_memory`).
See benchmarks/README.md for what every column means.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import naive_conv  # noqa: E402
import networks as nets  # noqa: E402
from machine_load import MachineLoad  # noqa: E402

FRAMEWORKS = ("minigraph", "torch", "torch_cl")
LABELS = {"minigraph": "minigraph", "torch": "PyTorch NCHW", "torch_cl": "PyTorch channels_last"}
# A max relative difference (minigraph against PyTorch NCHW) above this marks the row as computing
# something else. float32 through GoogLeNet's 57 convs already moves conv1's filter gradient by
# ~2e-3 from a float64 result (PyTorch's by ~1.3e-3); a wrong computation moves it by O(1).
MISMATCH = 1e-2
# Other processes keeping more than this many CPUs busy on average while a row is timed make
# its figures unreliable (the run prints a warning).
BUSY = 0.2
BACK_TO_BACK = 20  # calls per sample of the naive-conv row's fast steps, timed back to back


@dataclasses.dataclass(frozen=True)
class Case:
    """One row of the table: a network, an input shape, and what one timed step computes."""

    name: str
    title: str
    layers: tuple
    input_shape: tuple
    backward: bool      # forward only, or loss + gradients of every parameter
    loss: str           # "sum" (sum of the output) or "xent" (mean softmax cross-entropy)
    grad_input: bool    # also the gradient with respect to the input (a module inside a net)

    @property
    def flops(self) -> int:
        """2 x multiply-adds of the forward pass; forward+backward counts 3x (backward = 2x forward)."""
        macs = nets.forward_macs(self.layers, self.input_shape)
        return 2 * macs * (3 if self.backward else 1)


def make_cases(tiny: bool = False) -> List[Case]:
    """The four rows of the table; `tiny` shrinks them (channels / 16, small inputs) for smoke runs."""
    width = 16 if tiny else 1
    inc_in = (2, 192 // width, 7, 7) if tiny else (32, 192, 28, 28)
    net_in = (2, 3, 32, 32) if tiny else (8, 3, 224, 224)
    inc = tuple(nets.inception3a(width))
    gnet = tuple(nets.googlenet(num_classes=10 if tiny else 1000, width=width))
    b = net_in[0]
    return [
        Case("inception3a-fwd", "Inception(3a) forward", inc, inc_in, False, "sum", True),
        Case("inception3a-fwdbwd", "Inception(3a) forward+backward", inc, inc_in, True, "sum", True),
        Case("googlenet-fwd", f"GoogLeNet b{b} forward", gnet, net_in, False, "xent", False),
        Case("googlenet-fwdbwd", f"GoogLeNet b{b} forward+backward", gnet, net_in, True, "xent", False),
    ]


def make_data(case: Case, seed: int = 0):
    """Weights (canonical order), input and labels of a case, float32, reproducible."""
    rng = np.random.default_rng(seed + 1)
    weights = nets.init_weights(case.layers, case.input_shape, seed)
    x = rng.standard_normal(case.input_shape).astype(np.float32)
    n_out = nets.count(case.layers, case.input_shape)[-1].out_shape[1]
    labels = rng.integers(0, n_out, case.input_shape[0]).astype(np.int64)
    return weights, x, labels


# ---------------------------------------------------------------------------------
# one runner per framework: step() is what is timed; result() the arrays that are compared


def build_from_models(case: Case):
    """The case's network from the library's own `mg.models`, in the current graph: (input
    placeholder, output node, variables in creation order). None where `mg.models` cannot
    build it (the tiny smoke shapes: its GoogLeNet takes 224x224 images only)."""
    import minigraph as mg
    models = getattr(mg, "models", None)
    if models is None:
        return None
    first, last = case.layers[0], case.layers[-1]
    if len(case.layers) == 1 and isinstance(first, nets.Inception):
        xp = mg.placeholder(case.input_shape, name="x")
        out = models.inception_module(xp, *first[1:], name=first.name)
    elif list(case.layers) == nets.googlenet(last.units) and case.input_shape[1:] == (3, 224, 224):
        net = models.googlenet(num_classes=last.units)
        xp, out = net.x, net.logits
    else:
        return None
    return xp, out, [n for n in xp.graph.nodes if n.kind == "variable"]


class MinigraphRunner:
    """One minigraph session computing the case; `source` "models" builds the network with the
    library's `mg.models` (its weights then overwritten with the case's), "own" with the
    benchmark's `networks.build_minigraph`, which `mg.models` falls back to where it cannot."""

    def __init__(self, case: Case, weights, x, labels, source: str = "models"):
        import minigraph as mg
        from minigraph import ops

        with mg.Graph() as g:
            built = build_from_models(case) if source == "models" else None
            if built is None:
                xp = mg.placeholder(case.input_shape, name="x")
                out, variables = nets.build_minigraph(case.layers, xp, weights)
            else:
                xp, out, variables = built
            self.source = "own" if built is None else "models"
            yp = mg.placeholder((case.input_shape[0],), dtype="int64", name="labels")
            if case.backward:
                loss = ops.sum(out) if case.loss == "sum" else ops.softmax_cross_entropy(out, yp)
                wrt = variables + ([xp] if case.grad_input else [])
                self.fetches = [loss] + list(mg.gradients(loss, wrt))
            else:
                self.fetches = [out]
        self.graph = g
        self.sess = mg.Session(g)
        if len(variables) != len(weights):
            raise ValueError(f"{case.name}: the graph has {len(variables)} variables, the case {len(weights)} weights")
        for var, value in zip(variables, weights):
            self.sess.set_value(var, value)  # shape-checked: a different layer order fails here
        self.feed = {xp: x}
        if case.backward and case.loss == "xent":
            self.feed[yp] = labels

    def step(self):
        return self.sess.run(self.fetches, self.feed)

    def result(self) -> List[np.ndarray]:
        return [np.asarray(a) for a in self.step()]


class TorchRunner:
    def __init__(self, case: Case, weights, x, labels, channels_last: bool):
        import torch
        import torch.nn.functional as F
        import torch_reference

        self.torch, self.case = torch, case
        self.net = torch_reference.TorchNet(case.layers, weights)
        self.x = torch.from_numpy(x)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.x.requires_grad_(case.backward and case.grad_input)
        self.labels = torch.from_numpy(labels)
        self.loss_fn = (lambda out: out.sum()) if case.loss == "sum" else (
            lambda out: F.cross_entropy(out, self.labels))

    def step(self):
        if not self.case.backward:
            with self.torch.no_grad():
                return self.net(self.x)
        self.net.zero_grad(set_to_none=True)
        self.x.grad = None
        loss = self.loss_fn(self.net(self.x))
        loss.backward()
        return loss

    def result(self) -> List[np.ndarray]:
        out = self.step().detach().contiguous().numpy()
        if not self.case.backward:
            return [out]
        grads = self.net.grads_canonical()
        if self.case.grad_input:
            grads.append(self.x.grad.contiguous().numpy())
        return [out] + grads


def make_runner(fw: str, case: Case, data, source: str = "models"):
    if fw == "minigraph":
        return MinigraphRunner(case, *data, source=source)
    return TorchRunner(case, *data, channels_last=(fw == "torch_cl"))


def max_rel_diff(got: Sequence[np.ndarray], ref: Sequence[np.ndarray]) -> float:
    """max over arrays of max|got - ref| / max|ref| (so a gradient that is tiny overall still counts)."""
    if len(got) != len(ref):
        raise ValueError(f"{len(got)} arrays against {len(ref)}")
    worst = 0.0
    for a, b in zip(got, ref):
        if a.shape != b.shape:
            raise ValueError(f"shape {a.shape} against {b.shape}")
        scale = max(float(np.max(np.abs(b))), 1e-30)
        worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b))) / scale)
    return worst


# ---------------------------------------------------------------------------------
# timing, memory, profile


def time_interleaved(steps: Dict[str, Callable[[], object]], reps: int, warmup: int,
                     pause: float) -> Dict[str, List[float]]:
    """Seconds per step of every callable, in interleaved repetitions (the order rotates)."""
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    for rep in range(reps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            gc.collect()
            time.sleep(pause)
            t0 = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _plain_malloc() -> None:
    """Make glibc hand every block of 64 KiB or more straight back to the OS when freed (a fixed
    mmap threshold turns off its dynamic raising), so resident memory follows live memory."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 * 1024)   # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD


def peak_memory(step: Callable[[], object]) -> Optional[float]:
    """MiB by which one step raises the process's resident set at its peak, or None off Linux.

    Linux's own high-water mark (VmHWM) is reset just before the step (`clear_refs` 5) and
    read after it, so no allocation is missed between samples; weights, input and anything
    that existed before the step are the baseline, not counted. The same for every framework.
    """
    gc.collect()
    try:
        base = _status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    out = step()
    peak = _status_kib("VmHWM")
    del out
    return (peak - base) / 1024


def memory_child(case_name: str, fw: str, tiny: bool, threads: int, source: str) -> None:
    """Entry point of the child process that measures one (case, framework): build, one warm-up
    step, then `peak_memory` of a second step, printed as JSON on the last line."""
    _plain_malloc()
    if fw != "minigraph":
        import torch
        torch.set_num_threads(threads)
    case = next(c for c in make_cases(tiny) if c.name == case_name)
    runner = make_runner(fw, case, make_data(case), source)
    runner.step()
    print(json.dumps({"peak_mib": peak_memory(runner.step)}))


def measure_memory(case: Case, fw: str, tiny: bool, threads: int, source: str) -> Optional[float]:
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", case.name, fw,
           "--torch-threads", str(threads), "--net", source] + (["--tiny"] if tiny else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child for {case.name}/{fw} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["peak_mib"]


def profile_minigraph(runner: MinigraphRunner, reps: int = 1) -> List[tuple]:
    """(op kind, kernel algorithm, ms per step, calls per step) of minigraph's step, the most
    expensive first (from the session's own per-step timings)."""
    totals: Dict[tuple, list] = {}
    for _ in range(reps):
        runner.sess.run(runner.fetches, runner.feed, timings=totals)
    rows = [(kind, algo, 1e3 * s / reps, calls // reps) for (kind, algo), (s, calls) in totals.items()]
    return sorted(rows, key=lambda r: -r[2])


# ---------------------------------------------------------------------------------
# the naive conv row


def naive_conv_row(frameworks: Sequence[str], reps: int, pause: float, shape=(4, 16, 28, 28),
                   w_shape=(32, 16, 3, 3)) -> dict:
    """The seed's loop conv against minigraph's conv2d (and PyTorch's) on one 3x3 conv, pad 1."""
    import minigraph as mg
    from minigraph import ops

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    with mg.Graph() as g:
        xp = mg.placeholder(shape, name="x")
        out = ops.conv2d(xp, mg.constant(w), mg.constant(b), stride=1, padding=1)
    sess = mg.Session(g)
    steps = {"naive": lambda: naive_conv.conv_forward_naive(x, w, b, stride=1, pad=1),
             "minigraph": lambda: sess.run(out, {xp: x})}
    ref = steps["naive"]()
    diffs = {"minigraph": max_rel_diff([steps["minigraph"]()], [ref])}
    if "torch" in frameworks:
        import torch
        import torch.nn.functional as F
        xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))

        def torch_step():
            with torch.no_grad():
                return F.conv2d(xt, wt, bt, padding=1)
        steps["torch"] = torch_step
        diffs["torch"] = max_rel_diff([torch_step().numpy()], [ref])
    with MachineLoad() as load:
        times = time_interleaved(steps, reps, 1, pause)
        # for information: the fast steps back to back (the pause leaves a lone sub-millisecond
        # step cold: caches, TLB and clock; `ms` above, what the target is checked on, keeps it)
        fast = {k: (lambda f=f: [f() for _ in range(BACK_TO_BACK)]) for k, f in steps.items() if k != "naive"}
        warm = time_interleaved(fast, reps, 1, pause)
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    ms_warm = {k: 1e3 * statistics.median(v) / BACK_TO_BACK for k, v in warm.items()}
    return {"name": "naive-conv", "shape": [list(shape), list(w_shape)], "ms": ms, "load": load.summary(),
            "ms_back_to_back": ms_warm, "naive_over_minigraph_back_to_back": ms["naive"] / ms_warm["minigraph"],
            "naive_over_minigraph": ms["naive"] / ms["minigraph"], "max_rel_diff": diffs}


# ---------------------------------------------------------------------------------
# the table


def run_case(case: Case, frameworks: Sequence[str], args) -> dict:
    data = make_data(case)
    runners = {fw: make_runner(fw, case, data, args.net) for fw in frameworks}
    results = {fw: r.result() for fw, r in runners.items()}
    diffs = {fw: max_rel_diff(results[fw], results["torch"]) for fw in frameworks if fw != "torch"} \
        if "torch" in results else {}
    del results
    with MachineLoad() as load:
        times = time_interleaved({fw: r.step for fw, r in runners.items()}, args.reps, args.warmup, args.pause)
    row = {"name": case.name, "title": case.title, "input_shape": list(case.input_shape),
           "minigraph_network": runners["minigraph"].source,
           "gflop": case.flops / 1e9, "reps": args.reps, "load": load.summary(),
           "ms": {fw: 1e3 * statistics.median(t) for fw, t in times.items()},
           "ms_all": {fw: [1e3 * s for s in t] for fw, t in times.items()},
           "max_rel_diff": diffs}
    row["gflops"] = {fw: case.flops / 1e6 / ms for fw, ms in row["ms"].items()}
    row["ratio"] = {fw: row["ms"]["minigraph"] / row["ms"][fw] for fw in frameworks
                    if fw != "minigraph" and "minigraph" in row["ms"]}
    if args.profile and "minigraph" in runners:
        row["profile"] = profile_minigraph(runners["minigraph"])
    del runners
    gc.collect()
    if args.memory:
        row["peak_mib"] = {fw: measure_memory(case, fw, args.tiny, args.torch_threads, args.net)
                           for fw in frameworks}
    return row


def fmt(v, spec=".1f", missing="-"):
    return missing if v is None else format(v, spec)


def print_table(rows: List[dict], frameworks: Sequence[str]) -> None:
    tf = [fw for fw in frameworks if fw != "minigraph"]
    head = ["case"] + [f"{LABELS[fw]} ms" for fw in frameworks] + [f"mg / {LABELS[fw]}" for fw in tf] \
        + [f"GFLOP/s {fw}" for fw in frameworks] + [f"peak MiB {fw}" for fw in frameworks] \
        + [f"mem mg / {fw}" for fw in tf] + ["max rel diff mg vs torch"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        mem = r.get("peak_mib", {})
        diff = r["max_rel_diff"].get("minigraph")
        cells = [r["title"]] + [fmt(r["ms"].get(fw)) for fw in frameworks] \
            + [fmt(r["ratio"].get(fw), ".2f") for fw in tf] \
            + [fmt(r["gflops"].get(fw)) for fw in frameworks] \
            + [fmt(mem.get(fw), ".1f") for fw in frameworks] \
            + [fmt(mem["minigraph"] / mem[fw] if mem.get("minigraph") and mem.get(fw) else None, ".2f")
               for fw in tf] \
            + [fmt(diff, ".1e") + (" MISMATCH" if diff is not None and diff > MISMATCH else "")]
        print("| " + " | ".join(cells) + " |")
    print("\nwhile timing (load average at the start; CPUs kept busy by other processes on average):")
    for r in rows:
        load = r["load"]
        others = "-" if load["others_cpus"] is None else f"{load['others_cpus']:.2f}"
        print(f"  {r['title']}: load average {load['loadavg'][0]:.2f}, other processes {others} CPUs")
    cl = [f"{r['title']} {r['max_rel_diff']['torch_cl']:.1e}" for r in rows if "torch_cl" in r["max_rel_diff"]]
    if cl:
        print("\n(for information, not checked: PyTorch channels_last vs NCHW max rel diff: " + "; ".join(cl) + ")")


def print_profiles(rows: List[dict], top: int = 10) -> None:
    for r in rows:
        if "profile" not in r:
            continue
        total = sum(ms for _, _, ms, _ in r["profile"])
        print(f"\nminigraph profile, {r['title']} ({total:.0f} ms in ops; one step):")
        for kind, algo, ms, calls in r["profile"][:top]:
            kind = kind if algo == "generic" else f"{kind} [{algo}]"
            print(f"  {kind:44s} {ms:9.1f} ms  {100 * ms / total:5.1f}%  x{calls}")


# The targets of issue 13: (case, framework, limit) on minigraph's median / PyTorch's median.
SPEED_TARGETS = [("inception3a-fwdbwd", "torch_cl", 0.8), ("inception3a-fwdbwd", "torch", 0.6),
                 ("googlenet-fwdbwd", "torch_cl", 0.9), ("googlenet-fwd", "torch_cl", 0.7)]
MEMORY_LIMIT = 1.5  # minigraph's peak / each PyTorch variant's, every row
NAIVE_LIMIT = 250   # naive loop conv / minigraph's conv2d, at least


def targets(rows: List[dict], naive: Optional[dict]) -> List[dict]:
    """The issue's speed and memory targets, each with the measured value and met or not."""
    by = {r["name"]: r for r in rows}
    out = []

    def add(what, value, limit, le=True):
        if value is not None:
            out.append({"target": what, "value": value, "op": "<=" if le else ">=", "limit": limit,
                        "met": value <= limit if le else value >= limit})

    for name, fw, limit in SPEED_TARGETS:
        if name in by:
            add(f"{by[name]['title']}: minigraph / {LABELS[fw]}", by[name]["ratio"].get(fw), limit)
    for r in rows:
        mem = r.get("peak_mib", {})
        for fw in ("torch", "torch_cl"):
            if mem.get("minigraph") and mem.get(fw):
                add(f"{r['title']}: peak memory minigraph / {LABELS[fw]}", mem["minigraph"] / mem[fw], MEMORY_LIMIT)
    if naive:
        add("naive loop conv / minigraph conv2d", naive["naive_over_minigraph"], NAIVE_LIMIT, le=False)
    return out


def environment(frameworks: Sequence[str]) -> dict:
    import threadpoolctl
    env = {"python": platform.python_version(), "numpy": np.__version__, "cpus": len(os.sched_getaffinity(0)),
           "cpu": _cpu_model(), "loadavg_before": list(os.getloadavg()), "commit": _commit(),
           "blas": [{k: i.get(k) for k in ("internal_api", "prefix", "version", "num_threads",
                                            "architecture", "threading_layer")}
                    for i in threadpoolctl.threadpool_info()]}
    if any(fw != "minigraph" for fw in frameworks):
        import torch
        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
    return env


def _commit() -> str:
    """The checked-out commit, with "+changes" when the working tree differs from it."""
    def git(*argv) -> str:
        return subprocess.run(["git", *argv], cwd=HERE, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        return git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--porcelain", "-uno") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="few repetitions: a smoke test, not a measurement")
    p.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    p.add_argument("--only", metavar="NAME", action="append",
                   help="run only the cases whose name contains NAME (inception3a, googlenet, fwd, "
                        "fwdbwd, naive-conv); may be repeated")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                   help="comma-separated subset of " + ",".join(FRAMEWORKS) + " (default: all)")
    p.add_argument("--reps", type=int, help="timed repetitions per framework (default 10, --quick 3)")
    p.add_argument("--warmup", type=int, help="untimed steps first (default 2, --quick 1)")
    p.add_argument("--pause", type=float, default=0.15,
                   help="seconds of pause before every timed step (default 0.15: OpenBLAS's idle "
                        "threads spin for about 0.1 s after a GEMM)")
    p.add_argument("--torch-threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory children")
    p.add_argument("--no-profile", dest="profile", action="store_false", help="skip minigraph's op profile")
    p.add_argument("--tiny", action="store_true", help="tiny shapes (the smoke test's), not the issue's")
    p.add_argument("--net", choices=("models", "own"), default="models",
                   help="build minigraph's networks with mg.models (default; the benchmark's own "
                        "builder where mg.models cannot) or always with the benchmark's own builder")
    p.add_argument("--memory-child", nargs=2, metavar=("CASE", "FRAMEWORK"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.reps is None:
        args.reps = 3 if args.quick else 10
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.memory_child:
        memory_child(*args.memory_child, args.tiny, args.torch_threads, args.net)
        return 0
    frameworks = [fw.strip() for fw in args.frameworks.split(",") if fw.strip()]
    unknown = set(frameworks) - set(FRAMEWORKS)
    if unknown or "minigraph" not in frameworks:
        raise SystemExit(f"--frameworks takes minigraph plus any of torch, torch_cl; got {args.frameworks!r}")
    if any(fw != "minigraph" for fw in frameworks):
        try:
            import torch
        except ImportError:
            print("PyTorch is not installed (pip install 'minigraph[bench]'): minigraph columns only")
            frameworks = ["minigraph"]
        else:
            torch.set_num_threads(args.torch_threads)

    def wanted(name):
        return not args.only or any(o in name for o in args.only)

    env = environment(frameworks)
    print(f"python {env['python']}, numpy {env['numpy']}, torch {env.get('torch', '-')} "
          f"({env.get('torch_threads', '-')} threads), {env['cpus']} CPUs: {env['cpu']}")
    for lib in env["blas"]:
        print(f"  threadpool: {lib['prefix']} {lib['internal_api']} {lib['version']} "
              f"threads={lib['num_threads']} {lib.get('architecture') or ''}")
    print(f"  commit {env['commit']}; load average before: {env['loadavg_before']}; "
          f"{args.reps} reps, {args.warmup} warm-up, "
          f"pause {args.pause}s, float32{', tiny shapes' if args.tiny else ''}\n")

    rows = []
    for case in make_cases(args.tiny):
        if wanted(case.name):
            print(f"running {case.title} {case.input_shape} ...", flush=True)
            rows.append(run_case(case, frameworks, args))
            print(f"  minigraph network built by {'mg.models' if rows[-1]['minigraph_network'] == 'models' else 'benchmarks/networks.py'}")
    naive = None
    if wanted("naive-conv"):
        print("running the naive loop conv ...", flush=True)
        shape = ((1, 2, 6, 6), (3, 2, 3, 3)) if args.tiny else ((4, 16, 28, 28), (32, 16, 3, 3))
        naive = naive_conv_row(frameworks, max(1, min(args.reps, 3)), args.pause, *shape)

    print()
    if rows:
        print_table(rows, frameworks)
    if naive:
        ms = naive["ms"]
        print(f"\nconv {naive['shape'][0]} x {naive['shape'][1]}, pad 1: naive loops {ms['naive']:.1f} ms, "
              f"minigraph {ms['minigraph']:.2f} ms, PyTorch {fmt(ms.get('torch'), '.2f')} ms; "
              f"naive / minigraph = {naive['naive_over_minigraph']:.0f}x; max rel diff vs the loops: "
              + ", ".join(f"{k} {v:.1e}" for k, v in naive["max_rel_diff"].items())
              + f" (load average {naive['load']['loadavg'][0]:.2f}, other processes "
              + f"{fmt(naive['load']['others_cpus'], '.2f')} CPUs)")
        warm = naive["ms_back_to_back"]
        print(f"  back to back ({BACK_TO_BACK} calls per sample, for information): minigraph "
              f"{warm['minigraph']:.2f} ms, PyTorch {fmt(warm.get('torch'), '.2f')} ms; naive / minigraph = "
              f"{naive['naive_over_minigraph_back_to_back']:.0f}x")
    goals = targets(rows, naive)
    if goals:
        print("\ntargets (issue 13):")
        for t in goals:
            print(f"  [{'met' if t['met'] else 'MISSED'}] {t['target']}: {t['value']:.2f} "
                  f"(target {t['op']} {t['limit']})")
    if args.profile:
        print_profiles(rows)
    env["loadavg_after"] = list(os.getloadavg())
    others = [r["load"]["others_cpus"] or 0.0 for r in rows + ([naive] if naive else [])]
    if env["loadavg_before"][0] > 0.5 or max(others, default=0.0) > BUSY:
        print(f"\nWARNING: other processes were using the CPUs (load average {env['loadavg_before'][0]:.1f} "
              f"before the run, {env['loadavg_after'][0]:.1f} after, other processes up to "
              f"{max(others, default=0.0):.2f} CPUs while timing, on {env['cpus']} CPUs): PyTorch's "
              "OpenMP threads slow down badly when a core is taken, so these ratios are unreliable; "
              "rerun on a quiet machine (--json keeps every repetition)")
    mismatches = [r["name"] for r in rows if r["max_rel_diff"].get("minigraph", 0.0) > MISMATCH]
    if naive and any(v > MISMATCH for v in naive["max_rel_diff"].values()):
        mismatches.append("naive-conv")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "args": {k: v for k, v in vars(args).items() if k != "memory_child"},
                       "rows": rows, "naive_conv": naive, "targets": goals, "mismatches": mismatches}, f, indent=1)
    if mismatches:
        print(f"\nMISMATCH: {', '.join(mismatches)} computed something other than the reference")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
