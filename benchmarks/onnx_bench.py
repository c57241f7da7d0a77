"""Inference time of minigraph against onnxruntime on the same exported model, CPU, float32.

    .venv/bin/python benchmarks/onnx_bench.py                  # GoogLeNet b8 and Inception(3a) b32
    .venv/bin/python benchmarks/onnx_bench.py --reps 9 --json out.json

For each case, one process: minigraph builds the network (`mg.models`, seeded weights), exports
it with `mg.onnx.export`, onnxruntime loads the file (CPUExecutionProvider, all graph
optimisations, `--ort-threads` intra-op threads), and minigraph also imports the file back
(`mg.onnx.load`). Outputs are compared first (max relative difference against minigraph).
Then the three steps are timed in interleaved repetitions, the order rotating, each step
after `gc.collect()` and a short pause (`bench.time_interleaved`); the table shows medians.

The machine is shared, so the header and the JSON record the load average before and after,
and the CPU time other processes used during the timing (from /proc/stat, less this
process's own CPU time): figures taken while others were busy say more about them than
about either runtime.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import minigraph as mg  # noqa: E402
from bench import time_interleaved  # noqa: E402
from minigraph import models  # noqa: E402

CASES = {
    "googlenet_b8": ("GoogLeNet b8", (8, 3, 224, 224)),
    "inception3a_b32": ("Inception(3a) b32", (32, 192, 28, 28)),
}


def build(case: str):
    """(graph, input node, output node) of a case, weights seeded."""
    with mg.Graph() as g:
        if case == "googlenet_b8":
            net = models.googlenet(rng=0)
            return g, net.x, net.logits
        x = mg.placeholder((None, 192, 28, 28), name="previous_layer")
        return g, x, models.inception_module(x, *models.GOOGLENET_INCEPTION["3a"], name="inception_3a", rng=0)


class CpuMeter:
    """Jiffies of the whole machine (busy and total, /proc/stat) and of this process, between start and stop."""

    def __init__(self):
        self.hz = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _machine():
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    def start(self):
        self.t0, self.busy0, self.total0 = os.times(), *self._machine()

    def stop(self) -> dict:
        t1 = os.times()
        busy1, total1 = self._machine()
        own = (t1.user + t1.system - self.t0.user - self.t0.system) * self.hz
        busy, total = busy1 - self.busy0, total1 - self.total0
        others = max(busy - own, 0.0)
        return {"machine_busy": busy / total if total else 0.0, "own": own / total if total else 0.0,
                "others": others / total if total else 0.0, "cpus": os.cpu_count()}


def run_case(case: str, args, folder: str) -> dict:
    import onnxruntime as ort

    title, shape = CASES[case]
    g, x_node, out = build(case)
    sess = mg.Session(g)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    path = mg.onnx.export(out, os.path.join(folder, case + ".onnx"), session=sess)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.ort_threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    ort_sess = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    in_name = ort_sess.get_inputs()[0].name
    imported = mg.onnx.load(path)
    imp_out, imp_in = list(imported.outputs.values())[0], list(imported.inputs.values())[0]
    steps = {
        "minigraph": lambda: sess.run(out, {x_node: x}),
        "minigraph_imported": lambda: imported.session.run(imp_out, {imp_in: x}),
        "onnxruntime": lambda: ort_sess.run(None, {in_name: x})[0],
    }
    ref = steps["minigraph"]()
    diffs = {name: float(np.abs(step() - ref).max() / np.abs(ref).max()) for name, step in steps.items()}
    meter = CpuMeter()
    meter.start()
    times = time_interleaved(steps, args.reps, args.warmup, args.pause)
    cpu = meter.stop()
    med = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    return {"case": case, "title": title, "input": list(shape), "median_ms": med,
            "ratio_minigraph_to_ort": med["minigraph"] / med["onnxruntime"],
            "max_rel_diff": diffs, "cpu_during_timing": cpu, "times_s": times}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=9, help="timed repetitions (median of them; default 9)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--pause", type=float, default=0.15, help="seconds of pause before each timed step")
    p.add_argument("--ort-threads", type=int, default=os.cpu_count(), help="onnxruntime intra-op threads")
    p.add_argument("--only", choices=sorted(CASES), action="append")
    p.add_argument("--json", help="write every figure and repetition here")
    args = p.parse_args(argv)
    import numpy
    import onnxruntime as ort
    import threadpoolctl
    env = {"python": platform.python_version(), "numpy": numpy.__version__, "onnxruntime": ort.__version__,
           "minigraph": mg.__version__, "cpus": os.cpu_count(), "ort_threads": args.ort_threads,
           "blas": [(i.get("internal_api"), i.get("version"), i.get("num_threads"))
                    for i in threadpoolctl.threadpool_info()],
           "loadavg_before": list(os.getloadavg()), "reps": args.reps}
    print(f"minigraph {env['minigraph']} / onnxruntime {env['onnxruntime']} (CPU, {args.ort_threads} threads), "
          f"numpy {env['numpy']}, BLAS {env['blas']}; {env['cpus']} CPUs; load average before {env['loadavg_before']}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for case in args.only or list(CASES):
            rows.append(run_case(case, args, folder))
    env["loadavg_after"] = list(os.getloadavg())
    print(f"\n{'case':<20} {'minigraph ms':>13} {'mg (imported) ms':>17} {'onnxruntime ms':>15} {'mg / ort':>9} "
          f"{'max rel diff':>13} {'others CPU':>11}")
    for r in rows:
        m = r["median_ms"]
        print(f"{r['title']:<20} {m['minigraph']:>13.1f} {m['minigraph_imported']:>17.1f} {m['onnxruntime']:>15.1f} "
              f"{r['ratio_minigraph_to_ort']:>9.2f} {max(r['max_rel_diff'].values()):>13.1e} "
              f"{r['cpu_during_timing']['others']:>10.0%}")
    print(f"\nmedians of {args.reps} interleaved repetitions; 'others CPU': share of the machine's CPU time other "
          f"processes used while the case was timed; load average after {env['loadavg_after']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
