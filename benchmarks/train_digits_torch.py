"""Seconds per training epoch on the 8x8 digits: minigraph's mini_inception against the same
network in PyTorch, on the same CPU, in one process.

    .venv/bin/python benchmarks/train_digits_torch.py [--epochs 3] [--threads 2]

Both frameworks start from the same weights (copied from the minigraph session), see the
same mini-batches and use Adam with the same settings. Before timing, the script checks
that both compute the same loss and the same first Adam step (dropout off), so the two
epochs do the same work. Epochs alternate between the frameworks (minigraph, torch,
minigraph, ...), with a pause before each so that the other library's idle threads stop
spinning, and a busy machine slows both alike; the medians are reported.
Imports torch: benchmarks only, minigraph itself never needs it.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import threadpoolctl
import torch
import torch.nn.functional as F

import minigraph as mg

BATCH_SIZE, LR, SEED = 32, 3e-3, 0


def build_minigraph():
    with mg.Graph() as g:
        net = mg.models.mini_inception(rng=np.random.default_rng(SEED))
        train_op = mg.optim.Adam(LR).minimize(net.loss)
    sess = mg.Session(g, seed=SEED)
    return net, train_op, sess


class TorchMiniInception(torch.nn.Module):
    """mini_inception written out in PyTorch; parameters named as minigraph's variables."""

    def __init__(self, weights: dict):
        super().__init__()
        self.names = list(weights)
        self.params = torch.nn.ParameterList()
        for name, w in weights.items():
            if name.endswith("weights") and w.ndim == 2 and not name.startswith("fc/"):
                w = w[:, :, None, None]  # a 1x1 conv's (F, C) filter as (F, C, 1, 1)
            self.params.append(torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(w)).clone()))

    def p(self, name):
        return self.params[self.names.index(name)]

    def conv(self, x, scope, pad=0):
        return F.relu(F.conv2d(x, self.p(scope + "/weights"), self.p(scope + "/bias"), padding=pad))

    def inception(self, x, s):
        b1 = self.conv(x, f"{s}/branch_1x1/conv")
        b2 = self.conv(self.conv(x, f"{s}/branch_3x3/reduce"), f"{s}/branch_3x3/conv", pad=1)
        b3 = self.conv(self.conv(x, f"{s}/branch_5x5/reduce"), f"{s}/branch_5x5/conv", pad=2)
        b4 = self.conv(F.max_pool2d(x, 3, 1, padding=1), f"{s}/branch_pool/proj")
        return torch.cat([b1, b2, b3, b4], dim=1)

    def forward(self, x):
        h = self.conv(x, "stem", pad=1)
        h = self.inception(h, "inception_a")
        h = F.max_pool2d(h, 2, 2)
        h = self.inception(h, "inception_b")
        h = F.dropout(h, 0.25, self.training)
        return torch.flatten(h, 1) @ self.p("fc/weights") + self.p("fc/bias")


def check_same_function(net, train_op, sess, model, opt, xb, yb):
    """Same loss, then the same weights after one Adam step (dropout off on both sides)."""
    loss_mg, _ = sess.run([net.loss, train_op], {net.x: xb, net.y: yb})
    model.eval()
    opt.zero_grad()
    loss_t = F.cross_entropy(model(torch.from_numpy(xb)), torch.from_numpy(yb))
    loss_t.backward()
    opt.step()
    assert abs(float(loss_mg) - loss_t.item()) < 1e-5, (float(loss_mg), loss_t.item())
    worst = max(float(np.abs(sess.get_value(v) - model.p(v.name).detach().numpy().reshape(v.shape)).max())
                for v in sess.variables)
    assert worst < 1e-5, worst
    return float(loss_mg), worst


def epoch_minigraph(net, train_op, sess, data, epoch):
    for xb, yb in mg.data.batches(data.x_train, data.y_train, BATCH_SIZE, seed=SEED, epoch=epoch):
        sess.run([net.loss, net.logits, train_op], {net.x: xb, net.y: yb, net.training: True})


def epoch_torch(model, opt, data, epoch):
    model.train()
    for xb, yb in mg.data.batches(data.x_train, data.y_train, BATCH_SIZE, seed=SEED, epoch=epoch):
        opt.zero_grad()
        loss = F.cross_entropy(model(torch.from_numpy(xb)), torch.from_numpy(yb))
        loss.backward()
        opt.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per framework")
    parser.add_argument("--threads", type=int, default=2, help="BLAS / torch threads for both")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = mg.data.digits(test_size=0.25, seed=0)
    with threadpoolctl.threadpool_limits(args.threads):
        net, train_op, sess = build_minigraph()
        model = TorchMiniInception({v.name: sess.get_value(v) for v in sess.variables})
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        loss, worst = check_same_function(net, train_op, sess, model, opt,
                                          data.x_train[:BATCH_SIZE], data.y_train[:BATCH_SIZE])
        print(f"same function: loss {loss:.6f} on both; weights after one Adam step agree to {worst:.1e}")
        times = {"minigraph": [], "torch": []}
        for epoch in range(args.epochs + 1):  # epoch 0 warms both up and is not counted
            for name, run in (("minigraph", lambda: epoch_minigraph(net, train_op, sess, data, epoch)),
                              ("torch", lambda: epoch_torch(model, opt, data, epoch))):
                time.sleep(0.5)  # let the other library's idle threads stop spinning first
                start = time.perf_counter()
                run()
                if epoch:
                    times[name].append(time.perf_counter() - start)
    n = len(data.x_train)
    mg_s, t_s = statistics.median(times["minigraph"]), statistics.median(times["torch"])
    print(f"mini_inception on digits, {n} images per epoch, batch {BATCH_SIZE}, {args.threads} threads, "
          f"median of {args.epochs} epochs:")
    print(f"  minigraph  {mg_s:6.3f} s/epoch   ({', '.join(f'{t:.3f}' for t in times['minigraph'])})")
    print(f"  PyTorch    {t_s:6.3f} s/epoch   ({', '.join(f'{t:.3f}' for t in times['torch'])})")
    print(f"  ratio minigraph / PyTorch: {mg_s / t_s:.2f}")


if __name__ == "__main__":
    main()
