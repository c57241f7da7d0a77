"""Reading a checkpoint's .npz archive from a file nobody vouches for: headers before data.

`NpzArchive(path)` opens the zip archive and reads its directory and each member's .npy
header (format version, dtype, shape, memory order), never the data, and checks that
every size agrees before anything is allocated:

- the bytes a header promises (elements x item size, plus the header) equal the member's
  size in the zip directory, and that size is one the file can hold: a stored member's bytes
  lie inside the file; a deflated member inflates to at most `DEFLATE_MAX_RATIO` times its
  compressed bytes (deflate's own limit); other compression methods and encrypted members
  are refused;
- dtypes are plain: booleans, integers, floats and unicode strings (never objects, so
  nothing is ever unpickled, and no structured or zero-sized items).

`read(key, limit)` then inflates exactly the promised bytes into a fresh array, verifying
the CRC. A caller that compares a member's `Entry` (shape, dtype, size) with what it expects
before calling `read` therefore never inflates more than that: a deflate bomb is refused
from its header. Every failure is a `CheckpointError` naming the file and the member.
"""
from __future__ import annotations

import io
import math
import os
import struct
import warnings
import zipfile
import zlib
from typing import Dict, NamedTuple, Optional, Tuple

import numpy as np

from .errors import CheckpointError

__all__ = ["NpzArchive", "Entry", "DEFLATE_MAX_RATIO"]

DEFLATE_MAX_RATIO = 1032  # the most deflate can expand: a 258-byte match in about 2 bits
_CHUNK = 16 << 20  # bytes inflated per read call
_MAX_HEADER = 10000  # numpy's own limit on a .npy header's length
_PLAIN_KINDS = "biufU"
# what the zip layer raises on damaged archives (zipfile has no single base class for it)
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, struct.error,
               NotImplementedError, RuntimeError, OverflowError, UnicodeDecodeError, KeyError, IndexError)


class Entry(NamedTuple):
    """What a member's header promises: shape, dtype (native byte order), data bytes,
    and the member's compressed size in the archive."""

    shape: Tuple[int, ...]
    dtype: np.dtype
    nbytes: int
    stored: int


class NpzArchive:
    """The members of a .npz file as `entries` {key: Entry} (key: the name without '.npy'),
    each checked as the module docstring says; `read(key)` loads one. Use as a context manager.
    `what` the file is ('checkpoint', 'model file') is named in errors."""

    def __init__(self, path: str, what: str = "checkpoint"):
        self.path, self.what = path, what
        if not os.path.isfile(path):
            raise CheckpointError(f"no {what} at {path}")
        try:
            self._size = os.path.getsize(path)
            with open(path, "rb") as f:
                start = f.read(4)
            if start not in (b"PK\x03\x04", b"PK\x05\x06"):  # a first member, or an empty archive
                raise zipfile.BadZipFile(f"does not start as a zip archive ({start!r})")
            self._zip = zipfile.ZipFile(path)
        except _ZIP_ERRORS as exc:
            raise self._corrupt(None, exc) from None
        self.entries: Dict[str, Entry] = {}
        self._layout: Dict[str, Tuple[zipfile.ZipInfo, np.dtype, bool]] = {}
        try:
            for info in self._zip.infolist():
                self._add(info)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "NpzArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    # headers ------------------------------------------------------------------------
    def _add(self, info: zipfile.ZipInfo) -> None:
        name = info.filename
        if not name.endswith(".npy"):
            raise self._corrupt(name, "not a .npy array")
        key = name[:-len(".npy")]
        if key in self.entries:
            raise self._corrupt(name, "the archive holds it twice")
        if info.flag_bits & 0x1:
            raise self._corrupt(name, "encrypted")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size:
                raise self._corrupt(name, f"stored with {info.compress_size} bytes but sized {info.file_size}")
            if info.header_offset + info.compress_size > self._size:
                raise self._corrupt(name, f"its {info.compress_size} bytes do not fit in the "
                                          f"{self._size}-byte file")
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            if info.file_size > DEFLATE_MAX_RATIO * info.compress_size + 1024:
                raise self._corrupt(name, f"claims {info.file_size} bytes inflated from "
                                          f"{info.compress_size}, more than deflate can produce")
        else:
            raise self._corrupt(name, f"unsupported compression method {info.compress_type}")
        shape, dtype, fortran, header_len = self._header(info)
        nbytes = math.prod(shape) * dtype.itemsize
        if header_len + nbytes != info.file_size:
            raise self._corrupt(name, f"its header promises {nbytes} bytes of {dtype} {shape} "
                                      f"but the member holds {info.file_size - header_len}")
        self.entries[key] = Entry(tuple(shape), dtype.newbyteorder("="), nbytes, info.compress_size)
        self._layout[key] = (info, dtype, fortran)

    def _header(self, info: zipfile.ZipInfo):
        """(shape, stored dtype, fortran order, header length) from the member's first bytes.

        The header's length field is checked before the header is read, so a member that
        claims a huge header is not inflated to find its end."""
        name = info.filename
        try:
            with self._zip.open(info) as f:
                head = f.read(10)  # magic (6 bytes), version (2), header length (2; 4 in version 2)
                wide = head[6:8] == b"\x02\x00"
                head += f.read(2) if wide else b""
                if len(head) != (12 if wide else 10):
                    raise EOFError("shorter than a .npy header")
                length = struct.unpack("<I" if wide else "<H", head[8:])[0]
                if length > _MAX_HEADER:
                    raise ValueError(f".npy header of {length} bytes (at most {_MAX_HEADER} expected)")
                head += f.read(length)
        except _ZIP_ERRORS as exc:
            raise self._corrupt(name, exc) from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                src = io.BytesIO(head)
                version = np.lib.format.read_magic(src)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(src)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(src)
                else:
                    raise ValueError(f".npy format version {version} is not supported")
        except Exception as exc:  # noqa: BLE001 - numpy's header parser (ast, tokenize) on hostile bytes
            raise self._corrupt(name, f"unreadable .npy header: {type(exc).__name__}: {exc}") from None
        if dtype.hasobject or dtype.kind not in _PLAIN_KINDS or dtype.itemsize == 0 or dtype.fields:
            raise self._corrupt(name, f"dtype {dtype} is not a plain numeric or string type "
                                      "(object arrays would need pickle)")
        if any(d < 0 for d in shape):
            raise self._corrupt(name, f"negative dimension in shape {shape}")
        return tuple(int(d) for d in shape), dtype, bool(fortran), len(head)

    # data ---------------------------------------------------------------------------
    def read(self, key: str, limit: Optional[int] = None) -> np.ndarray:
        """The array of member `key`, inflating exactly the bytes its header promised.

        `limit`: the most bytes the caller accepts; a larger member is refused unread.
        """
        entry = self.entries[key]
        info, dtype, fortran = self._layout[key]
        if limit is not None and entry.nbytes > limit:
            raise self._corrupt(info.filename, f"{entry.nbytes} bytes, more than the {limit} expected")
        buf = np.empty(entry.nbytes, dtype=np.uint8)
        view = memoryview(buf)
        try:
            with self._zip.open(info) as f:
                f.read(info.file_size - entry.nbytes)  # the header, checked in __init__
                pos = 0
                while pos < entry.nbytes:
                    got = f.readinto(view[pos:pos + _CHUNK])
                    if not got:
                        raise EOFError(f"data ends after {pos} of {entry.nbytes} bytes")
                    pos += got
                if f.read(1):  # also makes zipfile check the CRC at the end of the member
                    raise ValueError("data continues past the promised size")
        except _ZIP_ERRORS as exc:
            raise self._corrupt(info.filename, exc) from None
        order = "F" if fortran else "C"
        if entry.nbytes == 0:
            return np.empty(entry.shape, dtype=entry.dtype, order=order)
        arr = buf.view(dtype).reshape(entry.shape, order=order)
        return arr if dtype == entry.dtype else arr.astype(entry.dtype)

    def _corrupt(self, member: Optional[str], why) -> CheckpointError:
        where = self.path if member is None else f"{self.path}, member {member!r}"
        if isinstance(why, BaseException):
            why = f"{type(why).__name__}: {why}"
        return CheckpointError(f"{where}: corrupt or unreadable {self.what} ({why})")
