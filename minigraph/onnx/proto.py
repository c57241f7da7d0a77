"""The `onnx` package, imported on first use, and small conversions between its protos and NumPy.

minigraph installs without ONNX support; `pip install 'minigraph[onnx]'` adds it. Every
function of `mg.onnx` that needs the package calls `require_onnx()`, which says how to
install it when it is missing.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np

from .errors import OnnxFileError, OnnxUnavailableError

INSTALL = "pip install 'minigraph[onnx]'"


def require_onnx():
    """The `onnx` module, or OnnxUnavailableError saying how to install it."""
    try:
        import onnx
    except ImportError as exc:
        raise OnnxUnavailableError(f"ONNX support needs the onnx package ({exc}): {INSTALL}") from None
    return onnx


def require_onnxruntime():
    """The `onnxruntime` module, or OnnxUnavailableError saying how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise OnnxUnavailableError(f"running ONNX models needs onnxruntime ({exc}): {INSTALL}") from None
    return onnxruntime


def to_array(tensor) -> np.ndarray:
    """A TensorProto as a NumPy array (a copy, external data resolved by `onnx.load`);
    OnnxFileError naming the tensor when its element type or data cannot be read."""
    what = f"tensor {tensor.name!r}" if tensor.name else "its tensor"  # a Constant's value has no name
    np_dtype(tensor.data_type, what)
    try:
        return np.array(require_onnx().numpy_helper.to_array(tensor), copy=True)
    except (ValueError, TypeError, KeyError) as exc:
        raise OnnxFileError(f"{what} cannot be read: {type(exc).__name__}: {exc}") from None


def from_array(value: np.ndarray, name: str):
    """A NumPy array as a TensorProto called `name`."""
    return require_onnx().numpy_helper.from_array(np.asarray(value, order="C"), name)


def attributes(node) -> Dict[str, Any]:
    """{name: value} of a NodeProto's attributes (ints, floats, lists, strings as str, tensors
    as arrays)."""
    onnx = require_onnx()
    out = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        if a.type == onnx.AttributeProto.FLOAT:
            value = float32_decimal(value)
        elif a.type == onnx.AttributeProto.FLOATS:
            value = [float32_decimal(v) for v in value]
        elif isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode("utf-8", "replace") for v in value]
        elif hasattr(value, "dims") and hasattr(value, "data_type"):
            value = to_array(value)
        out[a.name] = value
    return out


def float32_decimal(value: float) -> float:
    """The shortest decimal that is the same float32 as `value`: ONNX stores float attributes in
    float32, so an alpha of 1e-4 comes back as 1e-4, not 9.999999747378752e-05."""
    return float(str(np.float32(value)))


def np_dtype(elem_type: int, what: str = "a tensor") -> np.dtype:
    """The NumPy dtype of an ONNX element type; OnnxFileError (about `what`) for a number that
    is no element type ONNX defines."""
    try:
        return np.dtype(require_onnx().helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        raise OnnxFileError(f"{what} has the element type {elem_type}, which ONNX does not define") from None


def elem_type(dtype) -> int:
    """The ONNX element type of a NumPy dtype."""
    return require_onnx().helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def value_info(name: str, dtype, shape: Sequence[Optional[object]]):
    """A ValueInfoProto: `shape` holds ints, None (an unnamed unknown dimension) or names."""
    onnx = require_onnx()
    dims = [d if d is None or isinstance(d, str) else int(d) for d in shape]
    return onnx.helper.make_tensor_value_info(name, elem_type(dtype), dims)


def static_shape(value_info_proto, what: str = "value"):
    """(dtype, shape) of a graph input or output (`what` it is, for errors): ints for fixed
    dimensions, None for named or unknown ones; shape None when the proto has no shape at all.
    A negative size (ONNX has none, but some writers put -1 for "dynamic") is unknown too."""
    t = value_info_proto.type.tensor_type
    dtype = np_dtype(t.elem_type, f"{what} {value_info_proto.name!r}") if t.elem_type else None
    if not t.HasField("shape"):
        return dtype, None
    return dtype, tuple(d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else None for d in t.shape.dim)


__all__ = ["require_onnx", "require_onnxruntime", "to_array", "from_array", "attributes", "float32_decimal", "np_dtype",
           "elem_type", "value_info", "static_shape", "INSTALL"]
