"""`mg.onnx.export`: a minigraph inference graph as an ONNX model file.

    mg.onnx.export(net.logits, "googlenet.onnx", session=sess)           # one output
    mg.onnx.export({"logits": net.logits, "probs": net.probs}, path, session=sess, opset=17)

What the fetches need is written, each node by its row of `table.ROWS`, in graph order:
placeholders become graph inputs, variables initializers holding the session's current
values, other nodes ONNX nodes named as the minigraph nodes are (scopes become '/' paths).
The graph is the inference graph: a placeholder with a default takes its default, dropout is
the identity. Nodes no output needs after that (a `training` switch) are dropped. Every
kind without an ONNX counterpart is reported in one `UnsupportedOpError` before anything is
written; the model passes ONNX's checker (with shape inference) and is written atomically.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from minigraph.atomic_file import write_atomic_or_raise
from minigraph.checks import is_int
from minigraph.graph import Node

from . import table
from .errors import OnnxError, OnnxExportError, UnsupportedOpError
from .proto import from_array, require_onnx, value_info

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax/LogSoftmax take a single axis from opset 13 on
BATCH = "batch"  # the name of a dynamic batch dimension


class ExportContext:
    """What an export rule writes with: tensors of the nodes already written, ONNX nodes,
    initializers and graph inputs. Tensor names are the minigraph node names (or the names
    asked for the graph's outputs)."""

    def __init__(self, opset: int, session, output_names: Dict[Node, str], dims: Callable,
                 reserved: Sequence[str] = ()):
        self.opset = opset
        self.session = session
        self.nodes: List = []
        self.initializers: Dict[str, object] = {}
        self.inputs: List = []
        self._tensor: Dict[Node, str] = {}
        self._applied: Dict[Node, Callable] = {}
        self._output_names = output_names
        self._used: set = set(output_names.values()) | set(reserved)
        self._dims = dims

    # names --------------------------------------------------------------------------
    def fresh(self, name: str) -> str:
        """`name`, or `name_1`, `name_2`, ... when it is taken (and reserve it)."""
        base, i = name, 0
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    def tensor(self, node: Node) -> str:
        """The ONNX tensor holding `node`'s value (the node must be written already)."""
        try:
            return self._tensor[node]
        except KeyError:
            if node in self._applied:
                raise UnsupportedOpError("cannot export", {f"{node.kind} read other than by a product": [node.name]}) from None
            raise OnnxError(f"internal: {node.name!r} read before it was written") from None

    def bind(self, node: Node, tensor: str) -> None:
        """`node`'s value is the existing tensor `tensor`."""
        self._tensor[node] = tensor

    def mark_applied(self, node: Node, apply: Callable) -> None:
        """`node` (e.g. a dropout mask) has no tensor of its own: a product `x * node` is
        written by `apply(x, product, ctx)`."""
        self._applied[node] = apply

    def applied(self, node: Node) -> Optional[Callable]:
        """The writer `mark_applied` registered for `node`, or None."""
        return self._applied.get(node)

    # writing ------------------------------------------------------------------------
    def emit(self, op_type: str, inputs: Sequence[str], node: Node, attrs: Optional[dict] = None,
             suffix: Optional[str] = None) -> str:
        """Add an ONNX node computing `node`'s value from the tensors `inputs` and return its
        output tensor. With `suffix`, the node is an intermediate step named after `node`
        (`<name>_<suffix>`) and `node`'s value is not bound."""
        onnx = require_onnx()
        if suffix is None:
            out = self._output_names.get(node) or self.fresh(node.name)
            name = node.name
        else:
            out = name = self.fresh(f"{node.name}_{suffix}")
        self.nodes.append(onnx.helper.make_node(op_type, list(inputs), [out], name=name, **(attrs or {})))
        if suffix is None:
            self._tensor[node] = out
        return out

    def initializer(self, value: np.ndarray, name: str) -> str:
        """Add an initializer holding `value` and return its name (made unique)."""
        name = self.fresh(name)
        self.initializers[name] = from_array(np.asarray(value), name)
        return name

    def graph_input(self, node: Node) -> None:
        """A placeholder as a graph input (dynamic dimensions named, see `export`)."""
        name = self.fresh(node.name)
        self.inputs.append(value_info(name, node.dtype, self._dims(node.shape)))
        self._tensor[node] = name

    def variable_value(self, node: Node) -> np.ndarray:
        """The value a variable has in the session (its initial value without one)."""
        if self.session is None:
            return np.asarray(node.op.initial_value)
        return self.session.get_value(node)

    def activation_type(self, name: str) -> str:
        return table.ACTIVATIONS[name]


def _named_outputs(fetches) -> List[Tuple[str, Node]]:
    if isinstance(fetches, Node):
        return [(fetches.name, fetches)]
    if isinstance(fetches, dict):
        items = list(fetches.items())
    elif isinstance(fetches, (list, tuple)):
        items = [(n.name if isinstance(n, Node) else None, n) for n in fetches]
    else:
        items = [(None, fetches)]
    if not items or not all(isinstance(n, Node) for _, n in items):
        raise TypeError("export expects a node, a list of nodes or a dict {output name: node}")
    names = [str(k) for k, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"export: output names must differ, got {names}")
    return [(str(k), n) for k, n in items]


def newest_opset() -> int:
    """The newest opset export writes: the newest the installed onnx package knows."""
    return int(require_onnx().defs.onnx_opset_version())


def check_opset(opset) -> int:
    """`opset` as an int, or OnnxExportError saying which opsets export writes."""
    newest = newest_opset()
    if not is_int(opset) or not MIN_OPSET <= opset <= newest:
        raise OnnxExportError(f"opset must be an int from {MIN_OPSET} (Softmax's one-axis semantics) to {newest} "
                              f"(the newest the installed onnx package knows), got {opset!r}")
    return int(opset)


def check_batch_size(batch_size) -> int:
    """`batch_size` as an int, or OnnxExportError when it is not an integer >= 1."""
    if not is_int(batch_size) or batch_size < 1:
        raise OnnxExportError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def unsupported(nodes: Sequence[Node], opset: int) -> Dict[str, List[str]]:
    """{kind or reason: node names} of the nodes that cannot be exported."""
    problems: Dict[str, List[str]] = {}
    for n in nodes:
        row = table.EXPORTS.get(n.kind)
        reason = f"{n.kind} (no ONNX counterpart)" if row is None else (
            row.export_check(n, opset) if row.export_check is not None else None)
        if reason:
            problems.setdefault(reason, []).append(n.name)
    return problems


def build_model(fetches, session=None, opset: int = DEFAULT_OPSET, dynamic_batch: bool = True,
                batch_size: int = 1, doc: str = ""):
    """The ONNX ModelProto `export` writes (see there), checked by ONNX's checker."""
    onnx = require_onnx()
    opset = check_opset(opset)
    batch_size = check_batch_size(batch_size)
    outputs = _named_outputs(fetches)
    graph = outputs[0][1].graph
    if session is not None and session.graph is not graph:
        raise ValueError("export: the session runs another graph than the one the fetches belong to")
    nodes = graph.ancestors([n for _, n in outputs])
    problems = unsupported(nodes, opset)
    if problems:
        raise UnsupportedOpError("cannot export", problems)

    def dims(shape):
        return [(BATCH if dynamic_batch else int(batch_size)) if i == 0 and d is None else
                (f"dim{i}" if d is None else d) for i, d in enumerate(shape)]

    first = {}
    for name, node in outputs:
        first.setdefault(node, name)
    ctx = ExportContext(opset, session, first, dims, reserved=[name for name, _ in outputs])
    for node in nodes:
        table.EXPORTS[node.kind].export(node, ctx)
    graph_outputs = []
    for name, node in outputs:
        tensor = ctx.tensor(node)
        if tensor != name:  # an input, a weight, or a node fetched a second time under another name
            tensor = _copy_to(ctx, tensor, name)
        graph_outputs.append(value_info(tensor, node.dtype, dims(node.shape)))
    nodes_out, inits, inputs = _live(ctx, [o.name for o in graph_outputs])
    g = onnx.helper.make_graph(nodes_out, "minigraph", inputs, graph_outputs, initializer=inits, doc_string=doc)
    opsets = [onnx.helper.make_opsetid("", opset)]
    model = onnx.helper.make_model(g, opset_imports=opsets, producer_name="minigraph",
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    from minigraph import __version__
    model.producer_version = __version__
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # noqa: BLE001 - the checker's own error types vary between versions
        raise OnnxError(f"internal: the exported model fails ONNX's checker: {exc}") from None
    return model


def _copy_to(ctx: ExportContext, tensor: str, name: str) -> str:
    """An Identity writing `tensor` as the graph output `name` (reserved for it in advance)."""
    onnx = require_onnx()
    ctx.nodes.append(onnx.helper.make_node("Identity", [tensor], [name], name=f"{name}_output"))
    return name


def _live(ctx: ExportContext, outputs: List[str]):
    """The nodes, initializers and inputs the outputs need (nothing dead is written)."""
    needed = set(outputs)
    keep = []
    for n in reversed(ctx.nodes):
        if any(o in needed for o in n.output):
            keep.append(n)
            needed.update(i for i in n.input if i)
    keep.reverse()
    inits = [t for name, t in ctx.initializers.items() if name in needed]
    inputs = [i for i in ctx.inputs if i.name in needed]
    return keep, inits, inputs


def export(fetches, path, session=None, opset: int = DEFAULT_OPSET, dynamic_batch: bool = True,
           batch_size: int = 1) -> str:
    """Write the inference graph behind `fetches` to the ONNX file `path`; returns the path.

    fetches: a node, a list of nodes (output names = node names) or a dict {output name: node}.
    session: whose variable values become the initializers (None: the variables' initial values).
    opset: the ONNX opset, 13 to the newest the installed onnx package knows (default 17).
    dynamic_batch: an unknown (None) first dimension is written as the symbol 'batch'; with
    False, as `batch_size` (an integer >= 1). Other unknown dimensions are symbols 'dim<i>'.
    An opset outside that range or a batch size below 1 is an `OnnxExportError`.
    The file is written atomically with the user's umask (`atomic_file.write_atomic_or_raise`, as
    checkpoints are); an OSError is a one-line `OnnxError` and leaves a previous file intact.
    """
    model = build_model(fetches, session, opset, dynamic_batch, batch_size)
    data = model.SerializeToString()
    return write_atomic_or_raise(os.fspath(path), lambda f: f.write(data), OnnxError)


__all__ = ["export", "build_model", "ExportContext", "unsupported", "check_opset", "check_batch_size", "newest_opset",
           "DEFAULT_OPSET", "MIN_OPSET", "BATCH"]
