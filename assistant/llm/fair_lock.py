"""A lock that serves its waiters in the order they came, answers before background work.

Why: the local model serves one generation at a time. A tool run (Einfache Sprache of a long text)
is many generations, one per part and per revision, and ``threading.Lock`` promises no order: a
thread that releases it and asks again soon may get it back ahead of one already waiting. Measured
with the real model (docs/results.md, session 50), the tool's work between two parts happened to
let a chat question in after one part with either lock (first token 70 s and 80 s beside a 500 s
run, on a loaded machine); this lock makes that a guarantee rather than the luck of thread scheduling.

A waiter may also come *urgent* (a person waiting for an answer's first word). Urgent waiters are
served before the others, in their own arrival order, and :meth:`FairLock.urgent_waiting` lets the
holder of background work see one and step aside between two tokens (``assistant.llm.local``), so
a chat question no longer waits for the whole part a tool is writing (session 51).

An urgent waiter passes a waiting one that is not urgent only while the lock stays with the holder it
found: once the lock has changed hands, a waiter passed before keeps its place, and later answers line up
behind it. Without that limit, two answers at a time (``server.concurrency = 2``, or one account keeping
its open events busy) always had one waiting, and a tool never got the model back for as long as
questions came (an attacker's probe, session 51). Now a tool's part waits for the answers that came
during one turn at most, and an answer waits for at most the tokens a part writes before stepping aside.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable


class FairLock:
    """A first-come, first-served lock (a context manager). Releasing hands the lock straight to the
    first in line (urgent waiters ahead of the others, see the module's doc), so no thread can take it
    again ahead of those already waiting."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Event] = deque()
        self._urgent: set[threading.Event] = set()
        self._handovers = 0  # how often the lock went to a waiter: one holder's turn to the next
        self._passed: dict[threading.Event, int] = {}  # a waiter that is not urgent -> the turn it was first passed in

    def acquire(self, timeout: float | None = None, *, urgent: bool = False,
                cancelled: Callable[[], bool] | None = None, poll_s: float = 0.2) -> bool:
        """Wait for the lock (at most ``timeout`` seconds: False when it did not come). An ``urgent``
        waiter goes ahead of the waiters that are not, except those passed in an earlier turn (the
        module's doc). ``cancelled`` is asked every ``poll_s`` while waiting, keeping the place in
        line; when it says so, the waiter leaves the line (False)."""
        with self._guard:
            if not self._held and not self._waiters:
                self._held = True
                return True
            turn = threading.Event()
            if urgent:
                self._urgent.add(turn)
                self._waiters.insert(self._urgent_place(), turn)
            else:
                self._waiters.append(turn)
        try:
            if self._wait(turn, timeout, cancelled, poll_s):
                return True
        except BaseException:
            self._leave(turn, interrupted=True)
            raise
        return self._leave(turn, interrupted=False)

    def _urgent_place(self) -> int:
        """Where an urgent waiter joins the line (under ``_guard``): behind the urgent ones already
        waiting and behind those passed in an earlier turn, ahead of the rest, which it passes now."""
        place = len(self._waiters)
        while place > 0:
            waiter = self._waiters[place - 1]
            if waiter in self._urgent or self._passed.get(waiter, self._handovers) != self._handovers:
                break
            place -= 1
        for passed in list(self._waiters)[place:]:
            self._passed.setdefault(passed, self._handovers)
        return place

    @staticmethod
    def _wait(turn: threading.Event, timeout: float | None, cancelled: Callable[[], bool] | None,
              poll_s: float) -> bool:
        if cancelled is None:
            return turn.wait(timeout)
        end = None if timeout is None else time.monotonic() + timeout
        while not cancelled():
            left = poll_s if end is None else min(poll_s, end - time.monotonic())
            if left <= 0:
                return False
            if turn.wait(left):
                return True
        return False

    def _leave(self, turn: threading.Event, interrupted: bool) -> bool:
        """Leave the line after a timeout or an interruption; True if the lock was handed over
        meanwhile (then it is ours: kept after a timeout, passed on after an interruption)."""
        with self._guard:
            self._urgent.discard(turn)
            self._passed.pop(turn, None)
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
                turn = self._waiters.popleft()
                self._urgent.discard(turn)
                self._passed.pop(turn, None)
                self._handovers += 1
                turn.set()  # stays held: the next waiter owns it now
            else:
                self._held = False

    def urgent_waiting(self) -> bool:
        """Whether an urgent waiter is in line (the holder of background work should step aside)."""
        with self._guard:
            return bool(self._urgent)

    def locked(self) -> bool:
        with self._guard:
            return self._held

    def __enter__(self) -> "FairLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
