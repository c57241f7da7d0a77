"""What `minigraph train` keeps in its checkpoint's metadata, and the check it passes on resume.

The metadata dict (saved by `mg.save(..., metadata=...)`) holds:

- `config`: the settings that must match on resume (`RESUMABLE`) and the epochs (checkpoints
  from before `data`, `model`, `image_size`, `channels` and `augment` existed lack those);
- `epoch`, `batch`: the position reached (whole epochs done, batches done in the next);
- `partial`: the running sums of the epoch in progress (`loss_sum`, `correct`, `seen`, `seconds`);
- `history`: one record per finished epoch; `step_losses`: every step's loss.

A checkpoint is a file a user may have edited or damaged: `check(meta, path)` verifies every
field's type and range (and that the position agrees with the history) and raises a
`CheckpointError` naming the field, instead of a KeyError or TypeError in the middle of the loop.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict

from .checkpoint import json_type
from .errors import CheckpointError

__all__ = ["RESUMABLE", "check", "check_config"]

RESUMABLE = ("batch_size", "lr", "optimizer", "seed", "train_limit", "data", "model", "image_size", "channels",
             "augment")  # must match on resume
OPTIMIZERS = ("adam", "sgd")


def _int(minimum: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def _number(minimum: float = -math.inf, positive: bool = False) -> Callable[[Any], bool]:
    def ok(v):
        return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                and v >= minimum and (v > 0 or not positive))
    return ok


def _names(table: str):
    """The keys of the training loop's table of models or augmentations (imported when a
    checkpoint is read: the loop imports this module)."""
    from . import train, train_setup
    return getattr(train_setup, table, None) or getattr(train, table)


_CONFIG = {
    "batch_size": (_int(1), "an integer >= 1"),
    "lr": (_number(positive=True), "a finite number > 0"),
    "optimizer": (lambda v: v in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
    "seed": (_int(0), "an integer >= 0"),
    "train_limit": (lambda v: v is None or _int(1)(v), "null or an integer >= 1"),
    "epochs": (_int(1), "an integer >= 1"),
}
_CONFIG_LATER = {  # settings added after the first checkpoints: checked when present
    "data": (lambda v: v is None or isinstance(v, str), "null or a path"),
    "model": (lambda v: isinstance(v, str) and v in _names("MODELS"), "a model name of `minigraph train --model`"),
    "image_size": (lambda v: v is None or _int(1)(v), "null or an integer >= 1"),
    "channels": (lambda v: v in (1, 3) and not isinstance(v, bool), "1 or 3"),
    "augment": (lambda v: isinstance(v, str) and v in _names("AUGMENTATIONS"),
                "an augmentation name of `minigraph train --augment`"),
}
_PARTIAL = {
    "loss_sum": (_number(), "a finite number"),
    "correct": (_int(0), "an integer >= 0"),
    "seen": (_int(0), "an integer >= 0"),
    "seconds": (_number(0.0), "a number >= 0"),
}
_RECORD = {
    "epoch": (_int(1), "an integer >= 1"),
    "train_loss": (_number(), "a finite number"),
    "train_accuracy": (_number(0.0), "a number in [0, 1]"),
    "test_accuracy": (_number(0.0), "a number in [0, 1]"),
    "seconds": (_number(0.0), "a number >= 0"),
}


def _fields(value, schema: Dict[str, tuple], where: str, path: str, optional: bool = False) -> None:
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: {where} must be a JSON object, got {json_type(value)}")
    for key, (ok, what) in schema.items():
        if key not in value and optional:
            continue
        if key not in value:
            raise CheckpointError(f"{path}: {where} has no {key!r} (this checkpoint was not written "
                                  "by `minigraph train`, or was edited)")
        if not ok(value[key]):
            raise CheckpointError(f"{path}: {where}[{key!r}] must be {what}, got {value[key]!r}")


def check_config(meta, path: str) -> Dict[str, Any]:
    """The `config` of a train checkpoint's metadata, each setting checked."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: the metadata must be a JSON object, got {json_type(meta)}")
    if "config" not in meta:
        raise CheckpointError(f"{path} was not written by `minigraph train` (its metadata has no 'config')")
    _fields(meta["config"], _CONFIG, "metadata 'config'", path)
    _fields(meta["config"], _CONFIG_LATER, "metadata 'config'", path, optional=True)
    return meta["config"]


def check(meta, path: str, batches_per_epoch: int) -> Dict[str, Any]:
    """`meta` itself once every field has passed; `batches_per_epoch` bounds the position."""
    check_config(meta, path)
    _fields(meta, {"epoch": (_int(0), "an integer >= 0"), "batch": (_int(0), "an integer >= 0"),
                   "partial": (lambda v: True, ""), "history": (lambda v: isinstance(v, list), "a list"),
                   "step_losses": (lambda v: isinstance(v, list), "a list")}, "metadata", path)
    _fields(meta["partial"], _PARTIAL, "metadata 'partial'", path)
    for i, record in enumerate(meta["history"]):
        _fields(record, _RECORD, f"metadata 'history'[{i}]", path)
        if record["epoch"] != i + 1:
            raise CheckpointError(f"{path}: metadata 'history'[{i}] is for epoch {record['epoch']}, expected {i + 1}")
    if len(meta["history"]) != meta["epoch"]:
        raise CheckpointError(f"{path}: metadata 'epoch' is {meta['epoch']} but the history holds "
                              f"{len(meta['history'])} epochs")
    if meta["batch"] > batches_per_epoch:
        raise CheckpointError(f"{path}: metadata 'batch' is {meta['batch']}, but an epoch has "
                              f"{batches_per_epoch} batches")
    for i, loss in enumerate(meta["step_losses"]):
        if not _number()(loss):
            raise CheckpointError(f"{path}: metadata 'step_losses'[{i}] must be a finite number, got {loss!r}")
    return meta

