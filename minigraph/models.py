"""Inception networks: the module of Figure 2(b), GoogLeNet (Table 1, Figure 3) and a small
Inception net for 8x8 digit images.

Szegedy et al., "Going deeper with convolutions", 2014. Every conv is followed by a ReLU;
pools use TensorFlow's SAME padding where the paper halves the size (112 -> 56 -> 28 -> 14 -> 7).
`googlenet(batch_norm=True)` is BN-Inception's baseline (Ioffe & Szegedy 2015, "BN-Baseline"):
batch normalisation between every conv and its ReLU.
Variables are initialised from `mg.init` (seeded: see `mg.init.seed`, or pass `rng`, an int
seed or a numpy Generator that all the model's layers draw from in turn).

    net = mg.models.googlenet()              # net.x (None, 3, 224, 224), net.probs (None, 1000)
    print(mg.summary(net.outputs))           # Table 1
"""
from __future__ import annotations

from typing import List, NamedTuple, Tuple

import numpy as np

from minigraph import init, layers, ops
from .graph import Node, get_default_graph, graph_of
from .op import placeholder, placeholder_with_default

# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj of each Inception module.
GOOGLENET_INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def inception_module(x: Node, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int,
                     name: str = "inception", rng=None, batch_norm: bool = False, training=None) -> Node:
    """The Inception module of Figure 2(b): four branches joined by a channel concat.

    x (N, C, H, W) -> (N, c1 + c3 + c5 + pool_proj, H, W). Branches, in this order, each in
    its own sub-scope so that a diagram draws them as columns:
      branch_1x1:  1x1 conv c1
      branch_3x3:  1x1 conv c3r ("reduce") -> 3x3 conv c3
      branch_5x5:  1x1 conv c5r ("reduce") -> 5x5 conv c5
      branch_pool: 3x3 max pool, stride 1, SAME -> 1x1 conv pool_proj ("proj")
    ReLU after every conv; with `batch_norm`, a batch norm between each conv and its ReLU
    (`training`: the bool or scalar bool node that switches it to the batch's statistics).
    """
    graph = graph_of([x])
    rng = init.generator(rng)
    bn = _bn_options(batch_norm, training)
    with graph.name_scope(name):
        with graph.name_scope("branch_1x1"):
            b1 = layers.conv1x1(x, c1, name="conv", rng=rng, **bn)
        with graph.name_scope("branch_3x3"):
            b2 = layers.conv2d(layers.conv1x1(x, c3r, name="reduce", rng=rng, **bn), c3, 3, name="conv", rng=rng,
                               **bn)
        with graph.name_scope("branch_5x5"):
            b3 = layers.conv2d(layers.conv1x1(x, c5r, name="reduce", rng=rng, **bn), c5, 5, name="conv", rng=rng,
                               **bn)
        with graph.name_scope("branch_pool"):
            pooled = ops.max_pool(x, 3, stride=1, padding="SAME", name="pool")
            b4 = layers.conv1x1(pooled, pool_proj, name="proj", rng=rng, **bn)
        return ops.concat([b1, b2, b3, b4], axis=1, name="concat")


class GoogLeNet(NamedTuple):
    """The nodes of a GoogLeNet graph. `aux_logits`/`aux_probs` are empty unless aux=True."""

    x: Node                      # input images (None, 3, 224, 224)
    training: Node               # scalar bool switch for dropout (and batch norm), False unless fed
    logits: Node                 # (None, num_classes)
    probs: Node                  # softmax of logits
    aux_logits: Tuple[Node, ...]
    aux_probs: Tuple[Node, ...]
    first_example: Node          # int64 index of the batch's first example (dropout masks), 0 unless fed

    @property
    def outputs(self) -> List[Node]:
        """Every softmax output: the main one, then the auxiliary ones."""
        return [self.probs, *self.aux_probs]


def _bn_options(batch_norm: bool, training) -> dict:
    """The layers' keyword arguments for a batch norm after each conv (none without)."""
    return {"batch_norm": True, "training": training} if batch_norm else {}


def _scoped(graph, name: str, fn, *args, **kwargs) -> Node:
    with graph.name_scope(name):
        return fn(*args, **kwargs)


def _first_example() -> Node:
    """The index of a batch's first example in the global batch, for per-example dropout
    masks: 0 unless fed (a data-parallel rank feeds its offset, `mg.data.Batch.offset`)."""
    return placeholder_with_default(np.int64(0), name="first_example")


def _aux_classifier(x: Node, training: Node, first: Node, num_classes: int, name: str, rng,
                    batch_norm: bool = False) -> Tuple[Node, Node]:
    """Figure 3's side classifier: 5x5/3 avg pool, 1x1 conv 128, fc 1024 + ReLU, 70% dropout, fc, softmax."""
    graph = x.graph
    with graph.name_scope(name):
        h = ops.avg_pool(x, 5, stride=3, padding="VALID", name="avg_pool")
        h = layers.conv1x1(h, 128, name="conv", rng=rng, **_bn_options(batch_norm, training))
        h = layers.dense(h, 1024, activation="relu", name="fc1", rng=rng)
        h = ops.dropout(h, 0.7, training, name="dropout", first_example=first)
        logits = layers.dense(h, num_classes, name="fc2", rng=rng)
        return logits, ops.softmax(logits, name="softmax")


def googlenet(num_classes: int = 1000, aux: bool = False, rng=None, batch_norm: bool = False) -> GoogLeNet:
    """GoogLeNet as in Table 1 and Figure 3 of Szegedy et al. 2014, in the default graph.

    input (None, 3, 224, 224) -> conv1 7x7/2 64 -> pool1 3x3/2 -> norm1 LRN -> conv2 (1x1 64,
    3x3 192) -> norm2 -> pool2 -> inception_3a, 3b -> pool3 -> inception_4a..4e -> pool4 ->
    inception_5a, 5b -> avgpool 7x7/1 -> dropout 40% -> fc -> softmax. With `aux`, the two
    auxiliary classifiers (`aux1` after 4a, `aux2` after 4d) are added.

    With `batch_norm`, BN-Inception's baseline (Ioffe & Szegedy 2015, Section 4.2): a batch
    norm between every conv (which then has no bias) and its ReLU, switched by `training`
    (moving averages in inference), and no LRN layers, which the paper found unnecessary with
    batch normalisation. The paper's final BN-Inception also changes the modules (5x5 convs
    become two 3x3 convs, ...); this keeps GoogLeNet's.
    """
    graph = get_default_graph()
    rng = init.generator(rng)
    x = placeholder((None, 3, 224, 224), name="input")
    training = placeholder_with_default(False, name="training")
    bn = _bn_options(batch_norm, training)
    first = _first_example()
    h = layers.conv2d(x, 64, 7, stride=2, name="conv1", rng=rng, **bn)             # 64 x 112 x 112
    h = _scoped(graph, "pool1", ops.max_pool, h, 3, stride=2, padding="SAME")       # 64 x 56 x 56
    if not batch_norm:
        h = _scoped(graph, "norm1", ops.local_response_norm, h, 5, 1e-4, 0.75, 1.0)
    with graph.name_scope("conv2"):
        h = layers.conv1x1(h, 64, name="reduce", rng=rng, **bn)
        h = layers.conv2d(h, 192, 3, name="conv", rng=rng, **bn)                    # 192 x 56 x 56
    if not batch_norm:
        h = _scoped(graph, "norm2", ops.local_response_norm, h, 5, 1e-4, 0.75, 1.0)
    h = _scoped(graph, "pool2", ops.max_pool, h, 3, stride=2, padding="SAME")       # 192 x 28 x 28
    aux_outs = []
    for block in ("3a", "3b", "pool3", "4a", "4b", "4c", "4d", "4e", "pool4", "5a", "5b"):
        if block.startswith("pool"):
            h = _scoped(graph, block, ops.max_pool, h, 3, stride=2, padding="SAME")
            continue
        h = inception_module(h, *GOOGLENET_INCEPTION[block], name=f"inception_{block}", rng=rng, **bn)
        if aux and block in ("4a", "4d"):
            aux_outs.append(_aux_classifier(h, training, first, num_classes, f"aux{len(aux_outs) + 1}", rng,
                                            batch_norm))
    h = _scoped(graph, "avgpool", ops.avg_pool, h, 7, stride=1, padding="VALID")    # 1024 x 1 x 1
    h = _scoped(graph, "dropout", ops.dropout, h, 0.4, training, first_example=first)
    logits = layers.dense(h, num_classes, name="fc", rng=rng)
    probs = _scoped(graph, "softmax", ops.softmax, logits)
    return GoogLeNet(x, training, logits, probs, tuple(a for a, _ in aux_outs), tuple(p for _, p in aux_outs), first)


class MiniInception(NamedTuple):
    """The nodes of `mini_inception`: feed x and y; feed training=True when training."""

    x: Node          # images (None, channels, image_size, image_size), float32
    y: Node          # int labels (None,)
    training: Node   # scalar bool switch for dropout, False unless fed
    logits: Node     # (None, num_classes)
    probs: Node      # softmax of logits
    loss: Node       # mean softmax cross-entropy of logits and y
    first_example: Node  # int64 index of the batch's first example (dropout masks), 0 unless fed


def mini_inception(num_classes: int = 10, image_size: int = 8, channels: int = 1,
                   dropout: float = 0.25, rng=None, dtype="float32") -> MiniInception:
    """A small Inception network, in the default graph: for the 8x8 digits by default, for
    any square images through `image_size` and `channels` (3 for RGB).

    x (None, channels, S, S) -> stem conv 3x3 16 -> [S > 16: 2x2/2 max pools until the side
    is at most 16] -> inception_a (8 | 12->16 | 4->8 | pool->8: 40 ch) -> pool 2x2/2 ->
    inception_b (24 | 16->32 | 8->16 | pool->16: 88 ch) -> dropout -> fc num_classes.
    For 8x8 digits inception_b sees 4x4, for 32x32 images 8x8. One graph serves training
    and evaluation through `training`. `dtype` is the input's and so every variable's
    ("float64" for exact comparisons).
    """
    graph = get_default_graph()
    rng = init.generator(rng)
    x = placeholder((None, channels, image_size, image_size), dtype=dtype, name="x")
    y = placeholder((None,), dtype="int64", name="y")
    training = placeholder_with_default(False, name="training")
    first = _first_example()
    h = layers.conv2d(x, 16, 3, name="stem", rng=rng)
    side, pools = image_size, 0
    while side > 16:
        pools += 1
        h = _scoped(graph, f"stem_pool{pools}", ops.max_pool, h, 2, stride=2, padding="SAME")
        side = -(-side // 2)
    h = inception_module(h, 8, 12, 16, 4, 8, 8, name="inception_a", rng=rng)
    h = _scoped(graph, "pool", ops.max_pool, h, 2, stride=2, padding="SAME")
    h = inception_module(h, 24, 16, 32, 8, 16, 16, name="inception_b", rng=rng)
    h = _scoped(graph, "dropout", ops.dropout, h, dropout, training, first_example=first)
    logits = layers.dense(h, num_classes, name="fc", rng=rng)
    probs = _scoped(graph, "softmax", ops.softmax, logits)
    loss = _scoped(graph, "loss", ops.softmax_cross_entropy, logits, y)
    return MiniInception(x, y, training, logits, probs, loss, first)


__all__ = ["inception_module", "googlenet", "GoogLeNet", "mini_inception", "MiniInception",
           "GOOGLENET_INCEPTION"]
