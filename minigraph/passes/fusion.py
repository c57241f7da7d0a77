"""Epilogue fusion (TensorFlow's remapper): conv + bias add + ReLU become one node.

A producer whose op can apply a bias or an activation to its own result (`op.fuses_epilogue`,
with `op.with_bias` and `op.with_activation`; conv2d and conv1x1, whose GEMM chunk is still in
cache) takes over

- a bias add `add(producer, b)` with a per-channel `b` ((F, 1, 1) or (1, F, 1, 1)): the fused
  node reads b reshaped to (F,) as its bias input;
- an activation op right after it (`op.fusable_activation`, e.g. relu): the fused node carries
  it as an attribute, `activation="relu"`, visible in diagrams and `mg.optimize`.

Only when nothing else reads the producer's own result (it is no output, and the add or the
activation is its only reader in the program), so no value anyone needs is lost. The fused
node keeps the producer's name; the add and the activation map to it.
"""
from __future__ import annotations

from typing import Dict, Optional

from minigraph.graph import Node
from minigraph.ops.shape import Reshape

from .program import SKIP, Program, rebuild


def _sole_reader(node: Node, readers, outputs) -> Optional[Node]:
    users = readers.get(node, [])
    if node in outputs or len(users) != 1:
        return None
    return users[0]


def _plan(prog: Program) -> Dict[Node, tuple]:
    """{last node of a fusible chain: (producer, bias node or None, activation or None, members)}."""
    readers = prog.consumers()
    outputs = set(prog.outputs)
    fed = set(prog.fed)
    chains = {}
    for node in prog.nodes:
        if node in fed or not node.op.fuses_epilogue:
            continue
        members, bias, act, last = [node], None, None, node
        reader = _sole_reader(last, readers, outputs)
        if reader is not None and reader.op.role == "bias" and len(reader.inputs) == 2:
            other = reader.inputs[1] if reader.inputs[0] is last else reader.inputs[0]
            if (reader.inputs[0] is not reader.inputs[1] and other not in members
                    and node.op.with_bias(node, other) is not None and reader.shape == node.shape):
                bias, last = other, reader
                members.append(reader)
                reader = _sole_reader(last, readers, outputs)
        if reader is not None and reader.op.fusable_activation and len(reader.inputs) == 1:
            if node.op.with_activation(reader.op.fusable_activation) is not None:
                act, last = reader.op.fusable_activation, reader
                members.append(reader)
        if len(members) > 1:
            chains[last] = (node, bias, act, members)
    return chains


def fuse_conv_bias_relu(prog: Program):
    """Fuse bias adds and activations into the op that produces their input (see the module)."""
    chains = _plan(prog)
    if not chains:
        return prog, None
    skipped = {m for (_, _, _, members) in chains.values() for m in members[:-1]}

    def rule(node, mapping, b):
        if node in skipped:
            return SKIP
        chain = chains.get(node)
        if chain is None:
            return None
        producer, bias, act, _ = chain
        op = producer.op
        inputs = [mapping[x] for x in producer.inputs]
        if bias is not None:
            op = op.with_bias(producer, bias)
            flat = b.add(Reshape((producer.shape[1],)), [mapping[bias]], producer.name + "_bias")
            inputs.append(flat)
        if act is not None:
            op = op.with_activation(act)
        return b.add(op, inputs, producer.name)

    new, mapping = rebuild(prog, rule)
    return new, mapping


__all__ = ["fuse_conv_bias_relu"]
