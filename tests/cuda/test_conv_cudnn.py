"""The cuDNN convolution kernels' glue, on the CPU: problems and their keys, padding split,
layouts, cropping, fallbacks and the plan cache. cuDNN itself is stood in for by conftest's
`numpy_cudnn` (each ConvProblem with plain per-tap NumPy, every buffer's layout checked); results are compared with the
generic kernels (each op's `forward`). The real cuDNN runs in tests/test_backend_consistency.py
and tests/cuda/test_gpu.py on a GPU."""
import numpy as np
import pytest

from minigraph.cuda import conv_cudnn, conv_desc
from minigraph.ops.conv import Conv2D, Conv2DBackpropFilter, Conv2DBackpropInput
from minigraph.ops.conv1x1 import Conv1x1, Conv1x1BackpropFilter
from minigraph.ops.kernels import resolve_padding
from minigraph.runtime import CpuRuntime

RT = CpuRuntime(threads=1)


@pytest.fixture(params=["nhwc", "nchw"])
def layout(request, monkeypatch):
    monkeypatch.setenv("MINIGRAPH_CUDNN_LAYOUT", request.param)
    return request.param


def channels_last(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


GEOMETRIES = [  # (input hw, kernel hw, stride, padding, dilation)
    ((9, 8), (3, 3), (2, 2), "SAME", (1, 1)),   # odd total padding: (0, 1) or (1, 1) rows, split
    ((11, 11), (7, 7), (2, 2), "SAME", (1, 1)),  # GoogLeNet's first layer in small: (2, 3)
    ((9, 8), (3, 2), (1, 1), ((1, 2), (0, 1)), (2, 1)),
    ((10, 7), (3, 3), (2, 3), "VALID", (1, 1)),  # rows the stride skips get no gradient
    ((9, 8), (3, 3), (1, 2), ((2, 0), (1, 0)), (1, 1)),  # more before than after: the crop moves
]


def conv_op(cls, hw, k, stride, padding, dilation, **extra):
    return cls(stride=stride, padding=resolve_padding(padding, hw, k, stride, dilation), dilation=dilation, **extra)


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-4), ("float64", 1e-11)])
@pytest.mark.parametrize("hw,k,stride,padding,dilation", GEOMETRIES)
def test_conv2d_and_its_gradients_through_the_cudnn_glue_match_the_generic_kernels(
        numpy_cudnn, layout, dtype, tol, hw, k, stride, padding, dilation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3) + hw).astype(dtype)
    w = rng.standard_normal((4, 3) + k).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    runner = numpy_cudnn
    for act in (None, "relu"):
        op = conv_op(Conv2D, hw, k, stride, padding, dilation, activation=act)
        ref = op.forward(np, x, w, b)
        for xin in (x, channels_last(x)):
            got = conv_cudnn.conv2d(RT, op, xin, w, b)
            np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
    g = rng.standard_normal(ref.shape).astype(dtype)
    bpi = conv_op(Conv2DBackpropInput, hw, k, stride, padding, dilation, input_hw=hw)
    bpf = conv_op(Conv2DBackpropFilter, hw, k, stride, padding, dilation, filter_hw=k)
    for gin in (g, channels_last(g)):
        dx = conv_cudnn.conv2d_backprop_input(RT, bpi, gin, w)
        assert dx.shape == x.shape
        np.testing.assert_allclose(dx, bpi.forward(np, g, w), rtol=tol, atol=tol)
        dw = conv_cudnn.conv2d_backprop_filter(RT, bpf, x, gin)
        np.testing.assert_allclose(dw, bpf.forward(np, x, g), rtol=tol, atol=tol)
    kinds = {p.kind for p in runner.problems}
    assert kinds == {"fprop", "dgrad", "wgrad"} and all(p.layout == layout for p in runner.problems)
    assert all(p.padding[0] >= 0 and p.padding[1] >= 0 for p in runner.problems)


def test_conv1x1_and_its_filter_gradient_through_the_cudnn_glue(numpy_cudnn, layout):
    rng = np.random.default_rng(1)
    x = channels_last(rng.standard_normal((2, 5, 3, 4)).astype("float32"))
    w = rng.standard_normal((6, 5)).astype("float32")
    b = rng.standard_normal(6).astype("float32")
    op = Conv1x1(activation="relu")
    np.testing.assert_allclose(conv_cudnn.conv1x1(RT, op, x, w, b), op.forward(np, x, w, b), rtol=1e-5, atol=1e-5)
    wt = w.T  # the input gradient's weights: a transposed view
    g = rng.standard_normal((2, 6, 3, 4)).astype("float32")
    np.testing.assert_allclose(conv_cudnn.conv1x1(RT, Conv1x1(), g, wt), Conv1x1().forward(np, g, wt),
                               rtol=1e-5, atol=1e-5)
    gw = conv_cudnn.conv1x1_backprop_filter(RT, Conv1x1BackpropFilter(), x, g)
    assert gw.shape == (6, 5)
    np.testing.assert_allclose(gw, Conv1x1BackpropFilter().forward(np, x, g), rtol=1e-4, atol=1e-4)


def test_a_declined_problem_runs_on_the_generic_kernel(numpy_cudnn):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    op = conv_op(Conv2D, (5, 5), (3, 3), (1, 1), "SAME", (1, 1), activation="relu")
    runner = numpy_cudnn
    runner.declines = True
    np.testing.assert_allclose(conv_cudnn.conv2d(RT, op, x, w), op.forward(np, x, w), rtol=1e-12)
    gw = conv_cudnn.conv1x1_backprop_filter(RT, Conv1x1BackpropFilter(), x, x[:, :1])
    assert len(runner.problems) == 2 and gw.shape == (1, 2)
    np.testing.assert_allclose(gw, Conv1x1BackpropFilter().forward(np, x, x[:, :1]), rtol=1e-12)


def test_split_padding_keeps_the_total_and_leaves_a_symmetric_part():
    for pads in [((0, 1), (2, 3)), ((3, 3), (0, 0)), ((2, 0), (1, 4))]:
        sym, extra = conv_desc.split_padding(pads)
        for (a, b), s, (ea, eb) in zip(pads, sym, extra):
            assert (s + ea, s + eb) == (a, b) and min(ea, eb) == 0


def test_problems_are_keys_that_tell_every_difference_apart():
    attrs = dict(stride=(2, 2), padding=((0, 1), (0, 1)), dilation=(1, 1))
    p, extra = conv_desc.problem("fprop", [(2, 3, 9, 9), (4, 3, 3, 3)], attrs, "float32")
    assert extra == ((0, 1), (0, 1)) and p.x == (2, 3, 10, 10) and p.y == (2, 4, 4, 4) and p.padding == (0, 0)
    same, _ = conv_desc.problem("fprop", [(2, 3, 9, 9), (4, 3, 3, 3)], dict(attrs), "float32")
    assert same == p and hash(same) == hash(p)
    others = [conv_desc.problem("fprop", [(2, 3, 9, 9), (4, 3, 3, 3)], attrs, "float64")[0],
              conv_desc.problem("fprop", [(2, 3, 9, 9), (4, 3, 3, 3)], attrs, "float32", layout="nchw")[0],
              conv_desc.problem("fprop", [(2, 3, 9, 9), (4, 3, 3, 3)], attrs, "float32", bias=True)[0],
              conv_desc.problem("fprop", [(1, 3, 9, 9), (4, 3, 3, 3)], attrs, "float32")[0]]
    assert len({p, *others}) == 5
    dgrad, _ = conv_desc.problem("dgrad", [(2, 4, 4, 4), (4, 3, 3, 3)], dict(attrs, input_hw=(9, 9)), "float32")
    wgrad, _ = conv_desc.problem("wgrad", [(2, 3, 9, 9), (2, 4, 4, 4)], dict(attrs, filter_hw=(3, 3)), "float32")
    assert (dgrad.x, dgrad.w, dgrad.y) == (wgrad.x, wgrad.w, wgrad.y) == (p.x, p.w, p.y)
    assert p.strides()["x"] == (300, 1, 30, 3) and others[1].strides()["x"] == (300, 100, 10, 1)


def test_inconsistent_problems_are_refused_with_the_shapes():
    with pytest.raises(ValueError, match=r"inconsistent convolution: x \(1, 3, 8, 8\), w \(4, 3, 3, 3\), y \(1, 4, 7, 7\)"):
        conv_desc.ConvProblem("fprop", (1, 3, 8, 8), (4, 3, 3, 3), (1, 4, 7, 7), (1, 1), (1, 1), (1, 1), "float32")
    with pytest.raises(ValueError, match="epilogue applies to 'fprop' only"):
        conv_desc.ConvProblem("dgrad", (1, 3, 8, 8), (4, 3, 3, 3), (1, 4, 8, 8), (1, 1), (1, 1), (1, 1), "float32",
                              relu=True)
    with pytest.raises(ValueError, match="layout must be one of nhwc, nchw, got 'chwn'"):
        conv_desc.layout_strides((1, 2, 3, 4), "chwn")
    with pytest.raises(ValueError, match="float32 or float64, got 'float16'"):
        conv_desc.ConvProblem("fprop", (1, 3, 8, 8), (4, 3, 3, 3), (1, 4, 8, 8), (1, 1), (1, 1), (1, 1), "float16")


def test_plan_cache_builds_each_problem_once_keeps_declines_and_drops_the_oldest():
    built = []

    def build(p):
        built.append(p)
        return None if p == "declined" else f"plan {p}"

    cache = conv_cudnn.PlanCache(build, max_plans=2)
    assert cache.get("a") == "plan a" and cache.get("a") == "plan a"
    assert cache.get("declined") is None and cache.get("declined") is None
    assert built == ["a", "declined"] and (cache.built, cache.declined) == (1, 1)
    cache.get("a")          # now "declined" is the oldest
    cache.get("b")
    assert len(cache) == 2
    cache.get("declined")   # dropped, so built again
    assert built == ["a", "declined", "b", "declined"]


def test_settings_read_the_switches(monkeypatch):
    monkeypatch.setenv("MINIGRAPH_CUDNN_LAYOUT", "NCHW")
    monkeypatch.setenv("MINIGRAPH_CUDNN_AUTOTUNE", "1")
    monkeypatch.delenv("MINIGRAPH_TF32", raising=False)
    assert conv_cudnn.settings() == dict(layout="nchw", autotune=True, tf32=False)
    monkeypatch.setenv("MINIGRAPH_CUDNN_LAYOUT", "hwcn")
    with pytest.raises(ValueError, match="MINIGRAPH_CUDNN_LAYOUT must be one of nhwc, nchw, got 'hwcn'"):
        conv_cudnn.settings()


def test_describe_graph_writes_the_frontend_graph():
    """With the nvidia-cudnn-frontend package (the `cuda` extra), the graph description is built
    as far as it goes without a GPU: nodes, their attributes and the output's dims and strides."""
    cudnn = pytest.importorskip("cudnn", reason="nvidia-cudnn-frontend is not installed (pip install 'minigraph[cuda]')")
    attrs = dict(stride=(2, 2), padding=((1, 1), (1, 1)), dilation=(1, 1))
    p, _ = conv_desc.problem("fprop", [(2, 3, 9, 9), (4, 3, 3, 3)], attrs, "float32", bias=True, relu=True)
    graph, t = conv_desc.describe_graph(cudnn, p)
    names = [n.name for n in graph.nodes]
    assert names == ["conv", "bias", "relu"]
    conv = graph.nodes[0]
    assert conv.params["pre_padding"] == [1, 1] and conv.params["stride"] == [2, 2]
    assert list(t["y"].dim) == [2, 4, 5, 5] and list(t["y"].stride) == [100, 1, 20, 4]
    assert list(t["x"].stride) == [243, 1, 27, 3] and list(t["b"].dim) == [1, 4, 1, 1]
    for kind, shapes, extra, out in [("dgrad", [(2, 4, 5, 5), (4, 3, 3, 3)], dict(input_hw=(9, 9)), "x"),
                                     ("wgrad", [(2, 3, 9, 9), (2, 4, 5, 5)], dict(filter_hw=(3, 3)), "w")]:
        q, _ = conv_desc.problem(kind, shapes, dict(attrs, **extra), "float64", layout="nchw")
        graph, t = conv_desc.describe_graph(cudnn, q)
        assert [n.name for n in graph.nodes] == [kind]
        assert tuple(t[out].dim) == getattr(q, out) and tuple(t[out].stride) == q.strides()[out]
