"""Graph passes: rewrites that run between building a graph and running it.

    opt = mg.optimize(loss)                  # or mg.optimize([logits, loss], feed=[x, y])
    opt.graph, opt.outputs                   # what would run
    opt.mapping[node]                        # each original node's counterpart (if it has one)

Each pass is a small function `Program -> (Program, mapping)` (see `program.py`), testable on
its own; `optimize` applies `DEFAULT_PASSES` in order on a copy of the nodes the outputs
need, so the user's graph is never changed:

- `eliminate_dead_nodes`: only what the outputs need (with fed placeholders as leaves);
- `fold_constants`: pure ops on constants evaluated once;
- `specialize_on_constants`: ops with a simpler form for constant inputs replaced by it (a
  batch norm or dropout whose `training` switch is not fed);
- `eliminate_common_subexpressions`: equal ops on equal inputs merged;
- `fuse_conv_bias_relu`: conv/1x1 conv + bias add + ReLU as one node (`activation="relu"`);
- `fuse_bias_gradients`, `fuse_relu_masks`, `accumulate_in_place` (`backward.py`): a gradient
  graph's bias sums, relu_grad masks and add_n copies folded into the kernels that read them
  (where the runtime's kernels implement them: `passes_for`).

Sessions optimize every plan by default (`mg.Session(g, optimize=False)` turns it off).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, List, Optional, Sequence

from minigraph.graph import Graph, Node

from .backward import accumulate_in_place, fuse_bias_gradients, fuse_relu_masks
from .cse import eliminate_common_subexpressions
from .fold import FOLD_LIMIT, fold_constants
from .fusion import fuse_conv_bias_relu
from .program import SKIP, Builder, Program, compose, rebuild
from .specialize import specialize_on_constants


def eliminate_dead_nodes(prog: Program):
    """Keep only the nodes the outputs need; fed placeholders become plain placeholders."""
    return rebuild(prog)


GENERIC_PASSES = (fold_constants, specialize_on_constants, eliminate_common_subexpressions, fuse_conv_bias_relu)
# The backward fusions make op variants (a relu mask read as an extra input, a filter gradient
# packed with its bias gradient, accumulators) that the CPU kernels apply in each cache-sized
# chunk; a device runtime's library kernels (cuDNN) take the plain ops (`Runtime.fuses_backward`).
BACKWARD_PASSES = (fuse_bias_gradients, fuse_relu_masks, accumulate_in_place)
DEFAULT_PASSES = GENERIC_PASSES + BACKWARD_PASSES


def passes_for(backward: bool = True) -> tuple:
    """The passes a session runs: all of them when its runtime's kernels take the backward
    fusions (`Runtime.fuses_backward`, the CPU's), else the generic ones."""
    return DEFAULT_PASSES if backward else GENERIC_PASSES


@dataclasses.dataclass
class Optimized:
    """The result of `optimize`: a new graph, its outputs and fed placeholders (in the order
    given), and for every original node that still has a counterpart, that node."""

    graph: Graph
    outputs: List[Node]
    fed: List[Node]
    mapping: Dict[Node, Node]

    def __repr__(self) -> str:
        return f"<Optimized {len(self.graph)} nodes, outputs {[o.name for o in self.outputs]}>"


def run_passes(fetches: Sequence[Node], fed: Iterable[Node] = (), passes=None, backward: bool = True) -> Optimized:
    """`fetches` and what they need, copied into a new graph with `fed` nodes as placeholders,
    then rewritten by each pass in turn (default: `passes_for(backward)`)."""
    passes = passes_for(backward) if passes is None else passes
    fetches = list(fetches)
    prog, mapping = eliminate_dead_nodes(Program(fetches[0].graph, fetches, list(fed)))
    changed = False
    for p in passes:
        prog, step = p(prog)
        if step is not None:
            mapping, changed = compose(mapping, step), True
    if changed:  # what a rewrite left unread (e.g. the inputs of a folded node)
        prog, step = eliminate_dead_nodes(prog)
        mapping = compose(mapping, step)
    return Optimized(prog.graph, prog.outputs, prog.fed, mapping)


def optimize(fetches, feed: Optional[Iterable[Node]] = None, passes=None, backward: bool = True) -> Optimized:
    """What a session runs for `fetches` (a node or a list of nodes): the optimised graph and
    the mapping from each original node to its counterpart. `feed` names the placeholders that
    would be fed (a placeholder with a constant default that is not fed is folded to it);
    `backward=False` leaves out the backward fusions, as a device session does; `passes`
    overrides both (see `passes_for`)."""
    from minigraph.errors import GraphError

    outs = [fetches] if isinstance(fetches, Node) else list(fetches)
    if not outs or not all(isinstance(o, Node) for o in outs):
        raise TypeError("optimize expects a node or a non-empty list of nodes")
    graph = outs[0].graph
    fed = list(feed or ())
    for n in outs + fed:
        if n.graph is not graph:
            raise GraphError(f"optimize: {n.name!r} belongs to another graph")
    for n in fed:
        if not n.op.feedable:
            raise GraphError(f"optimize: {n.name!r} cannot be fed (it is a {n.kind})")
    return run_passes(outs, fed, passes, backward)


__all__ = ["optimize", "run_passes", "passes_for", "Optimized", "DEFAULT_PASSES", "GENERIC_PASSES",
           "BACKWARD_PASSES", "Program", "Builder", "rebuild",
           "compose", "SKIP", "eliminate_dead_nodes", "fold_constants", "eliminate_common_subexpressions",
           "fuse_conv_bias_relu", "specialize_on_constants", "fuse_bias_gradients", "fuse_relu_masks",
           "accumulate_in_place", "FOLD_LIMIT"]
