"""A lock that serves its waiters in the order they came.

Why: the local model serves one generation at a time. A tool run (Einfache Sprache of a long text)
is many generations, one per part and per revision, and ``threading.Lock`` promises no order: a
thread that releases it and asks again soon may get it back ahead of one already waiting. Measured
with the real model (docs/results.md, session 50), the tool's work between two parts happened to
let a chat question in after one part with either lock (first token 70 s and 80 s beside a 500 s
run, on a loaded machine); this lock makes that a guarantee rather than the luck of thread scheduling.
"""
from __future__ import annotations

import threading
from collections import deque


class FairLock:
    """A first-come, first-served lock (a context manager). Releasing hands the lock straight to the
    oldest waiter, so no thread can take it again ahead of those already waiting."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Event] = deque()

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for the lock (at most ``timeout`` seconds: False when it did not come)."""
        with self._guard:
            if not self._held and not self._waiters:
                self._held = True
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        try:
            if turn.wait(timeout):
                return True
        except BaseException:
            self._leave(turn, interrupted=True)
            raise
        return self._leave(turn, interrupted=False)

    def _leave(self, turn: threading.Event, interrupted: bool) -> bool:
        """Leave the line after a timeout or an interruption; True if the lock was handed over
        meanwhile (then it is ours: kept after a timeout, passed on after an interruption)."""
        with self._guard:
            if turn in self._waiters:
                self._waiters.remove(turn)
                return False
        if interrupted:
            self.release()
            return False
        return True

    def release(self) -> None:
        with self._guard:
            if not self._held:
                raise RuntimeError("FairLock released while not held")
            if self._waiters:
                self._waiters.popleft().set()  # stays held: the next waiter owns it now
            else:
                self._held = False

    def locked(self) -> bool:
        with self._guard:
            return self._held

    def __enter__(self) -> "FairLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
