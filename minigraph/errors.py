"""The exceptions minigraph raises on bad input.

Every error names the node (and where useful the op and the shapes) it is about, so a
user never has to read a NumPy traceback from inside a kernel.
"""


class MinigraphError(Exception):
    """Base class of every error minigraph raises on purpose."""


class ShapeError(MinigraphError, ValueError):
    """A shape or dtype mismatch found while building the graph."""


class FeedError(MinigraphError, ValueError):
    """A missing, mis-shaped or mistyped feed found before a run starts."""


class GraphError(MinigraphError, ValueError):
    """A node used with the wrong graph, fed when it cannot be, or similar misuse."""


class BackendError(MinigraphError, RuntimeError):
    """An unknown array backend, or one whose library or device is missing."""


class CheckpointError(MinigraphError, ValueError):
    """A checkpoint that is missing, corrupt, or does not match the session's variables."""


class ModelFileError(CheckpointError):
    """A model file (`mg.save_model`) that is missing, corrupt, foreign, or holds an op this
    process does not know; also a graph that cannot be saved as one."""


class NumericsError(MinigraphError, ArithmeticError):
    """A node's output holds NaN or Inf (raised by a session with `check_numerics`)."""


class SessionClosedError(MinigraphError, RuntimeError):
    """A session used after `close()` (its variables were dropped: a run would have started
    again from their initial values)."""


class ArgumentError(MinigraphError, TypeError, ValueError):
    """An argument of the wrong type or out of its range (`ops.sum(x, axis="12")`,
    `SGD(True)`, a name that is not a string). Both a TypeError and a ValueError, so that an
    `except` clause written for either keeps working."""
