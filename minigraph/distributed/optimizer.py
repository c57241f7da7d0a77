"""`DistributedOptimizer`: any optimizer, with gradients averaged over the ranks.

    comm = mg.distributed.init("mpi")
    opt = mg.distributed.DistributedOptimizer(mg.optim.Adam(1e-3), comm)
    train_op = opt.minimize(loss)
    sess = mg.Session(g)
    mg.distributed.broadcast_variables(sess, comm)          # every rank starts from rank 0's weights
    for batch in mg.data.batches(x, y, 64, seed=0, epoch=e, rank=comm.rank, size=comm.size):
        sess.run(train_op, {x_in: batch.x, y_in: batch.y, opt.share: batch.share})

Each rank computes the gradients of its part of the global batch; buckets of gradients
(about `bucket_bytes` each, see `buckets.py`) are summed over the ranks, each weighted by
the rank's `share` of the global batch, and the wrapped optimizer applies the result. All
ranks then hold bitwise identical gradients, so their weights stay bitwise identical.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..autodiff import gradients
from ..errors import ShapeError
from ..graph import Node
from ..op import placeholder_with_default
from ..optim import Optimizer
from ..spec import fmt
from .buckets import DEFAULT_BUCKET_BYTES, Bucket, BucketPlanner
from .comm import Communicator


class DistributedOptimizer:
    """Wraps `optimizer` (SGD, Adam, ...) so that `compute_gradients` returns gradients
    averaged over `comm`'s ranks; `apply_gradients` and `minimize` as in `mg.optim`.

    `share` (a float scalar node, default 1 / size) is this rank's fraction of the global
    batch: feed `batch.share` from `mg.data.batches(..., rank=, size=)` so that a short last
    batch split unevenly still averages exactly. `buckets` lists the allreduce buckets of
    the last `compute_gradients`.
    """

    def __init__(self, optimizer: Optimizer, comm: Communicator, bucket_bytes: int = DEFAULT_BUCKET_BYTES):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"DistributedOptimizer wraps a mg.optim optimizer, got {type(optimizer).__name__}")
        if not isinstance(comm, Communicator):
            raise TypeError(f"DistributedOptimizer needs a communicator (mg.distributed.init()), got {comm!r}")
        if int(bucket_bytes) < 1:
            raise ValueError(f"bucket_bytes must be >= 1, got {bucket_bytes}")
        self.optimizer, self.comm, self.bucket_bytes = optimizer, comm, int(bucket_bytes)
        self.name = "Distributed" + optimizer.name
        self.share: Optional[Node] = None
        self.buckets: List[Bucket] = []

    def __repr__(self) -> str:
        return f"<DistributedOptimizer {self.optimizer!r} on {self.comm!r}>"

    def compute_gradients(self, loss: Node, var_list: Optional[Sequence[Node]] = None) -> List[Tuple[Node, Node]]:
        """[(gradient averaged over the ranks, variable)], in `var_list`'s order. Each bucket's
        allreduce node is built as soon as its gradients exist, so it starts during the
        backward pass."""
        if not isinstance(loss, Node):
            raise TypeError(f"compute_gradients: loss must be a node, got {type(loss).__name__}")
        if loss.shape != () or loss.dtype.kind != "f":
            raise ShapeError(f"compute_gradients: loss {loss.name!r} must be a float scalar, got "
                             f"{fmt(loss.shape)} {loss.dtype}")
        var_list = self.optimizer.check_var_list(loss, var_list)
        graph = loss.graph
        with graph:
            with graph.name_scope(self.name) as scope:
                self.share = placeholder_with_default(np.float64(1.0 / self.comm.size), name="share")
            planner = BucketPlanner(self.comm, self.share, self.bucket_bytes,
                                    scope=lambda: graph.absolute_scope(scope, unique=False))
            gradients(loss, var_list, on_gradient=planner.add)
            averaged = planner.finish()
        self.buckets = planner.buckets
        return [(averaged[v], v) for v in var_list]

    def apply_gradients(self, grads_and_vars, name: Optional[str] = None) -> Node:
        """The wrapped optimizer's update node for these (gradient, variable) pairs."""
        return self.optimizer.apply_gradients(grads_and_vars, name)

    def minimize(self, loss: Node, var_list: Optional[Sequence[Node]] = None, name: Optional[str] = None) -> Node:
        """`apply_gradients(compute_gradients(loss, var_list), name)`."""
        return self.apply_gradients(self.compute_gradients(loss, var_list), name)
