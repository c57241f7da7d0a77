"""Layers: builders that create their own variables (weights and a bias) and apply an op.

Each layer opens its own name scope (`name`, made unique), creates `weights` and `bias`
variables there with seeded initial values from `mg.init` (He for ReLU layers, Glorot
otherwise, zero biases), and returns the output node:

    h = mg.layers.conv2d(x, 64, 7, stride=2, name="conv1")   # conv1/weights, conv1/bias, ...
    h = mg.layers.conv1x1(h, 64, name="reduce")
    logits = mg.layers.dense(h, 10, name="fc")

Variables take the input's dtype (float32 unless the input is float64).
`activation` is "relu", None (linear) or any callable taking and returning a node. `rng`
is passed to the initializer (None: `mg.init`'s default generator, see `mg.init.seed`).

Batch normalisation: `batch_norm(x, training)` is a layer of its own (gamma, beta and the
two moving averages in its scope); `conv2d(..., batch_norm=True, training=t)` and
`conv1x1(...)` put one between the convolution (then without a bias: beta takes its place)
and the activation, inside the conv's scope, as in BN-Inception.

A layer's scope name stands for its output: `g.get("block1/conv")` is the layer's last op
(its ReLU, or its batch norm without an activation).
"""
from __future__ import annotations

from typing import Callable, Optional, Union

from minigraph import init, ops
from .errors import ShapeError
from .graph import Node, graph_of
from .op import variable

Activation = Union[None, str, Callable[[Node], Node]]


def _pair(v, what: str):
    pair = (v, v) if isinstance(v, int) else tuple(v)
    if len(pair) != 2 or any(not isinstance(d, int) or d < 1 for d in pair):
        raise ValueError(f"{what} must be a positive int or a pair of them, got {v!r}")
    return pair


def _channels(x: Node, layer: str, rank: int) -> int:
    if x.ndim != rank or x.shape[1] is None:
        want = "(N, C, H, W)" if rank == 4 else "(N, features)"
        raise ShapeError(f"{layer}: input {x.name!r} must be {want} with a known dimension 1, "
                         f"got shape {x.shape}")
    return int(x.shape[1])


def _activate(h: Node, activation: Activation) -> Node:
    if activation is None:
        return h
    if activation == "relu":
        return ops.relu(h)
    if callable(activation):
        return activation(h)
    raise ValueError(f"activation must be 'relu', None or a callable, got {activation!r}")


def _init_for(activation: Activation):
    return init.he if activation == "relu" else init.glorot


def conv2d(x: Node, filters: int, size, stride=1, padding="SAME", activation: Activation = "relu",
           name: Optional[str] = None, rng=None, batch_norm: bool = False, training=None) -> Node:
    """A convolution layer: activation(conv2d(x, w, b, stride, padding)), or with `batch_norm`
    activation(batch_norm(conv2d(x, w, stride, padding), training)) (no bias).

    x (N, C, H, W) -> (N, filters, H', W'); w (filters, C, KH, KW), b (filters,). `size`
    and `stride` are ints or pairs; padding as `ops.conv2d` ("SAME" keeps H' = ceil(H/stride)).
    `training` (a bool or a scalar bool node) is required with `batch_norm`.
    """
    kh, kw = _pair(size, "size")
    _check_bn(batch_norm, training, "conv2d")
    with graph_of([x]).name_scope(name or "conv"):
        c = _channels(x, "conv2d layer", 4)
        w = variable(_init_for(activation)((filters, c, kh, kw), rng=rng, dtype=x.dtype), name="weights")
        b = None if batch_norm else variable(init.zeros((filters,), dtype=x.dtype), name="bias")
        h = ops.conv2d(x, w, b, stride=stride, padding=padding)
        if batch_norm:
            h = _batch_norm_here(h, training)
        return _activate(h, activation)


def conv1x1(x: Node, filters: int, activation: Activation = "relu", name: Optional[str] = None,
            rng=None, batch_norm: bool = False, training=None) -> Node:
    """A 1x1 convolution layer (a Conv1x1 node, the Inception bottleneck): per-pixel channel mixing.

    x (N, C, H, W) -> (N, filters, H, W); w (filters, C, 1, 1), b (filters,). `batch_norm` and
    `training` as for `conv2d`.
    """
    _check_bn(batch_norm, training, "conv1x1")
    with graph_of([x]).name_scope(name or "conv1x1"):
        c = _channels(x, "conv1x1 layer", 4)
        w = variable(_init_for(activation)((filters, c, 1, 1), rng=rng, dtype=x.dtype), name="weights")
        b = None if batch_norm else variable(init.zeros((filters,), dtype=x.dtype), name="bias")
        h = ops.conv1x1(x, w, b)
        if batch_norm:
            h = _batch_norm_here(h, training)
        return _activate(h, activation)


def batch_norm(x: Node, training, momentum: float = 0.9, epsilon: float = 1e-5,
               name: Optional[str] = None) -> Node:
    """A batch-normalisation layer over channel axis 1 of x (N, C, ...): `ops.batch_norm` with
    its variables in its own scope: `gamma` (ones) and `beta` (zeros), trainable, and
    `moving_mean` (zeros) and `moving_variance` (ones), not trainable.

    `training`: a Python bool or a scalar bool node (e.g. a model's `training` switch). When
    true, the batch's statistics normalise and the moving averages move
    (moving = momentum * moving + (1 - momentum) * batch value); when false, the moving
    averages normalise.
    """
    with graph_of([x]).name_scope(name or "batch_norm"):
        return _batch_norm_here(x, training, momentum, epsilon)


def _batch_norm_here(x: Node, training, momentum: float = 0.9, epsilon: float = 1e-5) -> Node:
    """ops.batch_norm with its four variables created in the current scope."""
    if x.ndim < 2 or x.shape[1] is None:
        raise ShapeError(f"batch_norm layer: input {x.name!r} must be (N, C, ...) with a known C, "
                         f"got shape {x.shape}")
    c = (int(x.shape[1]),)
    gamma = variable(init.constant(c, 1.0, dtype=x.dtype), name="gamma")
    beta = variable(init.zeros(c, dtype=x.dtype), name="beta")
    moving_mean = variable(init.zeros(c, dtype=x.dtype), name="moving_mean", trainable=False)
    moving_var = variable(init.constant(c, 1.0, dtype=x.dtype), name="moving_variance", trainable=False)
    return ops.batch_norm(x, gamma, beta, moving_mean, moving_var, training, momentum, epsilon)


def _check_bn(batch_norm: bool, training, layer: str) -> None:
    if batch_norm and training is None:
        raise ValueError(f"{layer} layer: batch_norm=True needs training= (a bool or a scalar bool node)")
    if not batch_norm and training is not None:
        raise ValueError(f"{layer} layer: training= is only used with batch_norm=True")


def dense(x: Node, units: int, activation: Activation = None, name: Optional[str] = None,
          rng=None) -> Node:
    """A fully connected layer: activation(x @ w + b); inputs of rank > 2 are flattened first.

    x (N, D) -> (N, units); w (D, units), b (units,).
    """
    with graph_of([x]).name_scope(name or "dense"):
        if x.ndim > 2:
            x = ops.flatten(x)
        d = _channels(x, "dense layer", 2)
        w = variable(_init_for(activation)((d, units), rng=rng, dtype=x.dtype), name="weights")
        b = variable(init.zeros((units,), dtype=x.dtype), name="bias")
        return _activate(ops.add(ops.matmul(x, w), b), activation)


__all__ = ["conv2d", "conv1x1", "dense", "batch_norm"]
