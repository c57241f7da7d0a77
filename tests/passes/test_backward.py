"""The backward passes: relu_grad masks and bias sums folded into the conv gradient kernels,
add_n accumulating in place, each only where it is safe, and always the values of the graph
without them."""
from collections import Counter

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops
from minigraph.passes import accumulate_in_place, fuse_bias_gradients, fuse_relu_masks


def inception_training_graph(dtype="float64", seed=0):
    """An Inception module (every conv: bias + ReLU), a weighted-sum loss, and the gradients of
    every variable and of the input: what a training step runs."""
    rng = np.random.default_rng(seed)
    with mg.Graph() as g:
        x = mg.placeholder((2, 8, 9, 9), dtype, name="x")
        out = mg.models.inception_module(x, 4, 4, 6, 2, 3, 3, name="inc")
        loss = ops.sum(out * mg.constant(rng.standard_normal(out.shape).astype(dtype)))
        variables = [n for n in g.nodes if n.kind == "variable"]
        fetches = [loss] + mg.gradients(loss, variables + [x])
    values = {v: rng.standard_normal(v.shape).astype(dtype) * 0.5 for v in variables}  # biases too
    return g, x, fetches, rng.standard_normal(x.shape).astype(dtype), values


def run_both(g, fetches, feed, values):
    """The fetches' values with the graph passes and without them."""
    out = []
    for optimize in (True, False):
        sess = mg.Session(g, optimize=optimize)
        for v, value in values.items():
            sess.set_value(v, value)
        out.append(sess.run(fetches, feed))
    return out


def kinds(graph):
    return Counter(n.kind for n in graph.nodes)


def test_training_graph_loses_every_relu_grad_and_bias_sum_and_keeps_its_values():
    g, x, fetches, xv, values = inception_training_graph()
    before = kinds(g)
    opt = mg.optimize(fetches, feed=[x])
    after = kinds(opt.graph)
    assert before["relu_grad"] == 6 and after["relu_grad"] == 0
    assert before["sum"] == 7 and after["sum"] == 1  # six bias gradients, and the loss
    masked = [n for n in opt.graph.nodes if getattr(n.op, "relu_mask", False)]
    packed = [n for n in opt.graph.nodes if getattr(n.op, "bias_gradient", False)]
    assert len(packed) == 6 and all(n.op.relu_mask for n in packed)
    assert Counter(n.kind for n in masked) == {"conv1x1_backprop_filter": 4, "conv2d_backprop_filter": 2,
                                              "conv2d_backprop_input": 2, "conv1x1": 4}
    # the input gradient: the max-pool branch's term, and the three 1x1 convs reading the
    # module's input each adding into it (no add_n, no buffers of their own)
    assert before["add_n"] == 1 and after["add_n"] == 0
    assert sum(1 for n in opt.graph.nodes if getattr(n.op, "accumulate", False)) == 3
    fused, plain = run_both(g, fetches, {x: xv}, values)
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_float32_training_step_matches_the_unfused_graph():
    g, x, fetches, xv, values = inception_training_graph("float32", seed=1)
    fused, plain = run_both(g, fetches, {x: xv}, values)
    for a, b in zip(fused, plain):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5 * np.abs(b).max())


def conv_relu_graph(extra_reader=None, fetch_mask=False):
    rng = np.random.default_rng(2)
    with mg.Graph() as g:
        x = mg.placeholder((2, 3, 6, 6), "float64", name="x")
        w = mg.variable(rng.standard_normal((4, 3, 3, 3)), name="w")
        b = mg.variable(rng.standard_normal(4), name="b")
        y = ops.relu(ops.conv2d(x, w, b, padding=1))
        loss = ops.sum(ops.square(y))
        gw, gb = mg.gradients(loss, [w, b])
        fetches = [gw, gb]
        rg = next(n for n in g.nodes if n.kind == "relu_grad")
        if extra_reader is not None:
            fetches.append(extra_reader(rg))
        if fetch_mask:
            fetches.append(rg)
    return g, x, fetches, rng.standard_normal((2, 3, 6, 6))


@pytest.mark.parametrize("extra, fetch", [(lambda rg: ops.exp(rg), False), (None, True)])
def test_relu_grad_stays_when_something_else_reads_it(extra, fetch):
    g, x, fetches, xv = conv_relu_graph(extra, fetch)
    opt = mg.optimize(fetches, feed=[x])
    assert kinds(opt.graph)["relu_grad"] == 1
    assert not any(getattr(n.op, "relu_mask", False) for n in opt.graph.nodes)
    for a, b in zip(mg.Session(g).run(fetches, {x: xv}), mg.Session(g, optimize=False).run(fetches, {x: xv})):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_bias_sum_stays_without_a_filter_gradient_of_the_same_tensor():
    rng = np.random.default_rng(3)
    with mg.Graph() as g:
        x = mg.placeholder((2, 3, 6, 6), "float64")
        b = mg.variable(rng.standard_normal(4))
        y = ops.conv2d(x, mg.constant(rng.standard_normal((4, 3, 3, 3))), b, padding=1)
        (gb,) = mg.gradients(ops.sum(ops.square(y)), [b])  # no filter gradient is asked for
    opt = mg.optimize(gb, feed=[x])
    assert kinds(opt.graph)["sum"] == 2  # the loss and the bias gradient
    assert not any(getattr(n.op, "bias_gradient", False) for n in opt.graph.nodes)
    xv = rng.standard_normal(x.shape)
    np.testing.assert_allclose(mg.Session(g).run(gb, {x: xv}), mg.Session(g, optimize=False).run(gb, {x: xv}),
                               rtol=1e-12, atol=1e-12)


def test_each_pass_alone_is_a_no_op_without_its_pattern():
    with mg.Graph():
        x = mg.placeholder((2, 3))
        y = ops.exp(x) * 2.0
    prog = mg.passes.Program(y.graph, [y], [x])
    for p in (fuse_bias_gradients, fuse_relu_masks, accumulate_in_place):
        assert p(prog) == (prog, None)


def add_n_graph(first):
    """add_n(first(a), exp(b), exp(c)) and whether its first input may be reused."""
    with mg.Graph() as g:
        a, b = mg.placeholder((3, 4), "float64", name="a"), mg.placeholder((3, 4), "float64", name="b")
        v = mg.variable(np.ones((3, 4)), name="v")
        head = first(a, v)
        s = ops.add_n([head, ops.exp(b), ops.exp(-b)])
    return g, a, b, head, s


@pytest.mark.parametrize("first, reused", [
    (lambda a, v: ops.exp(a), True),                  # a fresh buffer read only by the add_n
    (lambda a, v: a, False),                          # a fed array belongs to the caller
    (lambda a, v: v, False),                          # a variable's buffer belongs to the session
    (lambda a, v: ops.reshape(ops.exp(a), (3, 4)), False),  # a view
])
def test_add_n_reuses_its_first_input_only_when_it_owns_it(first, reused):
    g, a, b, head, s = add_n_graph(first)
    opt = mg.optimize(s, feed=[a, b])
    node = opt.mapping[s]
    assert node.op.in_place is reused
    av, bv = np.arange(12.0).reshape(3, 4) / 10, np.linspace(-1, 1, 12).reshape(3, 4)
    sess = mg.Session(g)
    head_value = mg.Session(g, optimize=False).run(head, {a: av, b: bv})
    for _ in range(2):  # the fed array and the variable come out unchanged, run after run
        out = sess.run(s, {a: av, b: bv})
        np.testing.assert_allclose(out, head_value + np.exp(bv) + np.exp(-bv), rtol=1e-14)
    assert np.array_equal(av, np.arange(12.0).reshape(3, 4) / 10)
    assert np.array_equal(sess.get_value(g.get("v")), np.ones((3, 4)))


def test_add_n_whose_first_input_is_also_fetched_or_read_twice_is_not_in_place():
    with mg.Graph():
        a = mg.placeholder((3, 4), "float64")
        e = ops.exp(a)
        s = ops.add_n([e, ops.exp(-a)])
        t = ops.add_n([e, e])
    assert not mg.optimize([s, e], feed=[a]).mapping[s].op.in_place
    assert not mg.optimize(t, feed=[a]).mapping[t].op.in_place


def test_a_device_runtime_gets_the_plain_ops():
    """The fused variants are the CPU kernels' (`Runtime.fuses_backward`); a device session's
    passes leave relu_grad, the bias sums and add_n as they are, for its library kernels."""
    from minigraph.runtime import CpuRuntime, DeviceRuntime
    assert CpuRuntime.fuses_backward and not DeviceRuntime.fuses_backward
    g, x, fetches, xv, values = inception_training_graph()
    plain = mg.optimize(fetches, feed=[x], backward=False)
    assert kinds(plain.graph)["relu_grad"] == 6 and kinds(plain.graph)["add_n"] == 1
    assert not any(getattr(n.op, "relu_mask", False) or getattr(n.op, "bias_gradient", False)
                   for n in plain.graph.nodes)
    sess = mg.Session(g, runtime=DeviceRuntime(np))
    for v, value in values.items():
        sess.set_value(v, value)
    fused, _ = run_both(g, fetches, {x: xv}, values)
    for a, b in zip(sess.run(fetches, {x: xv}), fused):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
