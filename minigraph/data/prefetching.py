"""Background prefetching: the next batches are produced while the current one is used."""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

__all__ = ["Prefetch", "prefetch"]

T = TypeVar("T")
_POLL = 0.05  # seconds the worker waits on a full queue before it checks for a stop


class Prefetch(Iterable[T]):
    """Iterates `source` in a background thread, up to `depth` items ahead of the consumer.

    Each `iter()` starts one worker thread that walks `iter(source)` and queues the items;
    an exception there is raised in the consumer, at the item where it happened. Closing
    the iterator (leaving a `for` loop over `prefetch(...)` early, or `contextlib.closing`
    where an exception may keep the loop's frame alive) stops the worker after the item it
    is producing. `len()` is the source's. Decoding images (Pillow) and most NumPy work
    release the GIL, so they run alongside a training step.
    """

    def __init__(self, source: Iterable[T], depth: int = 2):
        if int(depth) < 1:
            raise ValueError(f"prefetch: depth must be >= 1, got {depth}")
        self.source, self.depth = source, int(depth)

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self) -> Iterator[T]:
        items: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()

        def put(entry) -> bool:
            while not stop.is_set():
                try:
                    items.put(entry, timeout=_POLL)
                    return True
                except queue.Full:
                    continue
            return False

        def work() -> None:
            try:
                for item in self.source:
                    if not put(("item", item)):
                        return
                put(("end", None))
            except BaseException as exc:  # handed to the consumer, raised there
                put(("error", exc))

        worker = threading.Thread(target=work, name="minigraph-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                kind, value = items.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                yield value
        finally:
            stop.set()
            worker.join()


def prefetch(source: Iterable[T], depth: int = 2) -> Prefetch:
    """Wrap `source` (e.g. `mg.data.batches(...)`) so that its items are produced in a
    background thread, `depth` ahead: the next batch decodes while the current one trains.

    >>> for xb, yb in mg.data.prefetch(mg.data.batches(folder.x_train, folder.y_train, 64)):
    ...     sess.run(train_op, feed={x: xb, y: yb})
    """
    return Prefetch(source, depth)
