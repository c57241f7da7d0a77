"""Local response normalisation kernels: the channel-window sum, the LRN forward pass and its gradient."""
from __future__ import annotations


def _window_sum_into(out, x, before: int, after: int) -> None:
    """out[:, c] = sum of x[:, c - before : c + after + 1] (zeros beyond the channel edges)."""
    c = x.shape[1]
    out[...] = x
    for o in range(1, min(before, c - 1) + 1):
        out[:, o:] += x[:, :c - o]
    for o in range(1, min(after, c - 1) + 1):
        out[:, :c - o] += x[:, o:]


def channel_window_sum(rt, x, before: int, after: int):
    """out[:, c] = sum of x[:, c - before : c + after + 1] along axis 1 (zeros beyond the edges).

    The output keeps x's memory order; the batch is split over `rt.run_chunks`."""
    xp = rt.xp
    out = xp.empty_like(x)

    def part(a, z):
        _window_sum_into(out[a:z], x[a:z], before, after)

    rt.run_chunks(part, x.shape[0], rt.per_chunk(2 * x[:1].size * x.itemsize))
    return out


def lrn_forward(rt, x, size: int, alpha: float, beta: float, k: float):
    """y[:, c] = x[:, c] / (k + alpha / size * sum_{c' in window(c)} x[:, c']**2) ** beta, with
    window(c) = c - (size - 1) // 2 ... c + size // 2; per chunk of the batch, memory order kept."""
    xp = rt.xp
    before, after = (size - 1) // 2, size // 2
    out = xp.empty_like(x)

    def part(a, z):
        xs = x[a:z]
        sq = xs * xs
        s = xp.empty_like(sq)
        _window_sum_into(s, sq, before, after)
        s *= alpha / size
        s += k
        xp.power(s, -beta, out=s)
        xp.multiply(xs, s, out=out[a:z])

    rt.run_chunks(part, x.shape[0], rt.per_chunk(3 * x[:1].size * x.itemsize))
    return out


def lrn_backward(rt, x, g, size: int, alpha: float, beta: float, k: float):
    """The gradient of `lrn_forward` in x for the output gradient g:
        gx = g * s**-beta - 2 * alpha * beta / size * x * W^T(g * x * s**(-beta - 1)),
    s = k + alpha / size * W(x**2) (W: the channel window sum, W^T its mirror). Per chunk of the
    batch, every intermediate in cache; g's memory order is kept."""
    xp = rt.xp
    before, after = (size - 1) // 2, size // 2
    out = xp.empty_like(g)

    def part(a, z):
        xs, gs = x[a:z], g[a:z]
        s = xp.empty_like(gs)
        _window_sum_into(s, xs * xs, before, after)
        s *= alpha / size
        s += k
        s_pow = xp.power(s, -beta)           # s ** -beta
        t = gs * xs
        t *= s_pow
        t /= s                               # g x s**(-beta - 1)
        _window_sum_into(s, t, after, before)
        s *= xs
        s *= 2.0 * alpha * beta / size
        o = out[a:z]
        xp.multiply(gs, s_pow, out=o)
        o -= s

    rt.run_chunks(part, x.shape[0], rt.per_chunk(5 * x[:1].size * x.itemsize))
    return out
