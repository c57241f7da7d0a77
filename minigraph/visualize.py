"""`minigraph visualize`: pictures of what the digits model (mini_inception, as `minigraph train`
builds it) learned, for one test image.

    minigraph visualize --checkpoint runs/digits/checkpoint.npz --index 5 --out runs/visualize

writes, and lists, in --out:

- filters_stem.png, filters_inception_a_5x5.png: the first layer's 3x3 filters, and the 5x5
  filters of the first Inception module (filters x input channels);
- feature_maps_stem.png, feature_maps_inception_a.png, feature_maps_inception_b.png: the
  activations of the stem and of both Inception modules for the image;
- saliency.png, smoothgrad.png: |d score / d pixel| of the explained class, plain and SmoothGrad;
- grad_cam_inception_a.png, grad_cam_inception_b.png: Grad-CAM at the two module outputs;
- occlusion.png: the fall of the class score as a 2x2 patch hides each spot;
- translation_invariance.png: the whole test set moved 0-3 pixels: change of the pixels, of the
  Inception module's features before and after max pooling, of the logits, and of the prediction.

The explained class is the predicted one unless --class names another.
"""
from __future__ import annotations

import os
from typing import Callable, List, Optional, Tuple

from . import data as mgdata
from .checkpoint import restore
from .errors import MinigraphError
from .session import Session
from .train import CHECKPOINT, build_digits_model

DEFAULT_OUT = "runs/visualize"


def visualize_digits(checkpoint: str, index: int = 0, out: str = DEFAULT_OUT, class_index: Optional[int] = None,
                     dataset: Optional[mgdata.Dataset] = None,
                     log: Callable[[str], None] = print) -> List[Tuple[str, str]]:
    """Restore the digits model from `checkpoint`, draw every picture of the module docstring for
    test image `index` of `dataset` (default `mg.data.digits()`, the split `minigraph train` uses)
    into `out`, and return (what, path) pairs in the order written. `log` gets one line saying
    which digit the image shows and what the model predicts."""
    from minigraph import viz
    model, sess = restore_digits_model(checkpoint)
    graph = model.logits.graph
    data = dataset if dataset is not None else mgdata.digits()
    n_test = len(data.x_test)
    if not 0 <= index < n_test:
        raise MinigraphError(f"--index {index} is outside the test set of {n_test} images (0..{n_test - 1})")
    image, label = data.x_test[index:index + 1], int(data.y_test[index])
    feed = {model.x: image}
    predicted = int(sess.run(model.logits, feed).argmax(axis=1)[0])
    k = predicted if class_index is None else class_index
    about = f"test image {index}: digit {label}, predicted {predicted}" + (f", explaining class {k}" if k != predicted else "")
    log(about)
    os.makedirs(out, exist_ok=True)

    def at(name: str) -> str:
        return os.path.join(out, name)

    layers = {"stem": graph.get("stem/relu"), "inception_a": graph.get("inception_a/concat"),
              "inception_b": graph.get("inception_b/concat")}
    files = []
    viz.filters(sess, graph.get("stem/weights"), at("filters_stem.png"), subtitle="the first layer, on the grey pixels")
    files.append(("first-layer filters", at("filters_stem.png")))
    viz.filters(sess, graph.get("inception_a/branch_5x5/conv/weights"), at("filters_inception_a_5x5.png"),
                subtitle="deeper: each input channel is one of the 5x5 branch's 1x1 reductions")
    files.append(("inception_a 5x5 filters", at("filters_inception_a_5x5.png")))
    for name, node in layers.items():
        path = at(f"feature_maps_{name}.png")
        viz.feature_maps(sess, node, feed, path, subtitle=about)
        files.append((f"{name} feature maps", path))
    viz.saliency(sess, model.logits, model.x, feed, k, at("saliency.png"), subtitle=about)
    files.append(("saliency", at("saliency.png")))
    viz.saliency(sess, model.logits, model.x, feed, k, at("smoothgrad.png"), smoothgrad=50, subtitle=about)
    files.append(("SmoothGrad saliency", at("smoothgrad.png")))
    for name in ("inception_a", "inception_b"):
        path = at(f"grad_cam_{name}.png")
        viz.grad_cam(sess, model.logits, layers[name], feed, k, path, subtitle=about)
        files.append((f"Grad-CAM at {name}", path))
    viz.occlusion(sess, model.logits, model.x, feed, k, at("occlusion.png"), patch=2, subtitle=about)
    files.append(("occlusion", at("occlusion.png")))
    viz.translation_invariance(
        sess, model.x, model.logits, data.x_test,
        {"inception_a features": layers["inception_a"], "max-pooled features": graph.get("pool/max_pool")},
        at("translation_invariance.png"), labels=data.y_test,
        subtitle="mini_inception on the digits test set (8x8 images: 2 pixels is a quarter of the width)")
    files.append(("translation invariance", at("translation_invariance.png")))
    return files


def restore_digits_model(checkpoint: str):
    """(model, session): mini_inception as `minigraph train` builds it, its variables read from
    `checkpoint` (a `CheckpointError` says what does not match)."""
    model = build_digits_model(0)
    sess = Session(model.logits.graph)
    restore(sess, checkpoint)
    return model, sess


def print_files(files: List[Tuple[str, str]]) -> None:
    """One line per file: what it shows, then its path."""
    width = max(len(what) for what, _ in files)
    for what, path in files:
        print(f"  {what.ljust(width)}  {path}")


def add_command(subparsers) -> None:
    """Register `minigraph visualize` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "visualize", help="pictures of what the digits model learned, for one test image",
        description="Draw the filters, feature maps, saliency (plain and SmoothGrad), Grad-CAM and occlusion "
                    "maps of a trained digits model (minigraph train) for one test image, and its translation "
                    "invariance on the test set. Lists the files written.")
    p.add_argument("--checkpoint", default=os.path.join("runs/digits", CHECKPOINT),
                   help="checkpoint written by minigraph train (default runs/digits/checkpoint.npz)")
    p.add_argument("--index", type=int, default=0, help="which test image (default 0)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--class", dest="class_index", type=int, default=None, choices=range(10), metavar="K",
                   help="the class to explain, 0-9 (default: the predicted one)")
    p.set_defaults(func=run_command)


def run_command(args) -> int:
    files = visualize_digits(args.checkpoint, args.index, args.out, args.class_index)
    print(f"pictures of test image {args.index} in {args.out}:")
    print_files(files)
    return 0


__all__ = ["visualize_digits", "restore_digits_model", "print_files", "add_command", "DEFAULT_OUT"]
