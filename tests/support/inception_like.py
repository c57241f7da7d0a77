"""A small Inception-like network that touches every CNN kernel of the GPU path: conv + bias +
ReLU (fused), max pool, LRN, a 1x1 and a 5x5 branch concatenated, avg pool, dense, softmax
cross entropy; with its gradients (and, on request, their own gradients)."""
import numpy as np

import minigraph as mg
from minigraph import ops


def inception_like(dtype, second_order: bool = False):
    """(graph, x, labels, fetches): x (None, 3, 12, 11), int64 labels of 7 classes; fetches are
    [loss] + the gradients of its five parameters (+ the gradients of sum(grad**2) with
    `second_order`)."""
    rng = np.random.default_rng(0)
    g = mg.Graph()
    with g:
        x = mg.placeholder((None, 3, 12, 11), dtype=dtype, name="x")
        labels = mg.placeholder((None,), dtype="int64", name="labels")
        w1 = mg.variable(rng.standard_normal((8, 3, 3, 3)).astype(dtype) * 0.3, name="w1")
        b1 = mg.variable(rng.standard_normal((8, 1, 1)).astype(dtype) * 0.1, name="b1")
        w2 = mg.variable(rng.standard_normal((4, 8)).astype(dtype) * 0.3, name="w2")
        w3 = mg.variable(rng.standard_normal((5, 8, 5, 5)).astype(dtype) * 0.1, name="w3")
        wd = mg.variable(rng.standard_normal((9 * 6 * 6, 7)).astype(dtype) * 0.1, name="wd")
        h = ops.relu(ops.conv2d(x, w1, padding="SAME") + b1)
        h = ops.local_response_norm(ops.max_pool(h, 3, 2, padding="SAME"), size=5, alpha=0.1)
        h = ops.concat([ops.relu(ops.conv1x1(h, w2)), ops.conv2d(h, w3, padding="SAME")], axis=1)
        h = ops.avg_pool(h, 3, 1, padding="SAME")
        loss = ops.softmax_cross_entropy(ops.matmul(ops.flatten(h), wd), labels)
        params = [w1, b1, w2, w3, wd]
        grads = mg.gradients(loss, params)
        fetches = [loss] + grads
        if second_order:
            fetches += mg.gradients(ops.add_n([ops.sum(gp * gp) for gp in grads]), params)
    return g, x, labels, fetches
