"""Progress bars that suit where the output goes.

`progress(...)` returns one of three things with the same small interface (`update(n)`,
`set_postfix(**values)`, `close()`, use as a context manager or iterate over it):

- on a terminal, or in Jupyter: a tqdm bar (`tqdm.auto`, so a widget in a notebook);
- when stderr is not a terminal (a log file, CI, a pipe): plain lines, at most one every
  `MINIGRAPH_PROGRESS_INTERVAL` seconds (default 30; 0 writes one per update, with no
  delay) and one at the end if any was written, so logs get no carriage returns and no
  flood of redraws;
- with `enabled=False`: nothing.

`write(message)` prints a line without breaking a bar that is on screen.
"""
from __future__ import annotations

import sys
import time
from typing import Iterable, Optional

from . import env

__all__ = ["progress", "write", "LineProgress", "line_interval"]

DEFAULT_INTERVAL = 30.0


def line_interval() -> float:
    """Seconds between two plain progress lines: $MINIGRAPH_PROGRESS_INTERVAL, else 30."""
    return env.number("MINIGRAPH_PROGRESS_INTERVAL", float, lambda v: v >= 0, "a number of seconds >= 0",
                      DEFAULT_INTERVAL)


def _in_notebook() -> bool:
    """Whether tqdm.auto drew its bars as Jupyter widgets (it decides from the running kernel)."""
    from tqdm.auto import tqdm
    return any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress(iterable: Optional[Iterable] = None, *, total: Optional[int] = None, desc: str = "",
             unit: str = "it", initial: int = 0, enabled: bool = True, delay: float = 0.0,
             leave: bool = True):
    """A progress bar over `iterable` (or updated by hand up to `total`); see the module doc.

    `delay`: seconds before anything is shown (a short job shows nothing); `leave`: keep
    the finished bar on a terminal.
    """
    from tqdm.auto import tqdm
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if enabled and not _in_notebook() and not _is_terminal(sys.stderr):
        return LineProgress(iterable, total=total, desc=desc, unit=unit, initial=initial,
                            interval=line_interval(), delay=delay)
    return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, disable=not enabled,
                delay=delay, leave=leave, dynamic_ncols=True)


def write(message: str) -> None:
    """Print `message` on stdout; a tqdm bar on screen is redrawn below it."""
    from tqdm.auto import tqdm
    tqdm.write(message)


class LineProgress:
    """Progress as plain lines on stderr: 'desc: 120/500 files (24%), 31 s, loss=0.21'.

    A line is written when `interval` seconds have passed since the last one (the first
    after max(`delay`, `interval`); with `interval` 0, on every update), and on `close()`
    if any was written before. Lines go to `file` (default stderr).
    """

    def __init__(self, iterable=None, total: Optional[int] = None, desc: str = "", unit: str = "it",
                 initial: int = 0, interval: float = DEFAULT_INTERVAL, delay: float = 0.0, file=None,
                 clock=time.monotonic):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n = initial
        self.interval = interval
        self.file = file if file is not None else sys.stderr
        self.postfix: dict = {}
        self.clock = clock  # seconds, from any origin
        self.start = clock()
        self.next_line = self.start + (max(delay, interval) if interval > 0 else 0.0)
        self.lines = 0
        self.closed = False

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now >= self.next_line:
            self._line(now)
            self.next_line = now + self.interval

    def set_postfix(self, refresh: bool = True, **values) -> None:
        self.postfix = values

    def close(self) -> None:
        if not self.closed and self.lines:
            self._line(self.clock())
        self.closed = True

    def _line(self, now: float) -> None:
        done = f"{self.n}/{self.total} {self.unit}" if self.total else f"{self.n} {self.unit}"
        if self.total:
            done += f" ({100 * self.n / self.total:.0f}%)"
        parts = [f"{self.desc}: {done}" if self.desc else done, f"{now - self.start:.0f} s"]
        parts += [f"{k}={v}" for k, v in self.postfix.items()]
        self.file.write(", ".join(parts) + "\n")
        self.file.flush()
        self.lines += 1
