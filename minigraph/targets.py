"""What the `minigraph` commands draw, summarise, compare and export: a built-in network by name
or an ONNX file by path.

    t = resolve("googlenet")                       # Target(name, graph, outputs, session)
    t = resolve("model.onnx")                      # imported with mg.onnx.load
    t = resolve("mini_inception", checkpoint="runs/digits/checkpoint.npz")

Built-in names: `inception` (module 3a on a 192 x 28 x 28 input), `googlenet` (`aux` adds the
side classifiers), `mini_inception` (the digits model `minigraph train` trains). A
`checkpoint` (a file `mg.save` or `minigraph train` wrote) restores the network's weights.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional

from .checkpoint import read_metadata, restore
from .errors import CheckpointError
from .graph import Graph, Node
from .op import placeholder
from .session import Session

NETWORKS = ("inception", "googlenet", "mini_inception")


@dataclasses.dataclass
class Target:
    """A network to show or export: its graph, named outputs and a session holding its weights."""

    name: str
    graph: Graph
    outputs: Dict[str, Node]
    session: Session


def is_model_file(spec: str) -> bool:
    return spec.lower().endswith(".onnx")


def resolve(spec: str, checkpoint: Optional[str] = None, aux: bool = False) -> Target:
    """The Target `spec` names (see the module docstring); ValueError for an unknown name."""
    if is_model_file(spec):
        if checkpoint:
            raise ValueError("--checkpoint restores a built-in network; an ONNX file holds its own weights")
        from . import onnx
        model = onnx.load(spec)
        return Target(os.path.splitext(os.path.basename(spec))[0], model.graph, dict(model.outputs), model.session)
    if spec not in NETWORKS:
        raise ValueError(f"unknown network {spec!r}: choose one of {', '.join(NETWORKS)} or an .onnx file")
    graph, outputs = _build(spec, aux)
    session = Session(graph)
    if checkpoint:
        try:
            restore(session, checkpoint)
        except CheckpointError as exc:
            hint = _trained_for_another_model(checkpoint, spec)
            if hint is None:
                raise
            raise CheckpointError(f"{exc}\n{hint}") from None
    return Target(spec + ("_aux" if aux and spec == "googlenet" else ""), graph, outputs, session)


def _trained_for_another_model(checkpoint: str, spec: str) -> Optional[str]:
    """A line saying what `minigraph train` wrote `checkpoint` for, when its metadata shows that
    it cannot fit `spec` (None otherwise, or when the metadata cannot be read)."""
    try:
        config = read_metadata(checkpoint).get("config")
    except CheckpointError:
        return None
    if not isinstance(config, dict) or not isinstance(config.get("model", "mini_inception"), str):
        return None
    model, data = config.get("model", "mini_inception"), config.get("data")
    if data is not None:  # sized for its own images and classes: no built-in network fits it
        return (f"this checkpoint was written by `minigraph train --model {model} --data {data}`; the built-in "
                "networks are sized for the digits (mini_inception) and ImageNet (inception, googlenet), so "
                "its weights fit none of them")
    if model == spec:
        return None
    line = f"this checkpoint was written by `minigraph train --model {model}`, not for {spec}"
    if model == "mini_inception":  # trained on the digits: the built-in mini_inception is that network
        line += f" (try `{model}` instead of `{spec}`)"
    return line


def _build(name: str, aux: bool):
    from . import models
    from .train import build_digits_model
    if name == "inception":
        with Graph() as graph:
            x = placeholder((None, 192, 28, 28), name="previous_layer")
            out = models.inception_module(x, *models.GOOGLENET_INCEPTION["3a"], name="inception_3a")
        return graph, {"inception_3a": out}
    if name == "googlenet":
        with Graph() as graph:
            net = models.googlenet(aux=aux)
        outputs = {"logits": net.logits, "probs": net.probs}
        for i, (logits, probs) in enumerate(zip(net.aux_logits, net.aux_probs), 1):
            outputs.update({f"aux{i}_logits": logits, f"aux{i}_probs": probs})
        return graph, outputs
    model = build_digits_model(0)
    return model.logits.graph, {"logits": model.logits, "probs": model.probs}


def spec_argument(text: str) -> str:
    """argparse type of a network argument: a built-in name or an existing .onnx file."""
    import argparse
    if is_model_file(text):
        if not os.path.isfile(text):
            raise argparse.ArgumentTypeError(f"no ONNX file at {text}")
        return text
    if text not in NETWORKS:
        raise argparse.ArgumentTypeError(f"choose one of {', '.join(NETWORKS)} or an .onnx file, got {text!r}")
    return text


__all__ = ["Target", "NETWORKS", "resolve", "is_model_file", "spec_argument"]
