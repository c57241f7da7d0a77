"""`minigraph render` and `minigraph summary`: the paper's figures and Table 1 from the command line.

    minigraph render inception [-o FILE] [--collapse] [--optimized]      Figure 2(b): Inception module 3a
    minigraph render googlenet [-o FILE] [--collapse] [--aux] [--batch-norm] [--optimized]
                                                                          Figure 3: the whole network
    minigraph summary googlenet [--json] [--aux] [--batch-norm] [--unshared]
                                                                          Table 1: params and MACs per layer
    minigraph render model.onnx [-o FILE] [--collapse] [--fold-repeats]  any network minigraph can import
    minigraph summary model.onnx

The network is `inception`, `googlenet`, `mini_inception` or an ONNX file (see
`minigraph.targets`); `--fold-repeats` draws each run of identical blocks once. The format of
a diagram is its file's suffix (.svg by default, .png, .pdf, .gv).
"""
from __future__ import annotations

import json
import os
import sys
from typing import Tuple

import minigraph as mg
from minigraph import models

from .targets import NETWORKS, is_model_file, resolve, spec_argument


def inception_3a() -> Tuple[mg.Graph, mg.Node]:
    """A graph holding Inception module 3a on its (None, 192, 28, 28) input, named
    "previous_layer" as in Figure 2(b); returns (graph, output)."""
    with mg.Graph() as graph:
        x = mg.placeholder((None, 192, 28, 28), name="previous_layer")
        out = models.inception_module(x, *models.GOOGLENET_INCEPTION["3a"], name="inception_3a")
    return graph, out


def googlenet(aux: bool = False, batch_norm: bool = False) -> Tuple[mg.Graph, models.GoogLeNet]:
    """A graph holding GoogLeNet (with the auxiliary classifiers if `aux`, batch normalised if
    `batch_norm`); returns (graph, net)."""
    with mg.Graph() as graph:
        net = models.googlenet(aux=aux, batch_norm=batch_norm)
    return graph, net


def _render(args) -> int:
    suffix = "_collapsed" * args.collapse + "_optimized" * args.optimized
    if args.network == "inception":
        for flag, given in (("--aux", args.aux), ("--batch-norm", args.batch_norm)):
            if given:
                args.parser.error(f"{flag} is for googlenet; the inception module diagram has no such variant")
        _, out = inception_3a()
        target, default = [out], f"inception_3a{suffix}.svg"
    elif args.network == "googlenet":
        _, net = googlenet(args.aux, args.batch_norm)
        target = list(net.outputs)
        default = "googlenet" + "_aux" * args.aux + "_bn" * args.batch_norm + suffix + ".svg"
    else:  # mini_inception or an ONNX file
        _only_googlenet_flags(args)
        stem = os.path.splitext(os.path.basename(args.network))[0] if is_model_file(args.network) else args.network
        target, default = list(resolve(args.network).outputs.values()), stem + suffix + ".svg"
    options = {"collapse": 1 if args.collapse else None}
    if args.optimized:  # what a session runs: the graph after the passes (mg.optimize)
        target = mg.optimize(target).outputs
        options["title"] = "after mg.optimize: constants folded, duplicates merged, conv + bias + ReLU fused"
    if args.fold_repeats:  # each run of identical blocks drawn once, ×N
        folded = mg.viz.fold_repeats(target)
        target, options["decorate"] = folded.outputs, folded
        default = default[:-len(".svg")] + "_folded.svg"
    path = mg.viz.render(target, args.output or default, **options)
    print(path)
    return 0


def _only_googlenet_flags(args) -> None:
    for flag, given in (("--aux", args.aux), ("--batch-norm", args.batch_norm)):
        if given:
            args.parser.error(f"{flag} is for googlenet")


def _summary(args) -> int:
    if args.network == "googlenet":
        _, net = googlenet(args.aux, args.batch_norm)
        outputs = net.outputs
    else:
        _only_googlenet_flags(args)
        outputs = list(resolve(args.network).outputs.values())
    table = mg.summary(outputs)
    if args.json:
        json.dump(table.to_dict(), sys.stdout, indent=2)
        print()
    else:
        print(table.table(unshared=args.unshared))
    return 0


def add_render_command(subparsers) -> None:
    """Register `minigraph render` on the CLI's subparsers."""
    p = subparsers.add_parser("render", help="draw a network (Inception module, GoogLeNet, an ONNX file) with Graphviz",
                              description="Draw Inception module 3a (Figure 2(b)), GoogLeNet (Figure 3), "
                                          "mini_inception or any ONNX model minigraph can import. "
                                          "The format is the output file's suffix: .svg, .png, .pdf or .gv.")
    p.add_argument("network", type=spec_argument, metavar="NETWORK", help=f"{', '.join(NETWORKS)} or a .onnx file")
    p.add_argument("-o", "--output", help="output file (default: <network>.svg in the current folder)")
    p.add_argument("--collapse", action="store_true",
                   help="one box per top-level scope (an Inception module as its table of branches)")
    p.add_argument("--aux", action="store_true", help="googlenet: with the two auxiliary classifiers")
    p.add_argument("--batch-norm", action="store_true",
                   help="googlenet: BN-Inception's baseline, a batch norm before every ReLU")
    p.add_argument("--optimized", action="store_true",
                   help="draw the graph a session runs, after the graph passes (mg.optimize)")
    p.add_argument("--fold-repeats", action="store_true", help="draw each run of identical blocks once, marked ×N")
    p.set_defaults(func=_render, parser=p)


def add_summary_command(subparsers) -> None:
    """Register `minigraph summary` on the CLI's subparsers."""
    p = subparsers.add_parser("summary", help="parameters and multiply-adds per layer (GoogLeNet's Table 1, any ONNX file)",
                              description="Print a network's summary: one row per top-level scope with its "
                                          "output shape, parameters (weights + biases) and multiply-adds per image.")
    p.add_argument("network", type=spec_argument, metavar="NETWORK", help=f"{', '.join(NETWORKS)} or a .onnx file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--aux", action="store_true", help="with the two auxiliary classifiers")
    p.add_argument("--batch-norm", action="store_true", help="BN-Inception's baseline: a batch norm before every ReLU")
    p.add_argument("--unshared", action="store_true",
                   help="add a column: the parameters each layer would need without weight sharing "
                        "(locally connected: its own weights and bias at every output position)")
    p.set_defaults(func=_summary, parser=p)


__all__ = ["inception_3a", "googlenet", "add_render_command", "add_summary_command"]
