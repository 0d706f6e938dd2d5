"""A stop signal for work the user has left (Stopp, "Neuer Chat", Abbrechen).

Why: leaving a stream ends the user's event at once (``ui.streams.detached``), but the step the
stream was in kept running in its thread: the local model went on reading a prompt it would never
answer, seconds on 2 cores and a minute for a tool's long text, and the next question's model call
waited for it behind the model's lock. The stream's thread now runs its steps under
:func:`stoppable`, and the slow steps ask :func:`stop_requested` between their parts.

The signal travels in a context variable, so it reaches the model through the chain without every
function on the way passing it on, and work started elsewhere (the command line, the evaluation)
never sees one.
"""
from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Callable, Iterator

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
