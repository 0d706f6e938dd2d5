"""Work the user can leave (Stopp, "Neuer Chat", Abbrechen): the steps run detached, under a stop signal.

Why: gradio runs a stream's next step in a worker thread that cannot be interrupted, so a stream
busy in retrieval or in the model's prompt reading kept its event open until that step ended.
:func:`detached` runs the steps in a thread of their own and lets the caller's loop end at once
(``ui.streams`` builds the portal's streams on it). The step it was in then still ran on: the local
model went on reading a prompt it would never answer, seconds on 2 cores and a minute for a tool's
long text, and the next question's model call waited for it behind the model's lock. So the steps
run under :func:`stoppable`, and the slow ones ask :func:`stop_requested` between their parts.

The signal travels in a context variable, so it reaches the model through the chain without every
function on the way passing it on, and work started elsewhere (the command line, the evaluation)
never sees one.
"""
from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
from contextvars import ContextVar
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()
_signal: ContextVar[Callable[[], bool] | None] = ContextVar("kiportal_stop_signal", default=None)


class Stopped(BaseException):
    """The user left the work this was part of.

    A BaseException, like GeneratorExit: the chain and the handlers turn an ``Exception`` from the
    model into an extractive answer, which they would then store; a stopped question stores nothing."""


@contextlib.contextmanager
def stoppable(stop_requested: Callable[[], bool]) -> Iterator[None]:
    """Run the block with ``stop_requested`` as the signal that :func:`stop_requested` reads."""
    token = _signal.set(stop_requested)
    try:
        yield
    finally:
        _signal.reset(token)


def stop_requested() -> bool:
    """Whether the user left the work running in this context (False outside :func:`stoppable`)."""
    signal = _signal.get()
    return bool(signal is not None and signal())


def check() -> None:
    """Raise :class:`Stopped` if the user left the work running in this context."""
    if stop_requested():
        raise Stopped


def detached(steps: Iterator[T], left: Callable[[], bool], poll_s: float = 0.2, *,
             stop_signal: bool = True) -> Iterator[T]:
    """The items of ``steps``, computed in a thread of their own, until ``left()`` says the user left.

    The caller's loop checks ``left`` every ``poll_s`` even while a step is still being computed,
    and ends at once when it turns true; the thread then finishes its current step, closes
    ``steps`` (so a generator's ``finally`` runs and nothing half-done is stored) and ends. The
    steps run under :func:`stoppable`: a slow step that looks at the signal (the local model's prompt
    reading) stops early instead of finishing work nobody waits for (``stop_signal=False`` only for
    the baseline of evals.stop_bench). An exception from ``steps`` is raised in the caller's loop."""
    out: queue.Queue = queue.Queue()
    stop = threading.Event()

    def run() -> None:
        try:
            with stoppable(stop.is_set if stop_signal else (lambda: False)):
                for item in steps:
                    if stop.is_set():
                        return
                    out.put(item)
            out.put(_DONE)
        except BaseException as exc:  # handed to the caller's loop (a Stopped one is read by nobody)
            out.put(exc)
        finally:
            close = getattr(steps, "close", None)
            if close is not None:
                close()

    ctx = contextvars.copy_context()
    threading.Thread(target=ctx.run, args=(run,), name="kiportal-stream", daemon=True).start()
    try:
        while True:
            try:
                item = out.get(timeout=poll_s)
            except queue.Empty:
                if left():
                    return
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            if left():
                return
            yield item
    finally:
        stop.set()
