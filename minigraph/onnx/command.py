"""`minigraph export`: a built-in network (with a checkpoint's weights) as an ONNX file.

    minigraph export googlenet -o googlenet.onnx [--checkpoint FILE]
    minigraph export mini_inception --checkpoint runs/digits/checkpoint.npz -o digits.onnx
"""
from __future__ import annotations

import argparse

from minigraph.argtypes import integer, positive_int

from .errors import OnnxExportError, OnnxUnavailableError
from .exporter import DEFAULT_OPSET, MIN_OPSET, check_opset, export


def _opset(text: str) -> int:
    """An opset export writes (`check_opset`); without the onnx package only the lower bound is
    checked here, and the export itself then says how to install it."""
    value = integer(text)
    try:
        return check_opset(value)
    except OnnxExportError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except OnnxUnavailableError:
        if value < MIN_OPSET:
            raise argparse.ArgumentTypeError(f"must be >= {MIN_OPSET} (Softmax's one-axis semantics), got {text}") from None
        return value


def _export(args) -> int:
    from minigraph.targets import resolve
    target = resolve(args.network, checkpoint=args.checkpoint, aux=args.aux)
    path = args.output or f"{target.name}.onnx"
    export(target.outputs, path, session=target.session, opset=args.opset,
           dynamic_batch=args.batch is None, batch_size=args.batch or 1)
    print(path)
    return 0


def add_command(subparsers) -> None:
    """Register `minigraph export` on the CLI's subparsers."""
    from minigraph.targets import NETWORKS
    p = subparsers.add_parser("export", help="write a network as an ONNX file (inference graph, weights included)",
                              description="Write inception, googlenet or mini_inception as an ONNX model: the "
                                          "inference graph (dropout off) with the weights of --checkpoint, or the "
                                          "initial weights without one. Outputs: logits and probs.")
    p.add_argument("network", choices=NETWORKS, help="what to export")
    p.add_argument("-o", "--output", help="output file (default: <network>.onnx)")
    p.add_argument("--checkpoint", help="a checkpoint written by mg.save or `minigraph train` (e.g. runs/digits/checkpoint.npz)")
    p.add_argument("--opset", type=_opset, default=DEFAULT_OPSET,
                   help=f"ONNX opset, {MIN_OPSET} to the newest the installed onnx package knows (default {DEFAULT_OPSET})")
    p.add_argument("--batch", type=positive_int, default=None, metavar="N",
                   help="a fixed batch size (default: a dynamic batch dimension)")
    p.add_argument("--aux", action="store_true", help="googlenet: with the auxiliary classifiers' outputs")
    p.set_defaults(func=_export)


__all__ = ["add_command"]
