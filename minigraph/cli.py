"""The `minigraph` command. Each subcommand lives in a small `_add_<name>` function."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import List, Optional

import minigraph


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minigraph",
        description="minigraph: define-then-run computation graphs for convolutional networks.")
    parser.add_argument("--version", action="version", version=f"minigraph {minigraph.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


_SUBCOMMANDS: list = []


def _add_train(sub) -> None:
    """`minigraph train`: the training loop of minigraph/train.py (flags in minigraph/train_cli.py)."""
    from .train_cli import add_command
    add_command(sub)


def _add_demo(sub) -> None:
    """`minigraph demo`: diagrams, summary and a short training run (minigraph/demo.py)."""
    from .demo import add_command
    add_command(sub)


_SUBCOMMANDS += [_add_train, _add_demo]


def _add_render(sub) -> None:
    """`minigraph render inception|googlenet`: diagrams (minigraph/diagrams.py)."""
    from .diagrams import add_render_command
    add_render_command(sub)


def _add_summary(sub) -> None:
    """`minigraph summary googlenet`: Table 1 (minigraph/diagrams.py)."""
    from .diagrams import add_summary_command
    add_summary_command(sub)


_SUBCOMMANDS += [_add_render, _add_summary]


def _add_predict(sub) -> None:
    """`minigraph predict MODEL IMAGE...`: top-k classes (minigraph/classifier_cli.py)."""
    from .classifier_cli import add_predict_command
    add_predict_command(sub)


def _add_evaluate(sub) -> None:
    """`minigraph evaluate MODEL`: accuracy and confusion matrix (minigraph/classifier_cli.py)."""
    from .classifier_cli import add_evaluate_command
    add_evaluate_command(sub)


_SUBCOMMANDS += [_add_predict, _add_evaluate]


def _add_visualize(sub) -> None:
    """`minigraph visualize`: pictures of what the digits model learned (minigraph/visualize.py)."""
    from .visualize import add_command
    add_command(sub)


_SUBCOMMANDS += [_add_visualize]


def _add_export(sub) -> None:
    """`minigraph export googlenet -o googlenet.onnx`: ONNX files (minigraph/onnx/command.py)."""
    from .onnx.command import add_command
    add_command(sub)


def _add_diff(sub) -> None:
    """`minigraph diff a.onnx b.onnx`: one diagram of two versions (minigraph/diffs.py)."""
    from .diffs import add_command
    add_command(sub)


_SUBCOMMANDS += [_add_export, _add_diff]


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    with _outlives_its_reader("stdout"), _outlives_its_reader("stderr"):
        try:
            return int(args.func(args) or 0)
        except minigraph.MinigraphError as exc:
            print(f"minigraph: error: {exc}", file=sys.stderr)
            return 2


class _PipeGuard:
    """A text stream whose reader may go away (`minigraph evaluate ... | head -1`): from then on
    its output goes to /dev/null and the command finishes its work (files included) instead of
    dying in a BrokenPipeError traceback."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self) -> None:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, self._stream.fileno())  # the stream's pending bytes now drain there too
        os.close(null)

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def _outlives_its_reader(name: str):
    """sys.<name> guarded by `_PipeGuard` while the command runs (when it is a real file)."""
    stream = getattr(sys, name)
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):  # captured (tests, notebooks): nothing to guard
        yield
        return
    setattr(sys, name, _PipeGuard(stream))
    try:
        yield
    finally:
        getattr(sys, name).flush()
        setattr(sys, name, stream)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
