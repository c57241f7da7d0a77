"""Stand-ins that let the GPU code of minigraph.cuda run on the CPU.

- `cpu_kernels`: the fused kernels' C source built with the C compiler and launched on NumPy
  arrays through minigraph.cuda.fused's own kernel functions (`fused.use_launcher`);
- `fake_graphs`: the shared CUDA-graph runner with a stand-in capture device, whose 'graph'
  re-runs the captured function into the captured output buffers, as a replayed CUDA graph
  writes into its fixed buffers (`graphs.use_runner`);
- `numpy_cudnn`: cuDNN replaced by a runner that computes each ConvProblem per tap with plain
  NumPy (independent of minigraph's kernels) and checks that every buffer is laid out as the
  problem says (`conv_cudnn.use_runner`).
"""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from minigraph.cuda import conv_cudnn, fused, fused_src, graphs

CC = shutil.which("cc") or shutil.which("gcc")
CONCAT_SIZES = range(1, 6)


class CpuLauncher:
    """Launches a kernel spec through a shared library of the same source built by `cc`."""

    def __init__(self, tmp):
        self.tmp, self.libs = tmp, {}

    def lib(self, dtype, index_dtype):
        key = (dtype.name, index_dtype.name)
        if key not in self.libs:
            specs = list(fused_src.KERNELS.values()) + [fused_src.concat_spec(k) for k in CONCAT_SIZES]
            src = self.tmp / f"k_{key[0]}_{key[1]}.c"
            src.write_text(fused_src.cpu_source(specs, *key))
            so = src.with_suffix(".so")
            subprocess.run([CC, "-O1", "-shared", "-fPIC", "-Wall", "-Werror", "-Wno-unused-variable",
                            "-o", str(so), str(src), "-lm"], check=True, capture_output=True)
            self.libs[key] = ctypes.CDLL(str(so))
        return self.libs[key]

    def __call__(self, spec, dtype, n, args, index_dtype):
        dtype = np.dtype(dtype)
        real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
        conv = []
        for (kind, _), value in zip(spec.params, args):
            if kind == "long":
                conv.append(ctypes.c_longlong(int(value)))
            elif kind == "real":
                conv.append(real(float(value)))
            else:
                assert isinstance(value, np.ndarray)
                conv.append(ctypes.c_void_p(value.ctypes.data))
        assert len(conv) == len(spec.params) == len(args)
        getattr(self.lib(dtype, index_dtype), spec.name)(*conv, ctypes.c_longlong(n))


def taps(xpad, p, i, j, out_hw):
    (sh, sw), (dh, dw) = p.stride, p.dilation
    return xpad[:, :, i * dh:i * dh + sh * (out_hw[0] - 1) + 1:sh, j * dw:j * dw + sw * (out_hw[1] - 1) + 1:sw]


class NumpyCudnn:
    """Runs ConvProblems as cuDNN would (symmetric padding, strides and dilation), per tap."""

    def __init__(self, declines=False):
        self.declines, self.problems = declines, []

    def run(self, p, buffers):
        self.problems.append(p)
        if self.declines:
            return False
        strides = p.strides()
        for key in ("x", "w", "y"):
            a = buffers[key]  # same addresses as declared (a stride along a size-1 dimension is unused)
            got = [s // a.itemsize for s, n in zip(a.strides, a.shape) if n > 1]
            assert got == [s for s, n in zip(strides[key], a.shape) if n > 1], (key, p.layout)
        (ph, pw), (kh, kw) = p.padding, p.w[2:]
        pad = ((0, 0), (0, 0), (ph, ph), (pw, pw))
        if p.kind == "fprop":
            x, w = buffers["x"], buffers["w"]
            y = np.zeros(p.y, dtype=x.dtype)
            xpad = np.pad(x, pad)
            for i in range(kh):
                for j in range(kw):
                    y += np.einsum("nchw,fc->nfhw", taps(xpad, p, i, j, p.y[2:]), w[:, :, i, j])
            if p.bias:
                y += buffers["b"][None, :, None, None]
            buffers["y"][...] = np.maximum(y, 0) if p.relu else y
        elif p.kind == "dgrad":
            g, w = buffers["y"], buffers["w"]
            dxpad = np.zeros((p.x[0], p.x[1], p.x[2] + 2 * ph, p.x[3] + 2 * pw), dtype=g.dtype)
            for i in range(kh):
                for j in range(kw):
                    taps(dxpad, p, i, j, p.y[2:])[...] += np.einsum("nfhw,fc->nchw", g, w[:, :, i, j])
            buffers["x"][...] = dxpad[:, :, ph:ph + p.x[2], pw:pw + p.x[3]]
        else:
            x, g = buffers["x"], buffers["y"]
            xpad = np.pad(x, pad)
            for i in range(kh):
                for j in range(kw):
                    buffers["w"][:, :, i, j] = np.einsum("nfhw,nchw->fc", g, taps(xpad, p, i, j, p.y[2:]))
        return True


@pytest.fixture(scope="module")
def cpu_kernels(tmp_path_factory):
    """The fused kernels run through the C compiler's build of their source while in use."""
    if CC is None:
        pytest.skip("no C compiler to build the kernels' source for the CPU")
    launcher = CpuLauncher(tmp_path_factory.mktemp("kernels"))
    with fused.use_launcher(launcher):
        yield launcher


@pytest.fixture
def numpy_cudnn():
    """cuDNN stood in for by `NumpyCudnn` while in use (set `.declines` to make it decline)."""
    runner = NumpyCudnn()
    with conv_cudnn.use_runner(runner):
        yield runner


class FakeGraph:
    def __init__(self, fn, outputs):
        self.fn, self.outputs = fn, outputs


class FakeCapture:
    """Capture = run once and remember; a replay writes the feeds into the static inputs and
    runs the remembered function again into the same output buffers."""

    def __init__(self, fail=False):
        self.fail, self.captured, self.launched = fail, 0, 0

    def static_copies(self, values):
        return [v.copy() for v in values]

    def capture(self, fn):
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        self.captured += 1
        outputs = [np.array(v) if np.ndim(v) == 0 else v for v in fn()]  # NumPy scalars -> writable 0-d
        return FakeGraph(fn, outputs), outputs

    def replay(self, graph, inputs, feeds, outputs):
        self.launched += 1
        for static, value in zip(inputs, feeds):
            static[...] = value
        for out, new in zip(graph.outputs, graph.fn()):
            out[...] = new
        return [v.copy() for v in outputs]


@pytest.fixture
def fake_graphs(monkeypatch):
    """A fresh shared GraphRunner over `FakeCapture` while in use (CUDA graphs switched on)."""
    monkeypatch.delenv("MINIGRAPH_CUDA_GRAPHS", raising=False)
    with graphs.use_runner(graphs.GraphRunner(FakeCapture())) as runner:
        yield runner
