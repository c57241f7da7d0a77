"""Convolutions through cuDNN on the CuPy backend: forward (with the fused bias and ReLU of a
`activation="relu"` node), input gradient and filter gradient, for conv2d and conv1x1.

Registered through `minigraph.dispatch` as the ``cudnn`` algorithm on backend ``cupy``; they
apply where `status.cudnn_enabled()`. Each distinct problem (kind, shapes, strides, padding,
dtype, layout, epilogue: a `conv_desc.ConvProblem`) gets its cuDNN plan built once, on first
use, and kept in a bounded cache. Plans come from cuDNN's heuristics (modes A then FALLBACK);
``MINIGRAPH_CUDNN_AUTOTUNE=1`` builds every candidate and keeps the fastest on the first call.
float32 runs without TF32 (engines with the TENSOR_CORE or DOWN_CONVERT_INPUTS numerical
notes are left out) unless ``MINIGRAPH_TF32=1``. ``MINIGRAPH_CUDNN_LAYOUT=nchw`` describes
activations and filters as NCHW instead of the default channels-last ("nhwc").

When cuDNN declines a problem (no engine for the dtype, layout or geometry), that problem runs
on the generic im2col + cuBLAS kernel instead, and the log says so once per problem: the
kernel never fails for want of a cuDNN engine.

API: `nvidia-cudnn-frontend` 1.32.0 (pygraph: validate, build_operation_graph,
create_execution_plans, deselect_numeric_notes, check_support, build_plans, get_workspace_size,
execute / execute_plan_at_index with a {tensor: device pointer} variant pack and a workspace
pointer, set_stream on the handle so that work joins CuPy's current stream).
"""
from __future__ import annotations

import collections
import contextlib
import os
import threading
from typing import Optional

import numpy as np

from minigraph.dispatch import register_kernel
from minigraph.ops import conv_kernels

from .. import env
from . import conv_desc, status

MAX_PLANS = 512


def settings() -> dict:
    """The environment's cuDNN switches: layout, autotune, tf32."""
    layout = os.environ.get("MINIGRAPH_CUDNN_LAYOUT", "nhwc").strip().lower()
    if layout not in conv_desc.LAYOUTS:
        raise ValueError(f"MINIGRAPH_CUDNN_LAYOUT must be one of {', '.join(conv_desc.LAYOUTS)}, got {layout!r}")
    return dict(layout=layout, autotune=env.switch("MINIGRAPH_CUDNN_AUTOTUNE", default=False),
                tf32=env.switch("MINIGRAPH_TF32", default=False))


class PlanCache:
    """ConvProblem -> built plan (or None: cuDNN declined it), least recently used dropped first.
    `build(problem)` is called outside the lock; two threads may build the same plan once each."""

    def __init__(self, build, max_plans: int = MAX_PLANS):
        self._build, self.max_plans = build, max_plans
        self._plans: "collections.OrderedDict" = collections.OrderedDict()
        self._lock = threading.Lock()
        self.built = self.declined = 0

    def __len__(self) -> int:
        return len(self._plans)

    def get(self, problem):
        with self._lock:
            if problem in self._plans:
                self._plans.move_to_end(problem)
                return self._plans[problem]
        plan = self._build(problem)
        with self._lock:
            self._plans[problem] = plan
            if plan is None:
                self.declined += 1
            else:
                self.built += 1
            while len(self._plans) > self.max_plans:
                self._plans.popitem(last=False)
        return plan


class _Plan:
    """A built cuDNN graph, its tensors, the plan index to run (None: the one build_plans chose)
    and its workspace bytes."""

    __slots__ = ("graph", "tensors", "index", "workspace")

    def __init__(self, graph, tensors, index, workspace):
        self.graph, self.tensors, self.index, self.workspace = graph, tensors, index, workspace


class Cudnn:
    """The process's cuDNN state: one handle per device and the plan cache."""

    def __init__(self):
        self._handles = {}
        self._lock = threading.Lock()
        self.plans = PlanCache(self._build)

    def handle(self):
        import cudnn
        import cupy
        dev = cupy.cuda.Device().id
        h = self._handles.get(dev)
        if h is None:
            with self._lock:
                h = self._handles.get(dev)
                if h is None:
                    h = self._handles[dev] = cudnn.create_handle()
        cudnn.set_stream(h, cupy.cuda.get_current_stream().ptr)
        return h

    def _build(self, p: conv_desc.ConvProblem) -> Optional[_Plan]:
        import cudnn
        opts = settings()
        try:
            graph, tensors = conv_desc.describe_graph(cudnn, p, self.handle())
            graph.validate()
            graph.build_operation_graph()
            graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
            if p.dtype == "float32" and not opts["tf32"]:
                graph.deselect_numeric_notes([cudnn.numerical_note.TENSOR_CORE,
                                              cudnn.numerical_note.DOWN_CONVERT_INPUTS])
            graph.check_support()
            if opts["autotune"]:
                graph.build_plans(cudnn.build_plan_policy.ALL)
                index = _fastest(graph, tensors, p, self.handle())
                return _Plan(graph, tensors, index, graph.get_workspace_size_plan_at_index(index))
            graph.build_plans()
            return _Plan(graph, tensors, None, graph.get_workspace_size())
        except Exception as exc:  # no engine for this problem: the generic kernel runs it
            status.LOG.info("cuDNN declined %s (%s: %s); it runs on the generic kernel", p, type(exc).__name__, exc)
            return None

    def run(self, p: conv_desc.ConvProblem, buffers: dict) -> bool:
        """Run problem `p` on {'x', 'w', 'y', 'b'?: CuPy arrays laid out as p says}; False when
        cuDNN declined it (nothing was written)."""
        plan = self.plans.get(p)
        if plan is None:
            return False
        import cupy
        handle = self.handle()
        pack = {plan.tensors[k]: a.data.ptr for k, a in buffers.items()}
        ws = cupy.empty(plan.workspace, dtype=np.uint8) if plan.workspace else None
        ws_ptr = ws.data.ptr if ws is not None else None
        if plan.index is None:
            plan.graph.execute(pack, ws_ptr, handle=handle)
        else:
            plan.graph.execute_plan_at_index(pack, ws_ptr, index=plan.index, handle=handle)
        return True


def _fastest(graph, tensors, p: conv_desc.ConvProblem, handle) -> int:
    """The index of the fastest built plan of `graph` on scratch buffers (3 timed runs each)."""
    import cupy
    shapes = {"x": p.x, "w": p.w, "y": p.y, "b": (p.w[0],)}
    scratch = {k: cupy.random.standard_normal(shapes[k]).astype(p.dtype) for k in tensors}
    pack = {tensors[k]: a.data.ptr for k, a in scratch.items()}
    best, best_ms = 0, None
    for i in range(graph.get_execution_plan_count()):
        try:
            ws = cupy.empty(graph.get_workspace_size_plan_at_index(i), dtype=np.uint8)
            graph.execute_plan_at_index(pack, ws.data.ptr if ws.size else None, index=i, handle=handle)
            start, stop = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
            for _ in range(3):
                graph.execute_plan_at_index(pack, ws.data.ptr if ws.size else None, index=i, handle=handle)
            stop.record()
            stop.synchronize()
            ms = cupy.cuda.get_elapsed_time(start, stop)
        except Exception:  # a candidate that did not build or does not run
            continue
        if best_ms is None or ms < best_ms:
            best, best_ms = i, ms
    return best


CUDNN = Cudnn()
_runner = CUDNN


@contextlib.contextmanager
def use_runner(runner):
    """Run the kernels' problems through `runner.run(problem, buffers) -> bool` instead of
    cuDNN while inside (the tests check the layout, padding and cropping around cuDNN on the
    CPU this way, with a runner that computes each problem with the generic NumPy kernels)."""
    global _runner
    saved, _runner = _runner, runner
    try:
        yield
    finally:
        _runner = saved


# layouts ----------------------------------------------------------------------------


def in_layout(xp, a, layout: str):
    """`a` (4-D, NCHW-shaped) with its memory in `layout` order: `a` itself when it already is,
    else a copy."""
    if layout == "nchw":
        return xp.ascontiguousarray(a)
    v = a.transpose(0, 2, 3, 1)
    return a if v.flags.c_contiguous else xp.ascontiguousarray(v).transpose(0, 3, 1, 2)


def empty(xp, shape, dtype, layout: str):
    """An uninitialised NCHW-shaped array with `layout` memory."""
    if layout == "nchw":
        return xp.empty(shape, dtype=dtype)
    n, c, h, w = shape
    return xp.empty((n, h, w, c), dtype=dtype).transpose(0, 3, 1, 2)


def with_border(xp, x, extra, layout: str):
    """x with an explicit zero border ((top, bottom), (left, right)) (x itself when none)."""
    (t, b), (l, r) = extra
    if not (t or b or l or r):
        return x
    n, c, h, w = x.shape
    out = empty(xp, (n, c, h + t + b, w + l + r), x.dtype, layout)
    out[...] = 0
    out[:, :, t:t + h, l:l + w] = x
    return out


def _problem(kind, shapes, attrs, dtype, bias=False, relu=False):
    return conv_desc.problem(kind, shapes, attrs, np.dtype(dtype).name, settings()["layout"], bias, relu)


# the kernels ----------------------------------------------------------------------------


def conv_forward(rt, x, w, b, attrs: dict, relu: bool, fallback):
    """y = relu?(conv(x, w) + b?) through cuDNN, or `fallback()` where cuDNN declines."""
    xp = rt.xp
    w4 = w if w.ndim == 4 else w.reshape(w.shape + (1, 1))
    p, extra = _problem("fprop", (x.shape, w4.shape), attrs, x.dtype, b is not None, relu)
    buffers = {"x": with_border(xp, in_layout(xp, x, p.layout), extra, p.layout), "w": in_layout(xp, w4, p.layout),
               "y": empty(xp, p.y, x.dtype, p.layout)}
    if b is not None:
        buffers["b"] = xp.ascontiguousarray(b)
    return buffers["y"] if _runner.run(p, buffers) else fallback()


def conv_backprop_input(rt, g, w, attrs: dict, fallback):
    """dx (N, C, H, W) through cuDNN's dgrad (cropped where an explicit border was added)."""
    xp = rt.xp
    w4 = w if w.ndim == 4 else w.reshape(w.shape + (1, 1))
    p, ((t, _), (l, _)) = _problem("dgrad", (g.shape, w4.shape), attrs, g.dtype)
    buffers = {"y": in_layout(xp, g, p.layout), "w": in_layout(xp, w4, p.layout), "x": empty(xp, p.x, g.dtype, p.layout)}
    if not _runner.run(p, buffers):
        return fallback()
    h, wd = attrs["input_hw"]
    return buffers["x"][:, :, t:t + h, l:l + wd]


def conv_backprop_filter(rt, x, g, attrs: dict, fallback):
    """dw (F, C, KH, KW) through cuDNN's wgrad."""
    xp = rt.xp
    p, extra = _problem("wgrad", (x.shape, g.shape), attrs, x.dtype)
    buffers = {"x": with_border(xp, in_layout(xp, x, p.layout), extra, p.layout), "y": in_layout(xp, g, p.layout),
               "w": empty(xp, p.w, x.dtype, p.layout)}
    return buffers["w"] if _runner.run(p, buffers) else fallback()


def _score(op, shapes, rt):
    return 3.0 if status.cudnn_enabled() and not _fused_variant(op) else None


def _fused_variant(op) -> bool:
    """Whether `op` is a variant made by the CPU's backward passes (a relu mask input, a packed
    bias gradient, an accumulator): the generic kernels run those."""
    return any(getattr(op, name, False) for name in ("relu_mask", "bias_gradient", "accumulate"))


def _geometry(op) -> dict:
    return dict(stride=tuple(op.stride), padding=tuple(op.padding), dilation=tuple(op.dilation))


_ONE = dict(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1))


@register_kernel("conv2d", "cupy", "cudnn", score=_score, exact=False)
def conv2d(rt, op, x, w, b=None):
    relu = op.activation == "relu"
    return conv_forward(rt, x, w, b, _geometry(op), relu, lambda: conv_kernels.conv2d_forward(
        rt, x, w, op.stride, op.padding, op.dilation, b, relu))


@register_kernel("conv2d_backprop_input", "cupy", "cudnn", score=_score, exact=False)
def conv2d_backprop_input(rt, op, g, w):
    return conv_backprop_input(rt, g, w, dict(_geometry(op), input_hw=tuple(op.input_hw)), lambda: (
        conv_kernels.conv2d_backprop_input_scatter(rt, g, w, op.input_hw, op.stride, op.padding, op.dilation)))


@register_kernel("conv2d_backprop_filter", "cupy", "cudnn", score=_score, exact=False)
def conv2d_backprop_filter(rt, op, x, g):
    return conv_backprop_filter(rt, x, g, dict(_geometry(op), filter_hw=tuple(op.filter_hw)), lambda: (
        conv_kernels.conv2d_backprop_filter(rt, x, g, op.filter_hw, op.stride, op.padding, op.dilation)))


@register_kernel("conv1x1", "cupy", "cudnn", score=_score, exact=False)
def conv1x1(rt, op, x, w, b=None):
    relu = op.activation == "relu"
    return conv_forward(rt, x, w, b, _ONE, relu, lambda: conv_kernels.conv1x1_forward(rt, x, w, b, relu))


@register_kernel("conv1x1_backprop_filter", "cupy", "cudnn", score=_score, exact=False)
def conv1x1_backprop_filter(rt, op, x, g):
    dw = conv_backprop_filter(rt, x, g, dict(_ONE, filter_hw=(1, 1)),
                              lambda: conv_kernels.conv1x1_backprop_filter(rt, x, g)[:, :, None, None])
    return dw.reshape(dw.shape[:2])  # (F, 1, 1, C) memory: a view


__all__ = ["Cudnn", "CUDNN", "use_runner", "PlanCache", "settings", "conv_forward", "conv_backprop_input", "conv_backprop_filter",
           "in_layout", "empty", "with_border"]
