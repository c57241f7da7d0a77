"""The op contract, the leaf ops (placeholder, variable, constant) and `apply`.

An op is a frozen dataclass whose fields are its attributes. It has four parts:

- `infer(*specs) -> Spec`: the static output spec from the input specs (shapes may hold
  None); raises `ShapeError` with a message about the shapes. Runs at build time.
- `forward(xp, *arrays)`: the kernel, written against the array namespace `xp`.
- `gradient(node, out_grad)`: a list with one graph node (or None) per input, built with
  the public builders; autodiff calls it inside the `<node name>_grad` scope.
- `cost(node) -> Cost`: parameters and multiply-adds for `summary` (zero by default).

Ops that need session state (variables, random numbers) override `run(ctx, node, arrays)`
instead of `forward`; `side_effects = True` marks ops that write state, which a run
schedules after every pure node it can.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, List, NamedTuple, Optional, Sequence

import numpy as np

from .errors import ShapeError
from .graph import Node, graph_of
from .spec import Spec, as_dtype, as_shape, fmt


class Cost(NamedTuple):
    """What a node contributes to a model summary."""

    params: int = 0
    macs: int = 0


@dataclasses.dataclass(frozen=True)
class Op:
    """Base class of every operator; see the module docstring for the contract."""

    kind: ClassVar[str] = "op"
    side_effects: ClassVar[bool] = False

    def infer(self, *inputs: Spec) -> Spec:
        raise NotImplementedError(f"{type(self).__name__}.infer")

    def forward(self, xp, *arrays):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def gradient(self, node: Node, out_grad: Node) -> List[Optional[Node]]:
        raise NotImplementedError(f"op {self.kind!r} ({type(self).__name__}) has no gradient")

    def cost(self, node: Node) -> Cost:
        return Cost()

    def run(self, ctx, node: Node, arrays: Sequence[Any]):
        """Evaluate the node in a session; `ctx` gives `xp`, `rng` and the session."""
        return self.forward(ctx.xp, *arrays)

    def attrs(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.repr}


def apply(op: Op, inputs: Sequence[Any], name: Optional[str] = None) -> Node:
    """Add a node for `op` applied to `inputs` (nodes, arrays or Python numbers).

    Non-node inputs become constants; a Python number or array takes the dtype of the
    first node input when both are numeric, so `x * 2` stays float32.
    """
    graph = graph_of(inputs)
    ref = next((x.dtype for x in inputs if isinstance(x, Node)), None)
    nodes = [x if isinstance(x, Node) else _literal(graph, x, ref) for x in inputs]
    return graph.add_node(op, nodes, name)


def _literal(graph, value, ref: Optional[np.dtype]) -> Node:
    arr = np.asarray(value)
    if ref is not None and arr.dtype.kind in "biuf" and (ref.kind == "f" or arr.dtype.kind != "f"):
        arr = arr.astype(ref)
    return graph.add_node(Constant(arr), [], "Const")


# ---------------------------------------------------------------------------------
# leaf ops


def check_rank(spec: Spec, rank: int, what: str) -> None:
    if len(spec.shape) != rank:
        raise ShapeError(f"{what} must have rank {rank}, got shape {fmt(spec.shape)}")


def check_float(*specs: Spec) -> None:
    """Floating inputs of one common dtype (no silent upcast)."""
    for s in specs:
        if s.dtype.kind != "f":
            raise ShapeError(f"expected a floating dtype, got {s.dtype}")
    dtypes = {s.dtype for s in specs}
    if len(dtypes) > 1:
        raise ShapeError("dtype mismatch: " + " vs ".join(str(s.dtype) for s in specs))


@dataclasses.dataclass(frozen=True)
class Placeholder(Op):
    """A value fed at run time."""

    kind: ClassVar[str] = "placeholder"
    shape: tuple
    dtype: np.dtype

    def infer(self) -> Spec:
        return Spec(self.shape, self.dtype)

    def run(self, ctx, node, arrays):
        from .errors import FeedError
        raise FeedError(f"placeholder {node.name!r} {fmt(node.shape)} was not fed")

    def gradient(self, node, out_grad):
        return []


@dataclasses.dataclass(frozen=True)
class PlaceholderWithDefault(Op):
    """A placeholder that takes its input's value when not fed."""

    kind: ClassVar[str] = "placeholder_with_default"
    shape: tuple

    def infer(self, default: Spec) -> Spec:
        if len(default.shape) != len(self.shape) or any(
                d is not None and d != s for d, s in zip(self.shape, default.shape)):
            raise ShapeError(f"default of shape {fmt(default.shape)} does not fit {fmt(self.shape)}")
        return Spec(self.shape, default.dtype)

    def forward(self, xp, default):
        return default

    def gradient(self, node, out_grad):
        return [out_grad]


@dataclasses.dataclass(frozen=True)
class Variable(Op):
    """A trainable (or not) value that lives in the session, initialised from `initial_value`."""

    kind: ClassVar[str] = "variable"
    initial_value: np.ndarray = dataclasses.field(compare=False, repr=False)
    trainable: bool = True

    def infer(self) -> Spec:
        return Spec(self.initial_value.shape, self.initial_value.dtype)

    def run(self, ctx, node, arrays):
        return ctx.session._variable_value(node)

    def gradient(self, node, out_grad):
        return []


@dataclasses.dataclass(frozen=True)
class Constant(Op):
    """A fixed array baked into the graph."""

    kind: ClassVar[str] = "constant"
    value: np.ndarray = dataclasses.field(compare=False, repr=False)

    def infer(self) -> Spec:
        return Spec(self.value.shape, self.value.dtype)

    def run(self, ctx, node, arrays):
        return ctx.session._constant_value(node)

    def gradient(self, node, out_grad):
        return []


LEAF_OPS = (Placeholder, Variable, Constant)


def placeholder(shape, dtype="float32", name: Optional[str] = None) -> Node:
    """A value fed at run time; `None` dimensions (e.g. the batch) are free.

    >>> x = mg.placeholder((None, 3, 32, 32), name="x")
    """
    graph = graph_of(())
    return graph.add_node(Placeholder(as_shape(shape), as_dtype(dtype)), [], name or "placeholder")


def placeholder_with_default(default, shape=None, name: Optional[str] = None) -> Node:
    """A placeholder that evaluates to `default` (a node or value) unless fed.

    `shape` may loosen the default's shape with Nones; it defaults to the default's shape.
    `mg.placeholder_with_default(False)` gives a scalar bool switch (e.g. dropout's `training`).
    """
    default = default if isinstance(default, Node) else constant(default, name=None)
    shape = default.shape if shape is None else as_shape(shape)
    return apply(PlaceholderWithDefault(shape), [default], name or "placeholder_with_default")


def variable(initial_value, name: Optional[str] = None, trainable: bool = True, dtype=None) -> Node:
    """A value that persists in the session across runs (weights), starting at `initial_value`."""
    value = np.array(initial_value, dtype=None if dtype is None else as_dtype(dtype), copy=True)
    value.setflags(write=False)
    graph = graph_of(())
    return graph.add_node(Variable(value, bool(trainable)), [], name or "variable")


def constant(value, dtype=None, name: Optional[str] = None) -> Node:
    """A fixed array in the graph (its dtype kept unless `dtype` is given)."""
    arr = np.array(value, dtype=None if dtype is None else as_dtype(dtype), copy=True)
    arr.setflags(write=False)
    graph = graph_of(())
    return graph.add_node(Constant(arr), [], name or "Const")
