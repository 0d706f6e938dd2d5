"""Streams that a user can leave: what Stopp, "Neuer Chat" and Abbrechen need from a gradio stream.

:class:`StreamSwitches` counts, per browser tab, how often the user left; :meth:`StreamSwitches.stream`
is the one loop that the chat's answer and the tools' runs go through. Their steps run
:func:`assistant.stopping.detached`: gradio runs a stream's next step in a thread it cannot
interrupt, so a stream busy in retrieval or in the model's prompt reading kept its event open in the
browser, which then dropped a new question sent meanwhile (trigger_mode "once"); gradio's own cancel
waited for the step too.
"""
from __future__ import annotations

import threading
from typing import Callable, Iterator, TypeVar

import gradio as gr

from assistant.stopping import detached

T = TypeVar("T")


def unchanged(n: int) -> tuple:
    """The last update of a stream that stops because the user left it: it changes nothing.

    Why: when a stream ends, gradio sends its last update once more (``handle_streaming_diffs``,
    ``final``). A stream that noticed Stopp only after Stopp had answered repainted its first update
    over Stopp's: the question back in the chat, the box emptied. Yielding this before returning
    makes the repeat a no-op."""
    return tuple(gr.update() for _ in range(n))


class StreamSwitches:
    """Counts, per browser session, how often the user left what a stream paints: the chat on screen
    (Stopp, new, opened, deleted) or a tool's run (Abbrechen).

    A stream (:meth:`stream`) compares the count with the one it started under and stops once it
    changed; leaving waits (briefly) for that stop. Without this the stream's
    later updates could arrive after the switch and paint the old chat, and its id, back over the
    one the user switched to. (gradio's ``cancels`` does not help: a cancelled stream may still
    deliver an update it produced before the cancel.)

    ``wait_s`` only has to outlast an update already on its way (milliseconds); a stream still busy
    before its first word (the local model reads the prompt for seconds) sends nothing meanwhile
    and is left at once by :meth:`stream` (see :func:`assistant.stopping.detached`), so "Neuer Chat" never waits for it."""

    MAX_SESSIONS = 10_000

    def __init__(self, wait_s: float = 1.0) -> None:
        self.wait_s = wait_s
        self._counts: dict[str, int] = {}
        self._streams: dict[str, int] = {}
        self._notes: dict[str, str] = {}  # what a stream was started with, for the switch that stops it
        self._cond = threading.Condition()

    def begin(self, session: str | None, note: str = "") -> int:
        """A stream starts (``note``: what it was asked, handed to a switch that stops it); returns
        the count it must see to go on."""
        with self._cond:
            key = session or ""
            self._streams[key] = self._streams.get(key, 0) + 1
            if note:
                self._notes[key] = note
            return self._counts.get(key, 0)

    def current(self, session: str | None) -> int:
        return self._counts.get(session or "", 0)

    def end(self, session: str | None, started: int | None = None) -> None:
        """A stream ended; one that ran to its end (``started`` still current) leaves no note."""
        with self._cond:
            key = session or ""
            left = self._streams.get(key, 1) - 1
            if left > 0:
                self._streams[key] = left
            else:
                self._streams.pop(key, None)
            if started is not None and self._counts.get(key, 0) == started:
                self._notes.pop(key, None)
            self._cond.notify_all()

    def switch(self, session: str | None) -> str:
        """The user leaves the chat: count it, and wait until this session's streams have stopped.
        Returns the note of a stream stopped by it ("" if none), kept here on the server: a value
        the stream wrote into the page's state may not have arrived yet."""
        key = session or ""
        with self._cond:
            self._counts[key] = self._counts.pop(key, 0) + 1  # re-inserted: newest last
            # forget the oldest sessions, never one with an answer streaming (it would stop wrongly)
            extra = len(self._counts) - self.MAX_SESSIONS
            if extra > 0:
                for old in [k for k in self._counts if k not in self._streams][:extra]:
                    del self._counts[old]
            self._cond.wait_for(lambda: not self._streams.get(key), timeout=self.wait_s)
            return self._notes.pop(key, "")

    def stream(self, session: str | None, steps: Iterator[T], render: Callable[[T], tuple], width: int, *,
               note: str = "") -> Iterator[tuple]:
        """``render(step)`` for each step of ``steps`` until the user leaves (:meth:`switch`); the
        steps run detached, so leaving ends this at once, and the last update then changes nothing
        (:func:`unchanged`, ``width`` outputs). ``note``: what was asked, for the switch that stops it."""
        started = self.begin(session, note)

        def left() -> bool:
            return self.current(session) != started

        try:
            for step in detached(steps, left):
                yield render(step)
            if left():
                yield unchanged(width)
        finally:
            self.end(session, started)
