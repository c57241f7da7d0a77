"""minigraph's operators, one module per family; each builder adds a node to the graph."""
from .elementwise import (add, add_n, broadcast_like, div, exp, log, mul, neg, ones_like, relu,
                          sqrt, square, step, sub, sum_like, zeros_like)
from .linalg import matmul
from .nn import log_softmax, one_hot, softmax, softmax_cross_entropy
from .reductions import expand_dims, mean, reciprocal_count, sum
from .shape import flatten, reshape, reshape_like, transpose
from .state import assign, identity

__all__ = [
    "add", "add_n", "broadcast_like", "div", "exp", "log", "mul", "neg", "ones_like", "relu",
    "sqrt", "square", "step", "sub", "sum_like", "zeros_like", "matmul", "log_softmax", "one_hot",
    "softmax", "softmax_cross_entropy", "expand_dims", "mean", "reciprocal_count", "sum",
    "flatten", "reshape", "reshape_like", "transpose", "assign", "identity",
]
