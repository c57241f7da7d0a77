"""Symbolic reverse-mode differentiation: gradients are new nodes in the same graph.

`gradients(ys, xs)` walks the nodes that lie on a path from `xs` to `ys` in reverse
topological order, asks each op for its input gradients (`op.gradient(node, out_grad)`),
and sums the contributions of every path. The gradient nodes of a node `a/b` are built in
the scope `a/b_grad`, so they can be run, rendered and differentiated like any others.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Union

from .errors import ArgumentError, GraphError, ShapeError
from .graph import Node, graph_of
from .spec import fmt, shapes_compatible

Nodes = Union[Node, Sequence[Node]]


def _as_list(value: Nodes, what: str) -> List[Node]:
    """A node or an iterable of nodes -> a list of nodes; anything else is an ArgumentError
    (a TypeError) naming `what`."""
    if isinstance(value, Node):
        return [value]
    try:
        items = list(value)
    except TypeError:
        raise ArgumentError(f"gradients: {what} must be a node or a list of nodes, got {value!r}") from None
    for v in items:
        if not isinstance(v, Node):
            raise ArgumentError(f"gradients: {what} must be nodes, got {type(v).__name__} {v!r}")
    return items


def gradients(ys: Nodes, xs: Nodes, grad_ys: Optional[Nodes] = None,
              on_gradient: Optional[Callable[[Node, Node], None]] = None,
              stop_gradients: Nodes = ()) -> List[Node]:
    """d(sum of ys)/d(x) for each x in `xs`, as nodes of the same shapes, in the same order.

    `grad_ys` (one node or value per y) weights each y; it defaults to ones. An `x` that
    the ys do not depend on gets a zeros node.

    `stop_gradients`: nodes held constant, as TensorFlow's argument of that name: no gradient
    flows through them to what they depend on, so the results are partial derivatives (one
    of them may itself be an x). Unlike wrapping them in `ops.stop_gradient`, the gradient
    nodes still depend on them normally and can be differentiated again.

    `on_gradient(x, grad)`, if given, is called as soon as x's gradient node is complete,
    while the backward graph is still being built (last layers first), so nodes it adds
    come before the rest of the backward pass in creation order (e.g. an allreduce that
    can then start while earlier layers' gradients are computed).
    """
    from minigraph import ops

    ys = _as_list(ys, "ys")
    xs = _as_list(xs, "xs")
    stops = _as_list(stop_gradients, "stop_gradients")
    graph = graph_of(ys + xs + stops)
    stop_idx = {n.index for n in stops}
    for x in xs:
        if x.dtype.kind != "f":
            raise GraphError(f"gradients: cannot differentiate with respect to {x.name!r} of dtype {x.dtype}")
    for y in ys:
        if y.dtype.kind != "f":  # argmax, comparisons: piecewise constant, no gradient to give
            raise GraphError(f"gradients: {y.kind} {y.name!r} has dtype {y.dtype}; only floating-point "
                             "values have gradients")
    if grad_ys is None:
        grad_ys = [None] * len(ys)
    else:
        grad_ys = [grad_ys] if not isinstance(grad_ys, (list, tuple)) else list(grad_ys)
        if len(grad_ys) != len(ys):
            raise ValueError(f"gradients: {len(grad_ys)} grad_ys for {len(ys)} ys")

    on_path = {n.index for n in graph.ancestors(ys, stop=stops)} & {n.index for n in graph.descendants(xs)}
    on_path = {i for i in on_path if graph.nodes[i].dtype.kind == "f"}
    scopes: Dict[int, str] = {}

    def scope(node: Node):
        """The node's `<name>_grad` scope, one per node for this call."""
        if node.index not in scopes:
            scopes[node.index] = graph.unique_name(node.name + "_grad")
        return graph.absolute_scope(scopes[node.index], unique=False)

    pending: Dict[int, List[Node]] = {}
    for y, gy in zip(ys, grad_ys):
        if y.index not in on_path:
            continue
        with scope(y):
            seed = ops.ones_like(y) if gy is None else _seed(gy, y)
        pending.setdefault(y.index, []).append(seed)

    x_index = {x.index for x in xs}
    final: Dict[int, Node] = {}
    # an x's gradient is complete once every consumer of x on the path has been visited,
    # which (for variables created before the ops that use them) is long before the
    # sweep reaches x itself: sum it then, so `on_gradient` sees it as early as possible
    waiting = {i: sum(1 for c in graph.consumers(graph.nodes[i]) if c.index in on_path)
               for i in x_index if i in on_path}

    def complete(i: int) -> None:
        parts = pending.pop(i, None)
        if not parts:
            return
        x = graph.nodes[i]
        with scope(x):
            final[i] = parts[0] if len(parts) == 1 else ops.add_n(parts)
        if on_gradient is not None:
            on_gradient(x, final[i])

    def visited(node: Node) -> None:
        for x in dict.fromkeys(node.inputs):  # ordered: every process must build the same graph
            if x.index in waiting:
                waiting[x.index] -= 1
                if waiting[x.index] == 0:
                    complete(x.index)

    for i in sorted(on_path, reverse=True):
        node = graph.nodes[i]
        if i in x_index and i not in final:
            complete(i)  # no consumer on the path (x is one of the ys)
        if i in final:
            g = final[i]
        else:
            parts = pending.pop(i, None)
            if not parts:
                visited(node)
                continue
            with scope(node):
                g = parts[0] if len(parts) == 1 else ops.add_n(parts)
        if node.inputs and i not in stop_idx:
            with scope(node):
                in_grads = node.op.gradient(node, g)
            if len(in_grads) != len(node.inputs):
                raise RuntimeError(f"{node.kind}.gradient returned {len(in_grads)} gradients for {len(node.inputs)} inputs")
            for x, gx in zip(node.inputs, in_grads):
                if gx is None or x.index not in on_path:
                    continue
                if not shapes_compatible(gx.shape, x.shape) or gx.dtype != x.dtype:
                    raise ShapeError(f"gradient of {node.kind} {node.name!r} for input {x.name!r}: "
                                     f"got {fmt(gx.shape)} {gx.dtype}, expected {fmt(x.shape)} {x.dtype}")
                pending.setdefault(x.index, []).append(gx)
        visited(node)

    out = []
    for x in xs:
        if x.index in final:
            out.append(final[x.index])
        else:
            with scope(x):
                out.append(ops.zeros_like(x))
            if on_gradient is not None:
                on_gradient(x, out[-1])
    return out


def _seed(gy, y: Node) -> Node:
    from .op import constant

    g = gy if isinstance(gy, Node) else constant(gy, dtype=y.dtype, name="grad_y")
    if not shapes_compatible(g.shape, y.shape) or g.dtype != y.dtype:
        raise ShapeError(f"grad_ys for {y.name!r} has {fmt(g.shape)} {g.dtype}, expected {fmt(y.shape)} {y.dtype}")
    return g
