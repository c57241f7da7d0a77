"""minigraph on CuPy against PyTorch on the same GPU: Inception(3a) and GoogLeNet, forward+backward.

    python benchmarks/gpu_bench.py [--batch 32] [--reps 5] [--json FILE]

Both frameworks compute the same function on the same weights (`networks.py`, checked:
the loss and the gradients are compared before anything is timed). Inputs live on the
device for both; each timed step ends with a device synchronisation. Needs CuPy, a CUDA
GPU and a CUDA build of PyTorch; it is run by `benchmarks/gpu_check.sh`, never by the tests.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import networks as nets  # noqa: E402


def minigraph_step(layers, input_shape, weights, x, labels, loss_kind):
    import cupy
    import minigraph as mg
    from minigraph import ops

    with mg.Graph() as g:
        xp = mg.placeholder(input_shape, name="x")
        yp = mg.placeholder((input_shape[0],), dtype="int64", name="labels")
        out, variables = nets.build_minigraph(layers, xp, weights)
        loss = ops.sum(out) if loss_kind == "sum" else ops.softmax_cross_entropy(out, yp)
        fetches = [loss] + mg.gradients(loss, variables)
    sess = mg.Session(g, backend="cupy")
    feed = {xp: cupy.asarray(x), yp: cupy.asarray(labels)}

    def step():
        res = sess.run(fetches, feed, to_host=False)
        cupy.cuda.Device().synchronize()
        return res
    return step


def torch_step(layers, weights, x, labels, loss_kind, channels_last):
    import torch
    import torch.nn.functional as F
    from torch_reference import TorchNet

    net = TorchNet(layers, weights).cuda()
    xt = torch.from_numpy(x).cuda()
    yt = torch.from_numpy(labels).cuda()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        xt = xt.contiguous(memory_format=torch.channels_last)

    def step():
        for p in net.params:
            p.grad = None
        out = net(xt)
        loss = out.sum() if loss_kind == "sum" else F.cross_entropy(out, yt)
        loss.backward()
        torch.cuda.synchronize()
        return [loss] + [p.grad for p in net.params]
    return step, net


def timed(step, reps, warmup=2):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def max_rel(a_list, b_list):
    worst = 0.0
    for a, b in zip(a_list, b_list):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        worst = max(worst, float(np.abs(a - b).max()) / max(float(np.abs(b).max()), 1e-30))
    return worst


def main(argv=None):
    import cupy
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    # float32 against float32: no TF32 shortcuts in PyTorch's convs and matmuls (CuPy uses none)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"GPU: {torch.cuda.get_device_name()}; torch {torch.__version__}; cupy {cupy.__version__}; "
          f"cuDNN used by minigraph: no (plain xp kernels)")
    cases = [("Inception(3a) fwd+bwd", nets.inception3a(), (args.batch, 192, 28, 28), "sum"),
             ("GoogLeNet fwd+bwd", nets.googlenet(), (args.batch, 3, 224, 224), "xent")]
    rows = []
    for title, layers, shape, loss_kind in cases:
        rng = np.random.default_rng(0)
        weights = nets.init_weights(layers, shape, seed=0)
        x = rng.standard_normal(shape).astype(np.float32)
        labels = rng.integers(0, 1000, shape[0]).astype(np.int64)
        mg_step = minigraph_step(layers, shape, weights, x, labels, loss_kind)
        t_step, net = torch_step(layers, weights, x, labels, loss_kind, channels_last=False)
        tcl_step, _ = torch_step(layers, weights, x, labels, loss_kind, channels_last=True)
        ours = [cupy.asnumpy(a) for a in mg_step()]
        ref = [t.detach().cpu().numpy() for t in t_step()]
        ref = [ref[0]] + [g.T if dense else g for g, dense in zip(ref[1:], net._dense)]
        diff = max_rel(ours[:1], ref[:1])
        grad_diff = max_rel(ours[1:], ref[1:])
        ms_mg, ms_t, ms_tcl = timed(mg_step, args.reps), timed(t_step, args.reps), timed(tcl_step, args.reps)
        macs = nets.forward_macs(layers, shape)
        row = {"case": title, "batch": shape[0], "minigraph_cupy_ms": ms_mg, "torch_cuda_ms": ms_t,
               "torch_cuda_channels_last_ms": ms_tcl, "ratio_vs_torch": ms_mg / ms_t,
               "ratio_vs_torch_channels_last": ms_mg / ms_tcl,
               "minigraph_tflops": 6 * macs / ms_mg / 1e9, "loss_max_rel_diff": diff,
               "grads_max_rel_diff": grad_diff}
        rows.append(row)
        print(f"{title:24s} b{shape[0]}: minigraph-cupy {ms_mg:8.1f} ms | torch-cuda {ms_t:7.1f} ms "
              f"(channels_last {ms_tcl:7.1f}) | ratio {row['ratio_vs_torch']:.2f}x | "
              f"{row['minigraph_tflops']:.1f} TFLOP/s | rel diff loss {diff:.1e}, grads {grad_diff:.1e}")
        del mg_step
        cupy.get_default_memory_pool().free_all_blocks()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
