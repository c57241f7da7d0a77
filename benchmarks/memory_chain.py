"""Peak memory of a long chain: the session frees each intermediate after its last use.

    .venv/bin/python benchmarks/memory_chain.py

Runs chains of 10, 100 and 1000 elementwise ops on a 4 MB float32 array and prints the
peak traced allocation of one run (tracemalloc sees NumPy's buffers).
"""
import tracemalloc

import numpy as np

import minigraph as mg
from minigraph import ops


def peak_of_chain(length: int, n: int = 1_000_000) -> float:
    with mg.Graph() as g:
        x = mg.placeholder((n,), name="x")
        h = x
        for _ in range(length):
            h = ops.relu(h * 1.0001)
    sess = mg.Session(g)
    feed = {x: np.ones(n, "float32")}
    sess.run(h, feed)
    tracemalloc.start()
    sess.run(h, feed)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


if __name__ == "__main__":
    print("chain length | ops run | peak MB (input array: 4.0 MB)")
    for length in (10, 100, 1000):
        print(f"{length:12d} | {2 * length:7d} | {peak_of_chain(length):.1f}")
