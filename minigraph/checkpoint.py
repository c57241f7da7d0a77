"""Checkpoints: a session's variables, optimizer state and random generator in one .npz.

Layout of the archive (plain arrays only, so loading never unpickles):

- `variables/<variable name>`: each variable's value;
- `state/<key>`: each entry of `session.state` (optimizer slots, step counts);
- `meta/format`: the format tag; `meta/rng`: the session generator's state as JSON
  (NumPy backend only: a CuPy generator's state is not saved; dropout keeps its key and
  draw counts in `state/`, so its masks continue either way); `meta/user`: the caller's
  `metadata` dict as JSON.

`save` writes a temporary file in the target folder, flushes it to disk and renames it
over the target (`os.replace`, atomic), so a crash mid-save leaves the previous
checkpoint intact. `restore` checks everything before it changes the session.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from typing import Any, Dict, Optional

import numpy as np

from .errors import CheckpointError
from .session import Session

__all__ = ["save", "restore", "read_metadata", "write_archive", "read_archive"]

FORMAT = "minigraph-checkpoint-1"
_VAR, _STATE, _META = "variables/", "state/", "meta/"


def save(sess: Session, path, metadata: Optional[Dict[str, Any]] = None) -> str:
    """Write `sess`'s variables, its `state` and its generator to `path` (an .npz), atomically.

    `metadata` (a JSON-serialisable dict, e.g. the epoch reached) is stored too and
    returned by `restore`. Returns the path written. The folder is created if needed.
    """
    return write_archive(path, _collect(sess, metadata))


def write_archive(path, arrays: Dict[str, np.ndarray]) -> str:
    """Write `arrays` as an .npz at `path` atomically: a temporary file in the same folder,
    flushed to disk, renamed over the target. Creates the folder; returns the path."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _collect(sess: Session, metadata) -> Dict[str, np.ndarray]:
    arrays: Dict[str, np.ndarray] = {_META + "format": np.array(FORMAT)}
    for var in sess.variables:
        arrays[_VAR + var.name] = sess.get_value(var)
    for key, value in sess.state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"cannot save session state key {key!r}: state keys must be strings")
        host = np.asarray(sess.backend.to_host(value))
        if host.dtype.kind not in "biuf":
            raise CheckpointError(f"cannot save session state {key!r} of dtype {host.dtype}: "
                                  "only numeric arrays are saved")
        arrays[_STATE + key] = host
    if isinstance(sess.rng, np.random.Generator):
        arrays[_META + "rng"] = np.array(json.dumps(sess.rng.bit_generator.state))
    if metadata is not None:
        try:
            arrays[_META + "user"] = np.array(json.dumps(metadata))
        except TypeError as exc:
            raise CheckpointError(f"checkpoint metadata must be JSON-serialisable: {exc}") from None
    return arrays


def restore(sess: Session, path) -> Dict[str, Any]:
    """Load a checkpoint written by `save` into `sess`; returns the saved `metadata` ({} if none).

    Every variable of the session's graph must be in the file with the same shape and
    dtype, and the file must hold no other variable; otherwise a `CheckpointError` lists
    every difference and the session is left unchanged. The session's `state` is replaced
    by the saved one. A missing, corrupt or foreign file is a `CheckpointError`.
    """
    path = os.fspath(path)
    arrays = _read(path)
    if arrays.get(_META + "format") is None or str(arrays[_META + "format"]) != FORMAT:
        raise CheckpointError(f"{path}: not a minigraph checkpoint (no {FORMAT!r} format tag)")
    saved = {k[len(_VAR):]: v for k, v in arrays.items() if k.startswith(_VAR)}
    _check_variables(sess, saved, path)
    rng_state = _rng_state(arrays, path) if isinstance(sess.rng, np.random.Generator) else None
    metadata = json.loads(str(arrays[_META + "user"])) if _META + "user" in arrays else {}

    for var in sess.variables:
        sess.set_value(var, saved[var.name])
    sess.state.clear()
    for key, value in arrays.items():
        if key.startswith(_STATE):
            sess.state[key[len(_STATE):]] = sess.backend.asarray(np.array(value))
    if rng_state is not None:
        sess.rng.bit_generator.state = rng_state
    return metadata


def read_metadata(path) -> Dict[str, Any]:
    """The `metadata` dict saved in the checkpoint at `path` ({} if none), without a session."""
    path = os.fspath(path)
    arrays = _read(path)
    if arrays.get(_META + "format") is None or str(arrays[_META + "format"]) != FORMAT:
        raise CheckpointError(f"{path}: not a minigraph checkpoint (no {FORMAT!r} format tag)")
    return json.loads(str(arrays[_META + "user"])) if _META + "user" in arrays else {}


def _read(path: str) -> Dict[str, np.ndarray]:
    return read_archive(path, "checkpoint")


def read_archive(path: str, what: str) -> Dict[str, np.ndarray]:
    """Every array in the .npz at `path`, read eagerly so that corruption shows up here, never
    unpickling; a missing, corrupt or unreadable file is a CheckpointError naming `what` it was."""
    if not os.path.isfile(path):
        raise CheckpointError(f"no {what} at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        # ValueError also covers object arrays, which would need pickle
        raise CheckpointError(f"{path}: corrupt or unreadable {what} ({type(exc).__name__}: {exc})") from None


def _check_variables(sess: Session, saved: Dict[str, np.ndarray], path: str) -> None:
    problems = []
    names = set()
    for var in sess.variables:
        names.add(var.name)
        value = saved.get(var.name)
        if value is None:
            problems.append(f"missing from the checkpoint: {var.name!r} {var.shape} {var.dtype}")
        elif value.shape != tuple(var.shape) or value.dtype != var.dtype:
            problems.append(f"mismatch for {var.name!r}: graph has {var.shape} {var.dtype}, "
                            f"checkpoint has {value.shape} {value.dtype}")
    for name in sorted(set(saved) - names):
        problems.append(f"not in the graph: {name!r} {saved[name].shape} {saved[name].dtype}")
    if problems:
        raise CheckpointError(f"{path} does not match the session's variables "
                              f"({len(problems)} difference{'s' * (len(problems) > 1)}):\n  "
                              + "\n  ".join(problems))


def _rng_state(arrays: Dict[str, np.ndarray], path: str):
    raw = arrays.get(_META + "rng")
    if raw is None:
        return None
    try:
        state = json.loads(str(raw))
        np.random.Generator(getattr(np.random, state["bit_generator"])()).bit_generator.state = state
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: corrupt random-generator state ({exc})") from None
    return state
