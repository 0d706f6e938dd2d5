"""No internal exception text for clients: a German message and a reference number instead.

gradio shows a handler's exception text to the browser when ``show_error`` is on, and
nothing useful when it is off. Internal errors can name paths, SQL or settings, so every
event function of the portal is wrapped: a ``gr.Error`` (a message meant for the person)
passes unchanged; any other exception is logged with a fresh reference number and shown
as "Interner Fehler … (Vorgangsnummer …)", so the administrator finds it in the log. One internal
error is meant for the person: a cluster replica's write whose writer lock was lost
(:class:`corpus.db.LockLost`: nothing was committed, run it again) shows its own sentence.
"""
from __future__ import annotations

import functools
import inspect
import logging
import uuid
from typing import Callable

import gradio as gr
from gradio.exceptions import AppError

from corpus.db import LockLost

log = logging.getLogger(__name__)


def internal_error(fn_name: str, exc: BaseException | None = None) -> gr.Error:
    if isinstance(exc, LockLost):  # a sentence meant for the person: run the write again
        log.warning("portal function %s: %s", fn_name, exc)
        return gr.Error(str(exc), title="Fehler", print_exception=False)
    ref = uuid.uuid4().hex[:12]
    log.exception("portal function %s failed (Vorgangsnummer %s)", fn_name, ref)
    return gr.Error(f"Interner Fehler. Bitte versuchen Sie es erneut oder wenden Sie sich an die Administration "
                    f"(Vorgangsnummer {ref}).", title="Fehler", print_exception=False)


def german_title(err: AppError) -> AppError:
    """The message box's heading in German: gradio titles every error "Error" unless told otherwise."""
    if getattr(err, "title", None) == "Error":
        err.title = "Fehler"
    return err


def mask_errors(fn: Callable) -> Callable:
    """``fn`` with internal exceptions replaced by :func:`internal_error` (same kind of callable)."""
    name = getattr(fn, "__name__", "?")
    if getattr(fn, "_kiportal_masked", False):
        return fn
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def agen(*args, **kwargs):
            try:
                async for item in fn(*args, **kwargs):
                    yield item
            except AppError as err:
                raise german_title(err)
            except Exception as exc:
                raise internal_error(name, exc) from None
        wrapper = agen
    elif inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except AppError as err:
                raise german_title(err)
            except Exception as exc:
                raise internal_error(name, exc) from None
        wrapper = gen
    elif inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def coro(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            except AppError as err:
                raise german_title(err)
            except Exception as exc:
                raise internal_error(name, exc) from None
        wrapper = coro
    else:
        @functools.wraps(fn)
        def plain(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except AppError as err:
                raise german_title(err)
            except Exception as exc:
                raise internal_error(name, exc) from None
        wrapper = plain
    wrapper._kiportal_masked = True
    return wrapper


def mask_all(demo: gr.Blocks) -> int:
    """Wrap every event function of ``demo``; returns how many."""
    n = 0
    for block_fn in demo.fns.values():
        if block_fn.fn is not None:
            block_fn.fn = mask_errors(block_fn.fn)
            n += 1
    return n
