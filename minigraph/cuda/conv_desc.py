"""Convolutions as cuDNN sees them: problem descriptions, plan-cache keys, layouts, padding.

Pure Python (no CUDA needed): the CuPy side (`conv_cudnn`) turns a node's attributes and its
input shapes into a `ConvProblem`, the key of a cached cuDNN execution plan, and
`describe_graph` writes the cuDNN frontend graph for it. Written against the Python API of
`nvidia-cudnn-frontend` 1.32.0 (`cudnn.pygraph`, `graph.tensor`, `conv_fprop` / `conv_dgrad` /
`conv_wgrad` with `pre_padding` / `post_padding` / `stride` / `dilation`, `bias`, `relu`,
`Tensor.set_output/set_dim/set_stride/set_data_type`).

Layouts: "nhwc" (channels-last memory, what minigraph's GPU kernels produce) or "nchw"; filters
follow the activations ((F, KH, KW, C) memory for "nhwc"). Shapes are always NCHW / (F, C, KH,
KW) in the descriptions; the strides say where the elements are.

Padding: cuDNN engines are asked for symmetric padding only. Asymmetric padding (TensorFlow's
SAME with an odd total, e.g. a 7x7/2 conv on 224x224) is split by `split_padding` into a
symmetric part cuDNN applies and an explicit zero border added to the image (and cropped from
the image gradient): the same function, proved on the CPU by the tests.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

Pair = Tuple[int, int]
Pads = Tuple[Pair, Pair]
Shape = Tuple[int, ...]

KINDS = ("fprop", "dgrad", "wgrad")
LAYOUTS = ("nhwc", "nchw")


def layout_strides(shape: Shape, layout: str) -> Shape:
    """Element strides of a 4-D (N, C, H, W)-shaped array whose memory is `layout` order."""
    n, c, h, w = shape
    if layout == "nchw":
        return (c * h * w, h * w, w, 1)
    if layout == "nhwc":
        return (h * w * c, 1, w * c, c)
    raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")


def split_padding(pads: Pads) -> Tuple[Pair, Pads]:
    """((top, bottom), (left, right)) -> (symmetric (ph, pw) for cuDNN, the explicit zero border
    ((top, bottom), (left, right)) to add to the image first). Their sum is `pads`."""
    sym = tuple(min(a, b) for a, b in pads)
    extra = tuple((a - s, b - s) for (a, b), s in zip(pads, sym))
    return sym, extra  # type: ignore[return-value]


def out_hw(in_hw: Pair, k_hw: Pair, stride: Pair, pads: Pads, dilation: Pair) -> Pair:
    """Output size of a convolution (floor rule)."""
    return tuple((n + p[0] + p[1] - (k - 1) * d - 1) // s + 1  # type: ignore[return-value]
                 for n, k, s, p, d in zip(in_hw, k_hw, stride, pads, dilation))


@dataclasses.dataclass(frozen=True)
class ConvProblem:
    """One convolution as cuDNN runs it; hashable, the key of its cached plan.

    kind: 'fprop' (x, w -> y), 'dgrad' (dy, w -> dx) or 'wgrad' (x, dy -> dw). x, w, y: the
    image, filter and output shapes *as cuDNN sees them* (x includes any explicit border from
    `split_padding`); padding: the symmetric part; bias / relu: the fprop epilogue.
    """

    kind: str
    x: Shape
    w: Shape
    y: Shape
    padding: Pair
    stride: Pair
    dilation: Pair
    dtype: str
    layout: str = "nhwc"
    bias: bool = False
    relu: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        layout_strides(self.x, self.layout)  # checks the layout
        if (self.bias or self.relu) and self.kind != "fprop":
            raise ValueError("a bias or relu epilogue applies to 'fprop' only")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"cuDNN convolutions here take float32 or float64, got {self.dtype!r}")
        expect = out_hw(self.x[2:], self.w[2:], self.stride, tuple((p, p) for p in self.padding), self.dilation)
        if (self.x[0], self.w[0]) + expect != tuple(self.y) or self.x[1] != self.w[1]:
            raise ValueError(f"inconsistent convolution: x {self.x}, w {self.w}, y {self.y}, padding "
                             f"{self.padding}, stride {self.stride}, dilation {self.dilation}")

    def strides(self) -> Dict[str, Shape]:
        """Element strides of x, w and y in this problem's layout."""
        return {k: layout_strides(getattr(self, k), self.layout) for k in ("x", "w", "y")}

    def geometry(self) -> dict:
        """The keyword arguments of cuDNN's conv_fprop/dgrad/wgrad."""
        return dict(pre_padding=list(self.padding), post_padding=list(self.padding),
                    stride=list(self.stride), dilation=list(self.dilation))


def problem(kind: str, shapes, attrs: dict, dtype: str, layout: str = "nhwc", bias: bool = False,
            relu: bool = False) -> Tuple[ConvProblem, Pads]:
    """The ConvProblem of a minigraph conv node and the explicit border its image needs.

    shapes: the node's input shapes (fprop: x, w[, b]; dgrad: g, w; wgrad: x, g); attrs: stride,
    padding (resolved), dilation, and input_hw (dgrad) or filter_hw (wgrad). A 1x1 conv passes
    w as (F, C) or (F, C, 1, 1) with stride/dilation 1 and no padding.
    """
    stride, pads, dilation = attrs["stride"], attrs["padding"], attrs["dilation"]
    sym, extra = split_padding(pads)
    grow = lambda hw: (hw[0] + extra[0][0] + extra[0][1], hw[1] + extra[1][0] + extra[1][1])  # noqa: E731
    if kind == "fprop":
        x, w = tuple(shapes[0]), tuple(shapes[1])
        w = w if len(w) == 4 else w + (1, 1)
        xe = x[:2] + grow(x[2:])
        y = (x[0], w[0]) + out_hw(xe[2:], w[2:], stride, tuple((p, p) for p in sym), dilation)
    elif kind == "dgrad":
        y, w = tuple(shapes[0]), tuple(shapes[1])
        xe = (y[0], w[1]) + grow(tuple(attrs["input_hw"]))
    elif kind == "wgrad":
        x, y = tuple(shapes[0]), tuple(shapes[1])
        xe = x[:2] + grow(x[2:])
        w = (y[1], x[1]) + tuple(attrs["filter_hw"])
    else:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return ConvProblem(kind, xe, w, y, sym, tuple(stride), tuple(dilation), dtype, layout, bias, relu), extra


def data_type(cudnn, dtype: str):
    """cuDNN's data type enum for a NumPy dtype name."""
    return {"float32": cudnn.data_type.FLOAT, "float64": cudnn.data_type.DOUBLE}[dtype]


def describe_graph(cudnn, p: ConvProblem, handle=None):
    """The cuDNN frontend graph of `p` (not yet validated or built: that needs a GPU) and its
    tensors {'x', 'w', 'y', 'b'?} (for dgrad 'y' is dy and 'x' is dx; for wgrad 'w' is dw)."""
    dt = data_type(cudnn, p.dtype)
    graph = cudnn.pygraph(io_data_type=dt, intermediate_data_type=dt, compute_data_type=dt, handle=handle)
    s = p.strides()
    t = {}
    if p.kind == "fprop":
        t["x"] = graph.tensor(name="x", dim=list(p.x), stride=list(s["x"]), data_type=dt)
        t["w"] = graph.tensor(name="w", dim=list(p.w), stride=list(s["w"]), data_type=dt)
        out = graph.conv_fprop(image=t["x"], weight=t["w"], compute_data_type=dt, name="conv", **p.geometry())
        if p.bias:
            f = p.w[0]
            t["b"] = graph.tensor(name="b", dim=[1, f, 1, 1], stride=[f, 1, 1, 1], data_type=dt)
            out = graph.bias(input=out, bias=t["b"], name="bias")
        if p.relu:
            out = graph.relu(input=out, name="relu")
        t["y"] = out
        final, shape = out, p.y
    elif p.kind == "dgrad":
        t["y"] = graph.tensor(name="dy", dim=list(p.y), stride=list(s["y"]), data_type=dt)
        t["w"] = graph.tensor(name="w", dim=list(p.w), stride=list(s["w"]), data_type=dt)
        final = t["x"] = graph.conv_dgrad(loss=t["y"], filter=t["w"], compute_data_type=dt, name="dgrad", **p.geometry())
        shape = p.x
    else:
        t["x"] = graph.tensor(name="x", dim=list(p.x), stride=list(s["x"]), data_type=dt)
        t["y"] = graph.tensor(name="dy", dim=list(p.y), stride=list(s["y"]), data_type=dt)
        final = t["w"] = graph.conv_wgrad(image=t["x"], loss=t["y"], compute_data_type=dt, name="wgrad", **p.geometry())
        shape = p.w
    final.set_output(True).set_data_type(dt).set_dim(list(shape)).set_stride(list(layout_strides(shape, p.layout)))
    return graph, t


__all__ = ["ConvProblem", "problem", "layout_strides", "split_padding", "out_hw", "describe_graph", "data_type",
           "KINDS", "LAYOUTS"]
