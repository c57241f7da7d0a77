"""Check-numerics (the first node holding NaN or Inf, named with its inputs) and the feed rules:
value-preserving casts only, fed sizes that disagree, empty batches."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import ops


@pytest.fixture
def digits_model():
    with mg.Graph() as g:
        m = mg.models.mini_inception(rng=0)
        train = mg.optim.Adam(1e-3).minimize(m.loss)
    rng = np.random.default_rng(0)
    x = rng.random((32, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 10, 32)
    return g, m, train, x, y


def test_one_nan_pixel_is_caught_at_the_feed_and_nothing_is_updated(digits_model):
    g, m, train, x, y = digits_model
    x[3, 0, 2, 2] = np.nan
    sess = mg.Session(g, check_numerics=True)
    before = {v.name: sess.get_value(v) for v in sess.variables}
    with pytest.raises(mg.NumericsError, match=r"placeholder 'x' holds NaN or Inf: shape \(32, 1, 8, 8\), "
                                               r"1 NaN, 0 Inf, finite range \[0\.\d+, 0\.9\d+\]"):
        sess.run(train, {m.x: x, m.y: y})
    for v in sess.variables:
        np.testing.assert_array_equal(sess.get_value(v), before[v.name])
    plain = mg.Session(g)  # without the check the NaN spreads into every variable
    plain.run(train, {m.x: x, m.y: y})
    assert all(np.isnan(plain.get_value(v)).any() for v in plain.variables)


def test_the_first_node_with_inf_is_named_with_its_inputs():
    with mg.Graph() as g:
        x = mg.placeholder((None, 3), name="x")
        with mg.name_scope("block"):
            h = ops.exp(x * 60.0, name="grow")
            y = ops.sum(h * 2.0)
    sess = mg.Session(g, check_numerics=True)
    sess.run(y, {x: np.ones((2, 3), "float32")})  # finite: fine
    feed = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 0.1]], "float32")
    with pytest.raises(mg.NumericsError) as info, np.errstate(over="ignore"):
        sess.run(y, {x: feed})
    text = str(info.value)
    assert text.startswith("exp 'block/grow' produced NaN or Inf (shape (2, 3), 0 NaN, 1 Inf")
    assert "'block/mul' (mul): shape (2, 3), 0 NaN, 0 Inf, finite range [-60, 120]" in text


def test_check_numerics_from_the_environment(monkeypatch):
    with mg.Graph() as g:
        x = mg.placeholder((2,), name="x")
        y = ops.log(x)
    monkeypatch.setenv("MINIGRAPH_CHECK_NUMERICS", "1")
    assert mg.Session(g).check_numerics
    with pytest.raises(mg.NumericsError, match="log 'log' produced NaN"):
        with np.errstate(invalid="ignore"):
            mg.Session(g).run(y, {x: np.array([-1.0, 1.0], "float32")})
    monkeypatch.setenv("MINIGRAPH_CHECK_NUMERICS", "0")
    with np.errstate(invalid="ignore"):
        assert np.isnan(mg.Session(g).run(y, {x: np.array([-1.0, 1.0], "float32")})[0])


# feeds --------------------------------------------------------------------------------


@pytest.fixture
def feeds_graph():
    with mg.Graph() as g:
        labels = mg.placeholder((None,), dtype="int32", name="labels")
        x = mg.placeholder((None, 3), name="x")
        logits = ops.matmul(x, mg.constant(np.eye(3, dtype="float32")))
        loss = ops.softmax_cross_entropy(logits, labels)
    return g, labels, x, loss


def test_casts_that_lose_values_are_refused(feeds_graph):
    g, labels, x, loss = feeds_graph
    sess = mg.Session(g)
    with pytest.raises(mg.FeedError, match=r"placeholder 'labels' has dtype int32; the fed int64 value 4294967297 "
                                           r"at index \(1,\) is outside int32's range"):
        sess.run(labels, {labels: np.array([1, 2**32 + 1], "int64")})
    with pytest.raises(mg.FeedError, match=r"placeholder 'x' has dtype float32; the fed float64 value 1e\+300 at "
                                           r"index \(0, 2\) is finite, but not in float32 \(it would become inf\)"):
        sess.run(x, {x: np.array([[0.0, 1.0, 1e300]])})
    with pytest.raises(mg.FeedError, match="a value of dtype float64 .* cannot be cast to it safely"):
        sess.run(labels, {labels: np.array([1.0])})


def test_casts_that_keep_every_value_are_accepted(feeds_graph):
    g, labels, x, loss = feeds_graph
    sess = mg.Session(g)
    got = sess.run(labels, {labels: np.array([-5, 2**31 - 1], "int64")})
    assert got.dtype == np.int32 and got.tolist() == [-5, 2**31 - 1]
    got = sess.run(x, {x: np.array([[0.1, np.inf, np.nan]])})  # inf and nan were not finite before
    assert got.dtype == np.float32 and got[0, 0] == np.float32(0.1) and np.isinf(got[0, 1])
    assert sess.run(x, {x: np.array([[True, False, True]])}).tolist() == [[1.0, 0.0, 1.0]]
    assert sess.run(x, {x: np.array([[1, 2, 3]], "uint8")}).dtype == np.float32


def test_fed_sizes_that_disagree_name_both_placeholders(feeds_graph):
    g, labels, x, loss = feeds_graph
    with pytest.raises(mg.FeedError, match=r"softmax_cross_entropy 'softmax_cross_entropy': batch sizes differ: "
                                           r"logits \(4, 3\), labels \(3,\) \(fed values: 'labels' \(3,\) and "
                                           r"'x' \(4, 3\)\)"):
        mg.Session(g).run(loss, {x: np.ones((4, 3)), labels: np.zeros(3, "int32")})
    with pytest.raises(mg.FeedError, match=r"conv2d .* is larger than the padded input.*fed values: 'img' \(1, 1, 2, 2\)"):
        with mg.Graph() as g2:
            img = mg.placeholder((None, 1, None, None), name="img")
            y = ops.conv2d(img, mg.constant(np.ones((1, 1, 3, 3), "float32")))
        mg.Session(g2).run(y, {img: np.ones((1, 1, 2, 2), "float32")})


def test_an_empty_batch_and_labels_out_of_range_are_clear_errors(feeds_graph):
    g, labels, x, loss = feeds_graph
    sess = mg.Session(g)
    with pytest.raises(mg.FeedError, match=r"softmax_cross_entropy '.*': the batch is empty"):
        sess.run(loss, {x: np.ones((0, 3)), labels: np.zeros(0, "int32")})
    with pytest.raises(mg.FeedError, match=r"labels must lie in \[0, 3\), got values from 0 to 7"):
        sess.run(loss, {x: np.ones((2, 3)), labels: np.array([0, 7], "int32")})


def test_an_in_place_sum_reports_its_inputs_as_they_were():
    """The backward passes let add_n write into its first input; the check still shows that input
    as it was (finite), not as the overwritten sum."""
    with mg.Graph() as g:
        x = mg.placeholder((2,), name="x")
        a, b = ops.mul(x, 2.0, name="a"), ops.mul(x, 1.5, name="b")
        s = ops.add_n([a, b], name="s")
    feed = {x: np.array([1e38, 1.0], "float32")}
    for optimize in (True, False):
        with pytest.raises(mg.NumericsError) as info, np.errstate(over="ignore"):
            mg.Session(g, check_numerics=True, optimize=optimize).run(s, feed)
        text = str(info.value)
        assert "'a' (mul): shape (2,), 0 NaN, 0 Inf, finite range [2, 2e+38]" in text, text


def test_saves_from_a_thread_while_another_trains_are_consistent(tmp_path):
    """mg.save takes the variables, the state and the generator of one moment."""
    import threading
    with mg.Graph() as g:
        ws = [mg.variable(np.zeros(2, "float32"), name=f"w{i}") for i in range(30)]
        train = mg.optim.SGD(1.0).minimize(ops.add_n([ops.sum(w) for w in ws]))
    sess = mg.Session(g)
    stop = threading.Event()

    def trainer():
        while not stop.is_set():
            sess.run(train)

    import sys
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads switch often: a save that is not one step would show
    t = threading.Thread(target=trainer)
    t.start()
    try:
        for i in range(10):
            path = mg.save(sess, tmp_path / f"c{i}.npz")
            with np.load(path) as f:
                values = {float(f[f"variables/w{j}.npy" if f"variables/w{j}.npy" in f.files else f"variables/w{j}"][0])
                          for j in range(30)}
                step = int(f["state/SGD/step"]) if "state/SGD/step" in f.files else 0
            assert len(values) == 1 and values == {-float(step)}, (values, step)
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(interval)
