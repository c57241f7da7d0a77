"""Backward fusion: the memory-bound tail of a gradient graph folded into the kernels that read it.

After a conv + ReLU, autodiff builds r = relu_grad(g, y) and three readers of r: the input
gradient, the filter gradient and the bias gradient (a per-channel sum of r). Each of those is a
full pass over memory; these passes let the convolution kernels do the work while their chunks
are in cache:

- `fuse_bias_gradients`: a per-channel sum of g over batch and space (`op.summed_channels`) and a
  filter gradient reading the same g (`op.with_bias_gradient`) become one node computing both;
  its result packs them ((F, K + 1), see `minigraph.ops.grad_fusion`) and the filter and bias
  gradients become views of it.
- `fuse_relu_masks`: a relu_grad(g, y) (`op.fusable_mask == "relu"`) whose every reader can apply
  the mask itself (`op.with_relu_mask(index)`) disappears: each reader reads g, with y as an
  extra input.
- `accumulate_in_place`: an add_n (`op.with_input_reused`) writes into its first input when
  nothing else reads that value and it is a buffer of its own: not fed, not fetched, produced
  by an op that returns fresh memory (not a view, not session state). Terms made by ops that
  can add into an accumulator (`op.with_accumulator`: the 1x1 convs of an input gradient) are
  computed straight into that buffer instead of into buffers of their own.

Each keeps the values of the program (up to float rounding: sums in another order).
"""
from __future__ import annotations

from typing import Dict

from minigraph.graph import Node

from .program import SKIP, Program, rebuild


def _live_readers(prog: Program):
    readers = prog.consumers()
    outputs = set(prog.outputs)
    fed = set(prog.fed)
    return readers, outputs, fed


def fuse_bias_gradients(prog: Program):
    """Merge each bias-gradient sum into a filter gradient that reads the same tensor (and comes
    before it in the program, as autodiff builds them)."""
    from minigraph.ops.grad_fusion import unpack_ops

    readers, outputs, fed = _live_readers(prog)
    order = {n: i for i, n in enumerate(prog.nodes)}
    pairs: Dict[Node, Node] = {}  # filter-gradient node -> sum node
    for node in prog.nodes:
        g = None if node in fed else node.op.summed_channels(node)
        if g is None:
            continue
        for r in readers.get(g, []):
            if (r not in pairs and r not in fed and order[r] < order[node] and len(r.inputs) == 2
                    and r.inputs[1] is g and r.inputs[0] is not g and r.op.with_bias_gradient() is not None
                    and None not in r.shape and r.shape[0] == node.shape[0]):
                pairs[r] = node
                break
    if not pairs:
        return prog, None
    sums: Dict[Node, Node] = {}  # sum node -> its replacement in the new graph

    def rule(node, mapping, b):
        if node in pairs:
            packed = b.add(node.op.with_bias_gradient(), [mapping[x] for x in node.inputs], node.name + "_and_bias")
            (gw_slice, gw_shape), (gb_slice, gb_shape) = unpack_ops(tuple(node.shape))
            gw = b.add(gw_shape, [b.add(gw_slice, [packed], node.name + "_filter")], node.name)
            sums[pairs[node]] = b.add(gb_shape, [b.add(gb_slice, [packed], node.name + "_bias")],
                                      pairs[node].name)
            return gw
        return sums.get(node)

    return rebuild(prog, rule)


def fuse_relu_masks(prog: Program):
    """Fold each relu_grad whose readers all take the mask themselves into those readers."""
    readers, outputs, fed = _live_readers(prog)
    folded: Dict[Node, Dict[Node, object]] = {}  # relu_grad node -> {reader: masked op}
    for node in prog.nodes:
        if node in fed or node in outputs or node.op.fusable_mask != "relu" or len(node.inputs) != 2:
            continue
        users = readers.get(node, [])
        ops = {}
        for r in users:
            positions = [i for i, x in enumerate(r.inputs) if x is node]
            op = r.op.with_relu_mask(positions[0]) if len(positions) == 1 and r not in fed else None
            if op is None:
                break
            ops[r] = op
        else:
            if users:
                folded[node] = ops
    if not folded:
        return prog, None
    rewrites: Dict[Node, list] = {}  # reader -> [(relu_grad, masked op)]
    for rg, ops in folded.items():
        for r, op in ops.items():
            rewrites.setdefault(r, [])
            rewrites[r].append((rg, op))
    # a reader of two foldable relu_grads keeps the second one unfolded: one mask per op
    keep = {rg for r, items in rewrites.items() for rg, _ in items[1:]}
    folded = {rg: ops for rg, ops in folded.items() if rg not in keep}
    if not folded:
        return prog, None
    masked = {r: (rg, op) for rg, ops in folded.items() for r, op in ops.items()}

    def rule(node, mapping, b):
        if node in folded:
            return SKIP
        hit = masked.get(node)
        if hit is None:
            return None
        rg, op = hit
        g, y = (mapping[x] for x in rg.inputs)
        inputs = [g if x is rg else mapping[x] for x in node.inputs] + [y]
        return b.add(op, inputs, node.name)

    return rebuild(prog, rule)


def _owned(node: Node, reader: Node, readers, outputs, fed) -> bool:
    """Whether `node`'s value is a buffer of its own that only `reader` reads (once): not fed, not
    fetched, not session state or a view of another value, not a leaf."""
    op = node.op
    return (node not in fed and node not in outputs and node.inputs and not op.view and not op.returns_state
            and not op.feedable and readers.get(node) == [reader] and reader.inputs.count(node) == 1)


def accumulate_in_place(prog: Program):
    """Let each add_n accumulate in its first input's buffer where that buffer is its own; terms
    produced by ops that can add into an accumulator (`with_accumulator`) are then computed
    straight into it, one after the other, and the add_n keeps only the other terms (or goes)."""
    readers, outputs, fed = _live_readers(prog)
    plans: Dict[Node, tuple] = {}  # add_n -> (first input, accumulating terms, other terms)
    for node in prog.nodes:
        if node in fed or node.op.with_input_reused() is None or not node.inputs:
            continue
        first = node.inputs[0]
        if not _owned(first, node, readers, outputs, fed) or first.shape != node.shape or first.dtype != node.dtype:
            continue  # (the kernels check run-time shapes; the static ones must already agree)
        chained, rest = [], []
        for x in node.inputs[1:]:
            ok = (x is not first and _owned(x, node, readers, outputs, fed) and x.op.with_accumulator() is not None
                  and x.shape == node.shape and x.dtype == node.dtype)
            (chained if ok else rest).append(x)
        plans[node] = (first, chained, rest)
    if not plans:
        return prog, None
    skipped = {x for _, chained, _ in plans.values() for x in chained}

    def rule(node, mapping, b):
        if node in skipped:
            return SKIP
        plan = plans.get(node)
        if plan is None:
            return None
        first, chained, rest = plan
        acc = mapping[first]
        for x in chained:  # each term added into the running sum as it is computed
            acc = b.add(x.op.with_accumulator(), [mapping[i] for i in x.inputs] + [acc], x.name)
        if not rest:
            return acc
        return b.add(node.op.with_input_reused(), [acc] + [mapping[x] for x in rest], node.name)

    return rebuild(prog, rule)


__all__ = ["fuse_bias_gradients", "fuse_relu_masks", "accumulate_in_place"]
