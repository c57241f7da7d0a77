"""Graph building: names, scopes, lookup, creation order, build-time errors."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import ops


def test_unique_hierarchical_names_and_lookup():
    with mg.Graph() as g:
        x = mg.placeholder((None, 3), name="x")
        w = mg.variable(np.ones((3, 2), "float32"), name="w")
        with mg.name_scope("block1"):
            a = ops.matmul(x, w, name="conv")
            b = ops.relu(a, name="conv")
            c = ops.relu(b)
        with mg.name_scope("block1"):
            d = ops.relu(c)
    assert [a.name, b.name, c.name] == ["block1/conv", "block1/conv_1", "block1/relu"]
    assert d.name == "block1_1/relu"
    assert g.get("block1/conv_1") is b and g["x"] is x
    assert g.nodes == [x, w, a, b, c, d]
    assert [n.index for n in g.nodes] == list(range(6))
    with pytest.raises(KeyError, match="no node or scope named 'nope'"):
        g.get("nope")
    with pytest.raises(KeyError, match=r"no node or scope named 'block1/conv_2'.*closest: 'block1/conv_1'"):
        g.get("block1/conv_2")


def test_nested_scopes_and_node_metadata():
    with mg.Graph():
        x = mg.placeholder((None, 4), name="x")
        with mg.name_scope("outer"), mg.name_scope("inner"):
            y = ops.transpose(x, (1, 0))
    assert y.name == "outer/inner/transpose" and y.scope == "outer/inner"
    assert y.op.kind == "transpose" and y.attrs == {"axes": (1, 0)}
    assert y.inputs == (x,) and y.shape == (4, None) and y.dtype == np.float32


def test_default_graph_stack():
    outer = mg.Graph()
    with outer:
        with mg.Graph() as inner:
            n = mg.placeholder((2,))
        m = mg.placeholder((2,))
    assert n.graph is inner and m.graph is outer
    mg.reset_default_graph()
    p = mg.placeholder((1,))
    assert p.graph is mg.get_default_graph()


def test_shape_error_names_node_op_and_shapes():
    with mg.Graph():
        x = mg.placeholder((None, 64), name="x")
        w = mg.variable(np.zeros((32, 10), "float32"), name="w")
        with mg.name_scope("dense"):
            with pytest.raises(mg.ShapeError) as err:
                ops.matmul(x, w)
            ok = ops.matmul(x, mg.variable(np.zeros((64, 10), "float32")))
    assert str(err.value) == "matmul 'dense/matmul': inner dimensions differ: (None, 64) @ (32, 10)"
    assert ok.name == "dense/matmul"  # the failed node reserved no name


def test_dtype_mismatch_is_a_build_error_not_a_silent_upcast():
    with mg.Graph():
        a = mg.placeholder((3,), dtype="float32", name="a")
        b = mg.placeholder((3,), dtype="float64", name="b")
        with pytest.raises(mg.ShapeError, match="add 'add': dtype mismatch: float32 vs float64"):
            ops.add(a, b)
        assert (a * 2).dtype == np.float32          # Python numbers adopt the node's dtype
        assert (a + np.ones(3)).dtype == np.float32


def test_broadcast_error_and_mixing_graphs():
    with mg.Graph():
        a = mg.placeholder((None, 3), name="a")
        with pytest.raises(mg.ShapeError, match=r"sub 'sub': shapes \(None, 3\) and \(1, 4\) do not broadcast"):
            ops.sub(a, mg.placeholder((4,)))
    with mg.Graph():
        other = mg.placeholder((None, 3), name="other")
    with pytest.raises(mg.GraphError, match="different graphs"):
        ops.add(a, other)


def test_python_operators_build_nodes():
    with mg.Graph():
        a = mg.placeholder((2, 2), name="a")
        kinds = [n.op.kind for n in (a + 1, 1 - a, a * a, 2 / a, -a, a @ a)]
    assert kinds == ["add", "sub", "mul", "div", "neg", "matmul"]
    with pytest.raises(TypeError, match="only known when the graph runs"):
        bool(a)


def test_invalid_names_and_shapes():
    with mg.Graph():
        with pytest.raises(ValueError, match="invalid name"):
            mg.placeholder((1,), name="a b")
        with pytest.raises(ValueError, match="invalid dimension -2"):
            mg.placeholder((None, -2))


def test_ancestors_stop_at_and_consumers():
    with mg.Graph() as g:
        x = mg.placeholder((2,), name="x")
        y = ops.exp(x)
        z = ops.log(y)
        unrelated = ops.neg(x)
    assert g.ancestors([z]) == [x, y, z]
    assert g.ancestors([z], stop=[y]) == [y, z]
    assert g.consumers(x) == [y, unrelated]


def test_a_layer_scope_name_returns_the_layer_output():
    with mg.Graph() as g:
        x = mg.placeholder((None, 3, 8, 8), name="x")
        training = mg.placeholder_with_default(False, name="training")
        with mg.name_scope("block1"):
            h = mg.layers.conv2d(x, 4, 3, name="conv")
            lin = mg.layers.conv2d(h, 4, 3, activation=None, name="conv")       # a second one: conv_1
            bn = mg.layers.conv2d(lin, 4, 3, name="bn_conv", batch_norm=True, training=training)
            bn_only = mg.layers.batch_norm(bn, training, name="norm")
        logits = mg.layers.dense(bn_only, 10, name="fc")
        loss = ops.sum(ops.square(logits))
        mg.gradients(loss, [x])  # gradient nodes are built in block1/conv/relu_grad/...: never the output
    assert g.get("block1/conv") is h and h.kind == "relu" and h.name == "block1/conv/relu"
    assert g.get("block1/conv_1") is lin and lin.kind == "conv2d"           # no activation: the conv
    assert g.get("block1/bn_conv") is bn and bn.kind == "relu" and bn.inputs[0].kind == "batch_norm"
    assert g.get("block1/norm") is bn_only and bn_only.kind == "batch_norm"
    assert g.get("fc") is logits and logits.kind == "add"                   # matmul + bias
    assert g["block1/conv/weights"].kind == "variable"                       # full names still work
    with pytest.raises(KeyError, match=r"no node or scope named 'block1/cnv'.*closest: 'block1/conv'"):
        g.get("block1/cnv")
    with pytest.raises(KeyError, match=r"no node or scope named 'blok1'.*closest: 'block1'"):
        g.get("blok1")


def test_inception_module_and_branch_scopes_return_their_outputs():
    with mg.Graph() as g:
        x = mg.placeholder((None, 16, 8, 8), name="x")
        out = mg.models.inception_module(x, 4, 4, 8, 2, 4, 4, name="inception_a")
    assert g.get("inception_a") is out and out.kind == "concat"
    branch = g.get("inception_a/branch_3x3")
    assert branch is out.inputs[1] and branch.name == "inception_a/branch_3x3/conv/relu"
    assert g.get("inception_a/branch_3x3/reduce").name == "inception_a/branch_3x3/reduce/relu"
    assert g.get("inception_a/branch_pool/pool").kind == "max_pool"        # a node's own name


def test_a_node_copied_onto_another_graphs_input_is_refused_before_it_is_recorded():
    from minigraph.spec import Spec
    with mg.Graph():
        x = mg.placeholder((2,), name="x")
    g2 = mg.Graph()
    with pytest.raises(mg.GraphError, match="is not a node of this graph"):
        g2.add_named(ops.registry()["identity"](), [x], "y", Spec((2,), np.dtype("float32")))
    assert g2.nodes == [] and g2.find("y") is None


def test_numpy_arrays_and_scalars_on_the_left_of_an_operator_build_nodes():
    """`np.ones(2) + x` was an object array of two add nodes, one per element."""
    with mg.Graph() as g:
        x = mg.placeholder((2,), name="x")
        a = np.array([1.0, 2.0], "float32")
        built = [a + x, a - x, a * x, a / x, np.float32(3) * x, np.eye(2, dtype="float32") @ ops.reshape(x, (2, 1))]
    assert all(isinstance(n, mg.Node) for n in built)
    v = np.array([2.0, 4.0], "float32")
    out = mg.Session(g).run(built, {x: v})
    for got, want in zip(out, [a + v, a - v, a * v, a / v, 3 * v, v.reshape(2, 1)]):
        np.testing.assert_allclose(got, want)
