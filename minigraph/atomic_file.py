"""Writing a file atomically: the new content appears whole under its name, or not at all.

`write_atomic(path, write)` writes through a temporary file in the target's folder, named
`.<name>.<pid>.<token>.tmp`, flushes it to disk and renames it over `path` (`os.replace`,
atomic on POSIX and Windows). A crash or an error mid-write leaves the previous file intact.

- The temporary file is created with mode 0o666 minus the process umask, so the result has
  the permissions any new file of the user gets (not the 0o600 of `tempfile.mkstemp`).
- Temporary files that a killed writer left for the same `path` (their process no longer
  runs, or they carry no process id: the older `.<name>.XXXXXXXX.tmp` form) are removed by
  the next write; those of live processes (a concurrent writer) are left alone.
"""
from __future__ import annotations

import os
import secrets
from typing import BinaryIO, Callable, List

__all__ = ["write_atomic", "write_atomic_or_raise", "stale_temporaries"]


def write_atomic(path: str, write: Callable[[BinaryIO], None]) -> str:
    """Call `write(f)` on a binary file that then replaces `path` atomically; returns `path`.

    The folder is created if needed. Any exception (an OSError such as a full disk, a
    KeyboardInterrupt) removes the temporary file and propagates; `path` is then untouched.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    for leftover in stale_temporaries(path):
        _unlink_quietly(leftover)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return path


def write_atomic_or_raise(path: str, write: Callable[[BinaryIO], None], error: type, what: str = "") -> str:
    """`write_atomic(path, write)`, an OSError (a full disk, a missing permission) becoming one
    line of `error`: "cannot write <what> <path>: <reason> (the previous <what or file> is intact
    | nothing was written)"."""
    try:
        return write_atomic(path, write)
    except OSError as exc:
        kept = f"the previous {what or 'file'} is intact" if os.path.exists(path) else "nothing was written"
        raise error(f"cannot write {what + ' ' if what else ''}{path}: {exc.strerror or exc} ({kept})") from None


def stale_temporaries(path: str) -> List[str]:
    """The temporary files of earlier writes to `path` whose writer is gone (see the module doc)."""
    folder = os.path.dirname(os.path.abspath(path))
    prefix = "." + os.path.basename(path) + "."
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    stale = []
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        middle = name[len(prefix):-len(".tmp")].split(".")
        if len(middle) == 2 and middle[0].isdigit():
            if _process_alive(int(middle[0])):
                continue
        elif len(middle) != 1:  # neither our form nor mkstemp's: not ours to remove
            continue
        stale.append(os.path.join(folder, name))
    return stale


def _process_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name != "posix":
        return True  # another thread of ours may be writing it; elsewhere os.kill(pid, 0) kills
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # exists under another user, or cannot tell: keep the file
    return True


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
