"""Session: fetch structures, plans, memory release, variables, feed checking, backends."""
import collections
import tracemalloc

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops


@pytest.fixture
def small():
    with mg.Graph() as g:
        x = mg.placeholder((None, 3), name="x")
        w = mg.variable(np.arange(6, dtype="float32").reshape(3, 2), name="w")
        y = ops.matmul(x, w)
        s = ops.sum(y)
    return g, x, w, y, s


def test_fetch_structures(small):
    g, x, w, y, s = small
    sess = mg.Session(g)
    batch = np.ones((2, 3), "float32")
    single = sess.run(s, {x: batch})
    listed = sess.run([y, s], {x: batch})
    tupled = sess.run((s,), {x: batch})
    named = sess.run({"y": y, "s": s}, {x: batch})
    Pair = collections.namedtuple("Pair", "y s")
    nt = sess.run(Pair(y, s), {x: batch})
    expected_y = batch @ np.arange(6).reshape(3, 2)
    assert single == expected_y.sum() and single.dtype == np.float32
    assert isinstance(listed, list) and np.array_equal(listed[0], expected_y)
    assert isinstance(tupled, tuple) and tupled[0] == single
    assert set(named) == {"y", "s"} and named["s"] == single
    assert isinstance(nt, Pair) and nt.s == single


def test_only_ancestors_run_and_plans_are_reused(small):
    g, x, w, y, s = small
    with g:
        boom = ops.log(ops.neg(mg.placeholder((1,), name="never_fed")))
    sess = mg.Session(g, optimize=False)
    assert np.array_equal(sess.run(w), np.arange(6).reshape(3, 2))  # no feed needed
    timings = {}
    sess.run(s, {x: np.ones((1, 3))}, timings=timings)
    sess.run(s, {x: np.ones((4, 3))}, timings=timings)
    assert sorted(kind for kind, _ in timings) == ["matmul", "sum", "variable"]  # not log or neg
    assert all(calls == 2 for _, calls in timings.values())
    assert sess.plan([s], [x]) is sess.plan([s], [x])  # made once, then reused
    assert [n.name for n in sess.plan([s], [x]).nodes] == ["x", "w", "matmul", "sum"]


def test_intermediates_are_released_peak_memory_stays_flat():
    """A chain of 200 ops on a 4 MB array peaks at a few arrays, not 200."""
    n = 1_000_000  # float32: 4 MB
    with mg.Graph() as g:
        x = mg.placeholder((n,), name="x")
        h = x
        for _ in range(200):
            h = ops.relu(h * 1.0001)
    sess = mg.Session(g)
    feed = {x: np.ones(n, "float32")}
    sess.run(h, feed)  # plan once
    tracemalloc.start()
    out = sess.run(h, feed)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert np.allclose(out, 1.0001 ** 200, rtol=1e-4)
    assert peak < 4 * 4 * n, f"peak {peak / 1e6:.1f} MB for 4 MB arrays"


def test_variables_live_in_the_session_and_assign_writes(small):
    g, x, w, y, s = small
    with g:
        upd = mg.assign(w, w * 2.0)
    a, b = mg.Session(g), mg.Session(g)
    a.run(upd)
    assert np.array_equal(a.run(w), 2 * np.arange(6).reshape(3, 2))
    assert np.array_equal(b.run(w), np.arange(6).reshape(3, 2))  # sessions are independent
    fetched = a.run(w)
    fetched[:] = -1  # a fetched value is a copy
    assert a.run(w)[0, 1] == 2
    a.set_value(w, np.zeros((3, 2)))
    assert a.get_value(w).sum() == 0 and a.get_value(w).dtype == np.float32
    with pytest.raises(ValueError, match=r"has shape \(3, 2\), value has \(2,\)"):
        a.set_value(w, np.zeros(2))
    with pytest.raises(mg.ShapeError, match="does not match the variable"):
        with g:
            mg.assign(w, mg.constant(np.zeros((2, 3), "float32")))


def test_assign_runs_after_the_reads_in_the_same_run(small):
    g, x, w, y, s = small
    with g:
        upd = mg.assign(w, w + 1.0)
        read = ops.sum(w)
    sess = mg.Session(g)
    before, _ = sess.run([read, upd])
    assert before == 15 and sess.run(read) == 21


def test_placeholder_with_default():
    with mg.Graph() as g:
        flag = mg.placeholder_with_default(np.float32(3.0), name="flag")
        y = flag * 2.0
    sess = mg.Session(g)
    assert sess.run(y) == 6.0 and sess.run(y, {flag: 5}) == 10.0


def test_feed_errors(small):
    g, x, w, y, s = small
    sess = mg.Session(g)
    with pytest.raises(mg.FeedError, match=r"placeholder 'x' \(None, 3\) must be fed"):
        sess.run(s)
    with pytest.raises(mg.FeedError, match=r"placeholder 'x' expects shape \(None, 3\), got a value of shape \(3,\)"):
        sess.run(s, {x: np.ones(3)})
    with pytest.raises(mg.FeedError, match=r"expects shape \(None, 3\), got a value of shape \(2, 4\)"):
        sess.run(s, {x: np.ones((2, 4))})
    with pytest.raises(mg.FeedError, match="dtype float32; a value of dtype complex128"):
        sess.run(s, {x: np.ones((2, 3), complex)})
    with pytest.raises(mg.FeedError, match="cannot feed 'w': only placeholders can be fed"):
        sess.run(s, {x: np.ones((2, 3)), w: np.ones((3, 2))})
    with mg.Graph():
        stranger = mg.placeholder((1,), name="stranger")
    with pytest.raises(mg.GraphError, match="cannot fetch 'stranger'"):
        sess.run(stranger)
    with pytest.raises(mg.FeedError, match="cannot feed 'stranger'"):
        sess.run(s, {x: np.ones((1, 3)), stranger: np.ones(1)})
    with pytest.raises(TypeError, match="fetches must be nodes"):
        sess.run([s, "loss"], {x: np.ones((1, 3))})


def test_feeds_are_cast_within_kind():
    with mg.Graph() as g:
        labels = mg.placeholder((None,), dtype="int64", name="labels")
        x = mg.placeholder((2,), name="x")
    sess = mg.Session(g)
    assert sess.run(x, {x: np.array([1.0, 2.0])}).dtype == np.float32
    assert sess.run(labels, {labels: np.array([1, 2], np.int32)}).dtype == np.int64
    with pytest.raises(mg.FeedError, match="'labels' has dtype int64; a value of dtype float64"):
        sess.run(labels, {labels: np.array([1.5])})


def test_backend_errors():
    with pytest.raises(mg.BackendError, match="unknown backend 'torch'; choose one of numpy, cupy"):
        mg.Session(mg.Graph(), backend="torch")
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(mg.BackendError, match=r"needs CuPy.*pip install 'minigraph\[cuda\]'"):
            mg.Session(mg.Graph(), backend="cupy")


def test_empty_fetches_and_fetches_from_another_graph(small):
    g, x, w, y, s = small
    sess = mg.Session(g)
    assert sess.run([]) == [] and sess.run({}) == {} and sess.run(()) == ()
    assert sess.kernels([]) == {}
    with mg.Graph():
        stranger = mg.placeholder((1,), name="stranger")
    with pytest.raises(mg.GraphError, match="cannot fetch 'stranger'"):
        sess.kernels(stranger)


def test_a_runtime_closed_while_runs_go_on_keeps_working():
    import threading
    rt = mg.CpuRuntime(threads=2)
    rng = np.random.default_rng(5)
    x0 = rng.standard_normal((8, 3, 16, 16)).astype("float32")
    with mg.Graph() as g:
        xp = mg.placeholder(x0.shape)
        y = ops.conv2d(xp, mg.constant(rng.standard_normal((4, 3, 3, 3)).astype("float32")), padding=1)
    sess = mg.Session(g, runtime=rt)
    ref = sess.run(y, {xp: x0})
    stop, errors = threading.Event(), []

    def closer():
        while not stop.is_set():
            rt.close()

    t = threading.Thread(target=closer)
    t.start()
    try:
        for _ in range(50):
            np.testing.assert_array_equal(sess.run(y, {xp: x0}), ref)
    finally:
        stop.set()
        t.join()
    rt.close()


def test_a_closed_session_refuses_to_run_or_touch_values():
    """After close() a run silently started again from the variables' initial values."""
    with mg.Graph() as g:
        w = mg.variable(np.ones(2, "float32"), name="w")
        y = w * 2.0
        step = mg.optim.SGD(0.1).minimize(ops.sum(y))
    sess = mg.Session(g)
    sess.set_value(w, [5.0, 6.0])
    sess.close()
    sess.close()  # twice: harmless
    for use in (lambda: sess.run(y), lambda: sess.run(step), lambda: sess.get_value(w),
                lambda: sess.set_value(w, [1.0, 2.0]), lambda: sess.snapshot(),
                lambda: sess.load({w: np.zeros(2, "float32")})):
        with pytest.raises(mg.SessionClosedError, match="this session was closed"):
            use()
    with mg.Session(g) as fresh:  # a new session starts from the initial values, as documented
        np.testing.assert_array_equal(fresh.run(y), [2.0, 2.0])
    with pytest.raises(RuntimeError):  # also a RuntimeError, as TensorFlow's
        fresh.run(y)
