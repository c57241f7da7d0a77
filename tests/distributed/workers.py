"""What the ranks of the distributed tests run: `mpirun -n N python workers.py SCENARIO OUT ...`.

Each scenario writes its results to OUT (one file per rank) for the test to check against
a reference computed there. Not a test module itself.
"""
import argparse
import json
import os
import signal
import sys
import time

import numpy as np

import minigraph as mg
from minigraph import distributed


def collectives(args):
    comm = distributed.init("mpi")
    r, p = comm.rank, comm.size
    rng = np.random.default_rng(100 + r)
    inputs = {"f32": rng.standard_normal(1000).astype(np.float32), "f64": rng.standard_normal((3, 4)),
              "i64": rng.integers(-50, 50, 7)}
    outputs = {k: v.copy() for k, v in inputs.items()}
    for k in ("f32", "i64"):
        comm.allreduce(outputs[k])
    handle = comm.allreduce_async(outputs["f64"])
    outputs["f64"] = handle.wait()
    outputs["bcast"] = comm.broadcast(np.full(5, float(r)), root=p - 1)
    obj = comm.broadcast_object({"from": r, "nested": [1, "two", None]} if r == p - 1 else None, root=p - 1)
    comm.barrier()

    # broadcast_variables: rank 0's weights, optimizer state and generator everywhere
    with mg.Graph() as g:
        w = mg.variable(np.zeros((2, 3)), name="w")
        with mg.name_scope("block"):
            v = mg.variable(np.zeros(4, np.float32), name="v")
    sess = mg.Session(g, seed=10 + r)
    sess.set_value(w, np.full((2, 3), r + 1.0))
    sess.set_value(v, np.arange(4, dtype=np.float32) * (r + 1))
    sess.state.clear()
    sess.state[f"Adam/w/m{r}"] = np.full((2, 3), float(r))
    sess.state["Adam/step"] = np.asarray(7 * (r + 1), np.int64)
    distributed.broadcast_variables(sess, comm)
    outputs["w"], outputs["v"] = sess.get_value(w), sess.get_value(v)
    state = {k: np.asarray(a).tolist() for k, a in sess.state.items()}
    np.savez(os.path.join(args.out, f"rank{r}.npz"), **{"in_" + k: a for k, a in inputs.items()},
             **{"out_" + k: a for k, a in outputs.items()})
    with open(os.path.join(args.out, f"rank{r}.json"), "w") as f:
        json.dump({"size": p, "object": obj, "state": state, "draw": float(sess.rng.random())}, f)


def timeout(args):
    comm = distributed.init("mpi", timeout=float(args.extra[0]))
    if comm.rank == 1:
        time.sleep(60)  # never joins the allreduce
    comm.allreduce(np.ones(3))


def equivalence(args):
    """mini_inception in float64 with dropout, `--steps` epochs on synthetic data; the
    reference (`--plain`, one process) uses the optimizer itself, not DistributedOptimizer."""
    n, opt_name, bucket_bytes = int(args.extra[0]), args.extra[1], int(args.extra[2])
    plain = "--plain" in args.extra
    comm = None if plain else distributed.init("mpi")
    rank, size = (0, 1) if plain else (comm.rank, comm.size)
    data = np.random.default_rng(5)
    x = data.standard_normal((n, 1, 8, 8))
    y = data.integers(0, 10, n)
    with mg.Graph() as g:
        m = mg.models.mini_inception(rng=3, dtype="float64", dropout=0.5)
        opt = mg.optim.SGD(0.05, momentum=0.9) if opt_name == "sgd" else mg.optim.Adam(1e-3)
        if not plain:
            opt = distributed.DistributedOptimizer(opt, comm, bucket_bytes=bucket_bytes)
        train = opt.minimize(m.loss)
    mask_node = g.get("dropout/dropout_mask")
    sess = mg.Session(g, seed=11)
    if not plain:
        distributed.broadcast_variables(sess, comm)
    masks, losses, shares = [], [], []
    for epoch in range(2):
        for batch in mg.data.batches(x, y, 32, seed=1, epoch=epoch, rank=rank, size=size):
            feed = {m.x: batch.x, m.y: batch.y, m.training: True, m.first_example: batch.offset}
            if not plain:
                feed[opt.share] = batch.share
            loss, mask, _ = sess.run([m.loss, mask_node, train], feed)
            masks.append(mask[:batch.count])
            losses.append(float(loss))
            shares.append(batch.share)
    weights = {v.name: sess.get_value(v) for v in sess.variables}
    buckets = [] if plain else [len(b.pairs) for b in opt.buckets]
    np.savez(os.path.join(args.out, f"rank{rank}.npz"), **{"w/" + k: a for k, a in weights.items()},
             **{f"mask/{i}": mk for i, mk in enumerate(masks)})
    with open(os.path.join(args.out, f"rank{rank}.json"), "w") as f:
        json.dump({"size": size, "losses": losses, "shares": shares, "buckets": buckets}, f)


def fit(args):
    """`minigraph.train.fit` on several ranks; `--fail RANK STEP HOW` makes one rank raise,
    die (SIGKILL), hang or get a Ctrl-C (SIGINT) at that step."""
    from minigraph.train import TrainConfig, fit as train_fit
    fail = args.extra[args.extra.index("--fail") + 1:][:3] if "--fail" in args.extra else None
    comm = distributed.init("mpi")

    def on_step(step, loss):
        if fail and comm.rank == int(fail[0]) and step == int(fail[1]):
            how = fail[2]
            if how == "raise":
                raise RuntimeError(f"injected failure at step {step}")
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "hang":
                time.sleep(120)
            if how == "sigint":
                signal.raise_signal(signal.SIGINT)

    config = TrainConfig(epochs=1, batch_size=32, train_limit=96, out=args.out, distributed=True)
    try:
        train_fit(config, progress=False, on_step=on_step, resume="--resume" in args.extra)
    except KeyboardInterrupt:
        print(f"rank {comm.rank}: interrupted", flush=True)
        sys.exit(130)


SCENARIOS = {f.__name__: f for f in (collectives, timeout, equivalence, fit)}

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("out")
    parser.add_argument("extra", nargs=argparse.REMAINDER)
    a = parser.parse_args()
    SCENARIOS[a.scenario](a)
