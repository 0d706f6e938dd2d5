"""Streams that a user can leave: what Stopp, "Neuer Chat" and Abbrechen need from a gradio stream.

Why a module of its own: gradio runs a stream's next step in a worker thread that cannot be
interrupted, so a stream busy in retrieval or in the model's prompt reading (seconds on a loaded
machine) kept its event open in the browser until that step ended. The browser then dropped a new
question sent meanwhile (trigger_mode "once"), and gradio's own cancel waited for the step too.
"""
from __future__ import annotations

import contextvars
import queue
import threading
from typing import Callable, Iterator, TypeVar

import gradio as gr

T = TypeVar("T")
_DONE = object()


def unchanged(n: int) -> tuple:
    """The last update of a stream that stops because the user left it: it changes nothing.

    Why: when a stream ends, gradio sends its last update once more (``handle_streaming_diffs``,
    ``final``). A stream that noticed Stopp only after Stopp had answered repainted its first update
    over Stopp's: the question back in the chat, the box emptied. Yielding this before returning
    makes the repeat a no-op."""
    return tuple(gr.update() for _ in range(n))


def detached(steps: Iterator[T], left: Callable[[], bool], poll_s: float = 0.2) -> Iterator[T]:
    """The items of ``steps``, computed in a thread of their own, until ``left()`` says the user left.

    The caller's loop checks ``left`` every ``poll_s`` even while a step is still being computed,
    and ends at once when it turns true; the thread then finishes its current step, closes
    ``steps`` (so a generator's ``finally`` runs and nothing half-done is stored) and ends. An
    exception from ``steps`` is raised in the caller's loop."""
    out: queue.Queue = queue.Queue()
    stop = threading.Event()

    def run() -> None:
        try:
            for item in steps:
                if stop.is_set():
                    return
                out.put(item)
            out.put(_DONE)
        except BaseException as exc:  # handed to the caller's loop
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
