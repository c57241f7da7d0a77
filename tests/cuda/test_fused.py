"""The fused GPU kernels checked on the CPU: their C source (minigraph.cuda.fused_src) is built
with the C compiler and launched through minigraph.cuda.fused's own kernel functions on NumPy
arrays, then compared with the generic kernels (each op's `forward`) and plain loops. The CUDA
build of the same source runs in the CuPy tests on a GPU."""
import numpy as np
import pytest

from minigraph.cuda import fused, fused_src
from minigraph.errors import FeedError
from minigraph.ops.concat import Concat
from minigraph.ops.kernels import resolve_padding
from minigraph.ops.nn import ChannelWindowSum, LocalResponseNorm, Softmax, SoftmaxCrossEntropy
from minigraph.ops.pool import AvgPool, AvgPoolGrad, MaxPool, MaxPoolArgmax, MaxPoolGrad, MaxPoolGradGrad
from minigraph.runtime import CpuRuntime

RT = CpuRuntime(threads=1)
CONCAT_SIZES = range(1, 6)


def layouts(a):
    """The same values NCHW-contiguous and as a channels-last NCHW view."""
    return [np.ascontiguousarray(a), np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)]


def pool_op(cls, x_shape, size, stride, padding, **extra):
    pads = resolve_padding(padding, x_shape[2:], size, stride)
    return cls(size=size, stride=stride, padding=pads, **extra)


GEOMETRIES = [((3, 3), (2, 2), "SAME"), ((3, 3), (1, 1), "SAME"), ((2, 3), (2, 1), "VALID"),
              ((3, 2), (1, 2), ((1, 0), (0, 1)))]


def ties(shape, dtype, seed=0):
    """Small integers: many windows hold several equal maxima."""
    return np.random.default_rng(seed).integers(-3, 4, size=shape).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("size,stride,padding", GEOMETRIES)
def test_max_pool_family_matches_the_generic_kernels(cpu_kernels, dtype, size, stride, padding):
    shape = (2, 5, 9, 7)
    x0 = ties(shape, dtype)
    fwd = pool_op(MaxPool, shape, size, stride, padding)
    y_ref = fwd.forward(np, x0)
    arg = pool_op(MaxPoolArgmax, shape, size, stride, padding)
    idx_ref = arg.forward(np, x0, y_ref)
    g = np.random.default_rng(1).standard_normal(y_ref.shape).astype(dtype)
    grad = pool_op(MaxPoolGrad, shape, size, stride, padding, input_hw=shape[2:])
    dx_ref = grad.forward(np, idx_ref, g)
    gg = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    gg_op = pool_op(MaxPoolGradGrad, shape, size, stride, padding)
    out_ref = gg_op.forward(np, idx_ref, gg)
    for x in layouts(x0):
        y = fused.max_pool(RT, fwd, x)
        assert y.shape == y_ref.shape and np.array_equal(y, y_ref)
        idx = fused.max_pool_argmax(RT, arg, x, y)
        assert idx.dtype == idx_ref.dtype == np.uint8 and np.array_equal(idx, idx_ref)
        for gl in layouts(g):
            np.testing.assert_allclose(fused.max_pool_grad(RT, grad, idx, gl), dx_ref, rtol=1e-6, atol=1e-6)
        for ggl in layouts(gg):
            assert np.array_equal(fused.max_pool_grad_grad(RT, gg_op, idx, ggl), out_ref)


def test_max_pool_winners_are_int32_beyond_256_cells_and_padding_never_wins(cpu_kernels):
    x = -np.abs(np.random.default_rng(3).standard_normal((1, 2, 20, 20))) - 1.0  # all below the zero padding
    op = pool_op(MaxPool, x.shape, (17, 17), (3, 3), "SAME")
    y = fused.max_pool(RT, op, x)
    idx = fused.max_pool_argmax(RT, pool_op(MaxPoolArgmax, x.shape, (17, 17), (3, 3), "SAME"), x, y)
    assert idx.dtype == np.int32
    assert np.array_equal(y, op.forward(np, x)) and (y < -1.0).all()
    # a plain loop: the first maximum in row-major order among the real cells
    (pt, _), (pl, _) = op.padding
    for n, c, i, j in np.ndindex(*y.shape):
        h0, w0 = i * 3 - pt, j * 3 - pl
        best = None
        for a in range(17):
            for b in range(17):
                h, w = h0 + a, w0 + b
                if 0 <= h < 20 and 0 <= w < 20 and (best is None or x[n, c, h, w] > best[0]):
                    best = (x[n, c, h, w], a * 17 + b)
        assert idx[n, c, i, j] == best[1] and y[n, c, i, j] == best[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("include", [False, True])
@pytest.mark.parametrize("size,stride,padding", GEOMETRIES)
def test_avg_pool_and_its_gradient_match_the_generic_kernels(cpu_kernels, dtype, include, size, stride, padding):
    shape = (2, 3, 8, 7)
    x0 = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    fwd = pool_op(AvgPool, shape, size, stride, padding, count_include_pad=include)
    y_ref = fwd.forward(np, x0)
    g0 = np.random.default_rng(5).standard_normal(y_ref.shape).astype(dtype)
    bwd = pool_op(AvgPoolGrad, shape, size, stride, padding, count_include_pad=include, input_hw=shape[2:])
    dx_ref = bwd.forward(np, g0)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for x in layouts(x0):
        np.testing.assert_allclose(fused.avg_pool(RT, fwd, x), y_ref, rtol=tol, atol=tol)
    for g in layouts(g0):
        np.testing.assert_allclose(fused.avg_pool_grad(RT, bwd, g), dx_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lrn_and_channel_window_sum_match_the_generic_kernels(cpu_kernels, dtype):
    x0 = np.random.default_rng(6).standard_normal((2, 7, 4, 3)).astype(dtype)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for size in (1, 4, 5, 9):
        op = LocalResponseNorm(size, 0.3, 0.75, 2.0)
        for x in layouts(x0):
            np.testing.assert_allclose(fused.local_response_norm(RT, op, x), op.forward(np, x0), rtol=tol, atol=tol)
    for before, after in [(0, 0), (2, 1), (1, 3), (9, 9)]:
        op = ChannelWindowSum(before, after)
        for x in layouts(x0):
            np.testing.assert_allclose(fused.channel_window_sum(RT, op, x), op.forward(np, x0), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_and_cross_entropy_rows_match_the_generic_kernels(cpu_kernels, dtype):
    rng = np.random.default_rng(7)
    logits = (rng.standard_normal((6, 11)) * 30).astype(dtype)  # large values: the max shift matters
    labels = rng.integers(0, 11, size=6)
    tol = 1e-5 if dtype == "float32" else 1e-12
    op = SoftmaxCrossEntropy()
    got = fused.softmax_cross_entropy(RT, op, logits, labels)
    assert got.shape == () and got.dtype == logits.dtype
    np.testing.assert_allclose(got, op.forward(np, logits, labels), rtol=tol)
    np.testing.assert_allclose(fused.softmax(RT, Softmax(1), logits.T.copy().T), Softmax(1).forward(np, logits),
                               rtol=tol, atol=tol)
    with pytest.raises(FeedError, match=r"labels must lie in \[0, 11\), got values from 0 to 11"):
        fused.softmax_cross_entropy(RT, op, logits, np.array([0, 1, 2, 3, 4, 11]))
    with pytest.raises(FeedError, match="the batch is empty"):
        fused.softmax_cross_entropy(RT, op, logits[:0], labels[:0])


@pytest.mark.parametrize("k", CONCAT_SIZES)
def test_channel_concat_matches_numpy_for_mixed_memory_orders(cpu_kernels, k):
    rng = np.random.default_rng(8)
    xs = [rng.standard_normal((2, c, 3, 4)).astype("float32") for c in (3, 1, 4, 2, 5)[:k]]
    xs = [layouts(x)[i % 2] for i, x in enumerate(xs)]
    y = fused.concat(RT, Concat(1), *xs)
    assert np.array_equal(y, np.concatenate(xs, axis=1))
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous  # channels-last memory, like the generic kernel


def test_cuda_source_declares_one_global_function_per_kernel():
    for spec in list(fused_src.KERNELS.values()) + [fused_src.concat_spec(4)]:
        src = fused_src.cuda_source(spec, "float32", "uint8")
        assert f'extern "C" __global__ void {spec.name}(' in src
        assert "typedef float T;" in src and "typedef unsigned char I;" in src
        assert src.count("__global__") == 1


def test_cuda_source_compiles_with_nvrtc_for_hopper():
    """NVRTC compiles without a GPU: every kernel, both element types and both index types, to
    PTX for compute_90, with an empty log (no warnings). Needs NVIDIA's Python bindings and the
    NVRTC library (e.g. cuda-bindings and nvidia-cuda-nvrtc, which CuPy installs bring)."""
    nvrtc = pytest.importorskip("cuda.bindings.nvrtc", reason="cuda-bindings (NVRTC) is not installed")
    try:
        nvrtc.nvrtcVersion()
    except Exception as exc:  # the bindings are there, the library is not
        pytest.skip(f"the NVRTC library does not load: {exc}")
    ok = nvrtc.nvrtcResult.NVRTC_SUCCESS
    for spec in list(fused_src.KERNELS.values()) + [fused_src.concat_spec(k) for k in CONCAT_SIZES]:
        for dtype in ("float32", "float64"):
            for index in ("uint8", "int32"):
                err, prog = nvrtc.nvrtcCreateProgram(fused_src.cuda_source(spec, dtype, index).encode(),
                                                     f"{spec.name}.cu".encode(), 0, [], [])
                assert err == ok
                opts = [b"--gpu-architecture=compute_90", b"--std=c++14"]
                (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
                _, size = nvrtc.nvrtcGetProgramLogSize(prog)
                log = b" " * size
                nvrtc.nvrtcGetProgramLog(prog, log)
                text = log.decode(errors="replace").strip("\x00 \n")
                assert err == ok and text == "", f"{spec.name} {dtype} {index}: {text}"


def test_reciprocal_count_is_filled_not_copied():
    from minigraph.ops.reductions import ReciprocalCount
    x = np.zeros((3, 4, 5), "float32")
    out = fused.reciprocal_count(RT, ReciprocalCount((0, 2)), x)
    assert out.shape == () and out.dtype == np.float32 and out == np.float32(1 / 15)
    assert out == ReciprocalCount((0, 2)).forward(np, x)
