"""Seeing inside a CNN with mg.viz: the pictures of the README, from the public API.

    python examples/see_inside_cnn.py [OUT_DIR] [CHECKPOINT]

trains mini_inception on the 8x8 digits with the default settings (about 5 s; or restores
CHECKPOINT, written by `minigraph train`), then writes into OUT_DIR (default: docs/)
grad_cam.png (Grad-CAM at the first Inception module, test image 0) and
translation_invariance.png (the whole test set moved by 0-3 pixels), and prints the numbers
behind both. `minigraph visualize` draws the full set for any test image.
"""
import _venv  # noqa: F401,I001  (first: re-runs this script with the project's .venv if needed)
import os
import sys
import tempfile

import numpy as np

import minigraph as mg
from minigraph.train import TrainConfig, build_digits_model, fit


def main(out: str = "docs", checkpoint: str = "") -> None:
    if not checkpoint:
        folder = tempfile.mkdtemp(prefix="see_inside_")
        fit(TrainConfig(out=folder), progress=False, log=lambda line: None)
        checkpoint = os.path.join(folder, "checkpoint.npz")
    model = build_digits_model(0)
    graph = model.logits.graph
    sess = mg.Session(graph)
    mg.restore(sess, checkpoint)
    data = mg.data.digits()

    image = data.x_test[:1]
    predicted = int(sess.run(model.logits, {model.x: image}).argmax())
    cam = mg.viz.grad_cam(sess, model.logits, graph.get("inception_a/concat"), {model.x: image}, predicted,
                          os.path.join(out, "grad_cam.png"),
                          subtitle=f"test image 0: digit {data.y_test[0]}, predicted {predicted}")
    row, col = np.unravel_index(cam.heatmap[0].argmax(), cam.heatmap[0].shape)
    print(f"Grad-CAM of class {predicted} at inception_a: strongest at row {row}, column {col}")

    inv = mg.viz.translation_invariance(
        sess, model.x, model.logits, data.x_test,
        {"inception_a features": graph.get("inception_a/concat"), "max-pooled features": graph.get("pool/max_pool")},
        os.path.join(out, "translation_invariance.png"), labels=data.y_test,
        subtitle="mini_inception on the digits test set (8x8 images: 2 pixels is a quarter of the width)")
    print("shift (pixels)      " + "".join(f"{s:>8d}" for s in inv.shifts))
    for name, values in inv.change.items():
        print(f"{name:20s}" + "".join(f"{v:8.3f}" for v in values))
    print(f"{'same prediction':20s}" + "".join(f"{v:8.3f}" for v in inv.same_prediction))
    print(f"{'accuracy':20s}" + "".join(f"{v:8.3f}" for v in inv.accuracy))


if __name__ == "__main__":
    main(*sys.argv[1:])
