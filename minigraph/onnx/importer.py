"""`mg.onnx.load`: an ONNX model file as a minigraph graph with a session holding its weights.

    model = mg.onnx.load("resnet.onnx")
    model.inputs, model.outputs             # {ONNX name: node}
    probs = model.run(batch)["probs"]       # or model.session.run(node, feed={...})
    mg.summary(list(model.outputs.values()))

Each ONNX node is built by its row of `table.ROWS` with minigraph's public builders, inside
the name scope its ONNX name (or PyTorch's module metadata) spells (`names.py`). Float
initializers read as tensors become trainable variables placed with their first reader
(`features.0.conv.weight` read by '/features.0/conv/Conv' becomes
'features.0/conv/weight'); initializers and Constant outputs read as shapes or axes stay
plain arrays. So an imported model is an ordinary graph: it runs, renders, summarises and
differentiates like one built in Python, and can be fine-tuned.

Before anything is built, the whole file is checked: a file that is not a valid ONNX model
is an `OnnxFileError`; every op type without a row (and every use of a supported type that
cannot be converted) is listed in one `UnsupportedOpError`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from minigraph.errors import ShapeError
from minigraph.graph import Graph, Node
from minigraph.op import constant, placeholder, variable

from . import names, table
from .errors import OnnxFileError, UnsupportedOpError
from .proto import attributes, require_onnx, static_shape, to_array

DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclasses.dataclass
class OnnxModel:
    """An imported ONNX model: its graph, inputs and outputs by ONNX name, every ONNX tensor
    that became a node, the variables made from initializers, and a session holding them."""

    path: str
    graph: Graph
    session: object
    inputs: Dict[str, Node]
    outputs: Dict[str, Node]
    tensors: Dict[str, Node]
    weights: Dict[str, Node]
    opset: int
    producer: str

    def run(self, *arrays, **named) -> Dict[str, np.ndarray]:
        """{output name: array} for the inputs given in order (`arrays`) or by ONNX name."""
        if len(arrays) > len(self.inputs):
            raise TypeError(f"{len(arrays)} arrays given for {len(self.inputs)} inputs {list(self.inputs)}")
        feed = dict(zip(self.inputs.values(), arrays))
        for name, value in named.items():
            if name not in self.inputs:
                raise KeyError(f"no input named {name!r}; inputs: {list(self.inputs)}")
            feed[self.inputs[name]] = value
        values = self.session.run(list(self.outputs.values()), feed)
        return dict(zip(self.outputs, values))

    def __repr__(self) -> str:
        return (f"<OnnxModel {os.path.basename(self.path)!r} opset {self.opset}: {len(self.graph)} nodes, "
                f"inputs {list(self.inputs)}, outputs {list(self.outputs)}>")


class ImportContext:
    """What an import rule reads: the current ONNX node's attributes and name, its inputs as
    minigraph nodes (`value`) or as arrays known at load time (`static`), and helpers that
    make variables."""

    def __init__(self, graph: Graph, opset: int, exact_names: bool, consumers: Dict[str, int]):
        self.graph = graph
        self.opset = opset
        self.exact_names = exact_names  # minigraph wrote the file: '/' paths alone, as exported
        self.tensors: Dict[str, Node] = {}
        self.weights: Dict[str, Node] = {}
        self._static: Dict[str, Tuple[np.ndarray, bool]] = {}  # name -> (value, is an initializer)
        self._consumers = consumers
        self.attrs: dict = {}
        self.leaf = ""

    # the node being built --------------------------------------------------------------
    @staticmethod
    def attrs_of(node) -> dict:
        """{name: value} of `node`'s attributes."""
        return attributes(node)

    def begin(self, node, leaf: str) -> None:
        self.attrs = self.attrs_of(node)
        self.leaf = leaf

    @staticmethod
    def given(node, index: int) -> bool:
        """Whether optional input `index` of `node` is present."""
        return len(node.input) > index and bool(node.input[index])

    # static values ------------------------------------------------------------------
    def set_static(self, name: str, value: np.ndarray, initializer: bool = False) -> None:
        self._static[name] = (np.asarray(value), initializer)

    def is_static(self, name: str) -> bool:
        return name in self._static

    def static(self, name: str) -> np.ndarray:
        """The value of an initializer or Constant output; OnnxFileError for a computed tensor."""
        if name not in self._static:
            raise OnnxFileError(f"tensor {name!r} must be known when the model is loaded (an initializer "
                                "or a Constant), but it is computed")
        return self._static[name][0]

    def static_ints(self, name: str) -> list:
        """An integer initializer or Constant (shapes, pads, axes: int64 in ONNX) as a flat list of
        ints; OnnxFileError for another dtype (a float 2.5 would have been cut to 2)."""
        value = np.asarray(self.static(name))
        if value.dtype.kind not in "iu":
            raise OnnxFileError(f"tensor {name!r} must hold integers (int64), got {value.dtype}")
        return [int(v) for v in value.ravel()]

    def static_shape(self, name: str, required: bool = True):
        if name in self._static:
            return self._static[name][0].shape
        if required:
            self.static(name)
        return None

    # tensors as nodes ------------------------------------------------------------------
    def value(self, name: str, trainable: bool = True) -> Node:
        """The node holding tensor `name`: built already, or made now from an initializer (a
        variable, trainable unless told otherwise, when it is floating point) or a Constant (a
        constant)."""
        node = self.tensors.get(name)
        if node is not None:
            return node
        if name not in self._static:
            raise OnnxFileError(f"tensor {name!r} is read before any node writes it")
        value, initializer = self._static[name]
        if initializer and value.dtype.kind == "f":
            node = self.weight(name, trainable=trainable)
        else:
            with self._home(name):
                node = constant(value, name=names.tensor_leaf(name, not self.exact_names))
            self.tensors[name] = node
        return node

    def shape(self, name: str):
        return self.value(name).shape

    def is_weight(self, name: str) -> bool:
        """A floating-point initializer that only one node reads (safe to store transformed)."""
        value = self._static.get(name)
        return (value is not None and value[1] and value[0].dtype.kind == "f" and name not in self.tensors
                and self._consumers.get(name, 0) == 1)

    def weight(self, name: str, transform: Optional[Callable] = None, trainable: bool = True) -> Node:
        """A variable made from initializer `name` (its value passed through `transform`)."""
        value = self._static[name][0]
        if transform is not None:
            value = np.ascontiguousarray(transform(value))
        with self._home(name):
            node = variable(value, name=names.tensor_leaf(name, not self.exact_names), trainable=trainable)
        self.tensors[name] = node
        self.weights[name] = node
        return node

    def _home(self, name: str):
        """Where a node made from tensor `name` goes: its own '/' path for files minigraph wrote,
        else the scope of the node reading it first (the current scope)."""
        if not self.exact_names:
            return contextlib.nullcontext()
        scope = "/".join(names.split_path(name, dots=False)[:-1])
        return self.graph.absolute_scope(scope, unique=False)


def read(path):
    """The ModelProto in `path`, checked by ONNX's checker; OnnxFileError when it is not one."""
    onnx = require_onnx()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise OnnxFileError(f"no ONNX file at {path}")
    try:
        model = onnx.load(path)
    except Exception as exc:  # noqa: BLE001 - protobuf's decode errors have no common public base
        raise OnnxFileError(f"{path} is not an ONNX model: {type(exc).__name__}: {exc}") from None
    weights = {t.name for t in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name not in weights and not vi.type.tensor_type.HasField("shape"):
            raise OnnxFileError(f"{path}: input {vi.name!r} has no shape (minigraph needs its rank and sizes)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - onnx.checker.ValidationError and C++ errors
        try:  # outputs written without shapes fail the checker; shape inference supplies them
            model = onnx.shape_inference.infer_shapes(model)
            onnx.checker.check_model(model)
        except Exception:  # noqa: BLE001
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OnnxFileError(f"{path} is not a valid ONNX model: {first}") from None
    return model


@contextlib.contextmanager
def _about(path: str, node=None, index: int = 0):
    """Errors of the file raised inside say which file (and which ONNX node) they are about."""
    try:
        yield
    except (ShapeError, OnnxFileError) as exc:
        where = "" if node is None else f" {node.op_type} node {node.name or f'#{index}'!r}:"
        raise type(exc)(f"{path}:{where} {exc}") from None


def model_opset(model) -> int:
    for o in model.opset_import:
        if o.domain in DEFAULT_DOMAINS:
            return int(o.version)
    raise OnnxFileError("the model imports no version of the default ONNX domain")


def unsupported(model, ctx: ImportContext) -> Dict[str, List[str]]:
    """{op type or reason: node names} of the nodes that cannot be imported."""
    problems: Dict[str, List[str]] = {}
    for i, node in enumerate(model.graph.node):
        row = table.LOADS.get(node.op_type) if node.domain in DEFAULT_DOMAINS else None
        if row is None:
            reason = node.op_type if node.domain in DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"
        else:
            reason = row.load_check(node, ctx) if row.load_check is not None else None
        if reason:
            problems.setdefault(reason, []).append(node.name or f"#{i} ({node.op_type})")
    return problems


def load(path, backend: Optional[str] = None, seed: int = 0) -> OnnxModel:
    """Import the ONNX model at `path`: a new graph, its inputs as placeholders (unknown or
    named dimensions as None), a session (`backend`, `seed` as `mg.Session`'s) holding the
    initializers as variables. See the module docstring for names and checks."""
    from minigraph.session import Session

    proto = read(path)
    path = os.fspath(path)
    opset = model_opset(proto)
    g = proto.graph
    consumers: Dict[str, int] = {}
    for node in g.node:
        for name in set(node.input):
            consumers[name] = consumers.get(name, 0) + 1
    graph = Graph()
    ctx = ImportContext(graph, opset, proto.producer_name == "minigraph", consumers)
    with _about(path):
        for init in g.initializer:
            ctx.set_static(init.name, to_array(init), initializer=True)
    for i, node in enumerate(g.node):  # Constant outputs are known now: the checks below and the rules read them
        row = table.LOADS.get(node.op_type) if node.domain in DEFAULT_DOMAINS else None
        if row is not None and row.static_value is not None and node.output:
            with _about(path, node, i):
                value = row.static_value(node, ctx)
            if value is not None:
                ctx.set_static(node.output[0], value, initializer=False)
    with _about(path):
        problems = unsupported(proto, ctx)
    if problems:
        raise UnsupportedOpError("cannot import", problems, path)

    inputs: Dict[str, Node] = {}
    with graph:
        for vi in g.input:
            if ctx.is_static(vi.name):
                continue  # an initializer listed as an input (IR < 4): a weight
            with _about(path):
                dtype, shape = static_shape(vi, "input")
            if shape is None or dtype is None:
                raise OnnxFileError(f"{path}: input {vi.name!r} has no {'shape' if dtype else 'type'}")
            inputs[vi.name] = ctx.tensors[vi.name] = placeholder(shape, dtype, name=names.clean(vi.name.replace("/", "_")))
        for i, node in enumerate(g.node):
            scope, leaf = names.node_path(node, i, dots=not ctx.exact_names)
            where = graph.absolute_scope("/".join(scope), unique=False) if scope else contextlib.nullcontext()
            with _about(path, node, i), where:
                ctx.begin(node, leaf)
                built = table.LOADS[node.op_type].load(node, ctx)
            for name, out in zip(node.output, built):
                if name:
                    ctx.tensors[name] = out
        outputs = {vi.name: ctx.value(vi.name) for vi in g.output}
    session = Session(graph, backend=backend, seed=seed)
    return OnnxModel(path, graph, session, inputs, outputs, dict(ctx.tensors), dict(ctx.weights), opset,
                     f"{proto.producer_name} {proto.producer_version}".strip())


__all__ = ["load", "read", "OnnxModel", "ImportContext", "unsupported", "model_opset"]
