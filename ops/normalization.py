"""Batch normalisation (Ioffe & Szegedy 2015) over the channel axis 1 of (N, C, ...) inputs.

Two ops:

- `batch_normalization(x, mean, variance, gamma, beta, epsilon)` (pure; TensorFlow's
  tf.nn.batch_normalization): y = gamma * (x - mean) / sqrt(variance + epsilon) + beta with
  given per-channel (C,) statistics;
- `batch_norm(x, gamma, beta, moving_mean, moving_variance, training, momentum, epsilon)`:
  when `training` is true, normalises with the batch's own statistics (mean and biased
  variance over every axis but 1) and moves the two moving-average variables towards them,

      moving_mean     <- momentum * moving_mean     + (1 - momentum) * mean
      moving_variance <- momentum * moving_variance + (1 - momentum) * variance * M / (M - 1)

  (M values per channel; the stored variance is the unbiased one, as in PyTorch, whose
  `momentum` is 1 - this one); when false, normalises with the moving averages and writes
  nothing. The op writes state, so it is never folded or merged, and runs holding it take
  the session alone (see minigraph/session.py).

Gradients go through the batch statistics in training (the standard result
gx = gamma / sigma * (g - mean(g) - x̂ * mean(g * x̂)), x̂ the normalised input) and are
built from differentiable ops, so second order works.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

import numpy as np

from minigraph.errors import FeedError, ShapeError
from minigraph.graph import Node, graph_of
from minigraph.op import Constant, Op, Variable, apply, check_float, constant, constant_value
from minigraph.spec import Spec, fmt

from .elementwise import div, mul, neg, sqrt, square, sub
from .reductions import mean, sum
from .select import where
from .shape import reshape


def _channel_axes(ndim: int):
    """Every axis but the channel axis 1: what the statistics reduce over."""
    return (0,) + tuple(range(2, ndim))


def _check(x: Spec, stats) -> None:
    """x float (N, C, ...) and every per-channel input (C,), all of one dtype."""
    check_float(x, *stats)
    if len(x.shape) < 2:
        raise ShapeError(f"input must be (N, C, ...) with a channel axis 1, got {fmt(x.shape)}")
    c = x.shape[1]
    for s in stats:
        if len(s.shape) != 1 or (c is not None and s.shape[0] is not None and s.shape[0] != c):
            raise ShapeError(f"per-channel inputs must be ({c},) for an input {fmt(x.shape)}, got {fmt(s.shape)}")


def _normalize(xp, x, mean_c, var_c, gamma, beta, epsilon: float):
    """gamma * (x - mean) / sqrt(var + epsilon) + beta, the (C,) vectors broadcast on axis 1."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    scale = gamma / xp.sqrt(var_c + x.dtype.type(epsilon))
    y = x - mean_c.reshape(shape)
    y *= scale.reshape(shape)
    y += beta.reshape(shape)
    return y


@dataclasses.dataclass(frozen=True)
class _Norm(Op):
    """Shared display: a normalisation joins its producer's box ('conv 3×3/1, 64 +BN+ReLU')."""

    role: ClassVar[str] = "activation"
    epsilon: float

    def activation_name(self):
        return "BN"

    def label(self, node):
        return "batch norm"

    def short_label(self, node):
        return "BN"


@dataclasses.dataclass(frozen=True)
class BatchNormalization(_Norm):
    """gamma * (x - mean) / sqrt(variance + epsilon) + beta with given (C,) statistics.
    Inputs (x, mean, variance, gamma, beta); x is (N, C, ...), the others (C,)."""

    kind: ClassVar[str] = "batch_normalization"

    def infer(self, x: Spec, mean_c: Spec, var_c: Spec, gamma: Spec, beta: Spec) -> Spec:
        _check(x, [mean_c, var_c, gamma, beta])
        return x

    def forward(self, xp, x, mean_c, var_c, gamma, beta):
        return _normalize(xp, x, mean_c, var_c, gamma, beta, self.epsilon)

    def gradient(self, node, g):
        x, mean_c, var_c, gamma, beta = node.inputs
        return _fixed_statistics_gradient(g, x, mean_c, var_c, gamma, self.epsilon)


def _fixed_statistics_gradient(g, x, mean_c, var_c, gamma, epsilon: float):
    """The gradients for (x, mean, variance, gamma, beta) of batch_normalization."""
    axes, shape = _channel_axes(x.ndim), _broadcast_shape(x)
    r = div(1.0, sqrt(var_c + epsilon))                                # (C,)
    xhat = mul(sub(x, reshape(mean_c, shape)), reshape(r, shape))
    g_sum, gx_hat_sum = sum(g, axes), sum(mul(g, xhat), axes)          # (C,)
    gamma_r = mul(gamma, r)
    gx = mul(g, reshape(gamma_r, shape))
    g_mean = neg(mul(g_sum, gamma_r))
    g_var = mul(mul(gx_hat_sum, mul(gamma_r, r)), -0.5)
    return [gx, g_mean, g_var, gx_hat_sum, g_sum]


@dataclasses.dataclass(frozen=True)
class BatchNorm(_Norm):
    """Batch normalisation with moving averages (see the module docstring). Inputs (x, gamma,
    beta, moving_mean, moving_variance, training): x (N, C, ...), the next four (C,) (the
    moving averages are variables), training a scalar bool. Writes the moving averages when
    `training` is true."""

    kind: ClassVar[str] = "batch_norm"
    side_effects: ClassVar[bool] = True
    pure: ClassVar[bool] = False
    foldable: ClassVar[bool] = False
    momentum: float = 0.9

    def specialize(self, node, inputs):
        """Not training (a constant False switch): the pure op on the moving averages."""
        x, gamma, beta, moving_mean, moving_var, training = inputs
        if constant_value(training) is None or bool(constant_value(training)):
            return None
        return BatchNormalization(self.epsilon), [x, moving_mean, moving_var, gamma, beta]

    def infer(self, x: Spec, gamma: Spec, beta: Spec, moving_mean: Spec, moving_var: Spec,
              training: Spec) -> Spec:
        _check(x, [gamma, beta, moving_mean, moving_var])
        if training.shape != () or training.dtype.kind != "b":
            raise ShapeError(f"training must be a scalar bool, got {fmt(training.shape)} {training.dtype}")
        return x

    def statistics(self, xp, x, moving_mean, moving_var, training):
        """(mean, variance) to normalise with, and the moving averages' new values (None when
        not training)."""
        if not bool(training):
            return moving_mean, moving_var, None
        axes = _channel_axes(x.ndim)
        count = x.size // max(x.shape[1], 1)
        if count < 2:
            raise FeedError(f"batch norm in training needs more than one value per channel, got an input "
                            f"of shape {fmt(tuple(x.shape))}")
        mean_c, var_c = x.mean(axis=axes), x.var(axis=axes)
        m = x.dtype.type(self.momentum)
        new = (m * moving_mean + (1 - m) * mean_c,
               m * moving_var + (1 - m) * var_c * x.dtype.type(count / (count - 1)))
        return mean_c, var_c, new

    def forward(self, xp, x, gamma, beta, moving_mean, moving_var, training):
        mean_c, var_c, _ = self.statistics(xp, x, moving_mean, moving_var, training)
        return _normalize(xp, x, mean_c, var_c, gamma, beta, self.epsilon)

    def run(self, ctx, node, arrays):
        x, gamma, beta, moving_mean, moving_var, training = arrays
        mean_c, var_c, new = self.statistics(ctx.xp, x, moving_mean, moving_var, training)
        y = _normalize(ctx.xp, x, mean_c, var_c, gamma, beta, self.epsilon)
        if new is not None:
            ctx.write_variable(node.inputs[3], new[0].astype(moving_mean.dtype, copy=False))
            ctx.write_variable(node.inputs[4], new[1].astype(moving_var.dtype, copy=False))
        return y

    def gradient(self, node, g):
        x, gamma, beta, moving_mean, moving_var, training = node.inputs
        axes, shape = _channel_axes(x.ndim), _broadcast_shape(x)
        known = _static_bool(training)
        if known is False:  # the moving averages, as fixed statistics
            gx, g_mean, g_var, g_gamma, g_beta = _fixed_statistics_gradient(g, x, moving_mean, moving_var,
                                                                            gamma, self.epsilon)
            return [gx, g_gamma, g_beta, g_mean, g_var, None]
        mu = mean(x, axes, keepdims=True)
        var = mean(square(sub(x, mu)), axes, keepdims=True)
        if known is None:  # chosen at run time: the batch's or the moving statistics
            mu = where(training, mu, reshape(moving_mean, shape))
            var = where(training, var, reshape(moving_var, shape))
        r = div(1.0, sqrt(var + self.epsilon))                             # (1, C, 1, 1)
        xhat = mul(sub(x, mu), r)
        g_sum, gx_hat_sum = sum(g, axes), sum(mul(g, xhat), axes)          # (C,)
        gamma_r = mul(reshape(gamma, shape), r)
        through_stats = mean(g, axes, keepdims=True) + mul(xhat, mean(mul(g, xhat), axes, keepdims=True))
        if known is True:
            return [mul(gamma_r, sub(g, through_stats)), gx_hat_sum, g_sum, None, None, None]
        with graph_of([x]):
            one, zero = (constant(np.array(v, dtype=x.dtype), name=n) for v, n in ((1, "one"), (0, "zero")))
        t = where(training, one, zero)      # 1 in training: the statistics depend on x
        gx = mul(gamma_r, sub(g, mul(through_stats, t)))
        gamma_r_c = reshape(gamma_r, (-1,))
        frozen = sub(1.0, t)                # the moving averages count only when not training
        g_mean = mul(neg(mul(g_sum, gamma_r_c)), frozen)
        g_var = mul(mul(gx_hat_sum, mul(gamma_r_c, reshape(r, (-1,)))), mul(frozen, -0.5))
        return [gx, gx_hat_sum, g_sum, g_mean, g_var, None]


def _broadcast_shape(x: Node):
    return (1, -1) + (1,) * (x.ndim - 2)


def _static_bool(node: Node) -> Optional[bool]:
    """The value of a constant bool switch, None when it is only known at run time."""
    return bool(node.op.value) if isinstance(node.op, Constant) else None


def batch_normalization(x, mean, variance, gamma, beta, epsilon: float = 1e-5, name: Optional[str] = None):
    """gamma * (x - mean) / sqrt(variance + epsilon) + beta over channel axis 1: x (N, C, ...),
    the statistics and gamma, beta (C,). No state: the statistics are inputs."""
    _check_epsilon(epsilon)
    return apply(BatchNormalization(float(epsilon)), [x, mean, variance, gamma, beta], name or "batch_norm")


def batch_norm(x, gamma, beta, moving_mean, moving_variance, training, momentum: float = 0.9,
               epsilon: float = 1e-5, name: Optional[str] = None):
    """Batch normalisation over channel axis 1 of x (N, C, ...) with moving averages.

    gamma, beta (C,): scale and offset (usually trainable variables); moving_mean,
    moving_variance (C,): non-trainable variables holding the moving averages. `training`:
    a Python bool or a scalar bool node (e.g. `mg.placeholder_with_default(False)`). When
    training, y uses the batch's mean and (biased) variance and the moving averages move:
    moving = momentum * moving + (1 - momentum) * batch value (the variance unbiased);
    otherwise y uses the moving averages. `training=False` builds a pure
    `batch_normalization` node on the moving averages (a graph for inference only).
    Defaults match PyTorch's BatchNorm (its momentum 0.1 is 1 - ours, eps 1e-5).
    """
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0.0 <= momentum < 1.0:
        raise ValueError(f"batch_norm: momentum must be a number in [0, 1), got {momentum!r}")
    _check_epsilon(epsilon)
    if not isinstance(training, Node):
        if not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"batch_norm: training must be a bool or a scalar bool node, got {training!r}")
        if not training:
            return batch_normalization(x, moving_mean, moving_variance, gamma, beta, epsilon, name)
        with graph_of([x]):
            training = constant(True, name="training")
    for what, v in (("moving_mean", moving_mean), ("moving_variance", moving_variance)):
        if not isinstance(getattr(v, "op", None), Variable):
            raise TypeError(f"batch_norm: {what} must be a variable node (training writes it), got {v!r}")
    return apply(BatchNorm(float(epsilon), float(momentum)), [x, gamma, beta, moving_mean, moving_variance, training],
                 name or "batch_norm")


def _check_epsilon(epsilon) -> None:
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
        raise ValueError(f"batch_norm: epsilon must be a positive number, got {epsilon!r}")


__all__ = ["batch_norm", "batch_normalization", "BatchNorm", "BatchNormalization"]
