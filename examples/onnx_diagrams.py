"""Draw the README's ONNX figures: an imported PyTorch model with its repeated blocks folded,
and a diff of two versions of Inception module 3a.

    python examples/onnx_diagrams.py [OUT_DIR]          # default: docs/; needs Graphviz's `dot`

writes onnx_folded.png (tests/fixtures/onnx/inception_torchscript.onnx, collapsed, its three
identical blocks drawn once) and onnx_diff.png (module 3a against a variant: a wider 3x3
branch, an average instead of a max pool, the 5x5 branch replaced by a 7x7 one).
"""
import _venv  # noqa: F401,I001  (first: re-runs this script with the project's .venv if needed)
import os
import sys

import minigraph as mg
from minigraph import layers, models, ops

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "tests", "fixtures", "onnx", "inception_torchscript.onnx")


def variant(x):
    """Module 3a edited: 3x3 branch 128 -> 160 filters, pool branch averages, 5x5 branch -> 7x7."""
    with mg.name_scope("inception_3a"):
        with mg.name_scope("branch_1x1"):
            b1 = layers.conv1x1(x, 64, name="conv")
        with mg.name_scope("branch_3x3"):
            b2 = layers.conv2d(layers.conv1x1(x, 96, name="reduce"), 160, 3, name="conv")
        with mg.name_scope("branch_7x7"):
            b3 = layers.conv2d(layers.conv1x1(x, 16, name="reduce"), 32, 7, name="conv")
        with mg.name_scope("branch_pool"):
            b4 = layers.conv1x1(ops.avg_pool(x, 3, stride=1, padding="SAME", name="pool"), 32, name="proj")
        return ops.concat([b1, b2, b3, b4], axis=1, name="concat")


def main(out: str = "docs") -> None:
    model = mg.onnx.load(FIXTURE)
    folded = mg.viz.fold_repeats(list(model.outputs.values()))
    print(mg.viz.render(folded.outputs, os.path.join(out, "onnx_folded.png"), collapse=1, decorate=folded,
                        title="inception_torchscript.onnx (PyTorch), --collapse --fold-repeats"))
    with mg.Graph():
        x = mg.placeholder((None, 192, 28, 28), name="previous_layer")
        old = models.inception_module(x, *models.GOOGLENET_INCEPTION["3a"], name="inception_3a")
    with mg.Graph():
        x = mg.placeholder((None, 192, 28, 28), name="previous_layer")
        new = variant(x)
    d = mg.viz.diff(old, new)
    print(d)
    print(mg.viz.render(d.graph, os.path.join(out, "onnx_diff.png"), decorate=d, title="module 3a → a variant"))


if __name__ == "__main__":
    main(*sys.argv[1:])
