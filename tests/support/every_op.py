"""A graph holding every op kind the library registers (for tests that must cover them all)."""
import numpy as np

import minigraph as mg
from minigraph import ops


def library_kinds():
    """Every kind the library registers, but the allreduce nodes of `mg.distributed`: they
    belong to one process's communicator, which no file can carry (tests/distributed/test_buckets.py)."""
    return {k for k, cls in mg.ops.registry().items()
            if cls.__module__.startswith("minigraph.") and not cls.__module__.startswith("minigraph.distributed")}


def build_everything():
    """A graph holding every op kind the library registers: a small CNN with batch norm, LRN,
    pools, dropout and losses, first and second-order gradients, two optimizers and an assign."""
    rng = np.random.default_rng(0)
    g = mg.Graph()
    with g:
        x = mg.placeholder((None, 3, 6, 6), "float64", name="x")
        y = mg.placeholder((None,), "int64", name="y")
        training = mg.placeholder_with_default(False, name="training")
        with mg.name_scope("stem"):
            w = mg.variable(rng.normal(size=(4, 3, 3, 3)) * 0.3, name="weights")
            b = mg.variable(np.full(4, 0.1), name="bias")
            h = ops.relu(ops.conv2d(x, w, b, padding="SAME"))
            h2 = ops.conv2d(x, w, stride=2, padding=((0, 1), (1, 0)), dilation=1)
        h = mg.layers.batch_norm(h, training, name="bn")
        h = ops.batch_normalization(h, mg.constant(np.zeros(4)), mg.constant(np.ones(4)),
                                    mg.constant(np.ones(4)), mg.constant(np.zeros(4)), epsilon=1e-3)
        w1 = mg.variable(rng.normal(size=(5, 4)) * 0.3, name="w1x1")
        h = ops.conv1x1(h, w1, mg.variable(np.zeros(5), name="b1x1"))
        h = ops.local_response_norm(h, size=3, alpha=1e-3, beta=0.75, k=1.0)
        pooled = ops.max_pool(h, 3, stride=1, padding="SAME")
        avg = ops.avg_pool(h, 3, stride=1, padding="SAME", count_include_pad=True)
        h = ops.concat([pooled, avg, ops.sigmoid(h), ops.tanh(h)], axis=1)
        h = ops.slice_axis(ops.pad_axis(h, 1, 1, axis=2), 1, 7, axis=2)
        h = ops.stop_gradient(h) * 0.0 + ops.identity(h)
        feats = ops.flatten(ops.max_pool(h, 2))
        feats = ops.dropout(feats, 0.5, training)
        wf = mg.variable(rng.normal(size=(180, 10)) * 0.05, name="fc_w")
        logits = ops.matmul(feats, wf) + mg.variable(np.zeros(10), name="fc_b")
        logits = ops.reshape(ops.transpose(ops.reshape(logits, (-1, 2, 5)), (0, 2, 1)), (-1, 10))
        extra = ops.global_avg_pool(h2)                              # (N, 4)
        extra = ops.sum(ops.expand_dims(ops.mean(ops.exp(ops.neg(extra)), axis=1), (1,)), axis=1, keepdims=False)
        extra = ops.sqrt(ops.square(extra) + 1.0) / ops.log(extra + 2.0)
        loss = ops.softmax_cross_entropy(logits, y) + ops.mean(extra) \
            + ops.sum(ops.log_softmax(logits, axis=1) * ops.one_hot(y, 10, "float64")) * 0.0
        probs = ops.softmax(logits, axis=1)
        picked = ops.where(mg.placeholder_with_default(True, name="pick"), probs, ops.step(probs))
        grads = mg.gradients(loss, [x, w, w1])
        (hvp,) = mg.gradients(ops.sum(grads[0] * grads[0]), [x])    # second order: max_pool_grad_grad and more
        train = mg.optim.Adam(0.01).minimize(loss)
        sgd = mg.optim.SGD(0.1, momentum=0.9).minimize(loss, var_list=[wf])
        counter = mg.variable(np.zeros(()), name="counter", trainable=False)
        bump = mg.assign(counter, counter + 1.0)
        predicted = ops.argmax(probs, axis=1)
    outputs = {"probs": probs, "picked": picked, "loss": loss, "grad_x": grads[0], "grad_w": grads[1],
               "grad_w1x1": grads[2], "hvp": hvp, "predicted": predicted}
    steps = {"train": train, "sgd": sgd, "bump": bump}
    return g, {"x": x, "y": y, "training": training}, outputs, steps
