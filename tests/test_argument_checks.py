"""Arguments are never silently reinterpreted: a str is not a list of axes, a float or a bool
is not an int, "False" is not a flag, a string is not a learning rate, a shape holds no bools.
Bad arguments are ArgumentErrors (both a TypeError and a ValueError) naming the argument and
the value, never a traceback from inside minigraph."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import ops
from minigraph.checks import as_axes, as_bool, as_float, as_int


def _x(shape=(2, 3, 4)):
    return mg.placeholder(shape, name="x")


def test_the_error_class_is_both_a_type_and_a_value_error():
    assert issubclass(mg.ArgumentError, TypeError) and issubclass(mg.ArgumentError, ValueError)
    assert issubclass(mg.ArgumentError, mg.MinigraphError)


def test_checkers_accept_python_and_numpy_values_only_of_their_kind():
    assert as_int(np.int64(3), "n") == 3 and type(as_int(np.int32(3), "n")) is int
    assert as_float(np.float32(0.5), "lr") == 0.5 and as_float(2, "lr") == 2.0
    assert as_bool(np.bool_(True), "flag") is True
    assert as_axes([1, np.int64(2)], "axis") == (1, 2) and as_axes(None, "axis") is None
    for bad in (True, 2.0, "2", None):
        with pytest.raises(mg.ArgumentError, match="n must be an int"):
            as_int(bad, "n")
    for bad in (True, "0.1", None, [0.1]):
        with pytest.raises(mg.ArgumentError, match="lr must be a number"):
            as_float(bad, "lr")
    for bad in (float("nan"), float("inf")):
        with pytest.raises(mg.ArgumentError, match="lr must be a finite number"):
            as_float(bad, "lr")
    with pytest.raises(mg.ArgumentError, match="lr must be a positive number"):
        as_float(0.0, "lr", positive=True)
    for bad in ("False", 0, 1, None):
        with pytest.raises(mg.ArgumentError, match="flag must be True or False"):
            as_bool(bad, "flag")


@pytest.mark.parametrize("axis", ["12", 1.0, True, [1.0], (1, "2")])
def test_reduction_axes_must_be_ints(axis):
    with mg.Graph():
        x = _x()
        for fn in (ops.sum, ops.mean):
            with pytest.raises(mg.ArgumentError, match=r"(sum|mean): axis must be None, an int or a sequence"):
                fn(x, axis=axis)


def test_reductions_keepdims_and_concat_axis_are_checked():
    with mg.Graph():
        x = _x()
        assert ops.sum(x, axis=np.int64(1), keepdims=np.bool_(True)).shape == (2, 1, 4)
        with pytest.raises(mg.ArgumentError, match="sum: keepdims must be True or False, got 'False'"):
            ops.sum(x, keepdims="False")
        with pytest.raises(mg.ArgumentError, match="axis must be None, an int"):
            ops.concat([x, x], axis=1.0)
        with pytest.raises(mg.ArgumentError, match="slice_axis: start must be an int, got 0.5"):
            ops.slice_axis(x, 0.5, 2)


def test_softmax_reshape_and_transpose_refuse_non_int_arguments():
    with mg.Graph():
        x = _x()
        for fn, what in ((ops.softmax, "softmax"), (ops.log_softmax, "log_softmax")):
            with pytest.raises(mg.ArgumentError, match=f"{what}: axis must be an int, got 1.0"):
                fn(x, axis=1.0)
        for shape in ((2.0, 12), (None, 12), (True, 24), ("2", 12)):
            with pytest.raises(mg.ArgumentError, match="reshape: each dimension of shape"):
                ops.reshape(x, shape)
        with pytest.raises(mg.ArgumentError, match="reshape: shape must be an int or a tuple"):
            ops.reshape(x, "24")
        assert ops.reshape(x, (np.int64(2), -1)).shape == (2, 12)
        with pytest.raises(mg.ArgumentError, match="transpose: axes"):
            ops.transpose(x, (0, 2, 1.0))


def test_avg_pool_count_include_pad_must_be_a_bool():
    with mg.Graph():
        x = _x((1, 2, 4, 4))
        with pytest.raises(mg.ArgumentError, match="avg_pool: count_include_pad must be True or False, got 'False'"):
            ops.avg_pool(x, 2, count_include_pad="False")
        assert ops.avg_pool(x, 2, padding=1, count_include_pad=True).shape == (1, 2, 3, 3)


def test_optimizer_hyperparameters_must_be_numbers():
    with mg.Graph():
        w = mg.variable(np.ones(2, "float32"))
        loss = ops.sum(w * w)
        for lr in (True, "0.1", "abc", None, float("nan")):
            with pytest.raises(mg.ArgumentError, match="SGD: the learning rate must be a"):
                mg.optim.SGD(lr)
        with pytest.raises(mg.ArgumentError, match="Adam: the learning rate must be a positive number"):
            mg.optim.Adam(-1e-3)
        with pytest.raises(mg.ArgumentError, match="SGD: momentum must be a number, got '0.9'"):
            mg.optim.SGD(0.1, momentum="0.9")
        with pytest.raises(mg.ArgumentError, match="SGD: nesterov must be True or False"):
            mg.optim.SGD(0.1, momentum=0.9, nesterov=1)
        with pytest.raises(mg.ArgumentError, match="Adam: betas must be a pair"):
            mg.optim.Adam(1e-3, betas=0.9)
        assert mg.optim.SGD(np.float32(0.5)).lr == 0.5
        mg.optim.SGD(1).minimize(loss)


def test_placeholder_shapes_dtypes_and_names():
    with mg.Graph():
        assert mg.placeholder([None, np.int64(3)]).shape == (None, 3)
        for shape in ((True, 3), (2.0, 3), "abc", {"a": 1}):
            with pytest.raises(mg.ArgumentError, match="shape"):
                mg.placeholder(shape)
        for dtype in (object, "U3", "S2", "datetime64[s]"):
            with pytest.raises(mg.ArgumentError, match="minigraph tensors hold bools or numbers"):
                mg.placeholder((2,), dtype=dtype)
        with pytest.raises(mg.ArgumentError, match="unknown dtype 'foo'"):
            mg.placeholder((2,), dtype="foo")
        with pytest.raises(mg.ArgumentError, match="name must be a string, got 5"):
            mg.placeholder((2,), name=5)


def test_variables_and_constants_hold_numbers_or_bools():
    with mg.Graph():
        for value in ("abc", None, ["a", "b"], [object()]):
            with pytest.raises(mg.ArgumentError, match="minigraph tensors hold bools or numbers"):
                mg.variable(value, name="w")
            with pytest.raises(mg.ArgumentError, match="minigraph tensors hold bools or numbers"):
                mg.constant(value)
        with pytest.raises(mg.ArgumentError, match="variable: trainable must be True or False"):
            mg.variable(1.0, trainable="no")
        assert mg.constant(True).dtype == np.bool_ and mg.variable(np.int8(3)).dtype == np.int8


def test_names_scopes_and_lookups_must_be_strings():
    with mg.Graph() as g:
        x = mg.placeholder((2,), name="x")
        for name in (None, 3):
            with pytest.raises(mg.ArgumentError, match=f"name_scope: name must be a string, got {name}"):
                with mg.name_scope(name):
                    pass
        with pytest.raises(mg.ArgumentError, match="Graph.get: name must be a string, got None"):
            g.get(None)
        assert g.get("x") is x


def test_gradients_and_to_dot_name_what_they_expect():
    with mg.Graph():
        x = mg.placeholder((2,), name="x")
        y = ops.sum(x * x)
        with pytest.raises(mg.ArgumentError, match="gradients: ys must be a node or a list of nodes, got None"):
            mg.gradients(None, [x])
        with pytest.raises(mg.ArgumentError, match="gradients: xs must be nodes, got int 3"):
            mg.gradients(y, [3])
    pytest.importorskip("graphviz")
    with pytest.raises(mg.ArgumentError, match="to_dot expects a Graph, a node or a non-empty list of nodes, got 3"):
        mg.viz.to_dot(3)


def test_batches_batch_size_and_flags_are_checked():
    x, y = np.zeros((4, 2)), np.zeros(4)
    for bad in (2.5, True, "2"):
        with pytest.raises(mg.ArgumentError, match="batches: batch_size must be an int"):
            mg.data.batches(x, y, bad)
    with pytest.raises(mg.ArgumentError, match="batches: batch_size must be >= 1, got 0"):
        mg.data.batches(x, y, 0)
    with pytest.raises(mg.ArgumentError, match="batches: shuffle must be True or False"):
        mg.data.batches(x, y, 2, shuffle="no")
    assert len(list(mg.data.batches(x, y, np.int64(2)))) == 2


# ---------------------------------------------------------------------------------
# values that would not survive the cast to a tensor's dtype


def test_python_and_numpy_scalars_that_overflow_the_node_dtype_are_refused():
    with mg.Graph():
        x = _x()
        for big in (1e300, np.float64(1e300), -1e39, np.array([1.0, 1e300])):
            with pytest.raises(mg.ArgumentError, match="has dtype float32.*would become -?inf"):
                x * big
        i = mg.placeholder((2,), dtype="int8", name="i")
        with pytest.raises(mg.ArgumentError, match="outside int8's range"):
            ops.where(mg.constant(np.array([True, False])), i, 300)
        assert (x * 1e30).dtype == np.float32 and (x * float("inf")).dtype == np.float32  # inf stays inf


def test_set_value_follows_the_feed_rule():
    with mg.Graph() as g:
        w = mg.variable(np.ones(2, "float32"), name="w")
        n = mg.variable(np.zeros(2, "int32"), name="n")
    sess = mg.Session(g)
    with pytest.raises(mg.ArgumentError, match=r"variable 'w' has dtype float32; the float64 value 1e\+300 at "
                                               r"index \(0,\) is finite, but not in float32 \(it would become inf\)"):
        sess.set_value(w, [1e300, 1.0])
    with pytest.raises(mg.ArgumentError, match="variable 'n' has dtype int32; a value of dtype float64 \\(2,\\) cannot"):
        sess.set_value(n, [1.5, 2.0])
    with pytest.raises(mg.ArgumentError, match="outside int32's range"):
        sess.set_value(n, np.array([2 ** 40, 0]))
    np.testing.assert_array_equal(sess.get_value(w), [1, 1])  # nothing was written
    sess.set_value(w, np.array([0.5, np.inf]))
    sess.set_value(n, [3, 4])
    np.testing.assert_array_equal(sess.get_value(w), [0.5, np.inf])
    assert sess.get_value(n).dtype == np.int32 and sess.get_value(n).tolist() == [3, 4]
