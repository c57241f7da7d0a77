"""`minigraph train`: the command-line face of `minigraph.train.fit`."""
from __future__ import annotations

import dataclasses
import os
import sys

from . import distributed, train_metadata
from .argtypes import int_between, non_negative_int, positive_float, positive_int
from .train import AUGMENTATIONS, CHECKPOINT, RESUMABLE, TrainConfig, distributed_backend, fit
from .train_setup import MODELS

__all__ = ["add_command", "run_command"]


def add_command(subparsers) -> None:
    """Register `minigraph train` on the CLI's subparsers."""
    d = TrainConfig()
    p = subparsers.add_parser(
        "train", help="train mini_inception on the 8x8 digits or on your images (--data)",
        description="Train mini_inception (or --model) on the 8x8 digits that ship with minigraph, or on "
                    "--data: a folder of images with one sub-folder per class, or CIFAR-10's binary version. "
                    "Writes checkpoint.npz, model.npz (for minigraph predict/evaluate), metrics.json and loss.png "
                    "(with matplotlib) to --out. "
                    "Ctrl-C saves a checkpoint; --resume continues it.")
    p.add_argument("--epochs", type=positive_int, default=None, help=f"epochs in all (default {d.epochs})")
    p.add_argument("--batch-size", type=positive_int, default=None, help=f"mini-batch size (default {d.batch_size})")
    p.add_argument("--lr", type=positive_float, default=None,
                   help=f"initial learning rate, halved every 4 epochs (default {d.lr})")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default=None,
                   help=f"adam, or sgd with Nesterov momentum 0.9 (default {d.optimizer})")
    p.add_argument("--seed", type=non_negative_int, default=None,
                   help=f"seed of weights, batches, augmentation, dropout (default {d.seed})")
    p.add_argument("--out", default=d.out, help=f"output folder (default {d.out})")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--train-limit", type=positive_int, default=None, metavar="N",
                   help="train on the first N training images only (quick smoke runs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars, one line per epoch")
    p.add_argument("--check-numerics", action="store_true", default=None,
                   help="stop at the first NaN or Inf any op produces, naming the op and its inputs "
                        "(also MINIGRAPH_CHECK_NUMERICS=1)")
    p.add_argument("--backend", choices=("numpy", "cupy"), default=None,
                   help="array backend (default: $MINIGRAPH_BACKEND, else numpy); a checkpoint resumes on either")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over the ranks of `mpirun -n N minigraph train --distributed` "
                        "(MPI; NCCL with --backend cupy); --batch-size is the global batch")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="an image folder (one sub-folder per class, or train/ and test/ each so), or CIFAR-10's "
                        "binary folder or .tar.gz (default: the 8x8 digits)")
    p.add_argument("--model", choices=tuple(MODELS), default=None, help=f"the network (default {d.model})")
    p.add_argument("--image-size", type=int_between(1, 4096), default=None, metavar="N",
                   help="--data folders: decode images at N x N (default 32)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=None,
                   help="--data folders: 3 for RGB, 1 for grayscale (default 3)")
    p.add_argument("--augment", choices=tuple(AUGMENTATIONS), default=None,
                   help="random 4-pixel crops and/or mirror flips of the training images "
                        "(default: crop+flip with --data, none for the digits)")
    p.set_defaults(func=run_command, parser=p)


def _saved_settings(args) -> dict:
    """The settings in --out's checkpoint; in a distributed run rank 0 reads them (only its
    machine needs the file) and sends them, or its error, to the others."""
    from .checkpoint import read_metadata
    from .errors import CheckpointError
    path = os.path.join(args.out, CHECKPOINT)
    if not args.distributed:
        return train_metadata.check_config(read_metadata(path), path)
    comm = distributed.init(distributed_backend(args.backend))
    saved, error = None, None
    if comm.rank == 0:
        try:
            saved = train_metadata.check_config(read_metadata(path), path)
        except CheckpointError as exc:
            error = str(exc)
    saved, error = comm.broadcast_object([saved, error], 0, "broadcast of the checkpoint's settings")
    if error is not None:
        raise CheckpointError(error)
    return saved


def run_command(args) -> int:
    """`minigraph train`: settings from the flags, else (with --resume) the checkpoint, else defaults."""
    settings = dataclasses.asdict(TrainConfig())
    if args.resume:
        saved = _saved_settings(args)
        settings.update({k: v for k, v in saved.items() if k in RESUMABLE + ("epochs",)})
    explicit = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                "optimizer": args.optimizer, "seed": args.seed, "train_limit": args.train_limit,
                "data": args.data, "model": args.model, "image_size": args.image_size, "channels": args.channels,
                "augment": args.augment}
    settings.update({k: v for k, v in explicit.items() if v is not None}, out=args.out, backend=args.backend,
                    distributed=args.distributed, check_numerics=args.check_numerics)
    if settings["data"] is None and (args.image_size is not None or args.channels is not None):
        args.parser.error("--image-size and --channels size the images of --data folders; the digits are "
                          "1 x 8 x 8 (give --data, or leave them out)")
    if args.augment is None and not args.resume and settings["data"] is not None:
        settings["augment"] = "crop+flip"
    config = TrainConfig(**settings)
    try:
        metrics = fit(config, resume=args.resume, progress=not args.no_progress)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # e.g. a full disk while writing metrics.json or loss.png
        print(f"minigraph: error: {exc}", file=sys.stderr)
        return 1
    if args.distributed and distributed.init(distributed_backend(args.backend)).rank != 0:
        return 0  # rank 0 reports
    print(f"final test accuracy: {metrics['test_accuracy']:.4f}")
    for role, what in (("checkpoint", "checkpoint"), ("model", "model"), ("metrics", "metrics"),
                       ("loss_curves", "loss curves")):
        if metrics["files"][role] is not None:  # no plot without matplotlib: fit said so once
            print(f"  {what:12s} {metrics['files'][role]}")
    return 0
