"""The op contract, the op registry, the leaf ops (placeholder, variable, constant) and `apply`.

An op is a frozen dataclass whose fields are its attributes. It has four parts:

- `infer(*specs) -> Spec`: the static output spec from the input specs (shapes may hold
  None); raises `ShapeError` with a message about the shapes. Runs at build time.
- `forward(xp, *arrays)`: the generic kernel, written against the array namespace `xp`. It is
  the reference and the fallback: faster kernels register per backend (`minigraph.dispatch`).
- `gradient(node, out_grad)`: a list with one graph node (or None) per input, built with
  the public builders; autodiff calls it inside the `<node name>_grad` scope.
- `cost(node) -> Cost`: parameters and multiply-adds for `summary` (zero by default), and for
  ops that share weights over positions, the parameters they would need without sharing.

Ops that need session state (variables, random numbers) override `run(ctx, node, arrays)`
instead of `forward`; `ctx` is the executor's `RunContext`.

What the other layers need to know about an op is declared on its class, never tested by
kind elsewhere:

    kind          the registry key ('conv2d'); every subclass that sets it is registered
    side_effects  it writes session state (variables, optimizer slots): runs are serialised
    pure          its output is a function of its inputs alone (not of a feed, a variable,
                  the session's generator or other state)
    deterministic the same inputs give the same output (False for random ops)
    foldable      constant folding may evaluate it when its inputs are constants
    view          its output may share memory with an input (an op whose attributes decide it
                  defines a property instead, e.g. add_n written in place)
    returns_state its output may be a buffer the session holds (a variable's value)
    feedable      a value may be fed for it (placeholders)
    uses_blas     its kernels call BLAS: a run holding it keeps BLAS at one thread throughout
    category      how diagrams colour it: input, conv, conv1x1, pool, concat, linear,
                  variable, other
    fuses_epilogue, fusable_activation
                  for the fusion pass: whether it can take over a bias add and an
                  activation after it (`with_bias`, `with_activation`); which activation it is
    fusable_mask  for the backward passes: the gradient mask this op applies ('relu' for
                  relu_grad(g, y) = g * (y > 0)), which readers may apply themselves
                  (`with_relu_mask`); `summed_channels`, `with_bias_gradient`,
                  `with_input_reused` and `with_accumulator` likewise (see
                  `minigraph.passes.backward`)
    role          how diagrams and summaries read it: compute, activation (joins its
                  producer's box), bias (a bias add), reshape (joins its consumer's box),
                  identity, helper (drawn and counted as part of its consumer), param
                  (folded into its consumer's label)

plus the display methods `label(node)`, `short_label(node)`, `display_kind(node)`,
`consumer_label(node)` and `activation_name()`.
`mg.ops.registry()` returns {kind: class}; a second class claiming a kind is an error when
it is defined.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
from typing import Any, ClassVar, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .casting import checked_cast
from .checks import as_bool
from .errors import ShapeError
from .graph import Node, graph_of
from .spec import Spec, as_dtype, as_shape, check_numeric, fmt, shapes_compatible


class StateSlot(NamedTuple):
    """One entry an op keeps in `session.state` (declared by `op.state_slots`): an array of
    exactly this shape and dtype, or, with `count`, a scalar integer step count >= 0. A
    `shared` entry is one several ops use (e.g. the session's dropout key); the others of one
    op are saved and restored together or not at all. `optimizer`: part of an optimizer's
    state (a graph with no such entry, an inference graph, restores weights only)."""

    shape: Tuple[int, ...]
    dtype: np.dtype
    count: bool = False
    shared: bool = False
    optimizer: bool = True


STEP_COUNT = StateSlot((), np.dtype(np.int64), count=True)


class Cost(NamedTuple):
    """What a node contributes to a model summary.

    `unshared_params`: the parameters the node would need without weight sharing (a locally
    connected layer: its own weights and bias at every output position), for ops that share
    weights over positions (convolutions); None for ops that share none.
    """

    params: int = 0
    macs: int = 0
    unshared_params: Optional[int] = None


_REGISTRY: Dict[str, type] = {}


def registry() -> Dict[str, type]:
    """Every registered op class by kind, sorted by kind (a copy)."""
    return dict(sorted(_REGISTRY.items()))


def op_class(kind: str) -> type:
    """The op class registered as `kind`; a KeyError suggesting close kinds otherwise."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        close = difflib.get_close_matches(kind, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"no op of kind {kind!r} is registered{hint}") from None


@dataclasses.dataclass(frozen=True)
class Op:
    """Base class of every operator; see the module docstring for the contract."""

    kind: ClassVar[str] = "op"
    side_effects: ClassVar[bool] = False
    pure: ClassVar[bool] = True
    deterministic: ClassVar[bool] = True
    foldable: ClassVar[bool] = True
    view: ClassVar[bool] = False
    returns_state: ClassVar[bool] = False
    feedable: ClassVar[bool] = False
    category: ClassVar[str] = "other"
    role: ClassVar[str] = "compute"
    names_consumer: ClassVar[Optional[str]] = None  # a helper's name for the op that reads it
    uses_blas: ClassVar[bool] = False  # its kernels call BLAS (a run holds BLAS at one thread)
    fuses_epilogue: ClassVar[bool] = False  # may take over a bias add / an activation after it
    fusable_activation: ClassVar[Optional[str]] = None  # the activation this op is, if any
    fusable_mask: ClassVar[Optional[str]] = None  # the gradient mask this op is, if any

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind is None:  # a shared base (a shape rule for a family), not an op of its own
            return
        prev = _REGISTRY.get(kind)
        if prev is not None and (prev.__module__, prev.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(f"op kind {kind!r} of {cls.__module__}.{cls.__qualname__} is already "
                            f"registered by {prev.__module__}.{prev.__qualname__}")
        _REGISTRY[kind] = cls

    def infer(self, *inputs: Spec) -> Spec:
        raise NotImplementedError(f"{type(self).__name__}.infer")

    def forward(self, xp, *arrays):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def gradient(self, node: Node, out_grad: Node) -> List[Optional[Node]]:
        raise NotImplementedError(f"op {self.kind!r} ({type(self).__name__}) has no gradient")

    def cost(self, node: Node) -> Cost:
        return Cost()

    @property
    def overwrites_input(self) -> Optional[int]:
        """The index of an input whose buffer this op writes its result into (an in-place
        variant a pass made), or None: a per-step check or trace then sees a copy of that input
        as it was."""
        return None

    def state_slots(self, node: Node) -> Dict[str, StateSlot]:
        """{session.state key: StateSlot} of the entries this node's `run` writes (none by
        default): checkpoints save and check exactly these. An op that declares any must also
        declare `side_effects`."""
        return {}

    def run(self, ctx, node: Node, arrays: Sequence[Any]):
        """Evaluate the node in a session; `ctx` gives `xp`, `runtime`, `rng` and the session's
        variables and state (see `minigraph.plan.RunContext`)."""
        return self.forward(ctx.xp, *arrays)

    def attrs(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.repr}

    # display ------------------------------------------------------------------------
    def display_kind(self, node: Node) -> str:
        """The kind a person would name (e.g. 'linear' for a matmul by a weight variable)."""
        return self.kind

    def label(self, node: Node) -> str:
        """The text of the node's box in a diagram (variables folded in where they matter)."""
        return self.display_kind(node).replace("_", " ")

    def short_label(self, node: Node) -> str:
        """A short name for a column heading of a collapsed block ('3×3', '3×3 max pool')."""
        return self.kind.replace("_", " ")

    def consumer_label(self, node: Node) -> str:
        """The label a helper (role 'helper', e.g. a dropout mask) gives the op that applies it."""
        return self.names_consumer or self.kind

    def activation_name(self) -> Optional[str]:
        """The activation this op applies to its result, as diagrams print it ('ReLU'), or None."""
        return None

    # epilogue fusion (see minigraph.passes.fusion) ------------------------------------
    def with_bias(self, node: Node, bias: Node) -> Optional["Op"]:
        """The op that computes node's value plus `bias` from node's inputs and the bias as an
        extra input, or None when it cannot (only ops with `fuses_epilogue`)."""
        return None

    def with_activation(self, name: str) -> Optional["Op"]:
        """This op followed by the activation `name` ('relu'), or None when it cannot."""
        return None

    # specialisation (see minigraph.passes.specialize) -----------------------------------
    def specialize(self, node: Node, inputs: Sequence[Node]):
        """(op, input nodes) computing node's value more simply given `inputs` (node's inputs
        in the graph being rewritten, some of them constants), or None."""
        return None

    # backward fusion (see minigraph.passes.backward) ------------------------------------
    def with_relu_mask(self, index: int) -> Optional["Op"]:
        """This op reading input `index` times (y > 0), with y as a new last input (so a
        relu_grad(g, y) feeding that input folds into it), or None when it cannot."""
        return None

    def summed_channels(self, node: Node) -> Optional[Node]:
        """The (N, C, H, W) input that `node` sums over batch and space into (C,) (a bias
        gradient), or None when `node` is no such sum."""
        return None

    def with_bias_gradient(self) -> Optional["Op"]:
        """For a filter gradient reading the output gradient g as input 1: the op that also sums g
        over batch and space. Its result is (F, K + 1): the filter gradient flattened to (F, K),
        the bias gradient as the last column. None when it cannot."""
        return None

    def with_input_reused(self) -> Optional["Op"]:
        """This op writing its result into its first input's buffer (the backward pass proves
        nothing reads that buffer afterwards), or None when it cannot."""
        return None

    def with_accumulator(self) -> Optional["Op"]:
        """This op adding its result to an extra last input, written into that input's buffer
        (the backward pass proves nothing reads it afterwards): a gradient sum accumulated
        where it is produced. None when it cannot."""
        return None


def constant_value(node: Node):
    """The value of a constant node, else None."""
    return node.op.value if isinstance(node.op, Constant) else None


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
    return graph.add_node(Constant(_frozen(literal_array(value, ref))), [], "Const")


def literal_array(value, ref: Optional[np.dtype]) -> np.ndarray:
    """A Python number or array used beside nodes, as an array: in the nodes' dtype `ref` when
    both are numeric (and `ref` is floating or `value` is not) and every value survives the
    cast, else in its own dtype. `x * 1e300` on float32 x is an ArgumentError, not `x * inf`."""
    arr = np.asarray(value)
    if ref is not None and arr.dtype.kind in "biuf" and (ref.kind == "f" or arr.dtype.kind != "f"):
        arr = checked_cast(np, arr, ref, f"the constant {_short(value)} used with a node that")
    return arr


def _short(value) -> str:
    text = repr(value) if np.ndim(value) == 0 else f"array of shape {np.shape(value)}"
    return text if len(text) <= 60 else text[:57] + "..."


def _frozen(value) -> np.ndarray:
    arr = np.array(value, copy=True)
    arr.setflags(write=False)
    return arr


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


def _pretty(name: str) -> str:
    from .text import pretty
    return pretty(name)


@dataclasses.dataclass(frozen=True, eq=False)
class Placeholder(Op):
    """A value fed at run time. Never equal to another placeholder."""

    kind: ClassVar[str] = "placeholder"
    __eq__, __hash__ = object.__eq__, object.__hash__
    pure: ClassVar[bool] = False
    foldable: ClassVar[bool] = False
    feedable: ClassVar[bool] = True
    category: ClassVar[str] = "input"
    shape: tuple
    dtype: np.dtype

    def infer(self) -> Spec:
        return Spec(self.shape, self.dtype)

    def run(self, ctx, node, arrays):
        from .errors import FeedError
        raise FeedError(f"placeholder {node.name!r} {fmt(node.shape)} was not fed")

    def gradient(self, node, out_grad):
        return []

    def label(self, node):
        return _pretty(node.name)


@dataclasses.dataclass(frozen=True)
class PlaceholderWithDefault(Op):
    """A placeholder that takes its input's value when not fed."""

    kind: ClassVar[str] = "placeholder_with_default"
    view: ClassVar[bool] = True
    feedable: ClassVar[bool] = True
    category: ClassVar[str] = "variable"
    role: ClassVar[str] = "param"
    shape: tuple

    def infer(self, default: Spec) -> Spec:
        if not shapes_compatible(self.shape, default.shape):
            raise ShapeError(f"default of shape {fmt(default.shape)} does not fit {fmt(self.shape)}")
        return Spec(self.shape, default.dtype)

    def forward(self, xp, default):
        return default

    def gradient(self, node, out_grad):
        return [out_grad]


@dataclasses.dataclass(frozen=True, eq=False)
class Variable(Op):
    """A trainable (or not) value that lives in the session, initialised from `initial_value`.
    Two variables are never equal ops, whatever their values."""

    kind: ClassVar[str] = "variable"
    __eq__, __hash__ = object.__eq__, object.__hash__
    pure: ClassVar[bool] = False
    foldable: ClassVar[bool] = False
    returns_state: ClassVar[bool] = True
    category: ClassVar[str] = "variable"
    role: ClassVar[str] = "param"
    initial_value: np.ndarray = dataclasses.field(repr=False)
    trainable: bool = True

    def infer(self) -> Spec:
        return Spec(self.initial_value.shape, self.initial_value.dtype)

    def run(self, ctx, node, arrays):
        return ctx.read_variable(node)

    def gradient(self, node, out_grad):
        return []

    def label(self, node):
        return f"{_pretty(node.name)} {_dims(node.shape)}"


@dataclasses.dataclass(frozen=True, eq=False)
class Constant(Op):
    """A fixed array baked into the graph. Two constants are equal ops exactly when their
    dtypes, shapes and bytes are equal (what common-subexpression elimination merges)."""

    kind: ClassVar[str] = "constant"
    returns_state: ClassVar[bool] = True  # the session keeps one device copy and hands it out
    category: ClassVar[str] = "variable"
    role: ClassVar[str] = "param"
    value: np.ndarray = dataclasses.field(repr=False)

    def _key(self):
        key = self.__dict__.get("_digest")
        if key is None:
            v = np.ascontiguousarray(self.value)
            key = (v.dtype.str, v.shape, hashlib.blake2b(v.tobytes(), digest_size=16).digest())
            object.__setattr__(self, "_digest", key)
        return key

    def __eq__(self, other):
        if not isinstance(other, Constant):
            return NotImplemented
        return self is other or (self._key() == other._key()
                                 and np.ascontiguousarray(self.value).tobytes()
                                 == np.ascontiguousarray(other.value).tobytes())

    def __hash__(self):
        return hash(self._key())

    def infer(self) -> Spec:
        return Spec(self.value.shape, self.value.dtype)

    def run(self, ctx, node, arrays):
        return ctx.constant(node)

    def forward(self, xp, *arrays):
        return xp.asarray(self.value)

    def gradient(self, node, out_grad):
        return []

    def label(self, node):
        if self.value.ndim == 0:  # a scalar shows its value
            return f"{_pretty(node.name)} {self.value.item():g}" if self.value.dtype.kind in "biuf" else _pretty(node.name)
        return f"{_pretty(node.name)} {_dims(node.shape)}"


def _dims(shape) -> str:
    from .text import dims
    return dims((None,) + tuple(shape))


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
    """A value that persists in the session across runs (weights), starting at `initial_value`
    (numbers or bools: strings, None or other objects are an ArgumentError)."""
    value = np.array(initial_value, dtype=None if dtype is None else as_dtype(dtype), copy=True)
    check_numeric(value.dtype, f"variable {name!r}" if name else "variable")
    value.setflags(write=False)
    graph = graph_of(())
    return graph.add_node(Variable(value, as_bool(trainable, "variable: trainable")), [], name or "variable")


def constant(value, dtype=None, name: Optional[str] = None) -> Node:
    """A fixed array in the graph (its dtype kept unless `dtype` is given), of numbers or bools:
    strings, None or other objects are an ArgumentError."""
    arr = np.array(value, dtype=None if dtype is None else as_dtype(dtype), copy=True)
    check_numeric(arr.dtype, f"constant {name!r}" if name else "constant")
    arr.setflags(write=False)
    graph = graph_of(())
    return graph.add_node(Constant(arr), [], name or "Const")
