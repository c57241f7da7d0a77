"""run_chunks: every item once, results in order; the device path (one call over the batch)
computes what the threaded NumPy path computes."""
import threading

import numpy as np
import pytest

from minigraph.ops import kernels, threads

from minigraph.ops import pool_kernels

from minigraph.ops import conv_kernels


class DeviceLike:
    """NumPy under another name, so kernels take the path they take for CuPy."""

    def __getattr__(self, name):
        return getattr(np, name)


def test_chunks_cover_the_range_once():
    assert threads.chunks(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert threads.chunks(3, 0) == [(0, 1), (1, 2), (2, 3)]
    assert threads.chunks(0, 4) == []


@pytest.mark.parametrize("n,per_chunk,flops", [(1, 1, 0), (7, 2, 0), (8, 100, 1e9), (0, 3, 0)])
def test_run_chunks_numpy_covers_items_in_order(n, per_chunk, flops):
    seen, lock = [], threading.Lock()

    def fn(a, b):
        with lock:
            seen.extend(range(a, b))
        return (a, b)

    out = threads.run_chunks(np, fn, n, per_chunk, flops)
    assert sorted(seen) == list(range(n))
    assert [r for r in out] == sorted(out) and sum(b - a for a, b in out) == n


def test_device_path_is_one_call_over_the_batch():
    calls = []
    assert threads.run_chunks(DeviceLike(), lambda a, b: calls.append((a, b)) or (a, b), 9, 2) == [(0, 9)]
    assert calls == [(0, 9)] and threads.run_chunks(DeviceLike(), lambda a, b: 1, 0, 2) == []


def test_device_path_matches_numpy_path_on_conv_kernels():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5, 9, 8)).astype("float32")
    w = rng.standard_normal((4, 5, 3, 3)).astype("float32")
    b = rng.standard_normal(4).astype("float32")
    pads = ((1, 1), (1, 1))
    dev = DeviceLike()
    ref = conv_kernels.conv2d_forward(np, x, w, (1, 1), pads, (1, 1), b=b, relu=True)
    got = conv_kernels.conv2d_forward(dev, x, w, (1, 1), pads, (1, 1), b=b, relu=True)
    assert np.allclose(ref, got, atol=1e-5)
    g = rng.standard_normal(ref.shape).astype("float32")
    for fn, args in [(conv_kernels.conv2d_backprop_input, (g, w, (9, 8), (1, 1), pads, (1, 1))),
                     (conv_kernels.conv2d_backprop_filter, (x, g, (3, 3), (1, 1), pads, (1, 1)))]:
        assert np.allclose(fn(np, *args), fn(dev, *args), atol=1e-4)


@pytest.mark.parametrize("threaded", [False, True])
def test_device_path_matches_numpy_path_on_relu_grad(threaded, monkeypatch):
    rng = np.random.default_rng(1)
    g = rng.standard_normal((5, 6, 7, 3)).astype("float32").transpose(0, 3, 1, 2)
    y = np.maximum(rng.standard_normal(g.shape), 0).astype("float32")
    if threaded:
        monkeypatch.setattr(kernels, "THREADED_ELEMENTS", 1)
    ref = kernels.relu_grad(np, g, y)
    got = kernels.relu_grad(DeviceLike(), g, y)
    assert np.array_equal(ref, got) and np.array_equal(ref, g * (y > 0))


def blas_threads():
    threads._get_pool()
    if not threads._blas:
        pytest.skip("threadpoolctl sees no BLAS library")
    return max(lib["num_threads"] for lib in threads._blas.info())


def test_blas_scope_pins_at_the_first_kernel_call_and_restores_at_the_end():
    before = blas_threads()
    seen = []
    with threads.blas_scope():
        assert blas_threads() == before  # no kernel call yet: plain matmuls keep BLAS's threads
        with threads.blas_scope():  # nested: free, and its exit keeps the pin
            threads.run_chunks(np, lambda a, b: seen.append(blas_threads()), 4, 4)
        assert blas_threads() == 1
        threads.run_chunks(np, lambda a, b: seen.append(blas_threads()), 4, 4)
    assert seen == [1, 1] and blas_threads() == before


def test_blas_scope_gives_blas_its_threads_for_one_item_too_big_for_a_chunk():
    before = blas_threads()
    if threads.workers() < 2:
        pytest.skip("one CPU: no pool")
    seen = []
    with threads.blas_scope():
        threads.run_chunks(np, lambda a, b: None, 4, 4)  # takes the pin
        threads.run_chunks(np, lambda a, b: seen.append(blas_threads()), 1, 0)
        assert blas_threads() == 1
    assert seen == [before] and blas_threads() == before


def test_session_run_on_numpy_restores_blas_threads():
    import minigraph as mg
    from minigraph import ops
    before = blas_threads()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6, 6)).astype("float32")
    w = rng.standard_normal((4, 3, 3, 3)).astype("float32")
    with mg.Graph() as g:
        xp = mg.placeholder(x.shape)
        y = ops.conv2d(xp, mg.constant(w), padding=1)
    out = mg.Session(g, backend="numpy").run(y, {xp: x})
    ref = conv_kernels.conv2d_forward(np, x, w, (1, 1), ((1, 1), (1, 1)), (1, 1))
    assert np.allclose(out, ref) and blas_threads() == before


@pytest.mark.parametrize("stride, pads", [((2, 2), ((1, 1), (0, 1))), ((1, 1), ((1, 1), (1, 1)))])
def test_device_path_matches_numpy_path_on_max_pool_winners(stride, pads, monkeypatch):
    monkeypatch.setattr(kernels, "CHUNK_BYTES", 1)  # NumPy: one image per chunk, on the thread pool
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 3, size=(5, 6, 9, 8)).astype("float32")  # ties: the first maximum must win
    out_hw = kernels.check_fits((9, 8), (3, 3), stride, (1, 1), pads)
    dev = DeviceLike()
    y = pool_kernels.max_pool_forward(np, x, (3, 3), stride, pads, out_hw)
    idx = pool_kernels.max_pool_argmax(np, x, y, (3, 3), stride, pads)
    np.testing.assert_array_equal(idx, pool_kernels.max_pool_argmax(dev, x, y, (3, 3), stride, pads))
    g = rng.standard_normal(y.shape).astype("float32")
    gg = rng.standard_normal(x.shape).astype("float32")
    np.testing.assert_array_equal(pool_kernels.max_pool_scatter(np, idx, g, (9, 8), (3, 3), stride, pads),
                                  pool_kernels.max_pool_scatter(dev, idx, g, (9, 8), (3, 3), stride, pads))
    np.testing.assert_array_equal(pool_kernels.max_pool_gather_at(np, idx, gg, (3, 3), stride, pads),
                                  pool_kernels.max_pool_gather_at(dev, idx, gg, (3, 3), stride, pads))
