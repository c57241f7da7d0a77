"""Neural-network ops: softmax, log_softmax, softmax cross-entropy, one-hot."""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

from minigraph.errors import ShapeError
from minigraph.op import Op, apply, check_float, check_rank
from minigraph.spec import Spec, fmt

from .elementwise import exp, mul, sub
from .reductions import normalize_axes, reciprocal_count, sum


def _logsumexp(xp, x, axis):
    m = x.max(axis=axis, keepdims=True)
    return m + xp.log(xp.exp(x - m).sum(axis=axis, keepdims=True))


@dataclasses.dataclass(frozen=True)
class Softmax(Op):
    """exp(x) / sum(exp(x)) along `axis`, computed without overflow."""

    kind: ClassVar[str] = "softmax"
    axis: int

    def infer(self, x: Spec) -> Spec:
        check_float(x)
        normalize_axes(self.axis, len(x.shape), x.shape)
        return x

    def forward(self, xp, x):
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))
        e /= e.sum(axis=self.axis, keepdims=True)
        return e

    def gradient(self, node, g):
        gy = mul(g, node)
        return [sub(gy, mul(node, sum(gy, axis=self.axis, keepdims=True)))]


@dataclasses.dataclass(frozen=True)
class LogSoftmax(Op):
    """x - logsumexp(x) along `axis`."""

    kind: ClassVar[str] = "log_softmax"
    axis: int

    def infer(self, x: Spec) -> Spec:
        check_float(x)
        normalize_axes(self.axis, len(x.shape), x.shape)
        return x

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
        if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= k):
            raise ValueError(f"softmax_cross_entropy: labels must lie in [0, {k}), "
                             f"got values from {int(labels.min())} to {int(labels.max())}")
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
        out = xp.zeros((labels.shape[0], self.depth), dtype=self.dtype)
        out[xp.arange(labels.shape[0]), labels] = 1
        return out

    def gradient(self, node, g):
        return [None]


def softmax(x, axis: int = -1, name: Optional[str] = None):
    """exp(x) / sum(exp(x)) along `axis` (stable for large inputs)."""
    return apply(Softmax(int(axis)), [x], name)


def log_softmax(x, axis: int = -1, name: Optional[str] = None):
    """log(softmax(x)) along `axis`, computed as x - logsumexp(x) (stable)."""
    return apply(LogSoftmax(int(axis)), [x], name)


def softmax_cross_entropy(logits, labels, name: Optional[str] = None):
    """Mean over the batch of the cross-entropy between softmax(logits) and int `labels`.

    logits (n, k) float, labels (n,) int in [0, k); returns a scalar. Stable for large logits.
    """
    return apply(SoftmaxCrossEntropy(), [logits, labels], name)


def one_hot(labels, depth: int, dtype="float32", name: Optional[str] = None):
    """(n,) int labels -> (n, depth) one-hot rows."""
    return apply(OneHot(int(depth), str(dtype)), [labels], name)
