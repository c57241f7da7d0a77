"""mg.viz.fold_repeats: runs of identical chained blocks drawn once, marked ×N."""
import re

import numpy as np

import minigraph as mg
from minigraph import layers, models, ops, viz


def stack(widths, name="blocks"):
    """x -> one conv block per width, each in scope blocks/block<i> (conv 3x3 + 1x1), then a dense head."""
    with mg.Graph() as g:
        x = mg.placeholder((None, 4, 6, 6), name="x")
        h = x
        with mg.name_scope(name):
            for i, w in enumerate(widths):
                with mg.name_scope(f"block{i}"):
                    h = layers.conv1x1(layers.conv2d(h, w, 3, name="conv"), 4, name="proj")
        out = layers.dense(h, 3, name="fc")
    return g, x, out


def test_identical_blocks_fold_and_different_ones_do_not():
    g, x, out = stack([5, 5, 5, 7, 5, 5])
    folded = viz.fold_repeats(out)
    assert folded.runs == {"blocks/block0": ["blocks/block0", "blocks/block1", "blocks/block2"],
                           "blocks/block4": ["blocks/block4", "blocks/block5"]}
    names = {n.name for n in folded.graph.nodes}
    assert "blocks/block0/conv/conv2d" in names and "blocks/block3/conv/conv2d" in names
    assert not any(n.startswith(("blocks/block1/", "blocks/block2/", "blocks/block5/")) for n in names)
    # the kept block feeds what the last block of its run fed
    (fc,) = [n for n in folded.graph.nodes if n.name == "fc/matmul"]
    flat = fc.inputs[0]
    assert flat.inputs[0].name.startswith("blocks/block4/proj/")
    src = viz.to_dot(folded.outputs, decorate=folded).source
    assert "block0 … block2  ×3" in src and "block4 … block5  ×2" in src


def test_collapsed_view_marks_the_scope_holding_a_run():
    _, _, out = stack([5, 5])
    folded = viz.fold_repeats(out)
    src = viz.to_dot(folded.outputs, collapse=1, decorate=folded).source
    assert "blocks  (block0 … block1 ×2)" in src and "peripheries=2" in src


def test_branching_blocks_are_not_folded():
    """GoogLeNet's modules differ in width; two Inception modules of one width fold only when one
    feeds the other alone."""
    with mg.Graph():
        x = mg.placeholder((None, 8, 5, 5), name="x")
        a = models.inception_module(x, 2, 2, 2, 2, 2, 2, name="m1", rng=0)
        b = models.inception_module(a, 2, 2, 2, 2, 2, 2, name="m2", rng=1)
        c = ops.concat([a, b])  # a is read twice: m1 and m2 are not a chain
    assert viz.fold_repeats(c).runs == {}
    with mg.Graph():
        x = mg.placeholder((None, 8, 5, 5), name="x")
        a = models.inception_module(x, 2, 2, 2, 2, 2, 2, name="m1", rng=0)
        b = models.inception_module(a, 2, 2, 2, 2, 2, 2, name="m2", rng=1)
    assert viz.fold_repeats(b).runs == {"m1": ["m1", "m2"]}
    with mg.Graph():
        net = models.googlenet()
    assert viz.fold_repeats(net.probs).runs == {}


def test_folding_leaves_the_original_graph_alone():
    g, x, out = stack([5, 5, 5])
    before = len(g.nodes)
    folded = viz.fold_repeats(out)
    assert len(g.nodes) == before and len(folded.graph.nodes) < before
    data = np.ones((1, 4, 6, 6), np.float32)
    assert mg.Session(g).run(out, {x: data}).shape == (1, 3)


def test_render_folded_png(tmp_path):
    _, _, out = stack([5, 5, 5])
    folded = viz.fold_repeats(out)
    path = viz.render(folded.outputs, tmp_path / "f.png", decorate=folded)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert re.search(r"×3", viz.to_dot(folded.outputs, decorate=folded).source)
