"""Which GPU path is taken and how kernel selection follows it, with the probe stood in for
(no GPU needed): cuDNN kernels win on the CuPy backend only when cuDNN loads, the fused
kernels unless turned off, the generic ones otherwise; the path is said once."""
import logging
import warnings

import pytest

from minigraph import dispatch
from minigraph.cuda import status
from minigraph.ops.conv import Conv2D, Conv2DBackpropFilter, Conv2DBackpropInput
from minigraph.ops.nn import SoftmaxCrossEntropy
from minigraph.ops.pool import MaxPool

CONV = Conv2D((1, 1), ((1, 1), (1, 1)), (1, 1), "relu")
SHAPES = ((2, 3, 8, 8), (4, 3, 3, 3))


@pytest.fixture(autouse=True)
def fresh_probe(monkeypatch):
    for name in ("MINIGRAPH_CUDNN", "MINIGRAPH_FUSED"):
        monkeypatch.delenv(name, raising=False)
    yield
    status.reset()


def chosen(op, shapes):
    k = dispatch.select(op, shapes, "cupy")
    return None if k is None else k.algorithm


def test_with_cudnn_the_convolutions_and_fused_kernels_are_chosen(caplog):
    status.reset(lambda: (91900, None))
    with caplog.at_level(logging.INFO, logger="minigraph.cuda"), warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning on the cuDNN path
        assert chosen(CONV, SHAPES) == "cudnn"
        assert chosen(Conv2DBackpropInput((8, 8), (1, 1), ((1, 1), (1, 1))), ((2, 4, 8, 8), (4, 3, 3, 3))) == "cudnn"
        assert chosen(Conv2DBackpropFilter((3, 3), (1, 1), ((1, 1), (1, 1))), ((2, 3, 8, 8), (2, 4, 8, 8))) == "cudnn"
        assert chosen(MaxPool((3, 3), (2, 2), ((0, 1), (0, 1))), ((2, 3, 8, 8),)) == "fused"
        assert chosen(SoftmaxCrossEntropy(), ((4, 10), (4,))) == "fused"
    lines = [r.getMessage() for r in caplog.records if r.name == "minigraph.cuda"]
    assert lines == ["minigraph GPU path: cuDNN 91900 convolutions + fused CuPy kernels"]
    assert status.gpu_path() == status.GpuPath("cudnn", 91900, None)


def test_without_cudnn_it_warns_once_why_and_convolutions_stay_gemms():
    status.reset(lambda: (None, "the nvidia-cudnn-frontend package is not installed"))
    with pytest.warns(RuntimeWarning, match=r"fused CuPy kernels, convolutions as im2col \+ cuBLAS "
                                            r"\(no cuDNN: the nvidia-cudnn-frontend package is not installed\)"):
        assert chosen(CONV, SHAPES) == "gemm"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once only
        assert chosen(CONV, SHAPES) == "gemm"
        assert chosen(MaxPool((3, 3), (2, 2), ((0, 1), (0, 1))), ((2, 3, 8, 8),)) == "fused"


def test_switches_turn_cudnn_and_the_fused_kernels_off(monkeypatch, caplog):
    asked = []
    status.reset(lambda: asked.append(1) or (91900, None))
    monkeypatch.setenv("MINIGRAPH_CUDNN", "0")
    monkeypatch.setenv("MINIGRAPH_FUSED", "off")
    with caplog.at_level(logging.INFO, logger="minigraph.cuda"):
        assert chosen(CONV, SHAPES) == "gemm"
        assert chosen(MaxPool((3, 3), (2, 2), ((0, 1), (0, 1))), ((2, 3, 8, 8),)) == "chunked"
        assert chosen(SoftmaxCrossEntropy(), ((4, 10), (4,))) is None  # the op's own forward
    assert asked == []  # cuDNN is not even probed
    assert status.gpu_path().name == "generic"
    assert "generic CuPy kernels (no cuDNN: turned off by MINIGRAPH_CUDNN=0)" in caplog.text


def test_forcing_an_algorithm_still_wins_over_the_path():
    status.reset(lambda: (91900, None))
    assert dispatch.select(CONV, SHAPES, "cupy", {"conv2d": "gemm"}).algorithm == "gemm"
    assert dispatch.select(CONV, SHAPES, "cupy", {"conv2d": "generic"}) is None


def test_numpy_sessions_never_probe_the_gpu():
    asked = []
    status.reset(lambda: asked.append(1) or (None, "no GPU"))
    assert dispatch.select(CONV, SHAPES, "numpy").algorithm == "gemm"
    assert dispatch.select(MaxPool((3, 3), (2, 2), ((0, 1), (0, 1))), ((2, 3, 8, 8),), "numpy").algorithm == "chunked"
    assert asked == []


def test_the_real_probe_names_what_is_missing_here():
    version, reason = status.probe_cudnn()
    try:
        import cupy  # noqa: F401
    except ImportError:
        assert (version, reason) == (None, "CuPy is not installed")
    else:
        assert (version is None) != (reason is None)
