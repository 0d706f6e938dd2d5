"""The model's lock serves waiters in arrival order, so a long tool run cannot keep a chat waiting."""
from __future__ import annotations

import threading
import time

import pytest

from assistant.llm.fair_lock import FairLock


def _wait_until(cond, seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_a_thread_that_releases_and_asks_again_goes_behind_those_waiting():
    """The tool's loop (part after part) against one chat question arriving during its first part."""
    lock, order = FairLock(), []
    first_part = threading.Event()
    waiting = threading.Event()

    def tool():
        for part in range(3):
            with lock:
                order.append(f"tool-{part}")
                if part == 0:
                    first_part.set()
                    waiting.wait(5)
                    _wait_until(lambda: len(lock._waiters) == 1)

    def chat():
        first_part.wait(5)
        waiting.set()
        with lock:
            order.append("chat")

    threads = [threading.Thread(target=tool), threading.Thread(target=chat)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert order == ["tool-0", "chat", "tool-1", "tool-2"]


def test_waiters_are_served_in_arrival_order():
    lock, order = FairLock(), []
    lock.acquire()
    threads = []
    for i in range(5):
        t = threading.Thread(target=lambda i=i: (lock.acquire(), order.append(i), lock.release()))
        t.start()
        threads.append(t)
        _wait_until(lambda i=i: len(lock._waiters) == i + 1)  # each in line before the next comes
    lock.release()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3, 4] and not lock.locked()


def test_an_interrupted_waiter_leaves_the_line_and_the_lock_stays_usable(monkeypatch):
    lock = FairLock()
    lock.acquire()

    class Interrupted(BaseException):
        pass

    def interrupted_wait(self, timeout=None):
        raise Interrupted

    monkeypatch.setattr(threading.Event, "wait", interrupted_wait)
    with pytest.raises(Interrupted):
        lock.acquire()
    monkeypatch.undo()
    assert len(lock._waiters) == 0
    lock.release()
    assert not lock.locked()
    with lock:
        assert lock.locked()
    assert not lock.locked()


def test_releasing_an_unheld_lock_is_an_error():
    with pytest.raises(RuntimeError):
        FairLock().release()


def test_a_timed_wait_gives_up_and_leaves_the_line():
    lock = FairLock()
    lock.acquire()
    assert lock.acquire(timeout=0.05) is False and len(lock._waiters) == 0
    got = []
    t = threading.Thread(target=lambda: got.append(lock.acquire(timeout=5)))
    t.start()
    _wait_until(lambda: len(lock._waiters) == 1)
    lock.release()
    t.join(5)
    assert got == [True] and lock.locked()
    lock.release()
    assert not lock.locked()


def test_urgent_waiters_go_ahead_of_the_others_and_keep_their_own_order():
    """A chat answer (urgent) goes before tool parts already waiting; answers among themselves come
    in arrival order."""
    lock, order = FairLock(), []
    lock.acquire()
    threads = []
    for name, urgent in [("tool-a", False), ("chat-1", True), ("tool-b", False), ("chat-2", True)]:
        t = threading.Thread(target=lambda n=name, u=urgent: (lock.acquire(urgent=u), order.append(n), lock.release()))
        t.start()
        threads.append(t)
        _wait_until(lambda k=len(threads): len(lock._waiters) == k)
    assert lock.urgent_waiting()
    lock.release()
    for t in threads:
        t.join(5)
    assert order == ["chat-1", "chat-2", "tool-a", "tool-b"]
    assert not lock.urgent_waiting() and not lock.locked()


def test_urgent_waiting_says_whether_an_answer_is_in_line():
    lock = FairLock()
    lock.acquire()
    assert not lock.urgent_waiting()
    t = threading.Thread(target=lambda: (lock.acquire(urgent=True), lock.release()))
    t.start()
    _wait_until(lock.urgent_waiting)
    lock.release()
    t.join(5)
    assert not lock.urgent_waiting() and not lock.locked()
    assert lock.acquire(timeout=0.01, urgent=True) and lock.locked()  # free: taken at once
    lock.release()
    lock.acquire()
    assert lock.acquire(timeout=0.05, urgent=True) is False and not lock.urgent_waiting()  # gave up: out of line
    lock.release()


def test_a_cancelled_waiter_leaves_the_line_and_one_that_is_not_keeps_its_place():
    """The model's lock is waited for under the stop signal (Stopp while a tool part is written):
    asking it must not cost the waiter its place in line."""
    lock, order = FairLock(), []
    lock.acquire()
    leave = threading.Event()
    got: dict[str, bool] = {}

    def waiter(name: str, cancelled) -> None:
        got[name] = lock.acquire(cancelled=cancelled, poll_s=0.01)
        if got[name]:
            order.append(name)
            lock.release()

    first = threading.Thread(target=waiter, args=("first", lambda: False))
    first.start()
    _wait_until(lambda: len(lock._waiters) == 1)
    gone = threading.Thread(target=waiter, args=("gone", leave.is_set))
    gone.start()
    _wait_until(lambda: len(lock._waiters) == 2)
    last = threading.Thread(target=waiter, args=("last", lambda: False))
    last.start()
    _wait_until(lambda: len(lock._waiters) == 3)
    time.sleep(0.1)  # several polls: nobody moved
    leave.set()
    _wait_until(lambda: len(lock._waiters) == 2)
    lock.release()
    for t in (first, gone, last):
        t.join(5)
    assert got == {"first": True, "gone": False, "last": True}
    assert order == ["first", "last"] and not lock.locked()
