"""Gradient checking: symbolic gradients against central differences in float64.

    mg.testing.gradcheck(lambda x, w: ops.matmul(x, w), [x0, w0], order=2)

builds `fn` on float64 placeholders, reduces its output y to a scalar (a fixed random
weighting of y plus y**2 / 2, so that the output gradient depends on the inputs), and compares `mg.gradients` with central differences element by element
(`mode="full"`) or along random directions (`mode="random"`, cheap on big tensors).
With `order=2` it does the same for the gradient of the (randomly weighted) gradient,
which exercises every gradient op's own gradient.

Both helpers run every graph twice, with and without the graph passes
(`mg.Session(g, optimize=False)`), and fail when the two disagree beyond float rounding.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, List, Optional, Sequence

import numpy as np


def evaluate(fn: Callable, *values, dtype=None, shapes: Optional[Sequence] = None):
    """Build `fn` on placeholders shaped and typed like `values` and run it once, fed with them.

    Returns (the output node, its value). `dtype` overrides the placeholders' dtype (values are
    cast on feeding); `shapes` overrides their static shapes (e.g. a None batch). The backend
    is the default one (MINIGRAPH_BACKEND, else NumPy). Meant for op tests and experiments.
    """
    import minigraph as mg

    values = [np.asarray(v) for v in values]
    shapes = shapes or [v.shape for v in values]
    with mg.Graph() as g:
        phs = [mg.placeholder(s, dtype=dtype or v.dtype) for s, v in zip(shapes, values)]
        y = fn(*phs)
    feed = dict(zip(phs, values))
    out = mg.Session(g).run(y, feed)
    check_unoptimized(g, y, feed, out)
    return y, out


def check_unoptimized(graph, fetches, feed, optimized) -> None:
    """Run `fetches` again without the graph passes; raise AssertionError naming the fetch when
    a value differs from `optimized` beyond float rounding (a few ulps of the dtype)."""
    import minigraph as mg

    raw = mg.Session(graph, optimize=False).run(fetches, feed)
    pairs = zip(raw, optimized) if isinstance(fetches, (list, tuple)) else [(raw, optimized)]
    for i, (a, b) in enumerate(pairs):
        a, b = np.asarray(a), np.asarray(b)
        tol = 1e-12 if a.dtype == np.float64 else 1e-5
        if a.shape != b.shape or a.dtype != b.dtype or not np.allclose(a, b, rtol=tol, atol=tol, equal_nan=True):
            raise AssertionError(f"fetch {i}: the optimised graph gives {b!r}, the unoptimised one {a!r}")


class GradcheckError(AssertionError):
    """A symbolic gradient disagrees with the numerical one; the message shows the worst element."""


@dataclasses.dataclass
class GradcheckReport:
    """The largest absolute and relative error seen for each order."""

    max_abs_error: List[float]
    max_rel_error: List[float]


def gradcheck(fn: Callable, inputs: Sequence, order: int = 2, eps: float = 1e-6,
              atol: float = 1e-6, rtol: float = 1e-5, mode: str = "full", directions: int = 4,
              wrt: Optional[Sequence[int]] = None, seed: int = 0) -> GradcheckReport:
    """Check `fn`'s gradients (orders 1..`order`) by central differences in float64.

    `fn(*nodes)` builds the function; `inputs` are arrays for its arguments. Floating inputs
    are cast to float64 and checked (or only those at positions `wrt`); the others (e.g.
    int labels) are fed as they are. Raises `GradcheckError` naming the input, the order and
    the worst element; returns a `GradcheckReport` on success.
    """
    import minigraph as mg

    if mode not in ("full", "random"):
        raise ValueError("mode must be 'full' or 'random'")
    rng = np.random.default_rng(seed)
    values = [np.array(v, dtype=np.float64) if np.asarray(v).dtype.kind == "f" else np.asarray(v)
              for v in inputs]
    if wrt is None:
        wrt = [i for i, v in enumerate(values) if v.dtype.kind == "f"]
    with mg.Graph() as g:
        phs = [mg.placeholder(v.shape, dtype=v.dtype, name=f"input{i}") for i, v in enumerate(values)]
        y = fn(*phs)
        if not isinstance(y, mg.Node):
            raise TypeError("gradcheck: fn must return a node")
        if y.dtype != np.float64:
            raise GradcheckError(f"fn returned dtype {y.dtype} for float64 inputs (a silent cast?)")
    sess = mg.Session(g)
    feed = dict(zip(phs, values))
    y_value = sess.run(y, feed)
    xs = [phs[i] for i in wrt]
    with g:
        # a random weighting plus a square: the output gradient then depends on the inputs, so the
        # second order also checks the paths through it (a weighting linear in y would not)
        weights = mg.constant(rng.standard_normal(y_value.shape))
        scalar = mg.ops.sum(y * weights + 0.5 * (y * y), name="weighted_output")
    report = GradcheckReport([], [])
    for k in range(1, order + 1):
        grads = mg.gradients(scalar, xs)
        for x, gx in zip(xs, grads):
            if tuple(gx.shape) != tuple(x.shape) and None not in gx.shape:
                raise GradcheckError(f"order {k}: gradient for {x.name} has shape {gx.shape}, expected {x.shape}")
        symbolic = sess.run(grads, feed)
        try:
            check_unoptimized(g, grads, feed, symbolic)
        except AssertionError as exc:
            raise GradcheckError(f"order {k}: optimisation changed a gradient: {exc}") from None
        for j, (i, sym) in enumerate(zip(wrt, symbolic)):
            if sym.shape != values[i].shape:
                raise GradcheckError(f"order {k}: gradient for input {i} has run-time shape {sym.shape}, "
                                     f"expected {values[i].shape}")
            if mode == "full":
                num, ana = _numeric_full(sess, scalar, feed, phs[i], eps), sym
            else:
                num, ana = _numeric_directions(sess, scalar, feed, phs[i], sym, eps, directions, rng)
            _compare(ana, num, atol, rtol, k, i, mode, report)
        if k < order:
            with g:
                weights = [mg.constant(rng.standard_normal(values[i].shape)) for i in wrt]
                scalar = mg.ops.add_n([mg.ops.sum(gx * w) for gx, w in zip(grads, weights)])
    return report


def _numeric_full(sess, scalar, feed, ph, eps):
    base = feed[ph]
    out = np.zeros(base.shape)
    flat = out.reshape(-1)
    for idx in range(base.size):
        plus, minus = base.copy(), base.copy()
        plus.reshape(-1)[idx] += eps
        minus.reshape(-1)[idx] -= eps
        fp = sess.run(scalar, {**feed, ph: plus})
        fm = sess.run(scalar, {**feed, ph: minus})
        flat[idx] = (fp - fm) / (2 * eps)
    return out


def _numeric_directions(sess, scalar, feed, ph, sym, eps, directions, rng):
    base = feed[ph]
    num, ana = np.zeros(directions), np.zeros(directions)
    for d in range(directions):
        v = rng.standard_normal(base.shape)
        fp = sess.run(scalar, {**feed, ph: base + eps * v})
        fm = sess.run(scalar, {**feed, ph: base - eps * v})
        num[d] = (fp - fm) / (2 * eps)
        ana[d] = float(np.sum(sym * v))
    return num, ana


def _compare(ana, num, atol, rtol, order, i, mode, report):
    with np.errstate(invalid="ignore"):  # NaN or inf on either side: an error, reported below
        abs_err = np.abs(ana - num)
        excess = abs_err - (atol + rtol * np.abs(num))
        rel = abs_err / np.maximum(np.abs(num), 1e-12)
    excess = np.where(np.isfinite(ana) & np.isfinite(num), excess, np.inf)  # NaN compares as no excess
    report.max_abs_error.append(float(abs_err.max(initial=0.0)))
    report.max_rel_error.append(float(rel.max(initial=0.0)))
    if excess.size and excess.max() > 0:
        worst = np.unravel_index(int(np.argmax(excess)), excess.shape)
        where = f"element {tuple(int(w) for w in worst)}" if mode == "full" else f"random direction {worst[0]}"
        raise GradcheckError(
            f"order-{order} gradient of input {i} disagrees with central differences at {where}: "
            f"symbolic {ana[worst]:.10g}, numeric {num[worst]:.10g} (abs error {abs_err[worst]:.3g}, "
            f"rel error {rel[worst]:.3g}; tolerance atol={atol:g} + rtol={rtol:g}*|numeric|; "
            f"{int((excess > 0).sum())} of {excess.size} outside)")
