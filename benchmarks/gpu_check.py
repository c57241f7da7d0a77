"""The GPU verification of minigraph on CuPy, in one run on a device machine (issue 12).

    python3 benchmarks/gpu_check.py [--out DIR] [--quick]

Made for this project's device machine (one H200, CUDA 13, CuPy, PyTorch, pytest, numpy,
networkx, no internet) and about 8 minutes of it (the stage limits add up to 495 s). Wheels
it lacks travel in `.whl/` (ignored by git, carried with the run) and are installed first
into /tmp/site. Fetch them on the development machine once:

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \\
        -d .whl nvidia-cudnn-frontend==1.32.0 graphviz

and run it there with `.whl` carried and a timeout_s of about 540:

    python3 benchmarks/gpu_check.py --out $OUT

If `import cudnn` there cannot find libcudnn (it looks in the interpreter's site-packages for
nvidia-cudnn-cu13), point LD_LIBRARY_PATH at that package's nvidia/cudnn/lib first.

Stages, each a subprocess with its own time limit (a stage that runs out is recorded as such
and the next one starts; `--quick` halves the limits):

1. install: the .whl wheels, then minigraph itself (editable, no dependencies);
2. probe: GPU, driver, library versions and the path minigraph takes (cuDNN or not);
3. tests: every CuPy op test, the CuPy-vs-NumPy consistency suite (forward, gradients,
   gradients of gradients) and tests/cuda, on the cuDNN + fused kernels + CUDA graphs path;
4. bench: GoogLeNet fwd+bwd at batch 32 and 128 and Inception(3a) fwd+bwd at batch 32 against
   PyTorch CUDA (TF32 off on both sides, best of NCHW/channels_last), interleaved, medians of
   7; results compared; peak device memory of both; minigraph's NCHW cuDNN layout on GoogLeNet
   b32 as the layout check; one GoogLeNet SGD training step of each;
5. fallback: the consistency suite and tests/cuda with cuDNN, the fused kernels and CUDA graphs
   all off (the generic kernels);
6. train: `minigraph train --backend cupy` for 2 epochs, time per step.

Writes `gpu_check.json` (everything above, one record per stage) and the logs into --out, and
the same JSON as benchmarks/results/gpu_<gpu>.json in the working tree.
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "benchmarks")
LIMITS = dict(install=45, probe=30, tests=150, bench=170, fallback=60, train=40)  # seconds, ~500 in all


# -------------------------------------------------------------------------------------
# the driver


def stage(name, cmd, limit, out_dir, env=None):
    """Run `cmd` (a list) with a time limit; its output goes to <out>/<name>.log. Returns a record."""
    start = time.perf_counter()
    log = os.path.join(out_dir, f"{name}.log")
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    print(f"== {name} (limit {limit} s): {' '.join(cmd)}", flush=True)
    with open(log, "w") as f:
        try:
            rc = subprocess.run(cmd, cwd=ROOT, env=full_env, stdout=f, stderr=subprocess.STDOUT, timeout=limit).returncode
            timed_out = False
        except subprocess.TimeoutExpired:
            rc, timed_out = None, True
    seconds = round(time.perf_counter() - start, 1)
    with open(log) as f:
        text = f.read()
    tail = text[-1500:]
    print(tail if len(tail) < 1500 else "..." + tail, flush=True)
    print(f"== {name}: rc {rc}{' (TIMED OUT)' if timed_out else ''} in {seconds} s", flush=True)
    return dict(rc=rc, timed_out=timed_out, seconds=seconds, tail=text[-4000:])


def pytest_summary(text):
    """The counts of pytest's closing line ('12 passed, 3 skipped in 4.5s')."""
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed)", text.splitlines()[-1] if text else "")}
    return counts


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("OUT", "/tmp/minigraph-gpu"))
    p.add_argument("--quick", action="store_true", help="half the time limits")
    p.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one in-process stage
    args = p.parse_args(argv)
    if args.stage == "probe":
        return probe()
    if args.stage == "bench":
        return bench(args.out)
    os.makedirs(args.out, exist_ok=True)
    limits = {k: max(10, v // 2) if args.quick else v for k, v in LIMITS.items()}
    py = sys.executable
    results = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "limits_s": limits, "stages": {}}
    wheels = sorted(glob.glob(os.path.join(ROOT, ".whl", "*.whl")))
    install = ("set -e; " + (f"{py} -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "
                             + " ".join(wheels) + "; " if wheels else "")
               + f"{py} -m pip install -q --no-deps --no-build-isolation -e {ROOT}")
    results["stages"]["install"] = stage("install", ["bash", "-c", install], limits["install"], args.out)
    if wheels:
        os.environ["PYTHONPATH"] = "/tmp/site" + os.pathsep + os.environ.get("PYTHONPATH", "")
    results["stages"]["probe"] = stage("probe", [py, __file__, "--stage", "probe"], limits["probe"], args.out)
    results["probe"] = _json_line(results["stages"]["probe"]["tail"], "PROBE ")
    workers = ["-n", "8"]
    suite = ["tests/ops", "tests/test_backend_consistency.py", "tests/cuda", "tests/test_train_cli.py",
             "-k", "cupy or gpu or consistency"]
    rec = stage("tests", [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers, *suite], limits["tests"], args.out)
    rec["counts"] = pytest_summary(rec["tail"])
    results["stages"]["tests"] = rec
    rec = stage("bench", [py, __file__, "--stage", "bench", "--out", args.out], limits["bench"], args.out)
    results["stages"]["bench"] = rec
    bench_file = os.path.join(args.out, "bench.json")
    if os.path.exists(bench_file):
        with open(bench_file) as f:
            results["bench"] = json.load(f)
    off = dict(MINIGRAPH_CUDNN="0", MINIGRAPH_FUSED="0", MINIGRAPH_CUDA_GRAPHS="0")
    rec = stage("fallback", [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers,
                             "tests/test_backend_consistency.py", "tests/cuda/test_gpu.py"], limits["fallback"], args.out, off)
    rec["counts"] = pytest_summary(rec["tail"])
    results["stages"]["fallback"] = rec
    rec = stage("train", [py, "-m", "minigraph", "train", "--backend", "cupy", "--epochs", "2", "--no-progress",
                          "--out", "/tmp/minigraph-gpu-train"], limits["train"], args.out)
    results["stages"]["train"] = rec
    results["train"] = _train_metrics("/tmp/minigraph-gpu-train/metrics.json")
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    _write(results, args.out)
    failed = [k for k, v in results["stages"].items() if v["rc"] != 0]
    print("stages that failed or ran out of time:", ", ".join(failed) or "none")
    return 1 if failed else 0


def _json_line(text, prefix):
    for line in text.splitlines():
        if line.startswith(prefix):
            return json.loads(line[len(prefix):])
    return None


def _train_metrics(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        m = json.load(f)
    epochs = m["epochs"]
    steps = len(m["step_losses"]) // max(1, len(epochs))
    last = epochs[-1]
    return {"epochs": len(epochs), "steps_per_epoch": steps, "last_epoch_seconds": last["seconds"],
            "ms_per_step": 1e3 * last["seconds"] / max(1, steps), "test_accuracy": m["test_accuracy"]}


def _write(results, out_dir):
    name = re.sub(r"[^a-z0-9]+", "_", str((results.get("probe") or {}).get("gpu", "gpu")).lower()).strip("_")
    text = json.dumps(results, indent=2)
    with open(os.path.join(out_dir, "gpu_check.json"), "w") as f:
        f.write(text)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", f"gpu_{name or 'unknown'}.json"), "w") as f:
        f.write(text)


# -------------------------------------------------------------------------------------
# stage: probe


def probe():
    import cupy
    import numpy

    import minigraph
    from minigraph.cuda import status

    info = {"gpu": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode(),
            "driver": cupy.cuda.runtime.driverGetVersion(), "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
            "cupy": cupy.__version__, "numpy": numpy.__version__, "minigraph": minigraph.__version__}
    try:
        import torch
        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    try:
        import cudnn
        info["cudnn_frontend"] = cudnn.__version__
    except Exception as exc:
        info["cudnn_frontend"] = f"not loadable: {exc}"
    path = status.gpu_path()
    info.update(path=path.name, cudnn=path.cudnn_version, reason=path.reason, line=path.describe())
    print("PROBE " + json.dumps(info))
    return 0


# -------------------------------------------------------------------------------------
# stage: bench (in its own process)


def _sync():
    import cupy
    cupy.cuda.Device().synchronize()


def minigraph_step(layers, shape, weights, x, labels, loss_kind, train=False):
    """A callable running minigraph fwd+bwd (or one SGD step) on CuPy, and one counting the
    algorithms its nodes ran on."""
    import cupy

    import minigraph as mg
    import networks as nets
    from minigraph import ops

    with mg.Graph() as g:
        xp = mg.placeholder(shape, name="x")
        yp = mg.placeholder((shape[0],), dtype="int64", name="labels")
        out, variables = nets.build_minigraph(layers, xp, weights)
        loss = ops.sum(out) if loss_kind == "sum" else ops.softmax_cross_entropy(out, yp)
        fetches = [loss, mg.optim.SGD(0.01).minimize(loss)] if train else [loss] + mg.gradients(loss, variables)
    sess = mg.Session(g, backend="cupy")
    feed = {xp: cupy.asarray(x), yp: cupy.asarray(labels)}

    def step():
        res = sess.run(fetches, feed, to_host=False)
        _sync()
        return res

    def algorithms():
        """How many nodes ran on each algorithm ({"cudnn": 170, "fused": 40, ...})."""
        return dict(collections.Counter(sess.kernels(fetches, feed).values()))
    return step, algorithms


def torch_step(layers, weights, x, labels, loss_kind, channels_last, train=False):
    import torch
    import torch.nn.functional as F
    from torch_reference import TorchNet

    net = TorchNet(layers, weights).cuda()
    xt, yt = torch.from_numpy(x).cuda(), torch.from_numpy(labels).cuda()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        xt = xt.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01) if train else None

    def step():
        for q in net.params:
            q.grad = None
        out = net(xt)
        loss = out.sum() if loss_kind == "sum" else F.cross_entropy(out, yt)
        loss.backward()
        if opt is not None:
            opt.step()
        torch.cuda.synchronize()
        return [loss] + [q.grad for q in net.params]
    return step, net


def interleaved(steps, reps=7, warmup=3):
    """Median milliseconds of each step, timed in turns (warm-up runs first)."""
    for s in steps.values():
        for _ in range(warmup):
            s()
    times = {k: [] for k in steps}
    for _ in range(reps):
        for k, s in steps.items():
            t = time.perf_counter()
            s()
            times[k].append(1e3 * (time.perf_counter() - t))
    return {k: statistics.median(v) for k, v in times.items()}


def max_rel(ours, ref):
    import numpy as np
    worst = 0.0
    for a, b in zip(ours, ref):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        worst = max(worst, float(np.abs(a - b).max()) / max(float(np.abs(b).max()), 1e-30))
    return worst


def bench(out_dir):
    import cupy
    import numpy as np
    import torch

    sys.path.insert(0, HERE)
    import networks as nets

    from minigraph.cuda import conv_cudnn, graphs, status

    torch.backends.cudnn.allow_tf32 = False  # float32 against float32 (minigraph: MINIGRAPH_TF32 unset)
    torch.backends.cuda.matmul.allow_tf32 = False
    os.environ.pop("MINIGRAPH_TF32", None)
    pool = cupy.get_default_memory_pool()
    rows = []
    cases = [("Inception(3a) fwd+bwd", nets.inception3a(), (32, 192, 28, 28), "sum", False),
             ("GoogLeNet fwd+bwd", nets.googlenet(), (32, 3, 224, 224), "xent", False),
             ("GoogLeNet fwd+bwd", nets.googlenet(), (128, 3, 224, 224), "xent", False),
             ("GoogLeNet SGD step", nets.googlenet(), (32, 3, 224, 224), "xent", True)]
    for title, layers, shape, loss_kind, train in cases:
        rng = np.random.default_rng(0)
        weights = nets.init_weights(layers, shape, seed=0)
        x = rng.standard_normal(shape).astype(np.float32)
        labels = rng.integers(0, 1000, shape[0]).astype(np.int64)
        row = {"case": title, "batch": shape[0]}
        pool.free_all_blocks()
        t0 = time.perf_counter()
        mg_step, algorithms = minigraph_step(layers, shape, weights, x, labels, loss_kind, train)
        first = [cupy.asnumpy(a) for a in mg_step()]
        row["minigraph_first_run_s"] = time.perf_counter() - t0
        row["minigraph_pool_bytes"] = pool.total_bytes()
        torch.cuda.reset_peak_memory_stats()
        t_step, net = torch_step(layers, weights, x, labels, loss_kind, False, train)
        tcl_step, _ = torch_step(layers, weights, x, labels, loss_kind, True, train)
        if not train:
            ref = [t.detach().cpu().numpy() for t in t_step()]
            ref = [ref[0]] + [g.T if dense else g for g, dense in zip(ref[1:], net._dense)]
            row["loss_max_rel_diff"] = max_rel(first[:1], ref[:1])
            row["grads_max_rel_diff"] = max_rel(first[1:], ref[1:])
        before = graphs.default_runner().stats()
        ms = interleaved({"minigraph": mg_step, "torch": t_step, "torch_cl": tcl_step})
        after = graphs.default_runner().stats()
        if not train:  # the timed runs were replays: compare the last one too
            last = [cupy.asnumpy(a) for a in mg_step()]
            row["replayed_grads_max_rel_diff"] = max_rel(last[1:], ref[1:])
        row.update(minigraph_ms=ms["minigraph"], torch_ms=ms["torch"], torch_channels_last_ms=ms["torch_cl"])
        best = min(ms["torch"], ms["torch_cl"])
        row["ratio_vs_best_torch"] = ms["minigraph"] / best
        row["minigraph_tflops"] = 6 * nets.forward_macs(layers, shape) / ms["minigraph"] / 1e9  # fwd+bwd: 3x fwd
        row["cuda_graph_replays_while_timed"] = after["replays"] - before["replays"]
        row["cuda_graph_fallbacks"] = after["fallbacks"]
        row["torch_peak_allocated_bytes"] = torch.cuda.max_memory_allocated()
        row["torch_peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
        row["minigraph_pool_bytes_after"] = pool.total_bytes()
        device = graphs.default_runner().device
        row["minigraph_graph_pool_bytes"] = device.pool_bytes() if hasattr(device, "pool_bytes") else None
        row["minigraph_algorithms"] = algorithms()
        rows.append(row)
        print(json.dumps(row), flush=True)
        del mg_step, algorithms, t_step, tcl_step, net
        torch.cuda.empty_cache()
        pool.free_all_blocks()
    # the layout switch: cuDNN described as NCHW instead of channels-last, GoogLeNet b32
    os.environ["MINIGRAPH_CUDNN_LAYOUT"] = "nchw"
    layers, shape = nets.googlenet(), (32, 3, 224, 224)
    weights = nets.init_weights(layers, shape, seed=0)
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal(shape).astype(np.float32), rng.integers(0, 1000, 32).astype(np.int64)
    step, _ = minigraph_step(layers, shape, weights, x, labels, "xent")
    step()
    layout_row = {"case": "GoogLeNet fwd+bwd, cuDNN layout nchw", "batch": 32,
                  "minigraph_ms": interleaved({"m": step})["m"]}
    os.environ["MINIGRAPH_CUDNN_LAYOUT"] = "nhwc"
    rows.append(layout_row)
    print(json.dumps(layout_row), flush=True)
    summary = {"path": status.gpu_path().describe(), "cudnn_plans_built": conv_cudnn.CUDNN.plans.built,
               "cudnn_problems_declined": conv_cudnn.CUDNN.plans.declined, "graphs": graphs.default_runner().stats(),
               "rows": rows}
    with open(os.path.join(out_dir, "bench.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
