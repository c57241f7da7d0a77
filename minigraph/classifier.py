"""Using a saved image classifier: what `minigraph predict` and `minigraph evaluate` run.

An image classifier file is a model file (`mg.save_model`) with an input "x" of shape
(None, C, H, W) fed with pixels in [0, 1] (RGB for C = 3, grayscale for C = 1), an output
"probs" (None, K) of class probabilities (or only "logits", whose softmax is taken), and the
class names in its metadata;
`save_classifier` writes one (`minigraph train` does, beside its checkpoint):

    model = mg.load_model("runs/pets/model.npz")
    top = predict_files(model, ["cat.jpg"], top_k=3)      # [[("cat", 0.91), ("dog", 0.07), ...]]
    result = evaluate(model, x_test, y_test)               # accuracy and confusion matrix
"""
from __future__ import annotations

import os
from contextlib import closing
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from . import data as mgdata
from .errors import ModelFileError
from .saved_model import Model, save_model

__all__ = ["save_classifier", "classes_of", "input_geometry", "load_images", "probabilities", "predict_files",
           "evaluate",
           "Evaluation", "plot_confusion", "MODEL"]

MODEL = "model.npz"  # the file name `minigraph train` writes beside its checkpoint


def save_classifier(path, model, sess, classes: Sequence[str] = ()) -> str:
    """Write `model` (a structure with x, logits and, if it has them, probs, e.g. `minigraph
    train`'s) as an image classifier file: input "x", outputs "logits" and "probs", and the
    class names (default "0", "1", ...). Returns the path."""
    k = int(model.logits.shape[1])
    names = [str(c) for c in classes] or [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"save_classifier: {len(names)} class names for {k} outputs")
    outputs = {"logits": model.logits}
    if getattr(model, "probs", None) is not None:
        outputs["probs"] = model.probs
    meta = {"task": "image classification", "classes": names, "pixels": "[0, 1], RGB or grayscale, NCHW"}
    return save_model(path, {"x": model.x}, outputs, sess, metadata=meta)


def classes_of(model: Model) -> List[str]:
    """The class names of a classifier file (its metadata, else "0", "1", ...); a
    ModelFileError when the model has no (N, K) "probs" or "logits" output."""
    probs = model.outputs.get("probs", model.outputs.get("logits"))
    if probs is None or probs.ndim != 2 or probs.shape[1] is None:
        raise ModelFileError(f"the model is not an image classifier: it needs an output 'probs' or 'logits' of "
                             f"shape (N, classes); its outputs: {', '.join(model.outputs)}")
    k = int(probs.shape[1])
    names = model.metadata.get("classes") or [str(i) for i in range(k)]
    if len(names) != k:
        raise ModelFileError(f"the model's metadata names {len(names)} classes for {k} outputs")
    return [str(c) for c in names]


def input_geometry(model: Model) -> Tuple[int, int, int]:
    """(channels, height, width) the classifier's input "x" takes; a ModelFileError otherwise."""
    x = model.inputs.get("x")
    if x is None or x.ndim != 4 or None in x.shape[1:] or x.shape[1] not in (1, 3):
        shape = None if x is None else x.shape
        raise ModelFileError(f"the model is not an image classifier: it needs an input 'x' of shape "
                             f"(N, 1 or 3, H, W); it has {shape} (inputs: {', '.join(model.inputs)})")
    return tuple(int(d) for d in x.shape[1:])


def load_images(model: Model, paths: Sequence[str]) -> np.ndarray:
    """The image files at `paths` as the model's input: decoded by Pillow, converted to its
    channels, scaled to cover its size with the aspect ratio kept and cut around the centre,
    pixels in [0, 1] of the input's dtype. An unreadable file is a DataError naming it."""
    c, h, w = input_geometry(model)
    out = np.empty((len(paths), c, h, w), dtype=model.inputs["x"].dtype)
    for i, p in enumerate(paths):
        out[i] = mgdata.decode_image(p, (h, w), c) / 255.0
    return out


def probabilities(model: Model, x: np.ndarray) -> np.ndarray:
    """The class probabilities (N, K) of images `x`: the "probs" output, or the softmax of
    "logits" (in float64) when the file has no "probs"."""
    if "probs" in model.outputs:
        return model.run({"x": x}, "probs")
    logits = model.run({"x": x}, "logits").astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def predict_files(model: Model, paths: Sequence[str], top_k: int = 5,
                  batch_size: int = 64) -> List[List[Tuple[str, float]]]:
    """For each image file, its `top_k` most probable classes as (name, probability), most
    probable first."""
    names = classes_of(model)
    k = max(1, min(int(top_k), len(names)))
    out = []
    for start in range(0, len(paths), batch_size):
        probs = probabilities(model, load_images(model, paths[start:start + batch_size]))
        for row in probs:
            best = np.argsort(-row, kind="stable")[:k]
            out.append([(names[j], float(row[j])) for j in best])
    return out


class Evaluation(NamedTuple):
    """accuracy; confusion[i, j]: how many images of class i were predicted as j; classes."""

    accuracy: float
    confusion: np.ndarray
    classes: List[str]

    def per_class_accuracy(self) -> np.ndarray:
        """The fraction of each class's images predicted right (NaN for a class with none)."""
        totals = self.confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(self.confusion) / totals


def evaluate(model: Model, x, y: np.ndarray, batch_size: int = 256, progress: bool = False) -> Evaluation:
    """Accuracy and confusion matrix of the classifier on images `x` (an array or lazy images,
    (N, C, H, W) in [0, 1]) with int labels `y`."""
    from .progress import progress as progress_bar

    names = classes_of(model)
    geometry = input_geometry(model)
    if tuple(x.shape[1:]) != geometry:
        raise mgdata.DataError(f"the data's images are {' x '.join(map(str, x.shape[1:]))}, the model takes "
                               f"{' x '.join(map(str, geometry))}")
    y = np.asarray(y, dtype=np.int64)
    if len(y) and (y.min() < 0 or y.max() >= len(names)):
        raise mgdata.DataError(f"labels run from {y.min()} to {y.max()}; the model knows {len(names)} classes")
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)
    batches = mgdata.batches(x, y, batch_size, shuffle=False)
    with progress_bar(total=batches.total, desc="evaluating", unit="batch", enabled=progress) as bar, \
            closing(iter(mgdata.prefetch(batches))) as stream:
        for xb, yb in stream:
            predicted = probabilities(model, xb.astype(model.inputs["x"].dtype, copy=False)).argmax(axis=1)
            np.add.at(confusion, (yb, predicted), 1)
            bar.update(1)
    accuracy = float(np.trace(confusion) / max(len(y), 1))
    return Evaluation(accuracy, confusion, names)


def plot_confusion(result: Evaluation, path: str, title: str = "") -> Optional[str]:
    """Draw the confusion matrix (rows: true class, columns: predicted; each row as fractions of
    that class, the counts written in the cells) to `path`. Returns the path, or None without
    matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    m = result.confusion
    k = len(result.classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.nan_to_num(m / m.sum(axis=1, keepdims=True))
    side = min(max(4.0, 0.55 * k + 2.5), 16.0)
    fig = Figure(figsize=(side + 1.2, side), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xticks(range(k), result.classes, rotation=45 if max(map(len, result.classes)) > 3 else 0, ha="right")
    ax.set_yticks(range(k), result.classes)
    ax.set(xlabel="predicted class", ylabel="true class",
           title=title or f"confusion matrix: accuracy {result.accuracy:.2%} on {int(m.sum()):,} images")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if m[i, j]:
                    ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if frac[i, j] > 0.5 else "black")
    fig.tight_layout()
    tmp = os.fspath(path) + ".tmp.png"
    fig.savefig(tmp)
    os.replace(tmp, path)
    return os.fspath(path)

