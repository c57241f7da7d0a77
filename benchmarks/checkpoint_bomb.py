"""Time and memory of `mg.restore` on a deflate bomb: a checkpoint with one extra member, a
.npy of SIZE bytes of zeros whose header tells the truth, deflated (about 1000:1).

    .venv/bin/python benchmarks/checkpoint_bomb.py [--gb 1.5] [--member state/bomb]

Each restore runs in a fresh process, so its peak resident memory (ru_maxrss) is its own.
The member name decides which check meets it: `state/...` (an optimizer state key the graph
does not declare) or `variables/...` (a variable the graph does not have).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

import minigraph as mg
from minigraph import ops

RESTORE = """
import resource, sys, time
import numpy as np
import minigraph as mg
sys.path.insert(0, {here!r})
from checkpoint_bomb import build
start = time.perf_counter()
try:
    mg.restore(mg.Session(build()), {path!r})
    outcome = "restored"
except Exception as exc:
    outcome = type(exc).__name__ + ": " + str(exc).replace(chr(10), " ")[:100]
print(f"{{time.perf_counter() - start:.2f}} s, peak RSS {{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}} MB: {{outcome}}")
"""


def build():
    """A one-variable graph with an Adam step (so it declares optimizer state)."""
    with mg.Graph() as g:
        x = mg.placeholder((None, 4), name="x")
        w = mg.variable(np.ones((4, 3), "float32"), name="w")
        mg.optim.Adam(0.1).minimize(ops.sum(ops.matmul(x, w)))
    return g


def make_bomb(path: str, n_bytes: int, member: str) -> None:
    mg.save(mg.Session(build()), path)
    info = zipfile.ZipInfo(member + ".npy")
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "a") as z, z.open(info, "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (n_bytes // 4,)})
        chunk = bytes(1 << 24)
        for start in range(0, n_bytes, len(chunk)):
            f.write(chunk[:min(len(chunk), n_bytes - start)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.5, help="inflated size of the bomb in GB (default 1.5)")
    parser.add_argument("--member", default="state/bomb", help="the bomb's name in the archive")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "bomb.npz")
        make_bomb(path, int(args.gb * 1e9), args.member)
        print(f"{path}: {os.path.getsize(path) / 1e6:.2f} MB on disk, {args.gb} GB inflated ({args.member})")
        here = os.path.dirname(os.path.abspath(__file__))
        done = subprocess.run([sys.executable, "-c", RESTORE.format(here=here, path=path)],
                              capture_output=True, text=True)
        print(done.stdout.strip() or done.stderr.strip().splitlines()[-1])
        with open("/proc/loadavg") as f:
            print("load average:", f.read().split()[:3])


if __name__ == "__main__":
    main()
