"""Runtimes: how work is split over threads (CpuRuntime) or handed whole to a device
(DeviceRuntime), BLAS held at one thread during runs, and the same results either way."""
import threading

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops
from minigraph.ops import conv_kernels, kernels, pool_kernels
from minigraph.runtime import BLAS_PIN, CpuRuntime, DeviceRuntime, chunks


class DeviceLike:
    """NumPy under another name, so kernels take the path they take for CuPy."""

    def __getattr__(self, name):
        return getattr(np, name)


DEV = DeviceRuntime(DeviceLike())


def test_chunks_cover_the_range_once():
    assert chunks(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunks(3, 0) == [(0, 1), (1, 2), (2, 3)]
    assert chunks(0, 4) == []


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n,per_chunk,flops", [(1, 1, 0), (7, 2, 0), (8, 100, 1e9), (0, 3, 0), (9, 9, 0)])
def test_run_chunks_covers_items_once_in_order(threads, n, per_chunk, flops):
    seen, lock, calls_from = [], threading.Lock(), set()

    def fn(a, b):
        with lock:
            seen.extend(range(a, b))
            calls_from.add(threading.current_thread().name)
        return (a, b)

    rt = CpuRuntime(threads=threads)
    out = rt.run_chunks(fn, n, per_chunk, flops)
    assert sorted(seen) == list(range(n)) and len(seen) == n
    assert out == sorted(out) and sum(b - a for a, b in out) == n
    assert out == rt.split(n, per_chunk, flops)
    if threads == 1:
        assert out == chunks(n, per_chunk)  # one thread: cache-sized chunks, in turn
        assert calls_from == {threading.current_thread().name} or n == 0
    rt.close()


def test_split_uses_every_thread_for_large_work_and_is_a_multiple_of_the_pool():
    rt = CpuRuntime(threads=3)
    assert len(rt.split(12, 100, flops=1e12)) == 3  # fits one chunk, but large: one per thread
    assert len(rt.split(12, 100, flops=0)) == 1  # small: the calling thread
    assert len(rt.split(12, 2, flops=0)) % 3 == 0


def test_nested_calls_from_pool_threads_run_serially():
    rt = CpuRuntime(threads=2)
    names = []

    def inner(a, b):
        names.append(threading.current_thread().name)

    def outer(a, b):
        rt.run_chunks(inner, 4, 1)

    rt.run_chunks(outer, 4, 1)
    assert len(names) == 16  # 4 outer chunks x 4 nested ones, each on the pool thread that asked
    rt.close()


@pytest.mark.parametrize("setting, expect", [("raise", FloatingPointError), ("ignore", None)])
def test_the_callers_numpy_error_state_holds_in_pool_threads(setting, expect):
    """np.errstate is per thread: chunks run on the pool follow the caller's, as when they run
    on the calling thread (a chunk on a worker used NumPy's default, a warning)."""
    rt = CpuRuntime(threads=2)
    big = np.full(4, 3e38, np.float32)
    threads = set()

    def overflow(a, b):
        threads.add(threading.current_thread().name)
        return big[a:b] * np.float32(10)

    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning from any thread fails the "ignore" case
        with np.errstate(over=setting):
            if expect is None:
                assert all(np.isinf(c).all() for c in rt.run_chunks(overflow, 4, 1))
            else:
                with pytest.raises(expect):
                    rt.run_chunks(overflow, 4, 1)
    assert len(threads - {threading.current_thread().name}) >= 1  # the pool did run chunks
    rt.close()


def test_a_numpy_error_callback_of_the_caller_is_called_from_pool_threads():
    rt = CpuRuntime(threads=2)
    seen = []
    big = np.full(4, 3e38, np.float32)
    with np.errstate(over="call", call=lambda kind, flag: seen.append(kind)):
        rt.run_chunks(lambda a, b: big[a:b] * np.float32(10), 4, 1)
    assert seen and set(seen) == {"overflow"}  # once a NameError: "no function found" in the workers
    rt.close()


def test_threads_must_be_positive():
    with pytest.raises(ValueError, match="threads must be a positive int"):
        CpuRuntime(threads=0)


def test_device_runtime_is_one_call_over_the_batch():
    calls = []
    assert DEV.run_chunks(lambda a, b: calls.append((a, b)) or (a, b), 9, 2) == [(0, 9)]
    assert calls == [(0, 9)] and DEV.run_chunks(lambda a, b: 1, 0, 2) == []


def blas_threads():
    n = BLAS_PIN.threads()
    if n is None:
        pytest.skip("threadpoolctl sees no BLAS library")
    return n


def test_blas_is_held_at_one_thread_inside_runs_and_kernel_calls_from_any_thread():
    before = blas_threads()
    rt = CpuRuntime(threads=2)
    seen = []
    with rt.run_scope():
        assert blas_threads() == 1
        rt.run_chunks(lambda a, b: seen.append(blas_threads()), 4, 1)
        t = threading.Thread(target=lambda: seen.append(blas_threads()))
        t.start()
        t.join()
    assert seen == [1] * 5 and blas_threads() == before
    rt.close()


def test_overlapping_scopes_from_two_threads_keep_the_pin_until_the_last_leaves():
    before = blas_threads()
    rt = CpuRuntime(threads=1)
    inside, release = threading.Event(), threading.Event()

    def other():
        with rt.run_scope():
            inside.set()
            release.wait(5)

    t = threading.Thread(target=other)
    t.start()
    inside.wait(5)
    with rt.run_scope():
        pass
    assert blas_threads() == 1  # the other thread is still inside
    release.set()
    t.join()
    assert blas_threads() == before


def test_session_run_restores_blas_threads():
    before = blas_threads()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6, 6)).astype("float32")
    w = rng.standard_normal((4, 3, 3, 3)).astype("float32")
    with mg.Graph() as g:
        xp = mg.placeholder(x.shape)
        y = ops.conv2d(xp, mg.constant(w), padding=1)
    out = mg.Session(g, backend="numpy").run(y, {xp: x})
    ref = conv_kernels.conv2d_forward(CpuRuntime(threads=1), x, w, (1, 1), ((1, 1), (1, 1)), (1, 1))
    assert np.array_equal(out, ref) and blas_threads() == before


def test_device_path_matches_numpy_path_on_conv_kernels():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5, 9, 8)).astype("float32")
    w = rng.standard_normal((4, 5, 3, 3)).astype("float32")
    b = rng.standard_normal(4).astype("float32")
    pads = ((1, 1), (1, 1))
    cpu = CpuRuntime(threads=2, chunk_bytes=1)
    ref = conv_kernels.conv2d_forward(cpu, x, w, (1, 1), pads, (1, 1), b=b, relu=True)
    got = conv_kernels.conv2d_forward(DEV, x, w, (1, 1), pads, (1, 1), b=b, relu=True)
    assert np.allclose(ref, got, atol=1e-5)
    g = rng.standard_normal(ref.shape).astype("float32")
    for fn, args in [(conv_kernels.conv2d_backprop_input_scatter, (g, w, (9, 8), (1, 1), pads, (1, 1))),
                     (conv_kernels.conv2d_backprop_input_full, (g, w, (9, 8), (1, 1), pads, (1, 1))),
                     (conv_kernels.conv2d_backprop_filter, (x, g, (3, 3), (1, 1), pads, (1, 1)))]:
        assert np.allclose(fn(cpu, *args), fn(DEV, *args), atol=1e-4)
    cpu.close()


@pytest.mark.parametrize("split", [False, True])
def test_device_path_matches_numpy_path_on_relu_grad(split):
    rng = np.random.default_rng(1)
    g = rng.standard_normal((5, 6, 7, 3)).astype("float32").transpose(0, 3, 1, 2)
    y = np.maximum(rng.standard_normal(g.shape), 0).astype("float32")
    ref = kernels.relu_grad(CpuRuntime(threads=2), g, y, split=split)
    got = kernels.relu_grad(DEV, g, y, split=split)
    assert np.array_equal(ref, got) and np.array_equal(ref, g * (y > 0))


@pytest.mark.parametrize("stride, pads", [((2, 2), ((1, 1), (0, 1))), ((1, 1), ((1, 1), (1, 1)))])
def test_device_path_matches_numpy_path_on_max_pool_winners(stride, pads):
    cpu = CpuRuntime(threads=2, chunk_bytes=1)  # one image per chunk, on the thread pool
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 3, size=(5, 6, 9, 8)).astype("float32")  # ties: the first maximum must win
    out_hw = kernels.check_fits((9, 8), (3, 3), stride, (1, 1), pads)
    y = pool_kernels.max_pool_forward(cpu, x, (3, 3), stride, pads, out_hw)
    idx = pool_kernels.max_pool_argmax(cpu, x, y, (3, 3), stride, pads)
    np.testing.assert_array_equal(idx, pool_kernels.max_pool_argmax(DEV, x, y, (3, 3), stride, pads))
    g = rng.standard_normal(y.shape).astype("float32")
    gg = rng.standard_normal(x.shape).astype("float32")
    np.testing.assert_array_equal(pool_kernels.max_pool_scatter(cpu, idx, g, (9, 8), (3, 3), stride, pads),
                                  pool_kernels.max_pool_scatter(DEV, idx, g, (9, 8), (3, 3), stride, pads))
    np.testing.assert_array_equal(pool_kernels.max_pool_gather_at(cpu, idx, gg, (3, 3), stride, pads),
                                  pool_kernels.max_pool_gather_at(DEV, idx, gg, (3, 3), stride, pads))
    cpu.close()


def test_session_runtime_is_configured_explicitly():
    rng = np.random.default_rng(4)
    x0 = rng.standard_normal((4, 3, 8, 8)).astype("float32")
    with mg.Graph() as g:
        x = mg.placeholder((None, 3, 8, 8))
        w = mg.variable(rng.standard_normal((5, 3, 3, 3)).astype("float32"))
        y = ops.max_pool(ops.relu(ops.conv2d(x, w, padding=1)), 2)
    one = mg.Session(g, runtime=CpuRuntime(threads=1)).run(y, {x: x0})
    many = mg.Session(g, runtime=CpuRuntime(threads=2, chunk_bytes=1)).run(y, {x: x0})
    np.testing.assert_array_equal(one, many)  # chunks of images: the same arithmetic per image
    with pytest.raises(ValueError, match="another array namespace"):
        mg.Session(g, runtime=DEV)
