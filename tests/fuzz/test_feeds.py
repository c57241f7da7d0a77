"""Fuzzed feeds through the public Session API: placeholders of random static shapes and
dtypes, fed arrays and Python values of random shapes, dtypes and contents.

A value that fits the placeholder comes back unchanged (cast to the placeholder's dtype when
every value survives the cast); one that does not fit, or would not survive, is a FeedError
naming the placeholder. Feeds whose batch sizes disagree and empty batches under a mean loss
are FeedErrors too, and so are integers that overflow a float type (65520 fed to float16 would
become inf) and ragged lists.
"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigraph as mg
from minigraph import ops

from fuzzing import budget, expect_minigraph_error, record

AREA = "feeds"
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the int -> float16 overflow still cast
PLACEHOLDER_DTYPES = ["float32", "float64", "float16", "int32", "int64", "uint8", "bool"]
VALUE_DTYPES = PLACEHOLDER_DTYPES + ["int8", "uint64", "complex64", "<U3", "datetime64[s]"]


def value_survives(value: np.ndarray, dtype: np.dtype) -> bool:
    """The issue's rule for a needed cast: integers stay in range and equal, floats that were
    finite stay finite (rounding to the nearest float is fine)."""
    with np.errstate(all="ignore"):
        cast = value.astype(dtype)
    if dtype.kind in "iub" and value.dtype.kind in "iub":
        return bool(np.array_equal(cast.astype(value.dtype), value))
    if dtype.kind == "f" and value.dtype.kind in "iufb":
        return bool(np.all(np.isfinite(cast) | ~np.isfinite(value.astype(np.float64))))
    return True


def values(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=8 * min(dtype.itemsize, 8))
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        elements = st.one_of(st.integers(-3, 3).filter(lambda v: v >= info.min), st.integers(info.min, info.max))
    else:
        elements = None
    return hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4), elements=elements)


@budget(80)
@given(data=st.data(), static=st.lists(st.one_of(st.none(), st.integers(0, 4)), max_size=3),
       dtype=st.sampled_from(PLACEHOLDER_DTYPES), value_dtype=st.sampled_from(VALUE_DTYPES),
       python=st.sampled_from([None, None, None, "list", "scalar"]))
def test_feed_is_the_value_or_a_feed_error(data, static, dtype, value_dtype, python):
    value = data.draw(values(value_dtype))
    if data.draw(st.booleans()):  # a shape that fits now and then
        value = np.resize(value, tuple(d if d is not None else data.draw(st.integers(0, 3)) for d in static))
    fed = value.tolist() if python == "list" else (value.reshape(-1)[0].item() if python == "scalar" and value.size
                                                   else value)
    arr = np.asarray(fed)
    target = np.dtype(dtype)
    fits = arr.ndim == len(static) and all(d is None or d == s for d, s in zip(static, arr.shape))
    castable = arr.dtype == target or np.can_cast(arr.dtype, target, "same_kind")
    survives = castable and value_survives(arr, target)
    with mg.Graph() as g:
        x = mg.placeholder(tuple(static), dtype, name="x")
        y = ops.identity(x, name="y") if data.draw(st.booleans()) else x
    try:
        out = mg.Session(g).run(y, {x: fed})
    except Exception as exc:  # noqa: BLE001 - the oracle judges every exception
        assert not (fits and survives), f"refused a value that fits: {exc!r}"
        expect_minigraph_error(AREA, exc, "'x'")
        assert isinstance(exc, mg.FeedError)
        return
    assert fits and survives, f"accepted {arr.dtype} {arr.shape} {arr!r} for {dtype} {tuple(static)}"
    assert out.dtype == target and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr.astype(target))
    record(AREA, "result")


@budget(40)
@given(data=st.data(), key=st.sampled_from(["variable", "op", "other graph", "string", "default"]))
def test_only_placeholders_of_the_session_graph_are_fed(data, key):
    with mg.Graph() as other:
        stranger = mg.placeholder((2,), name="stranger")
    with mg.Graph() as g:
        x = mg.placeholder((None, 2), name="x")
        w = mg.variable(np.ones(2, "float32"), name="w")
        d = mg.placeholder_with_default(np.zeros(2, "float32"), name="d")
        y = ops.add(x * w, d, name="y")
    node = {"variable": w, "op": y, "other graph": stranger, "string": "x", "default": d}[key]
    value = np.full(2, 3.0, "float32")
    feed = {x: np.ones((1, 2), "float32"), node: value}
    try:
        out = mg.Session(g).run(y, feed)
    except Exception as exc:  # noqa: BLE001
        assert key != "default"
        expect_minigraph_error(AREA, exc, "'w'", "'y'", "'stranger'", "'x'")
        return
    assert key == "default"
    np.testing.assert_array_equal(out, [[4.0, 4.0]])  # x * w + the fed default
    record(AREA, "result")


# ---------------------------------------------------------------------------------
# the session's rules of issue 10


@budget(40)
@given(data=st.data(), dtype=st.sampled_from(["float32", "float16", "int32", "uint8", "int64"]),
       value_dtype=st.sampled_from(["float64", "int64", "uint64", "int32"]))
def test_lossy_casts_are_feed_errors(data, dtype, value_dtype):
    """main (before the session's rule): 2**32 + 1 became 1 as int32, 1e300 inf as float32."""
    value = data.draw(values(value_dtype).filter(lambda v: v.size > 0))
    target = np.dtype(dtype)
    assume(np.can_cast(value.dtype, target, "same_kind") and not value_survives(value, target))
    with mg.Graph() as g:
        x = mg.placeholder((None,) * value.ndim, dtype, name="x")
    with pytest.raises(mg.FeedError, match=rf"'x' has dtype {target}; the fed {value.dtype} value"):
        mg.Session(g).run(x, {x: value})
    record(AREA, "FeedError")


def test_integers_that_overflow_a_float_dtype_are_feed_errors():
    with mg.Graph() as g:
        x = mg.placeholder((1,), "float16", name="x")
    with pytest.raises(mg.FeedError, match="'x'"):
        mg.Session(g).run(x, {x: np.array([65520])})  # float16's largest is 65504: this is inf


@budget(10)
@given(rows=st.lists(st.lists(st.floats(-1, 1), min_size=0, max_size=3), min_size=2, max_size=3)
       .filter(lambda r: len({len(x) for x in r}) > 1))
def test_ragged_lists_are_feed_errors(rows):
    with mg.Graph() as g:
        x = mg.placeholder((None, None), name="x")
    with pytest.raises(mg.FeedError, match="'x'"):
        mg.Session(g).run(x, {x: rows})  # main: NumPy's "inhomogeneous shape" ValueError


@budget(20)
@given(n=st.integers(2, 5), m=st.integers(2, 5), which=st.sampled_from(["cross_entropy", "add"]))
def test_batch_sizes_that_disagree_are_feed_errors(n, m, which):
    """(A batch of 1 broadcasts against any other in `add`, as NumPy's rule says.)"""
    assume(n != m)
    with mg.Graph() as g:
        x = mg.placeholder((None, 3), name="x")
        other = (mg.placeholder((None,), "int64", name="y") if which == "cross_entropy"
                 else mg.placeholder((None, 3), name="z"))
        out = ops.softmax_cross_entropy(x, other) if which == "cross_entropy" else x + other
    value = np.zeros(m, "int64") if which == "cross_entropy" else np.zeros((m, 3), "float32")
    with pytest.raises(mg.FeedError, match=rf"'x'.*'{other.name}'|'{other.name}'.*'x'"):
        mg.Session(g).run(out, {x: np.zeros((n, 3), "float32"), other: value})  # once an IndexError
    record(AREA, "FeedError")


def test_mean_loss_over_an_empty_batch_is_an_error():  # once a nan loss
    with mg.Graph() as g:
        x, y = mg.placeholder((None, 3), name="x"), mg.placeholder((None,), "int64", name="y")
        loss = ops.softmax_cross_entropy(x, y)
    with pytest.raises(mg.MinigraphError, match="empty"):
        mg.Session(g).run(loss, {x: np.zeros((0, 3), "float32"), y: np.zeros(0, "int64")})
