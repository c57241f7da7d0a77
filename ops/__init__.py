"""minigraph's operators, one module per family; each builder adds a node to the graph.

`registry()` returns {kind: op class} for every op defined (here or by users), and
`op_class(kind)` looks one up.
"""
from minigraph.op import op_class, registry
from .elementwise import (add, add_n, broadcast_like, div, exp, log, mul, neg, ones_like, relu,
                          sqrt, square, step, sub, sum_like, zeros_like)
from .linalg import matmul
from .nn import log_softmax, one_hot, softmax, softmax_cross_entropy
from .reductions import expand_dims, mean, reciprocal_count, sum
from .shape import flatten, reshape, reshape_like, transpose
from .state import assign, identity
from .concat import concat, pad_axis, slice_axis
from .conv import conv2d, conv2d_backprop_filter, conv2d_backprop_input
from .conv1x1 import conv1x1, conv1x1_backprop_filter
from .nn import channel_window_sum, dropout, local_response_norm
from .pool import avg_pool, global_avg_pool, max_pool, max_pool_grad
from .activations import sigmoid, tanh
from .select import argmax, where
from .state import stop_gradient
from .normalization import batch_norm, batch_normalization

__all__ = [
    "add", "add_n", "broadcast_like", "div", "exp", "log", "mul", "neg", "ones_like", "relu",
    "sqrt", "square", "step", "sub", "sum_like", "zeros_like", "matmul", "log_softmax", "one_hot",
    "softmax", "softmax_cross_entropy", "expand_dims", "mean", "reciprocal_count", "sum",
    "flatten", "reshape", "reshape_like", "transpose", "assign", "identity",
    "concat", "pad_axis", "slice_axis", "conv2d", "conv2d_backprop_filter", "conv2d_backprop_input",
    "conv1x1", "conv1x1_backprop_filter", "channel_window_sum", "dropout", "local_response_norm",
    "avg_pool", "global_avg_pool", "max_pool", "max_pool_grad", "registry", "op_class",
    "sigmoid", "tanh", "argmax", "where", "stop_gradient", "batch_norm", "batch_normalization",
]
