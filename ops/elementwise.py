"""Elementwise ops with NumPy broadcasting: add sub mul div neg relu exp log sqrt square.

Gradients of broadcast inputs are summed back to the input's shape (`sum_like`).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, List, Optional

from minigraph.dispatch import register_kernel
from minigraph.errors import ShapeError
from minigraph.op import Op, apply, check_float
from minigraph.runtime import serial_runtime
from minigraph.spec import Spec, fmt, num_elements, shapes_compatible

from . import kernels


def broadcast_shapes(a: tuple, b: tuple) -> tuple:
    """NumPy's broadcasting rule on static shapes (None = unknown)."""
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x == 1:
            out.append(y)
        elif y == 1:
            out.append(x)
        elif x is None:
            out.append(y)
        elif y is None or x == y:
            out.append(x)
        else:
            raise ShapeError(f"shapes {fmt(a)} and {fmt(b)} do not broadcast")
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Binary(Op):
    """Shared shape rule of the broadcasting binary ops."""

    def infer(self, a: Spec, b: Spec) -> Spec:
        check_float(a, b)
        return Spec(broadcast_shapes(a.shape, b.shape), a.dtype)


@dataclasses.dataclass(frozen=True)
class Unary(Op):
    """Shared shape rule of the unary float ops."""

    def infer(self, x: Spec) -> Spec:
        check_float(x)
        return x


@dataclasses.dataclass(frozen=True)
class Add(Binary):
    kind: ClassVar[str] = "add"
    role: ClassVar[str] = "bias"  # with one data input and a parameter: a layer's bias add

    def forward(self, xp, a, b):
        return a + b

    def gradient(self, node, g):
        a, b = node.inputs
        return [sum_like(g, a), sum_like(g, b)]


@dataclasses.dataclass(frozen=True)
class Sub(Binary):
    kind: ClassVar[str] = "sub"

    def forward(self, xp, a, b):
        return a - b

    def gradient(self, node, g):
        a, b = node.inputs
        return [sum_like(g, a), sum_like(neg(g), b)]


@dataclasses.dataclass(frozen=True)
class Mul(Binary):
    kind: ClassVar[str] = "mul"

    def display_kind(self, node):
        """A helper that is multiplied in names the product ('dropout' for x * dropout mask)."""
        helper = _helper(node)
        return helper.op.names_consumer if helper is not None else self.kind

    def label(self, node):
        helper = _helper(node)
        return helper.op.consumer_label(helper) if helper is not None else self.kind

    def forward(self, xp, a, b):
        return a * b

    def gradient(self, node, g):
        a, b = node.inputs
        return [sum_like(mul(g, b), a), sum_like(mul(g, a), b)]


def _helper(node):
    return next((x for x in node.inputs if x.op.names_consumer), None)


@dataclasses.dataclass(frozen=True)
class Div(Binary):
    kind: ClassVar[str] = "div"

    def forward(self, xp, a, b):
        return a / b

    def gradient(self, node, g):
        a, b = node.inputs
        ga = div(g, b)
        return [sum_like(ga, a), sum_like(neg(mul(ga, node)), b)]


@dataclasses.dataclass(frozen=True)
class AddN(Op):
    """The sum of several same-shaped tensors (autodiff's accumulator). With `in_place` (set by
    `minigraph.passes.backward` when nothing else reads the first input), the sum is written
    into the first input's buffer when it has the result's shape and dtype (so never set it by
    hand on a value someone else holds, such as a fed array)."""

    kind: ClassVar[str] = "add_n"
    in_place: bool = False

    def infer(self, *xs: Spec) -> Spec:
        check_float(*xs)
        shape = xs[0].shape
        for x in xs[1:]:
            shape = broadcast_shapes(shape, x.shape)
        return Spec(shape, xs[0].dtype)

    def forward(self, xp, *xs):
        return _add_n(serial_runtime(xp), self, *xs)

    def gradient(self, node, g):
        return [sum_like(g, x) for x in node.inputs]

    def with_input_reused(self):
        return None if self.in_place else dataclasses.replace(self, in_place=True)

    @property
    def view(self) -> bool:
        """In place, the result is the first input's buffer."""
        return self.in_place

    @property
    def overwrites_input(self):
        return 0 if self.in_place else None


@dataclasses.dataclass(frozen=True)
class Neg(Unary):
    kind: ClassVar[str] = "neg"

    def forward(self, xp, x):
        return -x

    def gradient(self, node, g):
        return [neg(g)]


@dataclasses.dataclass(frozen=True)
class Relu(Unary):
    kind: ClassVar[str] = "relu"
    role: ClassVar[str] = "activation"
    fusable_activation: ClassVar[str] = "relu"  # a producer may apply it (see passes.fusion)

    def forward(self, xp, x):
        return xp.maximum(x, 0)

    def activation_name(self):
        return "ReLU"

    def label(self, node):
        return "ReLU"

    def gradient(self, node, g):
        # relu(x) > 0 exactly where x > 0: using the output lets the input be freed early
        return [relu_grad(g, node)]


@dataclasses.dataclass(frozen=True)
class ReluGrad(Op):
    """g * (y > 0) for same-shaped g and y: relu's gradient g * step(relu output) in one
    chunked, threaded pass. Linear in g; its derivative in y is zero (as step's)."""

    kind: ClassVar[str] = "relu_grad"
    fusable_mask: ClassVar[str] = "relu"  # a reader of it may apply the mask itself (passes.backward)

    def infer(self, g: Spec, y: Spec) -> Spec:
        check_float(g, y)
        if not shapes_compatible(g.shape, y.shape):
            raise ShapeError(f"relu_grad needs same-shaped g and y, got {fmt(g.shape)} and {fmt(y.shape)}")
        return g

    def forward(self, xp, g, y):
        return kernels.relu_grad(serial_runtime(xp), g, y)

    def gradient(self, node, gg):
        return [relu_grad(gg, node.inputs[1]), None]


@dataclasses.dataclass(frozen=True)
class Step(Unary):
    """1 where x > 0, else 0 (relu's derivative; its own derivative is zero)."""

    kind: ClassVar[str] = "step"

    def forward(self, xp, x):
        return (x > 0).astype(x.dtype)

    def gradient(self, node, g):
        return [None]


@dataclasses.dataclass(frozen=True)
class Exp(Unary):
    kind: ClassVar[str] = "exp"

    def forward(self, xp, x):
        return xp.exp(x)

    def gradient(self, node, g):
        return [mul(g, node)]


@dataclasses.dataclass(frozen=True)
class Log(Unary):
    kind: ClassVar[str] = "log"

    def forward(self, xp, x):
        return xp.log(x)

    def gradient(self, node, g):
        return [div(g, node.inputs[0])]


@dataclasses.dataclass(frozen=True)
class Sqrt(Unary):
    kind: ClassVar[str] = "sqrt"

    def forward(self, xp, x):
        return xp.sqrt(x)

    def gradient(self, node, g):
        return [div(mul(g, 0.5), node)]


@dataclasses.dataclass(frozen=True)
class Square(Unary):
    kind: ClassVar[str] = "square"

    def forward(self, xp, x):
        return x * x

    def gradient(self, node, g):
        return [mul(g, mul(node.inputs[0], 2.0))]


@dataclasses.dataclass(frozen=True)
class SumLike(Op):
    """`g` summed over its broadcast axes down to the run-time shape of `like`."""

    kind: ClassVar[str] = "sum_like"
    view: ClassVar[bool] = True  # g itself when nothing is broadcast

    def infer(self, g: Spec, like: Spec) -> Spec:
        broadcast_shapes(g.shape, like.shape)
        return Spec(like.shape, g.dtype)

    def forward(self, xp, g, like):
        if g.shape == like.shape:
            return g
        lead = g.ndim - like.ndim
        axes = tuple(range(lead)) + tuple(
            i + lead for i, d in enumerate(like.shape) if d == 1 and g.shape[i + lead] != 1)
        out = g.sum(axis=axes, keepdims=True) if axes else g
        return out.reshape(like.shape)

    def gradient(self, node, gg):
        return [broadcast_like(gg, node.inputs[0]), None]


@dataclasses.dataclass(frozen=True)
class BroadcastLike(Op):
    """`x` broadcast to the run-time shape of `like`."""

    kind: ClassVar[str] = "broadcast_like"
    view: ClassVar[bool] = True

    def infer(self, x: Spec, like: Spec) -> Spec:
        shape = broadcast_shapes(x.shape, like.shape)
        if len(shape) != len(like.shape):
            raise ShapeError(f"cannot broadcast {fmt(x.shape)} to {fmt(like.shape)}")
        return Spec(like.shape, x.dtype)

    def forward(self, xp, x, like):
        # a read-only view: ops never write into their inputs
        return xp.broadcast_to(x, like.shape)

    def gradient(self, node, gg):
        return [sum_like(gg, node.inputs[0]), None]


@dataclasses.dataclass(frozen=True)
class Fill(Op):
    """An array of `value` with the run-time shape and the dtype of `like`."""

    kind: ClassVar[str] = "fill"
    value: float

    def infer(self, like: Spec) -> Spec:
        return like

    def forward(self, xp, like):
        return xp.full(like.shape, self.value, dtype=like.dtype)

    def gradient(self, node, g):
        return [None]


@register_kernel("relu_grad", "numpy", "batch_split",
                 score=lambda op, shapes, rt: 2.0 if _split_pays(shapes[0], rt) else None)
def _relu_grad_split(rt, op, g, y):
    return kernels.relu_grad(rt, g, y, split=True)


@register_kernel("add_n", "numpy", "chunked")
@register_kernel("add_n", "cupy", "chunked")
def _add_n(rt, op, *xs):
    return kernels.add_n(rt, xs, op.in_place)


def _split_pays(shape, rt) -> bool:
    """Memory-bound work pays for a batch split only on large arrays and several threads."""
    return len(shape) > 0 and shape[0] >= 2 and rt.threads > 1 and num_elements(shape) >= rt.threaded_elements


# builders --------------------------------------------------------------------------


def add(a, b, name: Optional[str] = None):
    """a + b with broadcasting."""
    return apply(Add(), [a, b], name)


def sub(a, b, name: Optional[str] = None):
    """a - b with broadcasting."""
    return apply(Sub(), [a, b], name)


def mul(a, b, name: Optional[str] = None):
    """a * b with broadcasting."""
    return apply(Mul(), [a, b], name)


def div(a, b, name: Optional[str] = None):
    """a / b with broadcasting."""
    return apply(Div(), [a, b], name)


def add_n(xs: List, name: Optional[str] = None):
    """The sum of a list of tensors."""
    xs = list(xs)
    if len(xs) == 1:
        return xs[0]
    return apply(AddN(), xs, name)


def neg(x, name: Optional[str] = None):
    """-x."""
    return apply(Neg(), [x], name)


def relu(x, name: Optional[str] = None):
    """max(x, 0)."""
    return apply(Relu(), [x], name)


def step(x, name: Optional[str] = None):
    """1 where x > 0 else 0, in x's dtype (not differentiable: its gradient is zero)."""
    return apply(Step(), [x], name)


def relu_grad(g, y, name: Optional[str] = None):
    """g where y > 0, else 0 (g and y of one shape): relu's gradient, given its output y."""
    return apply(ReluGrad(), [g, y], name)


def exp(x, name: Optional[str] = None):
    """e**x."""
    return apply(Exp(), [x], name)


def log(x, name: Optional[str] = None):
    """The natural logarithm."""
    return apply(Log(), [x], name)


def sqrt(x, name: Optional[str] = None):
    """The square root."""
    return apply(Sqrt(), [x], name)


def square(x, name: Optional[str] = None):
    """x * x."""
    return apply(Square(), [x], name)


def sum_like(g, like, name: Optional[str] = None):
    """`g` reduced by summation to the shape of `like` (undoes broadcasting)."""
    if g.shape == like.shape and None not in g.shape:
        return g
    return apply(SumLike(), [g, like], name)


def broadcast_like(x, like, name: Optional[str] = None):
    """`x` broadcast to the shape of `like`."""
    if x.shape == like.shape and None not in x.shape:
        return x
    return apply(BroadcastLike(), [x, like], name)


def zeros_like(x, name: Optional[str] = None):
    """Zeros of x's shape and dtype."""
    return apply(Fill(0.0), [x], name or "zeros_like")


def ones_like(x, name: Optional[str] = None):
    """Ones of x's shape and dtype."""
    return apply(Fill(1.0), [x], name or "ones_like")
