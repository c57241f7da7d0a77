"""Graph passes, each on its own and through mg.optimize and sessions: dead nodes, constant
folding, common subexpressions, conv + bias + ReLU fusion. Optimised runs must equal
unoptimised ones (values and gradients)."""
import collections

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops
from minigraph.passes import Program, eliminate_common_subexpressions, eliminate_dead_nodes, fold_constants
from minigraph.passes import fuse_conv_bias_relu


def kinds(graph):
    return collections.Counter(n.kind for n in graph.nodes)


def both(graph, fetches, feed):
    """The results of an optimised and an unoptimised session."""
    return mg.Session(graph, optimize=True).run(fetches, feed), mg.Session(graph, optimize=False).run(fetches, feed)


def test_x_times_2_plus_x_times_2_is_one_multiply():
    with mg.Graph() as g:
        x = mg.placeholder((None, 3), name="x")
        y = x * 2 + x * 2
    opt = mg.optimize(y, feed=[x])
    assert kinds(opt.graph) == {"placeholder": 1, "constant": 1, "mul": 1, "add": 1}
    add = opt.mapping[y]
    assert add.inputs[0] is add.inputs[1]  # the one multiply, read twice
    x0 = np.arange(6, dtype="float32").reshape(2, 3)
    a, b = both(g, y, {x: x0})
    np.testing.assert_array_equal(a, 4 * x0)
    np.testing.assert_array_equal(a, b)


def test_constant_subgraph_is_folded_and_gives_the_same_values():
    c0 = np.linspace(-1, 1, 6).reshape(2, 3).astype("float32")
    with mg.Graph() as g:
        x = mg.placeholder((2, 3), name="x")
        c = mg.constant(c0, name="c")
        folded = ops.exp(c) * 3.0 + ops.sum(ops.square(c))
        y = x * folded
    opt = mg.optimize(y, feed=[x])
    assert kinds(opt.graph) == {"placeholder": 1, "constant": 1, "mul": 1}
    const = opt.mapping[folded]
    assert const.kind == "constant" and const.name == folded.name
    np.testing.assert_allclose(const.op.value, np.exp(c0) * 3 + (c0 ** 2).sum(), rtol=1e-6)
    x0 = np.ones((2, 3), "float32")
    a, b = both(g, y, {x: x0})
    np.testing.assert_array_equal(a, b)


def test_folding_leaves_placeholders_variables_random_and_large_results_alone():
    with mg.Graph() as g:
        w = mg.variable(np.ones(3, "float32"), name="w")
        big = ops.broadcast_like(mg.constant(np.float32(1)), mg.constant(np.zeros(1 << 21, "float32")))
        mask_in = mg.constant(np.ones((4, 4), "float32"))
        drop = ops.dropout(mask_in, 0.5, True)
        y = ops.sum(w * 2.0) + ops.sum(big) + ops.sum(drop)
    opt = mg.optimize(y)
    found = kinds(opt.graph)
    assert found["variable"] == 1 and found["broadcast_like"] == 1 and found["dropout_mask"] == 1


def test_a_placeholder_with_a_default_folds_only_when_it_is_not_fed():
    with mg.Graph() as g:
        flag = mg.placeholder_with_default(np.float32(3.0), name="flag")
        y = flag * 2.0
    assert kinds(mg.optimize(y).graph) == {"constant": 1}
    fed = mg.optimize(y, feed=[flag])
    assert fed.mapping[flag].kind == "placeholder" and kinds(fed.graph)["mul"] == 1
    sess = mg.Session(g)
    assert sess.run(y) == 6.0 and sess.run(y, {flag: 5}) == 10.0


def test_cse_merges_equal_constants_and_ops_but_never_variables_random_ops_or_different_values():
    with mg.Graph():
        x = mg.placeholder((3,), name="x")
        w1 = mg.variable(np.ones(3, "float32"), name="w1")
        w2 = mg.variable(np.ones(3, "float32"), name="w2")  # same value, still two variables
        a = x * mg.constant(np.float32(2)) + x * mg.constant(np.float32(2))
        b = x * mg.constant(np.float32(3))  # another value: not merged with the 2s
        t = mg.placeholder_with_default(True, name="t")
        d1, d2 = ops.dropout(x, 0.5, t), ops.dropout(x, 0.5, t)  # two masks stay two
        y = ops.sum(a + b + w1 + w2 + d1 + d2)
    opt = mg.optimize(y, feed=[x, t])
    found = kinds(opt.graph)
    assert found["variable"] == 2 and found["dropout_mask"] == 2
    consts = sorted(float(n.op.value) for n in opt.graph.nodes if n.kind == "constant")
    assert consts == [2.0, 3.0]


def test_op_equality_is_safe_for_cse():
    from minigraph.op import Constant, Variable
    from minigraph.ops.nn import DropoutMask
    z = np.zeros(3, "float32")
    assert Constant(z) == Constant(z.copy()) and hash(Constant(z)) == hash(Constant(z.copy()))
    assert Constant(z) != Constant(np.ones(3, "float32"))
    assert Constant(z) != Constant(z.astype("float64"))  # same values, another dtype
    assert Constant(np.zeros((1, 3), "float32")) != Constant(z)  # another shape
    assert Constant(np.float32(0.0)) != Constant(np.float32(-0.0))  # other bytes
    assert Variable(z) != Variable(z)
    assert DropoutMask(0.5) != DropoutMask(0.5)
    assert ops.registry()["conv2d"]((1, 1)) == ops.registry()["conv2d"]((1, 1))


def test_dead_nodes_are_left_out():
    with mg.Graph() as g:
        x = mg.placeholder((3,), name="x")
        y = ops.relu(x)
        ops.exp(x)  # unused
        ops.log(mg.placeholder((2,), name="never_fed"))
    prog, mapping = eliminate_dead_nodes(Program(g, [y], [x]))
    assert [n.name for n in prog.nodes] == ["x", "relu"] and mapping[y] is prog.outputs[0]


def conv_net(bias_kind, reader=None):
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((2, 3, 6, 6)).astype("float32")
    w0 = rng.standard_normal((4, 3, 3, 3)).astype("float32")
    b0 = rng.standard_normal(4).astype("float32")
    g = mg.Graph()
    with g:
        x = mg.placeholder(x0.shape, name="x")
        w = mg.variable(w0, name="w")
        if bias_kind == "input":
            c = ops.conv2d(x, w, mg.variable(b0, name="b"), padding=1)
            pre = c
        else:
            c = ops.conv2d(x, w, padding=1)
            pre = c + mg.variable(b0.reshape(4, 1, 1), name="b")
        r = ops.relu(pre)
        loss = ops.sum(r * r)
        if reader == "other":
            loss = loss + ops.sum(c * 0.5)
        gw, gx = mg.gradients(loss, [w, x])
    return g, x, x0, c, pre, r, loss, gw, gx


@pytest.mark.parametrize("bias_kind", ["input", "add"])
def test_conv_bias_relu_fusion_gives_the_same_values_and_gradients(bias_kind):
    g, x, x0, c, pre, r, loss, gw, gx = conv_net(bias_kind)
    opt = mg.optimize([loss, gw, gx], feed=[x])
    fused = opt.mapping[r]
    assert fused.kind == "conv2d" and fused.attrs["activation"] == "relu" and len(fused.inputs) == 3
    assert fused.name == c.name and c not in opt.mapping  # the pre-activation has no counterpart
    assert kinds(opt.graph)["relu"] == 0 and kinds(opt.graph)["add"] == 0
    a, b = both(g, [r, loss, gw, gx], {x: x0})
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-6)
    assert (b[0] == 0).any()  # the relu did clip


def test_fusion_keeps_a_value_someone_else_reads():
    g, x, x0, c, pre, r, loss, gw, gx = conv_net("input", reader="other")
    opt = mg.optimize([loss, gw], feed=[x])
    assert opt.mapping[c].attrs["activation"] is None and kinds(opt.graph)["relu"] == 1
    opt2 = mg.optimize([r, c], feed=[x])  # the conv itself is fetched
    assert opt2.mapping[c].attrs["activation"] is None
    a, b = both(g, [loss, gw], {x: x0})
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5)


def test_a_fused_conv_has_a_gradient_of_its_own():
    """Differentiating the optimised graph itself: the fused node's gradient applies the relu mask."""
    mg.testing.gradcheck(lambda x, w, b: fused_conv(x, w, b), [np.random.default_rng(1).standard_normal(s)
                                                                for s in [(2, 3, 5, 5), (4, 3, 3, 3), (4,)]])


def fused_conv(x, w, b):
    from minigraph.ops.conv import Conv2D
    return mg.apply(Conv2D((1, 1), ((1, 1), (1, 1)), (1, 1), activation="relu"), [x, w, b])


def test_each_pass_alone_reports_no_change_with_none():
    with mg.Graph() as g:
        x = mg.placeholder((3,), name="x")
        y = ops.relu(x)
    prog = Program(g, [y], [x])
    for p in (fold_constants, eliminate_common_subexpressions, fuse_conv_bias_relu):
        same, mapping = p(prog)
        assert same is prog and mapping is None


def test_optimize_errors():
    with mg.Graph():
        x = mg.placeholder((3,), name="x")
        y = ops.relu(x)
    with mg.Graph():
        other = mg.placeholder((3,), name="other")
    with pytest.raises(TypeError, match="a node or a non-empty list"):
        mg.optimize([])
    with pytest.raises(mg.GraphError, match="another graph"):
        mg.optimize(y, feed=[other])
    with pytest.raises(mg.GraphError, match="cannot be fed"):
        mg.optimize(y, feed=[y])


def test_mini_inception_training_step_equal_with_and_without_passes():
    with mg.Graph() as g:
        m = mg.models.mini_inception(rng=0)
        train = mg.optim.Adam(1e-3).minimize(m.loss)
    rng = np.random.default_rng(0)
    feed = {m.x: rng.random((8, 1, 8, 8), dtype=np.float32), m.y: rng.integers(0, 10, 8)}
    a, b = mg.Session(g), mg.Session(g, optimize=False)
    for _ in range(3):
        la, _ = a.run([m.loss, train], feed)
        lb, _ = b.run([m.loss, train], feed)
        np.testing.assert_allclose(la, lb, rtol=1e-6)
    for v in a.variables:
        np.testing.assert_allclose(a.get_value(v), b.get_value(v), rtol=1e-5, atol=1e-6)
    fused = [n for n in mg.optimize(m.loss, feed=[m.x, m.y]).graph.nodes if n.attrs.get("activation") == "relu"]
    assert len(fused) == 13  # every conv of the stem and both modules carries its ReLU


def test_a_training_switch_that_is_not_fed_specializes_batch_norm_and_dropout():
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal((4, 3, 5, 5)).astype("float32")
    with mg.Graph() as g:
        x = mg.placeholder((None, 3, 5, 5), name="x")
        training = mg.placeholder_with_default(False, name="training")
        h = mg.layers.batch_norm(x, training, name="bn")
        y = ops.dropout(h, 0.5, training)
    inference = mg.optimize(y, feed=[x])
    found = kinds(inference.graph)
    assert found["batch_norm"] == 0 and found["batch_normalization"] == 1
    assert found["dropout_mask"] == 0 and found["fill"] == 1
    train = mg.optimize(y, feed=[x, training])
    assert kinds(train.graph)["batch_norm"] == 1 and kinds(train.graph)["dropout_mask"] == 1
    sess = mg.Session(g, optimize=True)
    assert not sess.plan([y], [x]).writes_state  # inference runs share the session
    assert sess.plan([y], [x, training]).writes_state
    a, b = both(g, y, {x: x0})
    np.testing.assert_allclose(a, b, rtol=1e-6)
