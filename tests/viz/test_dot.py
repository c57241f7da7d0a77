"""mg.viz: structure of the DOT (clusters, kinds, shape labels, branch order), layout read back
from Graphviz, real rendering to SVG and PNG, and the missing-`dot` path."""
import json
import re

import graphviz
import numpy as np
import pytest

import minigraph as mg
from minigraph import models, viz


def module_3a():
    with mg.Graph() as g:
        x = mg.placeholder((None, 192, 28, 28), name="previous_layer")
        y = models.inception_module(x, 64, 96, 128, 16, 32, 32, name="inception_3a")
    return g, y


def text_of(label):
    """A label's visible text: HTML tags dropped, spaces squeezed."""
    return " ".join(re.sub(r"<[^>]+>", " ", label).split())


def node_labels(src):
    """{node id: visible label text} of the drawn boxes (spacers, which have no text, left out)."""
    out = {}
    for line in src.splitlines():
        m = re.match(r'^\s*(\w+) \[label=(?:<(.*?)> (?=\w+=)|"((?:[^"\\]|\\.)*)"|(\w+))', line)
        text = m and (m.group(2) or m.group(3) or m.group(4))
        if text:
            out[m.group(1)] = text_of(text)
    return out


def layout(dot):
    """{label text: (x, y)} of the drawn boxes, from Graphviz's own layout (y grows upwards)."""
    data = json.loads(dot.pipe(format="json"))
    pos = {}
    for obj in data.get("objects", []):
        if "pos" in obj and obj.get("label"):
            x, y = map(float, obj["pos"].split(","))
            pos[text_of(obj["label"])] = (x, y)
    return pos


def test_module_clusters_kinds_and_folded_variables():
    _, y = module_3a()
    src = viz.to_dot(y).source
    clusters = re.findall(r"subgraph (cluster_\w+)", src)
    assert clusters[0] == "cluster_inception_3a" and len(clusters) == 5    # module + 4 branches
    assert re.findall(r'label="(branch [^"]+)"', src) == ["branch 1×1", "branch 3×3", "branch 5×5", "branch pool"]
    labels = sorted(node_labels(src).values())
    assert labels == sorted(["previous layer", "conv 1×1, 64 +ReLU", "conv 1×1, 96 +ReLU",
                             "conv 3×3/1, 128 +ReLU", "conv 1×1, 16 +ReLU", "conv 5×5/1, 32 +ReLU",
                             "max pool 3×3/1", "conv 1×1, 32 +ReLU", "filter concat"])
    assert "weights" not in src and "bias" not in src
    # kinds are visually distinct: one fill colour per category
    kinds = r"conv 3×3|conv 1×1|max pool|filter concat|previous layer"
    fills = dict(re.findall(r'label=(?:<|")(' + kinds + r')[^\n]*?fillcolor="(#\w+)"', src))
    assert len(set(fills.values())) == 5


def test_module_edges_carry_shapes():
    _, y = module_3a()
    src = viz.to_dot(y).source
    shapes = re.findall(r'label=" ([0-9×]+)"', src)
    # 4 edges from the previous layer, 1 from the 3x3 pool (it keeps 192 channels), 2 inside the
    # 3x3 and 5x5 branches, 4 into the concatenation
    assert sorted(shapes) == sorted(["192×28×28"] * 5 + ["96×28×28", "16×28×28", "64×28×28", "128×28×28",
                                                        "32×28×28", "32×28×28"])
    assert "label=\" " not in viz.to_dot(y, show_shapes=False).source


def test_module_layout_reads_like_figure_2b():
    """previous layer on top, four columns left to right in the paper's order, last ops on one
    rank, filter concatenation at the bottom (positions from Graphviz's own layout)."""
    _, y = module_3a()
    pos = layout(viz.to_dot(y, legend=False))
    top, bottom = pos["previous layer"], pos["filter concat"]
    last = [pos["conv 1×1, 64 +ReLU"], pos["conv 3×3/1, 128 +ReLU"], pos["conv 5×5/1, 32 +ReLU"],
            pos["conv 1×1, 32 +ReLU"]]
    first = [pos["conv 1×1, 96 +ReLU"], pos["conv 1×1, 16 +ReLU"], pos["max pool 3×3/1"]]
    assert [p[0] for p in last] == sorted(p[0] for p in last)            # columns in concat order
    assert [p[0] for p in first] == sorted(p[0] for p in first)
    assert len({p[1] for p in last}) == 1 and len({p[1] for p in first}) == 1
    assert top[1] > first[0][1] > last[0][1] > bottom[1]


def test_collapsed_googlenet_one_box_per_scope():
    with mg.Graph():
        net = models.googlenet(aux=True)
    dot = viz.to_dot(net.outputs, collapse=1)
    src = dot.source
    labels = node_labels(src)
    tops = ["input", "conv1", "pool1", "norm1", "conv2", "norm2", "pool2", "inception_3a", "inception_3b",
            "pool3", "inception_4a", "aux1", "inception_4b", "inception_4c", "inception_4d", "aux2",
            "inception_4e", "pool4", "inception_5a", "inception_5b", "avgpool", "dropout", "fc", "softmax"]
    assert len(labels) == len(tops)
    assert "subgraph cluster" not in src
    box_3a = next(v for v in labels.values() if v.startswith("inception (3a)"))
    # its output shape and six channel numbers, branch by branch
    assert "256×28×28" in box_3a and re.search(r"64.*96 → 128.*16 → 32.*32", box_3a)
    box_5b = next(v for v in labels.values() if v.startswith("inception (5b)"))
    assert "1024×7×7" in box_5b and re.search(r"384.*192 → 384.*48 → 128.*128", box_5b)
    assert "conv 7×7/2, 64" in labels.values() and "avg pool 7×7/1" in labels.values()
    assert "dropout 40%" in labels.values() and "linear, 1000" in labels.values()
    shapes = re.findall(r'label=" ([0-9×]+)"', src)
    assert shapes[:3] == ["3×224×224", "64×112×112", "64×56×56"] and shapes.count("512×14×14") >= 4
    assert not re.search(r"[\s\[]size=", src)                          # natural size, never shrunk
    assert "1×1 3×3 5×5 3×3 max pool → 1×1" in box_3a                    # the pool branch says its kind
    pos = layout(dot)
    main = [pos[k] for k in ("input", "conv 7×7/2, 64", "LRN", "avg pool 7×7/1", "softmax")]
    assert len({round(p[0]) for p in main}) == 1                       # the main line is straight


def test_uncollapsed_googlenet_has_a_cluster_per_module():
    with mg.Graph():
        net = models.googlenet()
    src = viz.to_dot(net.probs).source
    modules = re.findall(r"subgraph cluster_(inception_\w\w) \{", src)
    assert modules == [f"inception_{b}" for b in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]
    assert "subgraph cluster_conv2 {" in src                           # two convs in one scope
    assert "cluster_conv1 " not in src                                 # a single box needs no cluster
    assert len(re.findall(r"fillcolor=\"#d9ead3\"", src)) == 9        # nine filter concatenations


def test_show_variables_and_legend():
    _, y = module_3a()
    src = viz.to_dot(y, show_variables=True).source
    assert src.count('shape=ellipse') == 12                            # weights and bias of 6 convs
    legend = re.search(r"label=<(<TABLE.*)>", viz.to_dot(y).source, re.S)
    text = re.sub(r"<[^>]+>", " ", legend.group(1))
    for entry in ("convolution", "1×1 convolution", "pooling", "filter concatenation", "input"):
        assert entry in text
    assert "linear" not in text                                        # only what is drawn
    assert "<TABLE" not in viz.to_dot(y, legend=False).source


def test_show_grads_draws_gradient_nodes_beside_their_scope():
    with mg.Graph() as g:
        x = mg.placeholder((None, 8, 6, 6), name="x")
        h = mg.layers.conv2d(x, 4, 3, name="conv")
        loss = mg.ops.sum(h, name="loss")
        grads = mg.gradients(loss, [g.get("conv/weights"), x])
    plain = viz.to_dot(loss).source
    assert "dashed" not in plain and "backprop" not in plain
    src = viz.to_dot(loss, show_grads=True).source
    assert re.search(r'label="gradients of conv"', src)
    labels = node_labels(src).values()
    assert "conv 3×3/1, 4 +ReLU" in labels and "ReLU" not in labels     # the layer stays folded
    assert "conv2d backprop input" in src and "conv2d backprop filter" in src
    assert src.count('style="rounded,filled,dashed"') >= 3
    assert 'color="#e69138" fontcolor="#b45f06" style=dashed' in src    # gradient edges
    # drawing the gradient nodes themselves shows them without show_grads' search
    assert "conv2d backprop filter" in viz.to_dot(grads[0], show_grads=True).source
    collapsed = viz.to_dot(loss, show_grads=True, collapse=1).source
    assert "∇ conv" in collapsed


def test_to_dot_needs_no_dot_program(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    _, y = module_3a()
    assert isinstance(viz.to_dot(y), graphviz.Digraph)


def test_render_svg_png_and_source(tmp_path):
    _, y = module_3a()
    svg = viz.render(y, tmp_path / "m.svg")
    assert svg.read_text().lstrip().startswith("<?xml") and "filter concat" in svg.read_text()
    png = viz.render(y, tmp_path / "sub" / "m.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(data[16:20], "big")
    assert width > 1000                                                 # 150 dpi by default
    gv = viz.render(y, tmp_path / "m.gv")
    assert gv.read_text().startswith("digraph")
    with pytest.raises(ValueError, match="suffix"):
        viz.render(y, tmp_path / "m.jpeg2")


def test_render_without_dot_writes_the_source_and_says_how_to_install(monkeypatch, tmp_path):
    _, y = module_3a()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(viz.GraphvizNotFoundError, match="install Graphviz") as err:
        viz.render(y, tmp_path / "m.png")
    assert isinstance(err.value, mg.MinigraphError)
    assert "apt-get install graphviz" in str(err.value)
    assert (tmp_path / "m.gv").read_text().startswith("digraph")
    assert not (tmp_path / "m.png").exists()


def test_bad_arguments():
    _, y = module_3a()
    with pytest.raises(ValueError, match="collapse"):
        viz.to_dot(y, collapse=0)
    with pytest.raises(ValueError, match="rankdir"):
        viz.to_dot(y, rankdir="up")
    with pytest.raises(TypeError, match="to_dot expects a Graph, a node or a non-empty list of nodes"):
        viz.to_dot([])


def test_graph_target_and_dense_layer_folding():
    with mg.Graph() as g:
        x = mg.placeholder((None, 4, 2, 2), name="x")
        logits = mg.layers.dense(x, 3, activation="relu", name="fc")
        mg.ops.softmax(logits, name="softmax")
    labels = node_labels(viz.to_dot(g).source)
    assert sorted(labels.values()) == ["linear, 3 +ReLU", "softmax", "x"]   # flatten, bias add, ReLU folded


def _module_with(branches, name="mixed"):
    """A graph with one Inception-like module whose branches are built by `branches` (a list of
    functions of the input, each called inside its own branch scope)."""
    with mg.Graph():
        x = mg.placeholder((None, 16, 8, 8), name="previous_layer")
        with mg.name_scope(name):
            outs = []
            for i, fn in enumerate(branches):
                with mg.name_scope(f"branch_{i}"):
                    outs.append(fn(x))
            y = mg.ops.concat(outs, axis=1, name="concat")
    return y


def test_collapsed_branch_headings_name_pool_kinds_and_every_conv():
    L = mg.layers
    y = _module_with([
        lambda x: L.conv1x1(x, 4, name="conv"),
        lambda x: L.conv2d(L.conv2d(L.conv1x1(x, 6, name="reduce"), 8, 3, name="conv_a"), 8, 3, name="conv_b"),
        lambda x: L.conv1x1(mg.ops.avg_pool(x, 3, stride=1, padding="SAME"), 5, name="proj"),
        lambda x: L.conv1x1(mg.ops.max_pool(x, 3, stride=1, padding="SAME"), 7, name="proj"),
        lambda x: mg.ops.max_pool(x, 3, stride=1, padding="SAME"),
    ])
    (box,) = [v for v in node_labels(viz.to_dot(y, collapse=1).source).values() if v.startswith("mixed")]
    assert "1×1 3×3 → 3×3 3×3 avg pool → 1×1 3×3 max pool → 1×1 3×3 max pool" in box
    assert "4 6 → 8 → 8 5 7 –" in box                    # the double 3×3: reduce, then both convs


def test_batch_norm_layers_draw_as_one_box_with_their_relu():
    with mg.Graph():
        x = mg.placeholder((None, 3, 8, 8), name="x")
        training = mg.placeholder_with_default(False, name="training")
        y = mg.layers.conv2d(x, 4, 3, name="conv", batch_norm=True, training=training)
        with mg.name_scope("head"):
            z = mg.ops.sigmoid(mg.ops.relu(y))          # another scope: a box of its own
    labels = sorted(node_labels(viz.to_dot(z, legend=False).source).values())
    assert labels == ["ReLU +sigmoid", "conv 3×3/1, 4 +BN+ReLU", "x"]
    with mg.Graph():
        x = mg.placeholder((None, 3, 8, 8), name="x")
        w = mg.variable(np.zeros((4, 3, 3, 3), "float32"), name="w")
        twice = mg.ops.relu(mg.ops.relu(mg.ops.conv2d(x, w)))             # a repeated ReLU stays a box
    assert sorted(node_labels(viz.to_dot(twice, legend=False).source).values()) == \
        ["ReLU", "conv 3×3/1, 4 +ReLU", "x"]
