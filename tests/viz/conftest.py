"""A tiny float64 CNN for the picture tests, with its forward and backward written out in NumPy.

    x (N, 2, 5, 5) -> conv 3x3 SAME, 3 filters + bias -> relu (act) -> max pool 2x2 stride 1
    (pooled, N x 3 x 4 x 4) -> flatten -> matmul (48, 4) + bias -> logits (N, 4)

The NumPy side uses plain loops and shares nothing with minigraph, so the gradients that
mg.viz builds with mg.gradients are checked against an independent derivation.
"""
import struct

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops


class TinyNet:
    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.w = rng.normal(size=(3, 2, 3, 3))
        self.b = rng.normal(size=3) * 0.1
        self.fc_w = rng.normal(size=(48, 4))
        self.fc_b = rng.normal(size=4) * 0.1
        with mg.Graph() as g:
            self.x = mg.placeholder((None, 2, 5, 5), dtype="float64", name="x")
            with mg.name_scope("conv"):
                self.act = ops.relu(ops.conv2d(self.x, mg.variable(self.w, name="weights"),
                                               mg.variable(self.b, name="bias"), padding="SAME"))
            self.pooled = ops.max_pool(self.act, 2, stride=1, name="pool")
            with mg.name_scope("fc"):
                self.logits = ops.add(ops.matmul(ops.flatten(self.pooled), mg.variable(self.fc_w, name="weights")),
                                      mg.variable(self.fc_b, name="bias"))
        self.graph = g
        self.sess = mg.Session(g)

    # forward ---------------------------------------------------------------------
    def conv(self, x):
        n, _, h, wd = x.shape
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        z = np.zeros((n, 3, h, wd))
        for i in range(h):
            for j in range(wd):
                for f in range(3):
                    z[:, f, i, j] = (xp[:, :, i:i + 3, j:j + 3] * self.w[f]).sum(axis=(1, 2, 3)) + self.b[f]
        return z

    def pool(self, a):
        """(pooled, winners): 2x2 windows at stride 1; winners[n, f, i, j] = (row, col) of the
        first maximum in row-major order."""
        n, f, h, w = a.shape
        out = np.zeros((n, f, h - 1, w - 1))
        winners = np.zeros((n, f, h - 1, w - 1, 2), dtype=int)
        for idx in np.ndindex(n, f, h - 1, w - 1):
            k, c, i, j = idx
            window = a[k, c, i:i + 2, j:j + 2]
            r, s = np.unravel_index(np.argmax(window), (2, 2))
            out[idx] = window[r, s]
            winners[idx] = (i + r, j + s)
        return out, winners

    def forward(self, x):
        z = self.conv(x)
        a = np.maximum(z, 0)
        p, winners = self.pool(a)
        logits = p.reshape(len(x), -1) @ self.fc_w + self.fc_b
        return dict(z=z, act=a, pooled=p, winners=winners, logits=logits)

    # backward of logits[n, k[n]] -------------------------------------------------------
    def grad_pooled(self, x, k):
        k = np.broadcast_to(k, (len(x),))
        return np.stack([self.fc_w[:, kk].reshape(3, 4, 4) for kk in k])

    def grad_act(self, x, k):
        fwd = self.forward(x)
        gp = self.grad_pooled(x, k)
        ga = np.zeros_like(fwd["act"])
        for idx in np.ndindex(gp.shape):
            r, s = fwd["winners"][idx]
            ga[idx[0], idx[1], r, s] += gp[idx]
        return ga

    def grad_x(self, x, k):
        fwd = self.forward(x)
        gz = self.grad_act(x, k) * (fwd["z"] > 0)
        n, c, h, wd = x.shape
        gx = np.zeros((n, c, h + 2, wd + 2))
        for i in range(h):
            for j in range(wd):
                for f in range(3):
                    gx[:, :, i:i + 3, j:j + 3] += gz[:, f, i, j][:, None, None, None] * self.w[f]
        return gx[:, :, 1:-1, 1:-1]


@pytest.fixture
def tiny():
    return TinyNet()


@pytest.fixture
def images():
    return np.random.default_rng(1).uniform(-1, 1, size=(3, 2, 5, 5))


def png_size(path):
    """(width, height) from a PNG's IHDR chunk."""
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def size_of():
    return png_size
