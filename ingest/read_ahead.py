"""Documents read ahead of the embedding, bounded by their passages rather than their number.

Why by passages: the embedder sorts the texts of one call by length, so a call of many
passages pads little, and the ingest can only make large calls when many small documents
wait (session 49: 2,000 passages of the shared corpus in calls of 128 / 512 / 2,000 took
107 / 95 / 89 CPU-seconds). A bound by number of documents either starves those calls (8 documents: the
old queue) or lets a few huge files fill memory (each may yield 20 million characters). A bound
by passages does neither: the reader waits once ``max_chunks`` passages wait, but a single
document larger than that still passes on its own, so nothing can block for good.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class ReadAhead(Generic[T]):
    """A queue of one reader and one embedder; ``size(item)`` counts an item's passages.

    ``None`` is the reader's "done" and is always accepted. ``put`` gives up (returns False)
    once ``stopped`` is set, so a reader never outlives an embedder that failed.
    """

    def __init__(self, max_chunks: int, size: Callable[[T], int], stopped: threading.Event) -> None:
        self.max_chunks = max_chunks
        self._size = size
        self._stopped = stopped
        self._items: deque[T | None] = deque()
        self._chunks = 0
        self._cond = threading.Condition()

    def put(self, item: T | None) -> bool:
        n = 0 if item is None else self._size(item)
        with self._cond:
            while (item is not None and self._items and self._chunks + n > self.max_chunks
                   and not self._stopped.is_set()):
                self._cond.wait(timeout=0.5)
            if self._stopped.is_set() and item is not None:
                return False
            self._items.append(item)
            self._chunks += n
            self._cond.notify_all()
            return True

    def get(self) -> T | None:
        """The next item, waiting for the reader if none is ready."""
        with self._cond:
            while not self._items:
                self._cond.wait()
            item = self._items.popleft()
            if item is not None:
                self._chunks -= self._size(item)
            self._cond.notify_all()
            return item

    def empty(self) -> bool:
        with self._cond:
            return not self._items

    @property
    def waiting_chunks(self) -> int:
        with self._cond:
            return self._chunks
