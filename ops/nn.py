"""Neural-network ops: softmax, log_softmax, softmax cross-entropy, one-hot."""
from __future__ import annotations

import dataclasses
import math
import zlib
from typing import ClassVar, Optional

import numpy as np

from minigraph.checks import as_axis
from minigraph.dispatch import register_kernel
from minigraph.errors import FeedError, ShapeError
from minigraph.op import Op, StateSlot, apply, check_float, check_rank, constant_value
from minigraph.runtime import serial_runtime
from minigraph.spec import Spec, fmt

from .elementwise import exp, mul, sub
from .reductions import normalize_axes, reciprocal_count, sum


def _logsumexp(xp, x, axis):
    m = x.max(axis=axis, keepdims=True)
    return m + xp.log(xp.exp(x - m).sum(axis=axis, keepdims=True))


@dataclasses.dataclass(frozen=True)
class AlongAxis(Op):
    """Shared shape rule of the float ops that keep their input's shape and work along `axis`."""

    axis: int

    def infer(self, x: Spec) -> Spec:
        check_float(x)
        (axis,) = normalize_axes(self.axis, len(x.shape), x.shape)
        if x.shape[axis] == 0:
            raise ShapeError(f"axis {self.axis} of {fmt(x.shape)} is empty: nothing to normalise over")
        return x


@dataclasses.dataclass(frozen=True)
class Softmax(AlongAxis):
    """exp(x) / sum(exp(x)) along `axis`, computed without overflow."""

    kind: ClassVar[str] = "softmax"

    def forward(self, xp, x):
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))
        e /= e.sum(axis=self.axis, keepdims=True)
        return e

    def gradient(self, node, g):
        gy = mul(g, node)
        return [sub(gy, mul(node, sum(gy, axis=self.axis, keepdims=True)))]


@dataclasses.dataclass(frozen=True)
class LogSoftmax(AlongAxis):
    """x - logsumexp(x) along `axis`."""

    kind: ClassVar[str] = "log_softmax"

    def forward(self, xp, x):
        return x - _logsumexp(xp, x, self.axis)

    def gradient(self, node, g):
        return [sub(g, mul(exp(node), sum(g, axis=self.axis, keepdims=True)))]


@dataclasses.dataclass(frozen=True)
class SoftmaxCrossEntropy(Op):
    """mean over the batch of -log softmax(logits)[label]; logits (n, k), int labels (n,)."""

    kind: ClassVar[str] = "softmax_cross_entropy"

    def infer(self, logits: Spec, labels: Spec) -> Spec:
        check_float(logits)
        check_rank(logits, 2, "logits")
        check_rank(labels, 1, "labels")
        if labels.dtype.kind not in "iu":
            raise ShapeError(f"labels must be integers, got {labels.dtype}")
        n, m = logits.shape[0], labels.shape[0]
        if n is not None and m is not None and n != m:
            raise ShapeError(f"batch sizes differ: logits {fmt(logits.shape)}, labels {fmt(labels.shape)}")
        return Spec((), logits.dtype)

    def forward(self, xp, logits, labels):
        k = logits.shape[1]
        if logits.shape[0] == 0:
            raise FeedError("the batch is empty: the mean loss over 0 examples is undefined")
        if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= k):
            raise FeedError(f"labels must lie in [0, {k}), got values from {int(labels.min())} "
                            f"to {int(labels.max())}")
        logp = logits - _logsumexp(xp, logits, 1)
        picked = xp.take_along_axis(logp, labels[:, None].astype(xp.int64), axis=1)
        return (-picked.mean()).astype(logits.dtype)

    def gradient(self, node, g):
        logits, labels = node.inputs
        diff = sub(softmax(logits, axis=1), one_hot(labels, logits.shape[1], logits.dtype))
        return [mul(diff, mul(g, reciprocal_count(logits, (0,)))), None]


@dataclasses.dataclass(frozen=True)
class OneHot(Op):
    """(n,) int labels -> (n, depth) with a 1 at each label."""

    kind: ClassVar[str] = "one_hot"
    depth: int
    dtype: str = "float32"

    def infer(self, labels: Spec) -> Spec:
        check_rank(labels, 1, "labels")
        if labels.dtype.kind not in "iu":
            raise ShapeError(f"labels must be integers, got {labels.dtype}")
        return Spec((labels.shape[0], self.depth), self.dtype)

    def forward(self, xp, labels):
        if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= self.depth):
            # a negative label would silently set the last column
            raise FeedError(f"labels must lie in [0, {self.depth}), got values from {int(labels.min())} "
                            f"to {int(labels.max())}")
        out = xp.zeros((labels.shape[0], self.depth), dtype=self.dtype)
        out[xp.arange(labels.shape[0]), labels] = 1
        return out

    def gradient(self, node, g):
        return [None]


def softmax(x, axis: int = -1, name: Optional[str] = None):
    """exp(x) / sum(exp(x)) along `axis` (stable for large inputs)."""
    return apply(Softmax(as_axis(axis, "softmax: axis")), [x], name)


def log_softmax(x, axis: int = -1, name: Optional[str] = None):
    """log(softmax(x)) along `axis`, computed as x - logsumexp(x) (stable)."""
    return apply(LogSoftmax(as_axis(axis, "log_softmax: axis")), [x], name)


def softmax_cross_entropy(logits, labels, name: Optional[str] = None):
    """Mean over the batch of the cross-entropy between softmax(logits) and int `labels`.

    logits (n, k) float, labels (n,) int in [0, k); returns a scalar. Stable for large logits.
    """
    return apply(SoftmaxCrossEntropy(), [logits, labels], name)


def one_hot(labels, depth: int, dtype="float32", name: Optional[str] = None):
    """(n,) int labels in [0, depth) -> (n, depth) one-hot rows; depth >= 1."""
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ShapeError(f"one_hot: depth must be an int >= 1, got {depth!r}")
    return apply(OneHot(int(depth), str(dtype)), [labels], name)


# ---------------------------------------------------------------------------------
# local response normalisation and dropout (CNN ops)


@dataclasses.dataclass(frozen=True)
class ChannelWindowSum(Op):
    """out[:, c] = sum of x[:, c - before : c + after + 1] (zeros beyond the channel edges).

    Linear; its adjoint (and so its gradient) is the window mirrored: (after, before).
    """

    kind: ClassVar[str] = "channel_window_sum"
    before: int
    after: int

    def infer(self, x: Spec) -> Spec:
        if min(self.before, self.after) < 0:
            raise ShapeError(f"the channel window ({self.before}, {self.after}) must not be negative")
        check_float(x)
        if len(x.shape) < 2:
            raise ShapeError(f"input needs a channel axis (rank >= 2), got {fmt(x.shape)}")
        return x

    def forward(self, xp, x):
        return _channel_window_sum_chunked(serial_runtime(xp), self, x)

    def gradient(self, node, g):
        return [channel_window_sum(g, self.after, self.before)]


@dataclasses.dataclass(frozen=True)
class LocalResponseNorm(Op):
    """AlexNet/Caffe LRN across channels of x (N, C, ...):

        y[:, c] = x[:, c] / (k + alpha / size * sum_{c' in window(c)} x[:, c']**2) ** beta

    with window(c) = c - (size - 1) // 2 ... c + size // 2, zeros beyond the edges. The
    gradient is built from differentiable ops (second order works):
        gx = g * s**-beta - 2 * alpha * beta / size * x * W^T(g * x * s**(-beta - 1)).
    """

    kind: ClassVar[str] = "local_response_norm"
    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0

    @property
    def window(self):
        return (self.size - 1) // 2, self.size // 2

    def infer(self, x: Spec) -> Spec:
        check_float(x)
        check_rank(x, 4, "input")
        return x

    def forward(self, xp, x):
        return _lrn_chunked(serial_runtime(xp), self, x)

    def label(self, node):
        return "LRN"

    def gradient(self, node, g):
        return [apply(LocalResponseNormGrad(self.size, self.alpha, self.beta, self.k), [node.inputs[0], g])]

    def gradient_expression(self, x, g):
        """The input gradient as differentiable elementwise ops (what `LocalResponseNormGrad`
        computes in one chunked pass): g * s**-beta - 2 alpha beta / size * x * W^T(g x s**(-beta-1))."""
        from .elementwise import log, square
        before, after = self.window
        s = mul(channel_window_sum(square(x), before, after), self.alpha / self.size) + self.k
        s_pow = exp(mul(log(s), -self.beta))  # s ** -beta
        inner = channel_window_sum(g * x * s_pow / s, after, before)
        return g * s_pow - mul(x * inner, 2.0 * self.alpha * self.beta / self.size)


@dataclasses.dataclass(frozen=True)
class LocalResponseNormGrad(Op):
    """x, g (N, C, H, W) -> the gradient of local_response_norm(x) (attributes as there) for the
    output gradient g, in one pass over each chunk of the batch (see `lrn_kernels.lrn_backward`).
    Its own gradient differentiates the same formula written as elementwise ops."""

    kind: ClassVar[str] = "local_response_norm_grad"
    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0

    def infer(self, x: Spec, g: Spec) -> Spec:
        check_float(x, g)
        check_rank(x, 4, "input")
        if len(g.shape) != 4 or any(a is not None and b is not None and a != b for a, b in zip(x.shape, g.shape)):
            raise ShapeError(f"gradient {fmt(g.shape)} does not match the input {fmt(x.shape)}")
        return x

    def forward(self, xp, x, g):
        return _lrn_grad_chunked(serial_runtime(xp), self, x, g)

    def gradient(self, node, gg):
        """The partial derivatives of the formula in x and in g, x, g and gg held fixed (g and
        gg usually depend on x themselves: autodiff adds those paths through their own
        gradients). The results refer to x, g and gg as they are, so they differentiate again."""
        from minigraph.autodiff import gradients

        x, g = node.inputs
        lrn = LocalResponseNorm(self.size, self.alpha, self.beta, self.k)
        return gradients(sum(lrn.gradient_expression(x, g) * gg), [x, g], stop_gradients=[x, g, gg])


_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment (2**64 / golden ratio)


def _mix64(xp, z):
    """SplitMix64's finalizer on uint64 values (an array, or a Python int masked to 64 bits)."""
    if isinstance(z, int):
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB & _MASK64
        return z ^ (z >> 31)
    z = (z ^ (z >> 30)) * xp.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> 27)) * xp.uint64(0x94D049BB133111EB)
    return z ^ (z >> 31)


def dropout_keep(xp, key: int, draw: int, rows, per_row: int, rate: float):
    """Which entries dropout keeps: a bool array (len(rows), per_row), entry (i, e) kept when
    u >= rate, u uniform in [0, 1) from a counter-based generator keyed by (key, draw,
    rows[i], e), so a row's mask depends on its example index, not on which batch or
    process it was drawn in. u = (h >> 11) / 2**53 with h = SplitMix64 output number e of
    the stream seeded by mix(mix(key + draw * gamma) + row * gamma)."""
    base = _mix64(xp, (key + draw * _GAMMA) & _MASK64)
    row_seed = _mix64(xp, xp.uint64(base) + xp.asarray(rows, dtype=xp.uint64) * xp.uint64(_GAMMA))
    steps = (xp.arange(1, per_row + 1, dtype=xp.uint64) * xp.uint64(_GAMMA))
    h = _mix64(xp, row_seed[:, None] + steps[None, :])
    threshold = math.ceil(rate * 2.0 ** 53)  # u >= rate  <=>  h >> 11 >= rate * 2**53
    return (h >> 11) >= xp.uint64(threshold)


DROPOUT_KEY = "dropout/key"  # session state: the session's dropout key, drawn once from its generator


@dataclasses.dataclass(frozen=True, eq=False)
class DropoutMask(Op):
    """A mask shaped like x: when `training` (a scalar bool input) is true, each entry is
    1 / (1 - rate) with probability 1 - rate and 0 otherwise; when false, all ones. Not
    differentiable (its gradient is None).

    Row i of x is example number `first_example + i` (an optional int scalar input, 0 when
    absent) and its mask comes from `dropout_keep(key, draw, example, ...)`: `key` is drawn
    once per session from its seeded generator (`session.state["dropout/key"]`), `draw`
    counts this node's training runs (`session.state["<node>/draws"]`). So a 1-rank run and
    an N-rank run that feed each rank's offset in the global batch draw the same masks, and
    a restored checkpoint continues the same sequence. Random: never merged with another
    mask, never folded.
    """

    kind: ClassVar[str] = "dropout_mask"
    __eq__, __hash__ = object.__eq__, object.__hash__
    side_effects: ClassVar[bool] = True  # counts its draws in session.state
    pure: ClassVar[bool] = False
    deterministic: ClassVar[bool] = False
    foldable: ClassVar[bool] = False
    role: ClassVar[str] = "helper"
    names_consumer: ClassVar[str] = "dropout"
    rate: float

    def infer(self, x: Spec, training: Spec, first_example: Optional[Spec] = None) -> Spec:
        check_float(x)
        if not 0.0 <= self.rate < 1.0:  # the builder checks it too; a model file may not have
            raise ShapeError(f"the dropout rate must lie in [0, 1), got {self.rate!r}")
        if training.shape != () or training.dtype.kind != "b":
            raise ShapeError(f"training must be a scalar bool, got {fmt(training.shape)} {training.dtype}")
        if first_example is not None and (first_example.shape != () or first_example.dtype.kind not in "iu"):
            raise ShapeError(f"first_example must be an int scalar, got {fmt(first_example.shape)} "
                             f"{first_example.dtype}")
        if len(x.shape) < 1:
            raise ShapeError("dropout needs a batch axis, got a scalar")
        return x

    def state_slots(self, node):
        return {DROPOUT_KEY: StateSlot((), np.dtype(np.int64), shared=True, optimizer=False),
                f"{node.name}/draws": StateSlot((), np.dtype(np.int64), count=True, optimizer=False)}

    def run(self, ctx, node, arrays):
        x, training = arrays[:2]
        xp = ctx.xp
        if not bool(training) or self.rate == 0.0:
            return xp.ones(x.shape, dtype=x.dtype)
        first = int(arrays[2]) if len(arrays) > 2 else 0
        if first < 0:
            raise FeedError(f"dropout {node.name!r}: first_example must be >= 0, got {first}")
        state = ctx.state
        if DROPOUT_KEY not in state:
            state[DROPOUT_KEY] = xp.asarray(int(ctx.rng.integers(0, 2 ** 63 - 1)), dtype=xp.int64)
        draw = int(state.get(f"{node.name}/draws", 0))
        state[f"{node.name}/draws"] = xp.asarray(draw + 1, dtype=xp.int64)
        key = (int(state[DROPOUT_KEY]) + zlib.crc32(node.name.encode())) & _MASK64
        n = x.shape[0]
        keep = dropout_keep(xp, key, draw, xp.arange(first, first + n), x.size // max(n, 1), self.rate)
        return keep.reshape(x.shape).astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.rate))

    def gradient(self, node, g):
        return [None] * len(node.inputs)

    def consumer_label(self, node):
        return f"dropout {self.rate:.0%}"

    def specialize(self, node, inputs):
        """Not training (a constant False switch), or rate 0: all ones, a deterministic fill."""
        from .elementwise import Fill
        training = constant_value(inputs[1])
        if self.rate != 0.0 and (training is None or bool(training)):
            return None
        return Fill(1.0), [inputs[0]]


@register_kernel("channel_window_sum", "numpy", "chunked")
@register_kernel("channel_window_sum", "cupy", "chunked")
def _channel_window_sum_chunked(rt, op, x):
    from .lrn_kernels import channel_window_sum
    return channel_window_sum(rt, x, op.before, op.after)


@register_kernel("local_response_norm", "numpy", "chunked")
@register_kernel("local_response_norm", "cupy", "chunked")
def _lrn_chunked(rt, op, x):
    from .lrn_kernels import lrn_forward
    return lrn_forward(rt, x, op.size, op.alpha, op.beta, op.k)


@register_kernel("local_response_norm_grad", "numpy", "chunked")
@register_kernel("local_response_norm_grad", "cupy", "chunked")
def _lrn_grad_chunked(rt, op, x, g):
    from .lrn_kernels import lrn_backward
    return lrn_backward(rt, x, g, op.size, op.alpha, op.beta, op.k)


def channel_window_sum(x, before: int, after: int, name: Optional[str] = None):
    """Sum over the channel window c - before ... c + after (axis 1), zeros beyond the edges."""
    return apply(ChannelWindowSum(int(before), int(after)), [x], name)


def local_response_norm(x, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0,
                        name: Optional[str] = None):
    """Local response normalisation across channels, AlexNet/Caffe form (as in GoogLeNet):
    y = x / (k + alpha / size * sum over `size` channels centred on c of x**2) ** beta.
    x (N, C, H, W) -> same shape and dtype."""
    import numbers

    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ShapeError(f"local_response_norm: size must be a positive int, got {size!r}")
    if not k > 0:
        raise ShapeError(f"local_response_norm: k must be > 0, got {k!r}")
    return apply(LocalResponseNorm(int(size), float(alpha), float(beta), float(k)), [x], name)


def dropout(x, rate: float, training, name: Optional[str] = None, first_example=None):
    """Inverted dropout: when training, each entry is zeroed with probability `rate` and the
    rest scaled by 1 / (1 - rate); when not, x unchanged. `training` is a Python bool or a
    scalar bool node (e.g. `mg.placeholder_with_default(False)`). Masks are seeded by the
    session (`mg.Session(g, seed=...)`), a new one each run, and drawn per example: row i
    is example `first_example + i` (an int scalar node, e.g. a rank's offset in the global
    batch; rows count from 0 without it), so data-parallel runs draw the masks of 1 rank."""
    import numpy as np

    from minigraph.graph import Node, graph_of
    from minigraph.op import constant

    from .state import identity

    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout: rate must be a number in [0, 1), got {rate!r}")
    if not isinstance(training, Node):
        if not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"dropout: training must be a bool or a scalar bool node, got {training!r}")
        if not training or rate == 0.0:
            return identity(x, name or "dropout")
        with graph_of([x]):
            training = constant(True, name="training")
    inputs = [x, training] if first_example is None else [x, training, first_example]
    mask = apply(DropoutMask(float(rate)), inputs, "dropout_mask")
    return mul(x, mask, name or "dropout")
