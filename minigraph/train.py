"""The training loop behind `minigraph train`: mini_inception on the 8x8 digits, or a named
model on your own images (`config.data`: an image folder or CIFAR-10's binary version).

`fit(config)` builds the model, trains it with a progress bar per epoch (live loss and
accuracy; plain lines when the output is a log, see `minigraph.progress`), measures test
accuracy after each epoch and keeps these files in `config.out`:

- `checkpoint.npz`: variables, optimizer state, the session generator and the loop's
  position (epoch, batch, running sums), written after every epoch and on Ctrl-C;
- `model.npz`: the trained classifier on its own (graph and weights, see
  `minigraph.classifier`), written with the checkpoint: `minigraph predict` and
  `minigraph evaluate` use it without the code that built it;
- `metrics.json`: {"epochs": [{"epoch", "train_loss", "train_accuracy", "test_accuracy",
  "seconds"}, ...], "test_accuracy": <last>, "step_losses": [...], "config": {...}};
- `loss.png`: the loss and accuracy curves (needs matplotlib, `minigraph[plot]`; without
  it the run says once how to get them and lists no plot).

Everything random (initial weights, batch order, augmentation, dropout) is drawn from
generators seeded by `config.seed`, so two runs with the same seed give the same losses bit for bit, and a
resumed run (`resume=True`) continues exactly where the checkpoint left off, even from the
middle of an epoch. Ctrl-C finishes the current step, saves a checkpoint and raises
`KeyboardInterrupt`; a second Ctrl-C stops at once without saving.

With `config.distributed` (under `mpirun -n N`), each rank trains on its part of every
global batch of `batch_size` through `mg.distributed` (MPI for NumPy, NCCL for CuPy); the
batches, augmentation, dropout masks and steps are those of a 1-rank run, losses and
accuracies are summed over the ranks, and only rank 0 writes files and shows progress. A
checkpoint resumes on any rank count that divides the batch size. An error on one rank
aborts all of them.

A loss that is not finite (NaN or infinite, e.g. from a learning rate that is too high) stops
the run with a `NumericsError` before anything else is written: the checkpoint in `config.out`
stays the last good one (weights that are not finite are never saved either).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import threading
import time
from contextlib import closing, nullcontext
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from . import data as mgdata
from . import distributed
from . import optim
from . import train_metadata
from .atomic_file import write_atomic
from .checkpoint import read_metadata, restore, save
from .classifier import MODEL, save_classifier
from .errors import CheckpointError, NumericsError
from .progress import progress as progress_bar
from .progress import write as progress_write
from .session import Session
from .train_setup import build_digits_model, build_model, load_data

__all__ = ["TrainConfig", "fit", "evaluate", "plot_metrics", "build_digits_model", "AUGMENTATIONS",
           "PLOT_HINT", "CHECKPOINT", "METRICS", "PLOT", "RESUMABLE"]

CHECKPOINT, METRICS, PLOT = "checkpoint.npz", "metrics.json", "loss.png"
RESUMABLE = train_metadata.RESUMABLE  # settings that must match on resume
PLOT_HINT = "matplotlib is not installed: pip install 'minigraph[plot]' to get the loss curves (loss.png)"
# --augment: name -> (padding of the random crop, flip)
AUGMENTATIONS = {"none": None, "crop": (4, False), "flip": (0, True), "crop+flip": (4, True)}


@dataclasses.dataclass
class TrainConfig:
    """The settings of one run; the defaults reach >= 98% test accuracy on digits."""

    epochs: int = 12
    batch_size: int = 32
    lr: float = 3e-3
    optimizer: str = "adam"
    seed: int = 0
    out: str = "runs/digits"
    train_limit: Optional[int] = None  # train on the first N training images only (smoke tests)
    backend: Optional[str] = None  # "numpy" or "cupy"; None: MINIGRAPH_BACKEND, else numpy
    data: Optional[str] = None  # None: the digits; else an image folder or CIFAR-10 (see load_data)
    model: str = "mini_inception"  # a name in MODELS
    image_size: Optional[int] = None  # image folders: decoded size (default 32); CIFAR-10: 32
    channels: int = 3  # image folders: 3 (RGB) or 1 (grayscale)
    augment: str = "none"  # a name in AUGMENTATIONS: random crops (4 px) and/or mirror flips
    distributed: bool = False  # data-parallel over the ranks of mpirun (MPI; NCCL with cupy)
    check_numerics: Optional[bool] = None  # stop at the first NaN/Inf with the node that made it

    def schedule(self) -> Callable[[int], float]:
        """The learning rate of each epoch: halved every 4 epochs (independent of `epochs`,
        so a run extended with --resume follows the same curve as a longer one)."""
        return optim.step_schedule(self.lr, step_size=4, gamma=0.5)

    def make_optimizer(self, lr_node):
        if self.optimizer == "adam":
            return optim.Adam(lr_node)
        if self.optimizer == "sgd":
            return optim.SGD(lr_node, momentum=0.9, nesterov=True)
        raise ValueError(f"unknown optimizer {self.optimizer!r}; choose adam or sgd")

    def augmentation(self):
        """The batch transform `augment` names (None for "none")."""
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {self.augment!r}; choose one of {', '.join(AUGMENTATIONS)}")
        spec = AUGMENTATIONS[self.augment]
        return None if spec is None else mgdata.random_crop_flip(*spec)


# ---------------------------------------------------------------------------------
# the loop


class _Run:
    """The state of one training run: graph, session, position and history."""

    def __init__(self, config: TrainConfig, model_fn, dataset, say: Callable[[str], None], comm=None):
        self.config = config
        self.data = dataset
        self.say = say
        self.comm = comm
        self.rank, self.size = (comm.rank, comm.size) if comm is not None else (0, 1)
        self.is_root = self.rank == 0
        self.augment = config.augmentation()
        if config.train_limit:
            self.x_train = dataset.x_train[:config.train_limit]
            self.y_train = dataset.y_train[:config.train_limit]
        else:
            self.x_train, self.y_train = dataset.x_train, dataset.y_train
        self.model = (model_fn(config.seed) if model_fn is not None else
                      build_model(config.model, dataset.x_train.shape[1:], dataset.num_classes, config.seed))
        graph = self.model.loss.graph
        with graph:
            self.lr = optim.learning_rate(config.lr, name="learning_rate")
        self.optimizer = config.make_optimizer(self.lr)
        if comm is not None:
            self.optimizer = distributed.DistributedOptimizer(self.optimizer, comm)
        self.train_op = self.optimizer.minimize(self.model.loss)
        self.sess = Session(graph, backend=config.backend, seed=config.seed, check_numerics=config.check_numerics)
        if comm is not None:
            distributed.broadcast_variables(self.sess, comm)
        self.history: List[Dict[str, Any]] = []
        self.step_losses: List[float] = []
        self.epoch, self.batch = 0, 0
        self.partial = _fresh_partial()
        self.saved_at = None  # (epoch, batch) of the checkpoint on disk from this run or its resume
        if self.is_root:
            try:
                os.makedirs(config.out, exist_ok=True)
            except OSError as exc:  # the same OSError type, its message naming the setting
                raise type(exc)(f"cannot create the output folder {config.out} (--out, TrainConfig.out): "
                                f"{exc.strerror or exc}") from exc
        self.checkpoint = os.path.join(config.out, CHECKPOINT)
        self.plot: Optional[str] = None  # loss.png once this run has drawn it
        self.plot_hint_given = False

    # checkpoint ------------------------------------------------------------------
    def save(self) -> None:
        """Write the checkpoint (rank 0 only: every rank holds the same state); weights that are
        not finite are never saved."""
        for var in self.sess.variables:
            if not np.isfinite(self.sess.get_value(var)).all():
                raise self.diverged(f"variable {var.name!r} holds NaN or infinite values",
                                    _position(self.epoch, self.batch))
        if self.is_root:
            meta = {"config": _resumable(self.config), "epoch": self.epoch, "batch": self.batch,
                    "partial": self.partial, "history": self.history, "step_losses": self.step_losses}
            save(self.sess, self.checkpoint, metadata=meta)
            save_classifier(os.path.join(self.config.out, MODEL), self.model, self.sess, self.data.classes)
        self.saved_at = (self.epoch, self.batch)

    def resume(self) -> None:
        """Rank 0 reads the checkpoint and sends its state (or its error) to the others."""
        meta, error = None, None
        if self.is_root:
            try:
                meta = self._read_checkpoint()
            except CheckpointError as exc:
                error = str(exc)
        if self.comm is not None:
            meta, error = self.comm.broadcast_object([meta, error], 0, "broadcast of the checkpoint's metadata")
            if error is None:
                distributed.broadcast_variables(self.sess, self.comm)
        if error is not None:
            raise CheckpointError(error)
        self.epoch, self.batch, self.partial = meta["epoch"], meta["batch"], meta["partial"]
        self.history, self.step_losses = meta["history"], meta["step_losses"]
        self.saved_at = (self.epoch, self.batch)

    def _read_checkpoint(self) -> Dict[str, Any]:
        # the settings first: another optimizer's state would fail the restore with a long list
        saved = train_metadata.check_config(read_metadata(self.checkpoint), self.checkpoint)
        now, default = _resumable(self.config), _resumable(TrainConfig())
        differ = [f"--{k.replace('_', '-')} {saved.get(k, default[k])} (now {now[k]})" for k in RESUMABLE
                  if saved.get(k, default[k]) != now[k]]
        if differ:
            raise CheckpointError(f"{self.checkpoint} was trained with other settings: {', '.join(differ)}; "
                                  "resume with the same ones")
        batches = mgdata.batches(self.x_train, self.y_train, self.config.batch_size, shuffle=False)
        return train_metadata.check(restore(self.sess, self.checkpoint), self.checkpoint, batches.total)

    def diverged(self, what: str, where: str) -> NumericsError:
        """The error that stops a run whose loss or weights stopped being finite."""
        if self.saved_at is None:
            kept = "no checkpoint was written by this run"
        else:
            kept = f"{self.checkpoint} keeps the last good state ({_position(*self.saved_at)})"
        return NumericsError(f"training diverged {where}: {what}; {kept}. Try a smaller learning rate "
                             f"(now --lr {self.config.lr:g} with {self.config.optimizer})")

    # steps -------------------------------------------------------------------------
    def train_epoch(self, progress: bool, interrupted: Callable[[], bool],
                    on_step: Optional[Callable[[int, float], None]]) -> None:
        cfg, m, p = self.config, self.model, self.partial
        lr = np.float32(cfg.schedule()(self.epoch))
        batches = mgdata.batches(self.x_train, self.y_train, cfg.batch_size, seed=cfg.seed,
                                 epoch=self.epoch, start=self.batch, augment=self.augment,
                                 rank=self.rank, size=self.size)
        fetches = [m.loss, m.logits, self.train_op]
        start = time.perf_counter()
        with progress_bar(total=batches.total, initial=self.batch, desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                          unit="batch", enabled=progress and self.is_root) as bar, \
                closing(iter(mgdata.prefetch(batches))) as stream:
            for batch in stream:  # the next batch is made (decoded, augmented) while this one trains
                loss, logits, _ = self.sess.run(fetches, self._feed(batch, lr))
                loss, correct, seen, stop = self._step_totals(batch, float(loss), logits, interrupted())
                if not math.isfinite(loss):  # the global loss: every rank stops at the same step
                    raise self.diverged(f"the loss is {loss}", f"at epoch {self.epoch + 1}, batch {self.batch + 1} "
                                                               f"of {batches.total}")
                self.step_losses.append(loss)
                p["loss_sum"] += loss * seen
                p["correct"] += correct
                p["seen"] += seen
                self.batch += 1
                p["seconds"] += time.perf_counter() - start
                start = time.perf_counter()
                bar.set_postfix(loss=f"{p['loss_sum'] / p['seen']:.4f}",
                                acc=f"{p['correct'] / p['seen']:.3f}", refresh=False)
                bar.update(1)
                if on_step is not None:
                    on_step(len(self.step_losses), loss)
                if stop or (self.comm is None and interrupted()):  # distributed: all ranks agree first
                    raise _Stop

    def _feed(self, batch: mgdata.Batch, lr) -> dict:
        m = self.model
        feed = {m.x: batch.x, m.y: batch.y, m.training: True, self.lr: lr}
        if self.comm is not None:
            feed[self.optimizer.share] = batch.share
            first = getattr(m, "first_example", None)
            if first is not None:
                feed[first] = batch.offset
        return feed

    def _step_totals(self, batch: mgdata.Batch, loss: float, logits, interrupted: bool):
        """(mean loss, correct, examples, stop) of the global batch: summed over the ranks
        when distributed (a rank that was interrupted stops them all after the same step)."""
        correct = int((logits[:batch.count].argmax(axis=1) == batch.y[:batch.count]).sum())
        if self.comm is None:
            return loss, correct, batch.count, interrupted
        totals = np.array([loss * batch.count, correct, batch.count, float(interrupted)])
        self.comm.allreduce(totals, "allreduce of the step's loss and accuracy")
        return float(totals[0] / totals[2]), int(totals[1]), int(totals[2]), bool(totals[3])

    def finish_epoch(self) -> Dict[str, Any]:
        start = time.perf_counter()
        test_acc = evaluate(self.sess, self.model, self.data.x_test, self.data.y_test, comm=self.comm)
        p = self.partial
        record = {"epoch": self.epoch + 1, "train_loss": p["loss_sum"] / max(p["seen"], 1),
                  "train_accuracy": p["correct"] / max(p["seen"], 1), "test_accuracy": test_acc,
                  "seconds": p["seconds"] + time.perf_counter() - start}
        self.history.append(record)
        self.epoch, self.batch, self.partial = self.epoch + 1, 0, _fresh_partial()
        return record

    def write_reports(self) -> Dict[str, Any]:
        """metrics.json and loss.png (rank 0 only); returns the metrics on every rank."""
        metrics = {"epochs": self.history,
                   "test_accuracy": self.history[-1]["test_accuracy"] if self.history else None,
                   "step_losses": self.step_losses, "config": dataclasses.asdict(self.config)}
        text = json.dumps(metrics, indent=1)
        if not self.is_root:
            return json.loads(text)
        _write_atomic(os.path.join(self.config.out, METRICS), text)
        if self.history:
            path = os.path.join(self.config.out, PLOT)
            self.plot = plot_metrics(metrics, path)
            if self.plot is None and not self.plot_hint_given:
                stale = f" ({path} is from an earlier run)" if os.path.exists(path) else ""
                self.say(f"note: {PLOT_HINT}{stale}")
                self.plot_hint_given = True
        return json.loads(text)

    def files(self) -> Dict[str, Optional[str]]:
        """The files this run wrote, by role; "loss_curves" is None when no plot was drawn."""
        return {"checkpoint": self.checkpoint, "model": os.path.join(self.config.out, MODEL),
                "metrics": os.path.join(self.config.out, METRICS),
                "loss_curves": self.plot}


def _position(epoch: int, batch: int) -> str:
    """Where a run stands after `epoch` whole epochs and `batch` batches of the next, in words."""
    if batch == 0:
        return f"after epoch {epoch}" if epoch else "before the first step"
    return f"epoch {epoch + 1}, after batch {batch}"


def _fresh_partial() -> Dict[str, Any]:
    return {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}


def _resumable(config: TrainConfig) -> Dict[str, Any]:
    """The settings a checkpoint records: those that must match on resume, and the epochs."""
    return {k: getattr(config, k) for k in RESUMABLE + ("epochs",)}


def fit(config: Optional[TrainConfig] = None, resume: bool = False, progress: bool = True,
        model_fn: Optional[Callable] = None, dataset: Optional[mgdata.Dataset] = None,
        log: Callable[[str], None] = print, on_step: Optional[Callable[[int, float], None]] = None) -> dict:
    """Train a model on `dataset` for `config.epochs` epochs in all; returns the metrics dict
    (as in metrics.json) with "files": the paths this run wrote, by role ("checkpoint",
    "metrics", "loss_curves"; the last None when matplotlib is missing).

    The model is `model_fn(seed)` (a structure with x, y, training, logits, loss), else
    `build_model(config.model, ...)` sized to the data; the data `dataset`, else
    `load_data(config.data, ...)` (the digits unless `config.data` names a folder). With `resume`,
    continue from `config.out`'s checkpoint. On Ctrl-C (or a SIGINT raised by `on_step`),
    finish the step, save a checkpoint and raise KeyboardInterrupt. A loss or weights that are
    not finite raise `NumericsError` (NumPy's floating-point warnings are left out unless the
    caller set NumPy's error handling, np.seterr or np.errstate, to something else). With
    `config.distributed`, train data-parallel over the ranks of mpirun (see the module).
    """
    config = config if config is not None else TrainConfig()
    if config.epochs < 1 or config.batch_size < 1:
        raise ValueError(f"epochs and batch size must be >= 1, got {config.epochs} and {config.batch_size}")
    comm = communicator(config) if config.distributed else None
    if comm is not None and comm.rank != 0:
        log = _quiet
    with distributed.abort_all_on_error(comm):  # one rank's error (data, checkpoint, step) ends all
        return _train(config, comm, resume, progress, model_fn, dataset, log, on_step)


def _train(config: TrainConfig, comm, resume: bool, progress: bool, model_fn, dataset, log, on_step) -> dict:
    say = progress_write if progress and (comm is None or comm.rank == 0) else log
    if dataset is None:
        dataset = load_data(config.data, config.image_size, config.channels)
    run = _Run(config, model_fn, dataset, say, comm)
    if resume:
        run.resume()
        log(f"resumed from {run.checkpoint} at epoch {run.epoch + 1}, batch {run.batch}")
    elif run.is_root and os.path.exists(run.checkpoint):
        log(f"note: starting afresh; {run.checkpoint} will be overwritten (resume=True, or "
            "`minigraph train --resume`, continues it instead)")
    if comm is not None:
        log(f"data-parallel over {comm.size} ranks ({comm.backend}): {config.batch_size // comm.size} "
            f"of each batch of {config.batch_size} per rank")
    with _DeferredInterrupt() as interrupt, _numpy_warnings_left_to_the_loss_check():
        try:
            while run.epoch < config.epochs:
                run.train_epoch(progress, interrupt.pending, on_step)
                r = run.finish_epoch()
                run.save()
                run.write_reports()
                say(f"epoch {r['epoch']}/{config.epochs}: loss {r['train_loss']:.4f}  train accuracy "
                    f"{r['train_accuracy']:.4f}  test accuracy {r['test_accuracy']:.4f}  ({r['seconds']:.1f} s)")
                if interrupt.pending():
                    raise _Stop
        except _Stop:
            run.save()
            run.write_reports()
            log(f"interrupted at epoch {run.epoch + 1}, batch {run.batch}: checkpoint saved to "
                f"{run.checkpoint}; continue with --resume")
            raise KeyboardInterrupt from None
    return {**run.write_reports(), "files": run.files()}


_NUMPY_DEFAULT_ERRORS = {"divide": "warn", "over": "warn", "under": "ignore", "invalid": "warn"}


def _numpy_warnings_left_to_the_loss_check():
    """NaN and overflow are the loss check's to report (`diverged`), without NumPy's warnings
    before it; a caller who set NumPy's error handling (np.seterr / np.errstate) keeps theirs."""
    if np.geterr() != _NUMPY_DEFAULT_ERRORS:
        return nullcontext()
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


def _quiet(message: str) -> None:
    """The log of ranks other than 0."""


def distributed_backend(backend: Optional[str]) -> str:
    """The collectives for an array backend: NCCL for CuPy, MPI otherwise."""
    return "nccl" if (backend or os.environ.get("MINIGRAPH_BACKEND")) == "cupy" else "mpi"


def communicator(config: TrainConfig):
    """The communicator of a distributed run. The global batch must split evenly over its
    ranks (a `DistributedError` says so on every rank)."""
    comm = distributed.init(distributed_backend(config.backend))
    if config.batch_size % comm.size:
        raise distributed.DistributedError(
            f"the batch size {config.batch_size} is not divisible by the {comm.size} ranks; "
            "use a batch size that is a multiple of the rank count")
    return comm


def evaluate(sess: Session, model, x: np.ndarray, y: np.ndarray, batch_size: int = 256, comm=None) -> float:
    """The fraction of `x` that `model` (in evaluation mode) classifies as `y`. With a
    communicator, each rank classifies its contiguous part and the counts are summed."""
    if not len(y):
        return 0.0
    if comm is None or comm.size == 1:
        return _count_correct(sess, model, x, y, batch_size) / len(y)
    lo, hi = (len(y) * comm.rank) // comm.size, (len(y) * (comm.rank + 1)) // comm.size
    correct = np.array([_count_correct(sess, model, x[lo:hi], y[lo:hi], batch_size)], np.int64)
    comm.allreduce(correct, "allreduce of the test accuracy")
    return int(correct[0]) / len(y)


def _count_correct(sess: Session, model, x, y, batch_size: int) -> int:
    correct = 0
    with closing(iter(mgdata.prefetch(mgdata.batches(x, y, batch_size, shuffle=False)))) as stream:
        for xb, yb in stream:
            logits = sess.run(model.logits, {model.x: xb})
            correct += int((logits.argmax(axis=1) == yb).sum())
    return correct


class _Stop(Exception):
    """Raised between steps once Ctrl-C was pressed: the state is consistent, save it."""


class _DeferredInterrupt:
    """While active (main thread only), a first Ctrl-C only raises a flag, which the loop
    checks between steps; a second one raises KeyboardInterrupt at once."""

    def __enter__(self):
        self.hit = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def pending(self) -> bool:
        return self.hit

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


# ---------------------------------------------------------------------------------
# reports


def plot_metrics(metrics: dict, path: str) -> Optional[str]:
    """Draw the per-step and per-epoch training loss and the accuracies per epoch to `path`
    (PNG, matplotlib's Agg backend, no display needed). Returns the path, or None without
    matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    epochs = metrics["epochs"]
    steps = metrics.get("step_losses") or []
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)
    if steps:
        per_epoch = len(steps) / len(epochs)
        ax_loss.plot(np.arange(1, len(steps) + 1) / per_epoch, steps, lw=0.6, alpha=0.5, label="per batch")
    ax_loss.plot([e["epoch"] for e in epochs], [e["train_loss"] for e in epochs], "o-", label="epoch mean")
    ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log", title="loss")
    ax_loss.legend()
    xs = [e["epoch"] for e in epochs]
    ax_acc.plot(xs, [e["train_accuracy"] for e in epochs], "o-", label="train")
    ax_acc.plot(xs, [e["test_accuracy"] for e in epochs], "s-", label="test")
    ax_acc.axhline(0.98, color="gray", ls="--", lw=0.8, label="98%")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(max(0.0, min(
        [e["train_accuracy"] for e in epochs] + [e["test_accuracy"] for e in epochs]) - 0.02), 1.0))
    ax_acc.legend(loc="lower right")
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp)
    os.replace(tmp, path)
    return path


def _write_atomic(path: str, text: str) -> None:
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))
