"""`minigraph demo` (what `make demo` runs): the tour of minigraph in under two minutes.

1. draws an Inception module (the paper's Figure 2(b)) and the whole GoogLeNet with each
   module collapsed to one box (Figure 3), as SVG files;
2. prints GoogLeNet's summary: parameters and multiply-adds per layer (Table 1);
3. trains mini_inception on the 8x8 digits for a few epochs (`minigraph train`'s loop),
   writing metrics.json, a checkpoint and (with matplotlib) loss.png;
4. draws what the trained network learned (`minigraph visualize` on test image 0): filters,
   feature maps, saliency, Grad-CAM, occlusion and translation invariance;

and says where each file is.
"""
from __future__ import annotations

import os
import time
from typing import List, Optional, Tuple

from .argtypes import positive_int
from .train import TrainConfig, fit
from .visualize import print_files, visualize_digits
from minigraph.viz.figures import MatplotlibNotFoundError

DEMO_EPOCHS = TrainConfig().epochs  # the default run, which reaches >= 98%
DEMO_OUT = "runs/demo"
VISUALIZE_INDEX = 0  # the test image whose explanations the demo draws


def _draw(target, path: str, **options) -> Tuple[str, Optional[str]]:
    """Render `target` to `path`; without Graphviz's `dot`, the .gv source and a hint instead."""
    from minigraph import viz
    try:
        return str(viz.render(target, path, **options)), None
    except viz.GraphvizNotFoundError as exc:
        return os.path.splitext(path)[0] + ".gv", str(exc)


def draw_diagrams(out: str) -> List[Tuple[str, str]]:
    """The Inception module and the collapsed GoogLeNet as SVGs in `out`; (what, path) pairs."""
    import minigraph as mg
    from .diagrams import googlenet, inception_3a
    files = []
    _, module = inception_3a()  # the graphs `minigraph render` draws: the same names everywhere
    path, problem = _draw(module, os.path.join(out, "inception_module.svg"), title="Inception module 3a (Figure 2b)")
    files.append(("Inception module diagram", path))
    _, net = googlenet(aux=True)
    path, problem2 = _draw(net.outputs, os.path.join(out, "googlenet.svg"), collapse=1,
                           title="GoogLeNet with its auxiliary classifiers, one box per module (Figure 3)")
    files.append(("GoogLeNet diagram", path))
    print("GoogLeNet (Szegedy et al. 2014, Table 1): parameters and multiply-adds per image\n")
    print(mg.summary(net.probs))  # Table 1 leaves the auxiliary classifiers out
    print()
    for p in {problem, problem2} - {None}:
        print(f"note: {p}")
    return files


def run_demo(out: str = DEMO_OUT, epochs: int = DEMO_EPOCHS, progress: bool = True) -> dict:
    """Diagrams, summary, a short training run and pictures of what it learned in `out`; returns
    the training metrics."""
    start = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    files = draw_diagrams(out)
    train_out = os.path.join(out, "train")
    print(f"training mini_inception on the 8x8 digits for {epochs} epoch{'' if epochs == 1 else 's'}")
    metrics = fit(TrainConfig(epochs=epochs, out=train_out), progress=progress)
    written = metrics["files"]  # loss_curves is None without matplotlib (fit said so)
    files += [(what, written[role]) for role, what in (("metrics", "training metrics"),
                                                       ("loss_curves", "loss and accuracy curves"),
                                                       ("checkpoint", "checkpoint"), ("model", "model file"))
              if written[role]]
    print(f"drawing what the network learned, for test image {VISUALIZE_INDEX}")
    try:
        files += visualize_digits(written["checkpoint"], VISUALIZE_INDEX, os.path.join(out, "visualize"))
    except MatplotlibNotFoundError as exc:  # a plain install: the pictures need the plot extra
        print(f"note: {exc}")
    print(f"\nfinal test accuracy {metrics['test_accuracy']:.4f} after {epochs} epochs "
          f"({time.perf_counter() - start:.0f} s in all). Files:")
    print_files(files)
    return metrics


def add_command(subparsers) -> None:
    """Register `minigraph demo` on the CLI's subparsers."""
    p = subparsers.add_parser("demo", help="draw Inception, summarise GoogLeNet, train on digits, see inside",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=DEMO_OUT, help=f"output folder (default {DEMO_OUT})")
    p.add_argument("--epochs", type=positive_int, default=DEMO_EPOCHS, help=f"training epochs (default {DEMO_EPOCHS})")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=lambda args: _run(args))


def _run(args) -> int:
    try:
        run_demo(args.out, args.epochs, progress=not args.no_progress)
    except KeyboardInterrupt:
        return 130
    return 0
