"""Local response normalisation kernels: the channel-window sum and the LRN forward pass."""
from __future__ import annotations

from . import threads
from .kernels import per_chunk


def channel_window_sum(xp, x, before: int, after: int):
    """out[:, c] = sum of x[:, c - before : c + after + 1] along axis 1 (zeros beyond the edges).

    The output keeps x's memory order; the batch is split over `threads.run_chunks`."""
    out = xp.empty_like(x)
    c = x.shape[1]

    def part(a, z):
        xs, os_ = x[a:z], out[a:z]
        os_[...] = xs
        for o in range(1, min(before, c - 1) + 1):
            os_[:, o:] += xs[:, :c - o]
        for o in range(1, min(after, c - 1) + 1):
            os_[:, :c - o] += xs[:, o:]

    item = 2 * x[:1].size * x.itemsize
    threads.run_chunks(xp, part, x.shape[0], per_chunk(item))
    return out


def lrn_forward(xp, x, size: int, alpha: float, beta: float, k: float):
    """y[:, c] = x[:, c] / (k + alpha / size * sum_{c' in window(c)} x[:, c']**2) ** beta, with
    window(c) = c - (size - 1) // 2 ... c + size // 2; per chunk of the batch, memory order kept."""
    before, after = (size - 1) // 2, size // 2
    out = xp.empty_like(x)

    def part(a, z):
        xs = x[a:z]
        sq = xs * xs
        s = xp.empty_like(sq)
        s[...] = sq
        c = x.shape[1]
        for o in range(1, min(before, c - 1) + 1):
            s[:, o:] += sq[:, :c - o]
        for o in range(1, min(after, c - 1) + 1):
            s[:, :c - o] += sq[:, o:]
        s *= alpha / size
        s += k
        xp.power(s, -beta, out=s)
        xp.multiply(xs, s, out=out[a:z])

    threads.run_chunks(xp, part, x.shape[0], per_chunk(3 * x[:1].size * x.itemsize))
    return out
