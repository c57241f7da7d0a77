"""The benchmark's own network definitions: Inception(3a) and GoogLeNet (Szegedy et al. 2014,
Table 1), as plain data that the minigraph builder here and `torch_reference.py` both read.

These builders belong to the benchmark, not to the library (`mg.models` is the library's):
they pin down exactly what is timed, so that minigraph and PyTorch run the same function
on the same weights. A network is a list of layers:

- `Conv(name, filters, size, stride)`: SAME padding (TensorFlow's rule), bias, then ReLU;
  a 1x1 kernel with stride 1 is built with `ops.conv1x1`.
- `MaxPool(size, stride)`: SAME padding (TensorFlow's rule: the odd extra row/column at the
  bottom/right, padded cells never win).
- `LRN(size, alpha, beta, k)`: `x / (k + alpha/size * sum of x^2 over `size` channels)^beta`.
- `Inception(name, c1, c3r, c3, c5r, c5, pool_proj)`: Figure 2(b), bias + ReLU after every conv,
  the four branches concatenated along channels in that order.
- `GlobalAvgPool()` (Table 1's 7x7/1 average pool on the 7x7 map), `Dropout(rate)` (built
  in inference mode, i.e. the identity, so that both frameworks compute the same function),
  `Dense(name, units)` (no activation).

Weights are a flat list in *canonical order*: for every conv in the order above (in an
inception module: 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) its filter (F, C, KH, KW)
then its bias (F,); for a dense layer its matrix (in, out) then its bias (out,).
"""
from __future__ import annotations

import math
from typing import List, NamedTuple, Sequence, Tuple

import numpy as np


class Conv(NamedTuple):
    name: str
    filters: int
    size: int
    stride: int = 1


class MaxPool(NamedTuple):
    size: int
    stride: int


class LRN(NamedTuple):
    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0  # Caffe's default, as in the BVLC GoogLeNet


class Inception(NamedTuple):
    name: str
    c1: int
    c3r: int
    c3: int
    c5r: int
    c5: int
    pool_proj: int


class GlobalAvgPool(NamedTuple):
    pass


class Dropout(NamedTuple):
    rate: float


class Dense(NamedTuple):
    name: str
    units: int


# Table 1 of "Going deeper with convolutions": #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
TABLE1_INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def inception3a(width: int = 1) -> List:
    """The Inception(3a) module alone (input (N, 192, 28, 28) at full width)."""
    return [Inception("inception_3a", *_narrow(TABLE1_INCEPTION["3a"], width))]


def googlenet(num_classes: int = 1000, width: int = 1) -> List:
    """GoogLeNet without the auxiliary classifiers, as in Table 1 (input (N, 3, 224, 224)),
    with Figure 3's LRN after the first pool and after conv2. `width` > 1 divides every
    channel count (at least 1 channel), for quick smoke runs on tiny inputs."""
    def inc(tag):
        return Inception(f"inception_{tag}", *_narrow(TABLE1_INCEPTION[tag], width))

    def w(c):
        return max(1, c // width)

    return [
        Conv("conv1", w(64), 7, 2), MaxPool(3, 2), LRN(),
        Conv("conv2_reduce", w(64), 1), Conv("conv2", w(192), 3), LRN(), MaxPool(3, 2),
        inc("3a"), inc("3b"), MaxPool(3, 2),
        inc("4a"), inc("4b"), inc("4c"), inc("4d"), inc("4e"), MaxPool(3, 2),
        inc("5a"), inc("5b"), GlobalAvgPool(), Dropout(0.4), Dense("fc", num_classes),
    ]


def _narrow(cfg: Sequence[int], width: int) -> Tuple[int, ...]:
    return tuple(max(1, c // width) for c in cfg)


# ---------------------------------------------------------------------------------
# geometry, parameters and multiply-adds (pure Python: the reference for GFLOP/s)


def same_pads(size: int, k: int, stride: int) -> Tuple[int, int]:
    """TensorFlow's SAME padding along one axis: out = ceil(size / stride), the odd cell at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def inception_convs(layer: Inception, c_in: int) -> List[Tuple[str, int, int, int]]:
    """The convs of an inception module in canonical order: (suffix, in channels, filters, size)."""
    return [("1x1", c_in, layer.c1, 1), ("3x3_reduce", c_in, layer.c3r, 1), ("3x3", layer.c3r, layer.c3, 3),
            ("5x5_reduce", c_in, layer.c5r, 1), ("5x5", layer.c5r, layer.c5, 5),
            ("pool_proj", c_in, layer.pool_proj, 1)]


class LayerCount(NamedTuple):
    name: str
    out_shape: Tuple[int, ...]
    params: int
    macs: int


def count(layers: Sequence, input_shape: Tuple[int, int, int, int]) -> List[LayerCount]:
    """Output shape, parameters and multiply-adds of every layer (convs and dense layers only
    do multiply-adds; pooling, LRN and ReLU count as zero, as in Table 1)."""
    n, c, h, w = input_shape
    rows = []
    for layer in layers:
        params = macs = 0
        if isinstance(layer, Conv):
            h, w = -(-h // layer.stride), -(-w // layer.stride)
            params = layer.filters * (c * layer.size ** 2 + 1)
            macs = n * h * w * layer.filters * c * layer.size ** 2
            c = layer.filters
        elif isinstance(layer, MaxPool):
            h, w = -(-h // layer.stride), -(-w // layer.stride)
        elif isinstance(layer, Inception):
            for _, cin, f, k in inception_convs(layer, c):
                params += f * (cin * k * k + 1)
                macs += n * h * w * f * cin * k * k
            c = layer.c1 + layer.c3 + layer.c5 + layer.pool_proj
        elif isinstance(layer, GlobalAvgPool):
            h = w = 1
        elif isinstance(layer, Dense):
            params = layer.units * (c * h * w + 1)
            macs = n * c * h * w * layer.units
            c, h, w = layer.units, 1, 1
        name = getattr(layer, "name", type(layer).__name__)
        shape = (n, c) if isinstance(layer, (GlobalAvgPool, Dropout, Dense)) else (n, c, h, w)
        rows.append(LayerCount(name, shape, params, macs))
    return rows


def forward_macs(layers: Sequence, input_shape) -> int:
    return sum(r.macs for r in count(layers, input_shape))


# ---------------------------------------------------------------------------------
# weights


def init_weights(layers: Sequence, input_shape, seed: int = 0) -> List[np.ndarray]:
    """float32 weights in canonical order: He-normal filters, small random biases (so that
    a wrong bias gradient shows up in the comparison)."""
    rng = np.random.default_rng(seed)
    out: List[np.ndarray] = []

    def conv(cin, f, k):
        out.append(rng.normal(0, math.sqrt(2.0 / (cin * k * k)), (f, cin, k, k)).astype(np.float32))
        out.append(rng.normal(0, 0.01, (f,)).astype(np.float32))

    c = input_shape[1]
    spatial = input_shape[2] * input_shape[3]
    for layer, row in zip(layers, count(layers, input_shape)):
        if isinstance(layer, Conv):
            conv(c, layer.filters, layer.size)
        elif isinstance(layer, Inception):
            for _, cin, f, k in inception_convs(layer, c):
                conv(cin, f, k)
        elif isinstance(layer, Dense):
            d = c * spatial
            out.append(rng.normal(0, math.sqrt(1.0 / d), (d, layer.units)).astype(np.float32))
            out.append(np.zeros(layer.units, np.float32))
        c = row.out_shape[1]
        spatial = int(np.prod(row.out_shape[2:], dtype=np.int64))
    return out


# ---------------------------------------------------------------------------------
# the minigraph builder


def build_minigraph(layers: Sequence, x, weights: Sequence[np.ndarray]):
    """The network applied to placeholder `x` in the current graph, its variables made from
    `weights` (canonical order). Returns (output node, variable nodes in canonical order)."""
    import minigraph as mg
    from minigraph import ops

    it = iter(weights)
    variables = []

    def conv(h, name, k, stride=1):
        with mg.name_scope(name):
            w = mg.variable(next(it), name="weights")
            b = mg.variable(next(it), name="bias")
            variables.extend([w, b])
            if k == 1 and stride == 1:
                h = ops.conv1x1(h, w, b)
            else:
                h = ops.conv2d(h, w, b, stride=stride, padding="SAME")
            return ops.relu(h)

    h = x
    for layer in layers:
        if isinstance(layer, Conv):
            h = conv(h, layer.name, layer.size, layer.stride)
        elif isinstance(layer, MaxPool):
            h = ops.max_pool(h, layer.size, layer.stride, padding="SAME")
        elif isinstance(layer, LRN):
            h = ops.local_response_norm(h, layer.size, layer.alpha, layer.beta, layer.k)
        elif isinstance(layer, Inception):
            p = layer.name
            with mg.name_scope(p):
                b1 = conv(h, "1x1", 1)
                b2 = conv(conv(h, "3x3_reduce", 1), "3x3", 3)
                b3 = conv(conv(h, "5x5_reduce", 1), "5x5", 5)
                b4 = conv(ops.max_pool(h, 3, 1, padding="SAME"), "pool_proj", 1)
                h = ops.concat([b1, b2, b3, b4], axis=1)
        elif isinstance(layer, GlobalAvgPool):
            h = ops.global_avg_pool(h)
        elif isinstance(layer, Dropout):
            h = ops.dropout(h, layer.rate, training=False)
        elif isinstance(layer, Dense):
            with mg.name_scope(layer.name):
                w = mg.variable(next(it), name="weights")
                b = mg.variable(next(it), name="bias")
                variables.extend([w, b])
                h = ops.add(ops.matmul(h, w), b)
        else:
            raise TypeError(f"unknown layer {layer!r}")
    if next(it, None) is not None:
        raise ValueError("more weights than the network has parameters")
    return h, variables
