"""mg.viz.diff: added, removed and changed nodes of two versions in one diagram."""
import minigraph as mg
from minigraph import layers, models, ops, viz


def module(variant):
    with mg.Graph():
        x = mg.placeholder((None, 16, 8, 8), name="x")
        with mg.name_scope("block"):
            with mg.name_scope("a"):
                a = layers.conv1x1(x, 8, name="conv")
            with mg.name_scope("b"):
                b = layers.conv2d(x, 8 if variant == 0 else 12, 3, stride=1, name="conv")
            with mg.name_scope("pool"):
                p = (ops.max_pool if variant == 0 else ops.avg_pool)(x, 3, 1, padding="SAME", name="pool")
            branches = [a, b, p]
            if variant == 1:
                with mg.name_scope("c"):
                    branches.append(layers.conv1x1(x, 4, name="conv"))
            else:
                with mg.name_scope("old"):
                    branches.append(layers.conv1x1(x, 4, name="conv"))
            out = ops.concat(branches, name="concat")
    return out


def test_added_removed_changed():
    d = viz.diff(module(0), module(1))
    assert d.added == ["block/c/conv/conv1x1", "block/c/conv/relu"]
    assert d.removed == ["block/old/conv/conv1x1", "block/old/conv/relu"]
    assert d.changed["block/pool/pool"] == ["max_pool → avg_pool"]
    conv = d.changed["block/b/conv/conv2d"]
    assert "output 8×8×8 → 12×8×8" in conv and "weights 8×16×3×3 → 12×16×3×3" in conv
    assert any(c.startswith("inputs −old/conv/relu, +c/conv/relu") for c in d.changed["block/concat"])
    assert "block/a/conv/conv1x1" not in d.changed
    # the union graph holds both versions
    names = {n.name for n in d.graph.nodes}
    assert {"block/c/conv/conv1x1", "block/old/conv/conv1x1"} <= names


def test_diagram_marks_and_legend():
    d = viz.diff(module(0), module(1))
    src = viz.to_dot(d.graph, decorate=d).source
    assert 'fillcolor="#b6d7a8"' in src and 'fillcolor="#ea9999"' in src and 'fillcolor="#f9cb9c"' in src
    assert "dashed" in src and "max_pool → avg_pool" in src
    assert "added (bold green)" in src and "removed (bold red, dashed)" in src


def test_identical_networks_have_no_differences():
    with mg.Graph():
        a = models.googlenet(rng=0)
    with mg.Graph():
        b = models.googlenet(rng=1)  # other weights, same structure
    d = viz.diff(a.probs, b.probs)
    assert (d.added, d.removed, d.changed) == ([], [], {})
    assert str(d).startswith("0 added, 0 removed, 0 changed")
    src = viz.to_dot(d.graph, collapse=1, decorate=d).source
    assert "bold" not in src  # no marks, no legend entries for them
