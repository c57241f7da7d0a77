"""minigraph: a small define-then-run computation-graph framework for convolutional networks.

    import minigraph as mg
    from minigraph import ops

    with mg.Graph() as g:
        x = mg.placeholder((None, 3), name="x")
        w = mg.variable(np.ones((3, 2), "float32"), name="w")
        y = ops.sum(ops.relu(ops.matmul(x, w)))
        (gw,) = mg.gradients(y, [w])
    sess = mg.Session(g)
    sess.run([y, gw], feed={x: batch})
"""
__version__ = "0.1.0"

from .autodiff import gradients
from .errors import (ArgumentError, BackendError, CheckpointError, FeedError, GraphError, MinigraphError, ModelFileError,
                     NumericsError, SessionClosedError, ShapeError)
from .graph import Graph, Node, get_default_graph, name_scope, reset_default_graph
from .op import Cost, Op, apply, constant, placeholder, placeholder_with_default, variable
from .runtime import CpuRuntime, DeviceRuntime, Runtime
from .session import Session
from .spec import Spec
from . import dispatch
from . import testing  # noqa: E402
from minigraph import ops  # noqa: E402  (the ops/ folder, installed as minigraph.ops)
from . import data, optim  # noqa: E402
from .checkpoint import restore, save  # noqa: E402
from .saved_model import load_model, save_model  # noqa: E402
from . import init, layers, models  # noqa: E402
from .summary import summary  # noqa: E402  (mg.summary is the function; the module is minigraph.summary)
from minigraph import viz  # noqa: E402  (the viz/ folder, installed as minigraph.viz)
from .passes import optimize  # noqa: E402
from . import onnx  # noqa: E402  (mg.onnx: export and import; the onnx package loads on first use)
from . import distributed  # noqa: E402  (imports mpi4py / CuPy only when init() is called)


def assign(var, value, name=None):
    """A node that sets variable `var` to `value` when run (see `ops.assign`)."""
    return ops.assign(var, value, name)


__all__ = [
    "__version__", "gradients", "ArgumentError", "BackendError", "CheckpointError", "FeedError", "GraphError", "NumericsError", "SessionClosedError",
    "MinigraphError", "ShapeError", "Graph", "Node", "get_default_graph", "name_scope",
    "reset_default_graph", "Cost", "Op", "apply", "constant", "placeholder",
    "placeholder_with_default", "variable", "Session", "Spec", "testing", "ops", "assign",
    "data", "optim", "save", "restore", "init", "layers", "models", "summary", "viz",
    "optimize", "dispatch", "CpuRuntime", "DeviceRuntime", "Runtime", "save_model", "load_model",
    "ModelFileError", "onnx",
    "distributed",
]
