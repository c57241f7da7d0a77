"""ONNX names as minigraph scopes.

minigraph names hold letters, digits, '_', '.' and '-', and scopes nest with '/'. ONNX names
are free text; exporters give them structure in one of three ways, each read here:

- '/'-separated paths (PyTorch's TorchScript exporter, minigraph itself):
  '/inception1/branch1/conv/Conv' -> scope 'inception1/branch1/conv', name 'Conv';
- PyTorch's dynamo exporter: flat node names ('node_conv2d_1') with the module path in the
  node's metadata ('pkg.torch.onnx.name_scopes', else 'namespace'), each level a full
  dotted path: ['', 'blocks', 'blocks.0', 'blocks.0.branch1', 'conv2d_1'] -> scope
  'blocks/blocks.0/branch1' (each level's own name, an index keeping its parent's, as the
  TorchScript exporter writes them), name 'node_conv2d_1';
- '.'-separated paths ('features.0.conv'), when a name has no '/'.

Other characters become '_'. Models minigraph wrote are read with '/' alone, so names come
back exactly as they were exported.
"""
from __future__ import annotations

import ast
import re
from typing import List, Optional, Tuple

_BAD = re.compile(r"[^A-Za-z0-9_.\-]")


def clean(part: str) -> str:
    """One name part with the characters minigraph does not allow replaced by '_'."""
    return _BAD.sub("_", part.strip()) or "_"


def split_path(name: str, dots: bool = True) -> List[str]:
    """'/a/b.c/d' -> ['a', 'b.c', 'd']; without '/', 'a.b.c' -> ['a', 'b', 'c'] when `dots`."""
    if "/" in name or not dots:
        parts = name.split("/")
    else:
        parts = name.split(".")
    return [clean(p) for p in parts if p.strip()]


def metadata_scope(node) -> Optional[List[str]]:
    """The module path PyTorch's dynamo exporter stores in a node's metadata, or None."""
    meta = {p.key: p.value for p in node.metadata_props}
    raw = meta.get("pkg.torch.onnx.name_scopes")
    if raw:
        try:
            scopes = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            scopes = None
        if isinstance(scopes, (list, tuple)) and all(isinstance(s, str) for s in scopes):
            return _own_names(scopes[:-1])
    raw = meta.get("namespace")
    if raw:
        return _own_names([seg.partition(":")[0].strip() for seg in raw.split("/")][:-1])
    return None


def _own_names(paths: List[str]) -> List[str]:
    """Full dotted module paths, outermost first -> each level's own name ('blocks.0.branch1'
    under 'blocks.0' -> 'branch1'; an index keeps its parent's name: 'blocks.0')."""
    out, parent = [], ""
    for path in (p.strip() for p in paths):
        if not path:
            continue
        own = path[len(parent) + 1:] if parent and path.startswith(parent + ".") else path
        if own.isdigit() and parent:
            own = parent.rpartition(".")[2] + "." + own
        out.append(clean(own))
        parent = path
    return out


def node_path(node, index: int, dots: bool = True) -> Tuple[List[str], str]:
    """(scope parts, name) for an ONNX node, the `index`-th of its graph."""
    name = node.name.strip()
    if name and "/" in name:
        parts = split_path(name, dots)
        return parts[:-1], parts[-1]
    scope = metadata_scope(node)
    if scope is not None:
        return scope, clean(name or f"{node.op_type}_{index}")
    if name:
        parts = split_path(name, dots)
        return parts[:-1], parts[-1]
    return [], clean(node.op_type)


def tensor_leaf(name: str, dots: bool = True) -> str:
    """The last part of a tensor's name ('features.0.conv.weight' -> 'weight')."""
    parts = split_path(name, dots)
    return parts[-1] if parts else "tensor"


__all__ = ["clean", "split_path", "metadata_scope", "node_path", "tensor_leaf"]
