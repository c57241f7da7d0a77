"""`minigraph predict` and `minigraph evaluate`: a saved image classifier on the command line.

    minigraph predict runs/digits/model.npz img1.png img2.jpg [--top-k 5]
    minigraph evaluate runs/digits/model.npz [--data PATH] [--split test|train] [--out DIR]

See `minigraph.classifier` for what the model file must hold (`minigraph train` writes one).
"""
from __future__ import annotations

import os

from .classifier import classes_of, evaluate, input_geometry, plot_confusion, predict_files
from .argtypes import positive_int
from .data import DataError
from .saved_model import load_model

__all__ = ["add_predict_command", "add_evaluate_command", "CONFUSION"]

CONFUSION = "confusion.png"
PLOT_HINT = "matplotlib is not installed: pip install 'minigraph[plot]' to get the confusion-matrix picture"


def add_predict_command(subparsers) -> None:
    """Register `minigraph predict` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "predict", help="classify image files with a saved model (top-k classes)",
        description="Classify PNG/JPEG (any format Pillow reads) image files with a model file written by "
                    "`minigraph train` (model.npz): each image is converted to the model's channels, scaled "
                    "to cover its input size and cut around the centre; prints the most probable classes.")
    p.add_argument("model", help="the model file (model.npz)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="classes to print per image (default 5)")
    p.set_defaults(func=_predict, parser=p)


def add_evaluate_command(subparsers) -> None:
    """Register `minigraph evaluate` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "evaluate", help="accuracy and confusion matrix of a saved model on a data set",
        description="Measure a model file's accuracy on a data set (the digits by default, or --data: an image "
                    "folder or CIFAR-10, as for `minigraph train`) and draw its confusion matrix (needs "
                    "matplotlib).")
    p.add_argument("model", help="the model file (model.npz)")
    p.add_argument("--data", default=None, metavar="PATH", help="an image folder or CIFAR-10 (default: the digits)")
    p.add_argument("--split", choices=("test", "train"), default="test",
                   help="which part of the data (default test: the images training held out)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help=f"where to write {CONFUSION} (default: the model file's folder)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="images per run (default 256)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_evaluate)


def _predict(args) -> int:
    if args.top_k < 1:
        args.parser.error("--top-k must be at least 1")
    model = load_model(args.model)
    c, h, w = input_geometry(model)
    tops = predict_files(model, args.images, args.top_k)  # an unreadable image: its error alone
    print(f"{args.model}: {len(classes_of(model))} classes, images as {'RGB' if c == 3 else 'grayscale'} {h} x {w}")
    for path, top in zip(args.images, tops):
        print(f"{path}: " + ", ".join(f"{name} {_percent(p)}" for name, p in top))
    return 0


def _percent(p: float) -> str:
    """A probability as a percentage with two decimals ('<0.01%' below that)."""
    return f"{p:.2%}" if p >= 5e-5 else "<0.01%"


def _evaluate(args) -> int:
    from .progress import write
    from .train_setup import load_data

    model = load_model(args.model)
    c, h, w = input_geometry(model)
    dataset = load_data(args.data, h, c) if args.data is not None else load_data()
    trained, given = list(classes_of(model)), [str(n) for n in dataset.classes]
    if trained != given:  # labels are class indices: other names or another order give a false score
        raise DataError(f"{args.data or 'the digits'} has the classes {given}, but {args.model} was trained "
                        f"on {trained}: evaluate it on data with the same classes in the same order")
    x, y = (dataset.x_test, dataset.y_test) if args.split == "test" else (dataset.x_train, dataset.y_train)
    result = evaluate(model, x, y, args.batch_size, progress=not args.no_progress)
    names = result.classes
    print(f"accuracy {result.accuracy:.4f} ({int(result.confusion.trace()):,} of {len(y):,} "
          f"{args.split} images of {args.data or 'the digits'})")
    width = max(len(n) for n in names)
    print("per class: " + ", ".join(f"{n} {a:.3f}" for n, a in zip(names, result.per_class_accuracy())))
    if len(names) <= 20:
        cell = max(len(str(int(result.confusion.max()))), width, 3)
        print("confusion matrix (rows: true class, columns: predicted):")
        print(" " * (width + 2) + " ".join(n.rjust(cell) for n in names))
        for n, row in zip(names, result.confusion):
            print(n.rjust(width) + "  " + " ".join(str(v).rjust(cell) for v in row))
    out = args.out or os.path.dirname(args.model) or os.curdir
    os.makedirs(out, exist_ok=True)
    picture = plot_confusion(result, os.path.join(out, CONFUSION))
    if picture is None:
        write(f"note: {PLOT_HINT}")
    else:
        print(f"confusion matrix picture: {picture}")
    return 0
