"""What the explanation pictures share: the gradient of one class score as graph nodes, the
class choice as a one-hot feed, finding the fed input image, and running a big batch in chunks.

`class_score_gradients(logits, wrt)` adds, once per (logits, wrt) pair and graph, a
placeholder `viz/class_seed` shaped like the logits and the nodes of
d(sum of logits * seed) / d(each of wrt) (`mg.gradients` with the seed as `grad_ys`). Feeding
a one-hot seed (`one_hot_seed`) then selects the class of each example without building
anything new, so explaining many images or classes never grows the graph.
"""
from __future__ import annotations

import weakref
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from minigraph.autodiff import gradients
from minigraph.errors import ArgumentError, FeedError, GraphError, ShapeError
from minigraph.graph import Graph, Node
from minigraph.op import placeholder

ClassIndex = Union[int, Sequence[int], np.ndarray]

# graph -> {(logits index, wrt indices): (seed index, gradient indices)}; indices, not nodes, so
# that the cache holds no reference to the graph and lets it be collected
_BUILT: "weakref.WeakKeyDictionary[Graph, Dict[tuple, Tuple[int, List[int]]]]" = weakref.WeakKeyDictionary()


def check_logits(logits: Node) -> int:
    """The number of classes of `logits` (N, K), or a ShapeError naming the node."""
    if not isinstance(logits, Node):
        raise TypeError(f"logits must be a node, got {type(logits).__name__}")
    if logits.ndim != 2 or logits.shape[1] is None:
        raise ShapeError(f"logits {logits.name!r} must be (batch, classes) with a known number of "
                         f"classes, got shape {logits.shape}")
    return int(logits.shape[1])


def class_score_gradients(logits: Node, wrt: Sequence[Node]) -> Tuple[Node, List[Node]]:
    """(seed, grads): a placeholder shaped like `logits` and, for each node of `wrt`, the node
    d(sum(logits * seed)) / d(node). Built in `logits`' graph on first use, then reused.

    A node of `wrt` that `logits` do not depend on (its gradient, and so any map made from it,
    would be zero everywhere) is a GraphError naming both."""
    check_logits(logits)
    graph = logits.graph
    key = (logits.index,) + tuple(n.index for n in wrt)
    built = _BUILT.setdefault(graph, {})
    if key not in built:
        ancestors = None
        for node in wrt:
            if not isinstance(node, Node):
                raise ArgumentError(f"expected a node to explain, got {node!r}")
            if node.graph is not graph:
                raise GraphError(f"{node.name!r} belongs to another graph than the logits {logits.name!r}")
            ancestors = ancestors or {n.index for n in graph.ancestors([logits])}
            if node.index not in ancestors:
                raise GraphError(f"the logits {logits.name!r} do not depend on {node.name!r}: its "
                                 f"class-score gradient, and any map made from it, would be zero everywhere")
        with graph, graph.name_scope("viz"):
            seed = placeholder(logits.shape, dtype=logits.dtype, name="class_seed")
        grads = gradients(logits, list(wrt), grad_ys=[seed])
        built[key] = (seed.index, [g.index for g in grads])
    seed_index, grad_indices = built[key]
    return graph.nodes[seed_index], [graph.nodes[i] for i in grad_indices]


def class_indices(class_index: ClassIndex, n: int, classes: int) -> np.ndarray:
    """One class per example: an int for all of them, or a sequence of n ints; ValueError when
    a class is outside 0..classes-1 or the count is wrong."""
    idx = np.asarray(class_index)
    if idx.dtype.kind not in "iu":
        raise ValueError(f"class_index must be an int or a sequence of ints, got {class_index!r}")
    idx = np.broadcast_to(idx, (n,)) if idx.ndim == 0 else idx
    if idx.shape != (n,):
        raise ValueError(f"class_index has {idx.size} entries for a batch of {n} examples")
    if idx.size and (idx.min() < 0 or idx.max() >= classes):
        raise ValueError(f"class_index {class_index!r} is outside the {classes} classes (0..{classes - 1})")
    return idx.astype(np.int64)


def one_hot_seed(classes_of: np.ndarray, classes: int, dtype) -> np.ndarray:
    """(n, classes) with a 1 at each example's class: the seed that selects its score."""
    seed = np.zeros((len(classes_of), classes), dtype=dtype)
    seed[np.arange(len(classes_of)), classes_of] = 1
    return seed


def fed_image(feed: dict, node: Node, image: Optional[Node] = None) -> Tuple[Node, np.ndarray]:
    """(placeholder, value): the fed batch of images (N, C, H, W) that `node` is computed from.

    `image` names the placeholder; by default it is the one fed 4-D placeholder among `node`'s
    ancestors. A FeedError says what is missing or ambiguous.
    """
    if image is not None:
        if image not in feed:
            raise FeedError(f"the image placeholder {image.name!r} is not in the feed")
        value = np.asarray(feed[image])
    else:
        ancestors = {n.index for n in node.graph.ancestors([node])}
        found = [(k, np.asarray(v)) for k, v in feed.items()
                 if isinstance(k, Node) and k.index in ancestors and np.ndim(v) == 4]
        if len(found) != 1:
            what = "no fed 4-D placeholder" if not found else \
                "several fed 4-D placeholders (" + ", ".join(repr(k.name) for k, _ in found) + ")"
            raise FeedError(f"cannot tell which input image {node.name!r} explains: {what}; "
                            "pass image=<the placeholder>")
        image, value = found[0]
    if value.ndim != 4:
        raise FeedError(f"the image fed to {image.name!r} must be (N, C, H, W), got shape {value.shape}")
    return image, value


def run_batched(sess, fetches: Sequence[Node], feed: dict, x: Node, batch_size: int,
                desc: Optional[str] = None) -> List[np.ndarray]:
    """`sess.run(fetches, feed)` over the batch fed to `x` in chunks of `batch_size`, the results
    joined along the batch axis; with `desc`, a progress bar (shown on a terminal only)."""
    from tqdm.auto import tqdm
    images = feed[x]
    starts = range(0, len(images), batch_size)
    parts = [sess.run(list(fetches), {**feed, x: images[start:start + batch_size]})
             for start in tqdm(starts, desc=desc, unit="batch", leave=False, disable=None if desc else True)]
    return [np.concatenate([np.asarray(p[i]) for p in parts]) for i in range(len(fetches))]


def check_positive(**values) -> None:
    """ValueError naming the first of `values` that is not a positive int."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def example(index: int, n: int) -> int:
    """`index` checked against a batch of n (negative counts from the end)."""
    if not -n <= index < n:
        raise IndexError(f"example index {index} is outside the fed batch of {n}")
    return index % n


__all__ = ["check_logits", "class_score_gradients", "class_indices", "one_hot_seed", "fed_image", "run_batched",
           "check_positive", "example"]
