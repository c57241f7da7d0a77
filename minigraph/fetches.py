"""Fetch structures: any nesting of lists, tuples, namedtuples and dicts of nodes.

    flat, rebuild = flatten_fetches({"loss": loss, "grads": [gw, gb]})
    rebuild(values)  # {"loss": v0, "grads": [v1, v2]}
"""
from __future__ import annotations

from typing import Any, Callable, List, Tuple

from .graph import Node


def flatten_fetches(fetches) -> Tuple[List[Node], Callable[[List[Any]], Any]]:
    """The nodes of `fetches` in order, and a function that puts values back in its structure.
    Anything else than a node, list, tuple (namedtuple) or dict is a TypeError naming where it is."""
    flat: List[Node] = []

    def walk(item, path: str):
        if isinstance(item, Node):
            flat.append(item)
            return len(flat) - 1
        if isinstance(item, dict):
            return (dict, [(k, walk(v, f"{path}[{k!r}]")) for k, v in item.items()])
        if isinstance(item, (list, tuple)):
            return (type(item), [walk(v, f"{path}[{i}]") for i, v in enumerate(item)])
        raise TypeError(f"fetches must be nodes (or lists, tuples, namedtuples and dicts of nodes), "
                        f"got {type(item).__name__} at fetches{path}")

    shape = walk(fetches, "")

    def build(spec, values):
        if isinstance(spec, int):
            return values[spec]
        kind, items = spec
        if kind is dict:
            return {k: build(v, values) for k, v in items}
        parts = [build(v, values) for v in items]
        if kind in (list, tuple):
            return kind(parts)
        if hasattr(kind, "_fields"):  # a namedtuple
            return kind(*parts)
        return kind(parts)

    return flat, lambda values: build(shape, values)


__all__ = ["flatten_fetches"]
