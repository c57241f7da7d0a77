"""ONNX export and import (installed with `pip install 'minigraph[onnx]'`).

    mg.onnx.export(net.logits, "googlenet.onnx", session=sess)     # opset 17, dynamic batch
    model = mg.onnx.load("model.onnx")                              # graph, inputs, outputs, session
    model.run(batch)                                                # {output name: array}

`mg.onnx.supported_ops()` lists what converts each way; the one table of correspondences is
`minigraph/onnx/table.py`. The `onnx` package is imported on first use, so `import minigraph`
works without it.
"""
from .errors import OnnxError, OnnxExportError, OnnxFileError, OnnxUnavailableError, UnsupportedOpError
from .exporter import DEFAULT_OPSET, build_model, export
from .importer import OnnxModel, load
from .table import supported_ops

__all__ = ["export", "build_model", "load", "OnnxModel", "supported_ops", "OnnxError", "OnnxFileError",
           "OnnxExportError", "OnnxUnavailableError", "UnsupportedOpError", "DEFAULT_OPSET"]
