"""Checkpoints: a session's variables, optimizer state and random generator in one .npz.

Layout of the archive (plain arrays only, so loading never unpickles):

- `variables/<variable name>`: each variable's value;
- `state/<key>`: each entry of `session.state` (optimizer slots, step counts), as the graph's
  ops declare them (`state_slots`, see `mg.optim`);
- `meta/format`: the format tag; `meta/rng`: the session generator's state as JSON
  (NumPy backend only: a CuPy generator's state is not saved; dropout keeps its key and
  draw counts in `state/`, so its masks continue either way); `meta/user`: the caller's
  `metadata` dict as JSON.

`save` writes a temporary file in the target folder, flushes it to disk and renames it
over the target (`atomic_file.write_atomic`), so a crash or a full disk mid-save leaves
the previous checkpoint intact; the file gets the user's umask, and temporary files left by
a killed save are removed by the next one.

`restore` treats the file as untrusted and checks everything before it changes the
session: every member's header (`npz_reader`: sizes consistent with the file, plain
dtypes), then variables and optimizer state against the graph from those headers alone,
before any data is inflated, then the values themselves (step counts are integers >= 0,
the generator state fits the session's generator, metadata is a JSON object). Any
corruption is a `CheckpointError`.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .atomic_file import write_atomic_or_raise
from .errors import CheckpointError
from .npz_reader import Entry, NpzArchive
from .session import Session

__all__ = ["save", "restore", "read_metadata", "write_archive", "read_archive"]

FORMAT = "minigraph-checkpoint-1"
_VAR, _STATE, _META = "variables/", "state/", "meta/"
_FORMAT_KEY, _RNG_KEY, _USER_KEY = _META + "format", _META + "rng", _META + "user"
RNG_LIMIT = 1 << 20  # bytes: a generator state is a few hundred (MT19937: about 30 KB)
METADATA_LIMIT = 64 << 20  # bytes a compressed metadata member may inflate to
INFLATE_RATIO = 16  # read_archive: a compressed member beyond METADATA_LIMIT inflates at most this much


def save(sess: Session, path, metadata: Optional[Dict[str, Any]] = None) -> str:
    """Write `sess`'s variables, its `state` and its generator to `path` (an .npz), atomically.

    `metadata` (a JSON-serialisable dict, e.g. the epoch reached) is stored too and
    returned by `restore`. Returns the path written. The folder is created if needed.
    A failed write (a full disk, a killed process) leaves the previous file at `path` intact;
    an OSError is reported as a one-line `CheckpointError`.
    """
    return write_archive(path, _collect(sess, metadata))


def write_archive(path, arrays: Dict[str, np.ndarray], what: str = "checkpoint") -> str:
    """Write `arrays` as an .npz at `path` atomically (`atomic_file.write_atomic`: the user's
    umask, leftovers of killed writes removed). Creates the folder; returns the path. An
    OSError is a one-line CheckpointError naming `what` is written; the old file stays."""
    return write_atomic_or_raise(os.fspath(path), lambda f: np.savez(f, **arrays), CheckpointError, what)


def read_archive(path, what: str) -> Dict[str, np.ndarray]:
    """Every array in the .npz at `path`, read as untrusted (`npz_reader`: headers checked
    against the file first, never unpickling; a compressed member inflates to at most
    max(METADATA_LIMIT, INFLATE_RATIO x its compressed size)). A missing, corrupt or
    unreadable file is a CheckpointError naming `what` it was."""
    path = os.fspath(path)
    with NpzArchive(path, what) as archive:
        return {key: archive.read(key, limit=max(METADATA_LIMIT, INFLATE_RATIO * entry.stored))
                for key, entry in archive.entries.items()}


def _collect(sess: Session, metadata) -> Dict[str, np.ndarray]:
    arrays: Dict[str, np.ndarray] = {_FORMAT_KEY: np.array(FORMAT)}
    snap = sess.snapshot()  # variables, state and generator of one moment, even with runs in flight
    for var, value in snap.variables.items():
        arrays[_VAR + var.name] = value
    declared = _declared_state(sess)
    for key, host in snap.state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"cannot save session state key {key!r}: state keys must be strings")
        if key not in declared:
            raise CheckpointError(f"cannot save session state {key!r}: no op of the graph declares it "
                                  "(restore could not check it)")
        if host.dtype.kind not in "biuf":
            raise CheckpointError(f"cannot save session state {key!r} of dtype {host.dtype}: "
                                  "only numeric arrays are saved")
        arrays[_STATE + key] = host
    if snap.rng is not None:
        arrays[_RNG_KEY] = np.array(json.dumps(snap.rng))
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise CheckpointError(f"checkpoint metadata must be a dict, got {type(metadata).__name__}")
        try:
            arrays[_USER_KEY] = np.array(json.dumps(metadata))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint metadata must be JSON-serialisable: {exc}") from None
    return arrays


def restore(sess: Session, path) -> Dict[str, Any]:
    """Load a checkpoint written by `save` into `sess`; returns the saved `metadata` ({} if none).

    Every variable of the session's graph must be in the file with the same shape and
    dtype, and the file must hold no other variable. When the graph has an optimizer (ops
    that declare `state_slots`), each optimizer state entry must be one that an op of the
    graph declares, with the declared shape and dtype (step counts: integers >= 0), each op's
    entries all present or all absent, and the session's `state` is replaced by the saved
    one; a graph without one (inference) takes the weights and leaves the state unread.
    Otherwise a `CheckpointError` counts every difference (listing the first few of each
    kind) and the session is left unchanged.
    A missing, corrupt or foreign file is a `CheckpointError`, found before any large array
    is allocated.
    """
    path = os.fspath(path)
    with NpzArchive(path) as archive:
        _check_format(archive, path)
        _check_members(archive, path)
        _check_variables(sess, archive.entries, path)
        # an inference graph (no optimizer state declared) takes the weights only
        with_state = any(slot.optimizer for _, slot in _declared_state(sess).values())
        state = None
        if with_state:
            _check_state(sess, archive.entries, path)
            state = {key[len(_STATE):]: archive.read(key) for key in archive.entries if key.startswith(_STATE)}
            _check_counts(sess, state, path)
        values = {var: archive.read(_VAR + var.name) for var in sess.variables}
        rng_state = _rng_state(sess, archive, path)
        metadata = _user_metadata(archive, path)

    sess.load(values, state, rng_state)  # in one step: no run sees half a checkpoint
    return metadata


def read_metadata(path) -> Dict[str, Any]:
    """The `metadata` dict saved in the checkpoint at `path` ({} if none), without a session."""
    path = os.fspath(path)
    with NpzArchive(path) as archive:
        _check_format(archive, path)
        _check_members(archive, path)
        return _user_metadata(archive, path)


# ---------------------------------------------------------------------------------
# checks (headers first: nothing large is read before they pass)


def _check_format(archive: NpzArchive, path: str) -> None:
    entry = archive.entries.get(_FORMAT_KEY)
    tag = None
    if entry is not None and entry.shape == () and entry.dtype.kind == "U" and entry.nbytes <= 4 * 256:
        tag = str(archive.read(_FORMAT_KEY))
    if tag != FORMAT:
        raise CheckpointError(f"{path}: not a minigraph checkpoint (no {FORMAT!r} format tag)")


def _check_members(archive: NpzArchive, path: str) -> None:
    known = (_FORMAT_KEY, _RNG_KEY, _USER_KEY)
    for key in archive.entries:
        if key in known or (key.startswith((_VAR, _STATE)) and key not in (_VAR, _STATE)):
            continue
        raise CheckpointError(f"{path}: unexpected member {key!r} (a checkpoint holds variables/, state/ "
                              "and meta/format, meta/rng, meta/user)")


LISTED = 5  # differences listed of each kind; the rest are counted


def _differences(problems: Dict[str, List[str]], path: str, what: str) -> None:
    """CheckpointError for {kind: lines} (kind '' when there is one kind): the count of each
    kind, then the first LISTED lines of each and how many more there are."""
    problems = {kind: lines for kind, lines in problems.items() if lines}
    if not problems:
        return
    total = sum(len(lines) for lines in problems.values())
    counts = ", ".join(f"{len(lines)} {kind}" for kind, lines in problems.items() if kind)
    listed = []
    for kind, lines in problems.items():
        listed += lines[:LISTED]
        if len(lines) > LISTED:
            listed.append(f"... and {len(lines) - LISTED} more" + (f" {kind}" if kind else ""))
    raise CheckpointError(f"{path} does not match the session's {what} ({total} difference{'s' * (total > 1)}"
                          + (f": {counts}" if counts else "") + "):\n  " + "\n  ".join(listed))


def _check_variables(sess: Session, entries: Dict[str, Entry], path: str) -> None:
    saved = {k[len(_VAR):]: e for k, e in entries.items() if k.startswith(_VAR)}
    missing, mismatched, unexpected = [], [], []
    names = set()
    for var in sess.variables:
        names.add(var.name)
        entry = saved.get(var.name)
        if entry is None:
            missing.append(f"missing from the checkpoint: {var.name!r} {var.shape} {var.dtype}")
        elif entry.shape != tuple(var.shape) or entry.dtype != var.dtype:
            mismatched.append(f"mismatch for {var.name!r}: graph has {var.shape} {var.dtype}, "
                              f"checkpoint has {entry.shape} {entry.dtype}")
    for name in sorted(set(saved) - names):
        unexpected.append(f"not in the graph: {name!r} {saved[name].shape} {saved[name].dtype}")
    _differences({"missing from the checkpoint": missing, "of another shape or dtype": mismatched,
                  "not in the graph": unexpected}, path, "variables")


def _declared_state(sess: Session) -> Dict[str, Tuple[int, Any]]:
    """{state key: (index of the op declaring it, its StateSlot)} over the graph's ops."""
    declared: Dict[str, Tuple[int, Any]] = {}
    for node in sess.graph.nodes:
        for key, slot in node.op.state_slots(node).items():
            declared[key] = (node.index, slot)
    return declared


def _check_state(sess: Session, entries: Dict[str, Entry], path: str) -> None:
    saved = {k[len(_STATE):]: e for k, e in entries.items() if k.startswith(_STATE)}
    declared = _declared_state(sess)
    problems = []
    for key in sorted(saved):
        entry = saved[key]
        if key not in declared:
            problems.append(f"state {key!r} {entry.shape} {entry.dtype}: no op of the graph keeps it")
            continue
        slot = declared[key][1]
        if slot.count:
            if entry.shape != () or entry.dtype.kind not in "iu":
                problems.append(f"state {key!r}: a step count must be an integer scalar, "
                                f"checkpoint has {entry.shape} {entry.dtype}")
        elif entry.shape != tuple(slot.shape) or entry.dtype != slot.dtype:
            problems.append(f"state {key!r}: the optimizer keeps {tuple(slot.shape)} {slot.dtype}, "
                            f"checkpoint has {entry.shape} {entry.dtype}")
    groups: Dict[int, List[str]] = {}
    for key, (owner, slot) in declared.items():
        if not slot.shared:
            groups.setdefault(owner, []).append(key)
    for keys in groups.values():
        present = [k for k in keys if k in saved]
        if present and len(present) < len(keys):
            missing = sorted(set(keys) - set(present))
            problems.append(f"state {', '.join(map(repr, missing))} missing while {', '.join(map(repr, present))} "
                            "of the same optimizer step are saved")
    _differences({"": problems}, path, "optimizer state")


def _check_counts(sess: Session, state: Dict[str, np.ndarray], path: str) -> None:
    """Step counts hold integers in [0, 2**62]; they are stored as int64."""
    declared = _declared_state(sess)
    for key, value in state.items():
        if declared[key][1].count:
            count = int(value)
            if not 0 <= count <= 1 << 62:
                raise CheckpointError(f"{path}: state {key!r}: a step count must be >= 0, got {count}")
            state[key] = np.array(count, dtype=np.int64)


def _text(archive: NpzArchive, key: str, limit: int, path: str) -> Optional[str]:
    """The string scalar `key` (None when absent), inflating at most `limit` bytes."""
    entry = archive.entries.get(key)
    if entry is None:
        return None
    if entry.shape != () or entry.dtype.kind != "U":
        raise CheckpointError(f"{path}: corrupt checkpoint: {key!r} must be a string, "
                              f"got {entry.shape} {entry.dtype}")
    return str(archive.read(key, limit=max(limit, entry.stored)))


def _json(text: str, key: str, path: str):
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint: {key!r} is not valid JSON ({exc})") from None


def _rng_state(sess: Session, archive: NpzArchive, path: str):
    """The saved generator state, checked against the session's generator type (None if absent)."""
    if not isinstance(sess.rng, np.random.Generator):
        return None
    text = _text(archive, _RNG_KEY, RNG_LIMIT, path)
    if text is None:
        return None
    state = _json(text, _RNG_KEY, path)
    kind = type(sess.rng.bit_generator)
    if not isinstance(state, dict) or state.get("bit_generator") != kind.__name__:
        found = state.get("bit_generator") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: the saved random-generator state is for {found!r}, "
                              f"the session uses {kind.__name__}")
    try:
        kind().state = state  # validates every field on a throwaway generator
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise CheckpointError(f"{path}: corrupt random-generator state ({type(exc).__name__}: {exc})") from None
    return state


def _user_metadata(archive: NpzArchive, path: str) -> Dict[str, Any]:
    text = _text(archive, _USER_KEY, METADATA_LIMIT, path)
    if text is None:
        return {}
    metadata = _json(text, _USER_KEY, path)
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: the metadata must be a JSON object, got {json_type(metadata)}")
    return metadata


def json_type(value) -> str:
    """What a parsed JSON value is, in JSON's words ('null', 'a list', ...)."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")
