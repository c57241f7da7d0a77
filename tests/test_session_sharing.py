"""Sessions shared between threads, results that never alias session state, nested fetch
structures and the bounded plan cache."""
import collections
import dataclasses
import threading
from typing import ClassVar

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops
from minigraph.op import Op
from minigraph.runtime import BLAS_PIN


def run_threads(n, fn):
    errors = []

    def body(i):
        try:
            fn(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_concurrent_sgd_steps_lose_no_update():
    with mg.Graph() as g:
        w = mg.variable(np.zeros(3, "float32"), name="w")
        train = mg.optim.SGD(1.0).minimize(ops.sum(w))
    sess = mg.Session(g)
    run_threads(8, lambda i: [sess.run(train) for _ in range(300)])
    np.testing.assert_array_equal(sess.get_value(w), np.full(3, -2400, "float32"))
    assert int(sess.run(train)) == 2401  # the step counter saw every step too


def test_concurrent_adam_steps_count_every_step_per_variable():
    with mg.Graph() as g:
        a = mg.variable(np.ones(2, "float32"), name="a")
        b = mg.variable(np.ones(3, "float32"), name="b")
        c = mg.variable(np.ones(4, "float32"), name="c")
        train = mg.optim.Adam(0.01).minimize(ops.sum(a * a) + ops.sum(b * b) + ops.sum(c * c))
    sess = mg.Session(g)
    run_threads(4, lambda i: [sess.run(train) for _ in range(25)])
    steps = {k: int(v) for k, v in sess.state.items() if k.endswith("/t")}
    assert sorted(steps.values()) == [100, 100, 100] and len(steps) == 3


def test_concurrent_inference_equals_serial_runs_bitwise():
    with mg.Graph() as g:
        m = mg.models.mini_inception(rng=0)
    rng = np.random.default_rng(0)
    batches = [rng.random((16, 1, 8, 8), dtype=np.float32) for _ in range(8)]
    sess = mg.Session(g)
    serial = [sess.run(m.probs, {m.x: b}) for b in batches]
    got = [None] * 8

    def work(i):
        for _ in range(5):
            got[i] = sess.run(m.probs, {m.x: batches[i]})

    run_threads(8, work)
    for a, b in zip(serial, got):
        np.testing.assert_array_equal(a, b)


@dataclasses.dataclass(frozen=True)
class BlasProbe(Op):
    """Records BLAS's thread count while the run is inside it (and is a BLAS user itself)."""

    kind: ClassVar[str] = "test_blas_probe"
    uses_blas: ClassVar[bool] = True
    pure: ClassVar[bool] = False
    seen: list = dataclasses.field(default_factory=list, compare=False, hash=False)

    def infer(self, x):
        return x

    def forward(self, xp, x):
        self.seen.append(BLAS_PIN.threads())
        return x


def test_runs_from_worker_threads_hold_blas_at_one_thread_and_give_the_same_bits():
    if BLAS_PIN.threads() is None:
        pytest.skip("threadpoolctl sees no BLAS library")
    rng = np.random.default_rng(2)
    x0 = rng.standard_normal((64, 512)).astype("float32")
    probe = BlasProbe()
    with mg.Graph() as g:
        x = mg.placeholder((None, 512), name="x")
        w = mg.variable(rng.standard_normal((512, 512)).astype("float32"), name="w")
        y = ops.matmul(mg.apply(probe, [x]), w)
    sess = mg.Session(g, runtime=mg.CpuRuntime(threads=1))
    main = sess.run(y, {x: x0})
    results = []
    for _ in range(2):  # the first worker thread becomes threadpoolctl's "controlling" one
        t = threading.Thread(target=lambda: results.append(sess.run(y, {x: x0})))
        t.start()
        t.join()
    assert probe.seen == [1, 1, 1]
    for r in results:
        np.testing.assert_array_equal(r, main)


def test_two_threads_build_graphs_at_the_same_time():
    names = {}
    barrier = threading.Barrier(2)

    def build(i):
        with mg.Graph() as g:
            with mg.name_scope(f"t{i}"):
                barrier.wait()
                for _ in range(200):
                    ops.relu(mg.placeholder((1,), name="p"))
            names[i] = (g, [n.name for n in g.nodes])
        assert mg.get_default_graph() is not g

    run_threads(2, build)
    for i, (g, ns) in names.items():
        assert len(ns) == 400 and all(n.startswith(f"t{i}/") for n in ns)


# results never alias session state -----------------------------------------------------


def test_fetched_arrays_never_share_memory_with_variables_or_constants():
    with mg.Graph() as g:
        w = mg.variable(np.arange(6, dtype="float32").reshape(2, 3), name="w")
        c = mg.constant(np.ones(3, "float32"), name="c")
        views = [ops.identity(w), ops.reshape(w, (3, 2)), ops.flatten(w), ops.slice_axis(w, 0, 2, axis=1),
                 ops.transpose(ops.transpose(w)), ops.expand_dims(w, (0,)), ops.identity(c),
                 mg.placeholder_with_default(c)]
        upd = mg.assign(w, w + 1.0)
        step = mg.optim.SGD(0.5).minimize(ops.sum(w * w))
    for optimize in (True, False):
        sess = mg.Session(g, optimize=optimize)
        for v in sess.run(views):
            v[...] = 99
        fetched_upd = sess.run(upd)
        fetched_upd[...] = -7
        update_nodes = [n for n in g.nodes if n.kind == "apply_sgd"]
        for v in sess.run(update_nodes):
            v[...] = 42
        expected = (np.arange(6, dtype="float32").reshape(2, 3) + 1.0) * (1 - 2 * 0.5)
        np.testing.assert_array_equal(sess.get_value(w), expected)
        np.testing.assert_array_equal(sess.run(c), np.ones(3, "float32"))
        assert sess.run(step) >= 1


def test_fetched_arrays_never_share_memory_with_fed_arrays():
    """A fetched placeholder was the caller's own array, and a reshape of it a view of it."""
    with mg.Graph() as g:
        x = mg.placeholder((2, 3), name="x")
        fetches = [x, ops.identity(x), ops.reshape(x, (3, 2)), ops.transpose(x), x * 2.0]
    fed = np.arange(6, dtype="float32").reshape(2, 3)
    for optimize in (True, False):
        for out in mg.Session(g, optimize=optimize).run(fetches, {x: fed}):
            assert not np.shares_memory(out, fed)


# nested fetches --------------------------------------------------------------------------


def test_any_nesting_of_dicts_lists_tuples_and_namedtuples():
    Pair = collections.namedtuple("Pair", "a b")
    with mg.Graph() as g:
        x = mg.placeholder((None, 2), name="x")
        w = mg.variable(np.ones((2, 2), "float32"), name="w")
        b = mg.variable(np.zeros(2, "float32"), name="b")
        loss = ops.sum(ops.matmul(x, w) + b)
        gw, gb = mg.gradients(loss, [w, b])
    sess = mg.Session(g)
    out = sess.run({"loss": loss, "grads": [gw, gb], "pair": Pair(loss, (gb, {"w": w}))}, {x: np.ones((3, 2))})
    assert set(out) == {"loss", "grads", "pair"} and out["loss"] == 12.0
    assert isinstance(out["grads"], list) and out["grads"][0].shape == (2, 2)
    assert isinstance(out["pair"], Pair) and isinstance(out["pair"].b, tuple)
    np.testing.assert_array_equal(out["pair"].b[0], [3.0, 3.0])
    np.testing.assert_array_equal(out["pair"].b[1]["w"], np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"got str at fetches\['grads'\]\[1\]"):
        sess.run({"loss": loss, "grads": [gw, "gb"]}, {x: np.ones((3, 2))})


# the plan cache ----------------------------------------------------------------------


def test_the_plan_cache_is_bounded_by_plans_and_by_nodes():
    """Plans dropped from the cache are freed: at most `max_plans` stay alive, and no more than
    `max_plan_nodes` nodes' worth of them."""
    import gc
    import weakref

    with mg.Graph() as g:
        x = mg.placeholder((4,), name="x")
        h, chain = x, []
        for _ in range(300):
            h = ops.relu(h)
            chain.append(h)
    feed = {x: np.ones(4, "float32")}
    for max_plans, max_nodes, alive in [(5, 10**6, 5), (100, 1000, 3)]:
        sess = mg.Session(g, max_plans=max_plans, max_plan_nodes=max_nodes)
        refs = []
        for node in chain[-30:]:  # plans of 272..301 nodes each
            np.testing.assert_array_equal(sess.run(node, feed), feed[x])
            refs.append(weakref.ref(sess.plan([node], [x])))
        gc.collect()
        assert sum(r() is not None for r in refs) == alive
        assert all(r() is not None for r in refs[-alive:])  # the most recently used stay
        assert sess.plan([chain[-1]], [x]) is refs[-1]()  # found again, not rebuilt


def test_no_op_returns_a_view_of_an_input_without_declaring_it():
    """Every op's `view` declaration is what aliasing rules (fetch copies, in-place passes) rely
    on: run every kind the library registers, optimised and not, and compare memory."""
    from every_op import build_everything

    g, inputs, outputs, steps = build_everything()
    rng = np.random.default_rng(1)
    feed = {inputs["x"]: rng.normal(size=(2, 3, 6, 6)), inputs["y"]: np.array([1, 7]), inputs["training"]: True}
    undeclared = set()
    seen = set()

    def audit(node, value, args):
        seen.add(node.kind)
        if not node.op.view and hasattr(value, "shape"):
            for a in args:
                if hasattr(a, "shape") and np.shares_memory(np.asarray(value), np.asarray(a)):
                    undeclared.add(node.kind)

    for optimize in (False, True):
        mg.Session(g, optimize=optimize).run([outputs, steps], feed, trace=audit)
    assert undeclared == set()
    assert {"conv2d", "max_pool_grad", "slice", "reshape", "apply_adam"} <= seen
