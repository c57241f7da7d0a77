"""Model files: a graph and its weights in one .npz, loaded without the code that built it.

    mg.save_model("digits.npz", {"x": net.x}, {"probs": net.probs}, sess, metadata={"classes": [...]})
    model = mg.load_model("digits.npz")
    probs = model.run({"x": images})["probs"]        # or model.session.run(model.outputs["probs"], ...)

What the file holds (plain arrays only: loading never unpickles):

- `meta/format`: the format tag; `meta/graph`: JSON describing every node the outputs need,
  in graph order: its full name, its op's registry kind (`mg.ops.registry()`), its inputs (by
  position in the list), its op's attributes and its shape and dtype; the named inputs and
  outputs; the caller's `metadata`;
- `variables/<name>`: each variable's value in the session when saved (the loaded model's
  variables start there); `arrays/<node>.<field>`: array attributes (a constant's value).

Attributes are written as JSON with tags for what JSON lacks: tuples, NumPy dtypes and scalars,
arrays (by reference to an entry of the archive), non-finite floats. Loading rebuilds each op
from its registered class and checks every node's shape rule against the saved shape, so a
file written by other code, or with ops this process has not defined (a user's own op: import
its module first), is a `ModelFileError` naming the node, never a wrong model. The session's
optimizer state is not saved (a checkpoint, `mg.save`, is for resuming training).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from .checkpoint import read_archive, write_archive
from .errors import ArgumentError, CheckpointError, ModelFileError
from .graph import Graph, Node
from .op import Placeholder, Variable, op_class
from .session import Session
from .spec import Spec, fmt

__all__ = ["save_model", "load_model", "Model", "FORMAT"]

FORMAT = "minigraph-model-1"
_VAR, _ARR, _META = "variables/", "arrays/", "meta/"
Named = Union[Node, Sequence[Node], Mapping[str, Node]]


@dataclasses.dataclass
class Model:
    """A loaded model: its graph, named input and output nodes, a session holding the saved
    weights, and the metadata saved with it."""

    graph: Graph
    inputs: Dict[str, Node]
    outputs: Dict[str, Node]
    session: Session
    metadata: Dict[str, Any]

    def run(self, feed: Mapping, outputs: Union[None, str, Sequence[str]] = None):
        """Run the model: `feed` maps input names (or nodes) to arrays; returns {name: array}
        for every output (or the outputs named: one array for a name, a list for a list).
        A `feed` that is not a mapping (e.g. a bare array) is an ArgumentError naming the
        model's inputs."""
        if not isinstance(feed, Mapping):
            raise ArgumentError(f"Model.run: feed must be a dict of input name -> array, e.g. "
                                f"{{{next(iter(self.inputs), 'x')!r}: images}}, got {type(feed).__name__}; "
                                f"the model's inputs: {', '.join(self.inputs)}")
        resolved = {}
        for key, value in feed.items():
            node = key if isinstance(key, Node) else self.inputs.get(key)
            if node is None:
                raise KeyError(f"no input named {key!r}; the model's inputs: {', '.join(self.inputs)}")
            resolved[node] = value
        if outputs is None:
            return self.session.run(dict(self.outputs), resolved)
        names = [outputs] if isinstance(outputs, str) else list(outputs)
        missing = [n for n in names if n not in self.outputs]
        if missing:
            raise KeyError(f"no output named {missing[0]!r}; the model's outputs: {', '.join(self.outputs)}")
        values = self.session.run([self.outputs[n] for n in names], resolved)
        return values[0] if isinstance(outputs, str) else values


# ---------------------------------------------------------------------------------
# saving


def save_model(path, inputs: Named, outputs: Named, sess: Session,
               metadata: Optional[Dict[str, Any]] = None) -> str:
    """Write the graph `outputs` need and `sess`'s values of its variables to `path` (an .npz),
    atomically (a crash leaves an older file intact). Returns the path written.

    `inputs` and `outputs` are a node, a list of nodes (named by their node names) or a dict
    {name: node}. Every placeholder the outputs need must be among `inputs` (placeholders with
    a default, such as a `training` switch, need not be). `metadata` is any JSON-serialisable
    dict (e.g. class names), returned as `model.metadata`.
    """
    ins, outs = _named(inputs, "inputs"), _named(outputs, "outputs")
    graph = sess.graph
    for what, table in (("input", ins), ("output", outs)):
        for name, node in table.items():
            if not isinstance(node, Node) or node.graph is not graph:
                raise ModelFileError(f"save_model: {what} {name!r} is not a node of the session's graph")
    nodes = graph.ancestors(list(outs.values()) + list(ins.values()))
    for ph in (n for n in nodes if isinstance(n.op, Placeholder) and n not in set(ins.values())):
        raise ModelFileError(f"save_model: the outputs need placeholder {ph.name!r} {fmt(ph.shape)}, "
                             "which is not among the inputs: add it to `inputs`")
    for name, node in ins.items():
        if not node.op.feedable:
            raise ModelFileError(f"save_model: input {name!r} ({node.name!r}) is a {node.kind}, not a placeholder")
    index = {n: i for i, n in enumerate(nodes)}
    arrays: Dict[str, np.ndarray] = {_META + "format": np.array(FORMAT)}
    records = [_record(n, i, index, sess, arrays) for i, n in enumerate(nodes)]
    doc = {"format": FORMAT, "nodes": records,
           "inputs": [[k, index[v]] for k, v in ins.items()], "outputs": [[k, index[v]] for k, v in outs.items()],
           "metadata": metadata or {}}
    try:
        arrays[_META + "graph"] = np.array(json.dumps(doc, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"save_model: metadata must be JSON-serialisable: {exc}") from None
    return write_archive(path, arrays, "model file")


def _named(value: Named, what: str) -> Dict[str, Node]:
    if isinstance(value, Node):
        return {value.name: value}
    if isinstance(value, Mapping):
        table = dict(value)
    else:
        table = {}
        for n in value:
            if not isinstance(n, Node):
                raise TypeError(f"save_model: {what} must be nodes, got {n!r}")
            table[n.name] = n
    if not table:
        raise ValueError(f"save_model: no {what} given")
    for k in table:
        if not isinstance(k, str) or not k:
            raise TypeError(f"save_model: {what} names must be non-empty strings, got {k!r}")
    return table


def _record(node: Node, i: int, index: Dict[Node, int], sess: Session, arrays: Dict[str, np.ndarray]) -> dict:
    """One node as JSON; its array attributes go to `arrays`."""
    attrs = {}
    for f in dataclasses.fields(node.op):
        value = getattr(node.op, f.name)
        if isinstance(node.op, Variable) and f.name == "initial_value":
            key = _VAR + node.name
            arrays[key] = sess.get_value(node)  # the trained value, where the loaded model starts
            attrs[f.name] = {"__array__": key}
            continue
        try:
            attrs[f.name] = _encode(value, f"{_ARR}{i}.{f.name}", arrays)
        except TypeError as exc:
            raise ModelFileError(f"save_model: cannot save attribute {f.name!r} of {node.kind} {node.name!r}: "
                                 f"{exc}") from None
    return {"name": node.name, "kind": node.kind, "inputs": [index[x] for x in node.inputs], "attrs": attrs,
            "shape": list(node.shape), "dtype": node.dtype.str}


def _encode(value, key: str, arrays: Dict[str, np.ndarray]):
    """JSON for an attribute value; tuples, dtypes, NumPy scalars, arrays and non-finite floats tagged."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.dtype):
        return {"__dtype__": value.str}
    if isinstance(value, np.generic):
        return {"__scalar__": _encode(value.item(), key, arrays), "dtype": value.dtype.str}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc":
            raise TypeError(f"arrays of dtype {value.dtype} cannot be saved")
        arrays[key] = np.asarray(value)
        return {"__array__": key}
    if isinstance(value, (tuple, list)):
        items = [_encode(v, f"{key}.{j}", arrays) for j, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v, f"{key}.{k}", arrays) for k, v in value.items()}}
    raise TypeError(f"values of type {type(value).__name__} cannot be saved")


# ---------------------------------------------------------------------------------
# loading


def load_model(path, backend: Optional[str] = None) -> Model:
    """The model saved at `path` by `save_model`: a new graph rebuilt from the op registry, a
    `Session` on `backend` (default as for `mg.Session`) holding the saved weights, and the
    named inputs, outputs and metadata. A missing, corrupt or foreign file, an unknown op kind
    or a node whose shape rule disagrees with the file is a `ModelFileError` (a
    `CheckpointError`) naming the file and the node."""
    path = os.fspath(path)
    try:
        arrays = read_archive(path, "model file")
    except CheckpointError as exc:
        raise ModelFileError(str(exc)) from None
    tag = arrays.get(_META + "format")
    if tag is None or str(tag) != FORMAT:
        hint = " (it is a checkpoint: load it with mg.restore into the graph that wrote it)" \
            if tag is not None and str(tag).startswith("minigraph-checkpoint") else ""
        raise ModelFileError(f"{path}: not a minigraph model file (no {FORMAT!r} format tag){hint}")
    try:
        doc = json.loads(str(arrays[_META + "graph"]))
        records, ins, outs = doc["nodes"], doc["inputs"], doc["outputs"]
        metadata = doc.get("metadata", {})
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: corrupt model description ({type(exc).__name__}: {exc})") from None
    graph = Graph()
    nodes: List[Node] = []
    for i, rec in enumerate(records):
        nodes.append(_rebuild(graph, rec, i, nodes, arrays, path))
    inputs = _endpoints(ins, nodes, "input", path)
    outputs = _endpoints(outs, nodes, "output", path)
    return Model(graph, inputs, outputs, Session(graph, backend=backend), metadata)


def _rebuild(graph: Graph, rec, i: int, built: List[Node], arrays, path: str) -> Node:
    """Node `i` of the file, added to `graph` under its saved name, checked against its saved spec."""
    try:
        name, kind, input_ids = rec["name"], rec["kind"], rec["inputs"]
        attrs, shape, dtype = rec["attrs"], tuple(rec["shape"]), np.dtype(rec["dtype"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: node {i} is corrupt ({type(exc).__name__}: {exc})") from None
    where = f"{path}: node {name!r} ({kind})"
    try:
        cls = op_class(kind)
    except KeyError as exc:
        raise ModelFileError(f"{where}: {exc.args[0]}; if it is your own op, import the module that "
                             "defines it before loading") from None
    if not all(isinstance(j, int) and 0 <= j < i for j in input_ids):
        raise ModelFileError(f"{where}: its inputs {input_ids} must be earlier nodes")
    if not isinstance(name, str) or graph.find(name) is not None:
        raise ModelFileError(f"{where}: the name is repeated or invalid")
    try:
        op = cls(**{k: _decode(v, arrays) for k, v in attrs.items()})
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelFileError(f"{where}: its attributes do not make a {cls.__name__} ({exc})") from None
    inputs = [built[j] for j in input_ids]
    try:
        spec = op.infer(*[x.spec for x in inputs])
    except Exception as exc:  # noqa: BLE001 - a tampered attribute may break a rule anywhere (a stride of 0)
        raise ModelFileError(f"{where}: its shape rule rejects its inputs or attributes: "
                             f"{type(exc).__name__}: {exc}") from None
    spec = Spec(tuple(spec.shape), np.dtype(spec.dtype))
    if spec.shape != shape or spec.dtype != dtype:
        raise ModelFileError(f"{where}: the file says {fmt(shape)} {dtype}, its op gives {fmt(spec.shape)} {spec.dtype}")
    return graph.add_named(op, inputs, name, spec)


def _decode(value, arrays):
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tuple__" in value:
        return tuple(_decode(v, arrays) for v in value["__tuple__"])
    if "__array__" in value:
        arr = np.array(arrays[value["__array__"]], copy=True)
        arr.setflags(write=False)
        return arr
    if "__dtype__" in value:
        return np.dtype(value["__dtype__"])
    if "__scalar__" in value:
        return np.dtype(value["dtype"]).type(_decode(value["__scalar__"], arrays))
    if "__float__" in value:
        return float(value["__float__"])
    if "__dict__" in value:
        return {k: _decode(v, arrays) for k, v in value["__dict__"].items()}
    raise ValueError(f"unknown attribute encoding {sorted(value)}")


def _endpoints(pairs, nodes: List[Node], what: str, path: str) -> Dict[str, Node]:
    try:
        table = {str(name): nodes[j] for name, j in pairs}
        if not all(isinstance(j, int) and not isinstance(j, bool) and 0 <= j < len(nodes) for _, j in pairs):
            raise IndexError("a node index is not an integer in range")
    except (TypeError, ValueError, IndexError) as exc:
        raise ModelFileError(f"{path}: corrupt list of {what}s ({exc})") from None
    if what == "input":
        for name, node in table.items():
            if not node.op.feedable:
                raise ModelFileError(f"{path}: input {name!r} is a {node.kind}, not a placeholder")
    return table
