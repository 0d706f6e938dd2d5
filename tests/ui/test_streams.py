"""ui.streams.detached: the caller's loop ends as soon as the user left, even mid-step."""
from __future__ import annotations

import threading
import time

import pytest

from ui.streams import detached, unchanged


def test_items_pass_through_in_order_and_the_end_is_the_end():
    assert list(detached(iter([1, 2, 3]), lambda: False, poll_s=0.01)) == [1, 2, 3]


def test_an_error_of_the_steps_is_raised_in_the_callers_loop():
    def steps():
        yield 1
        raise ValueError("kaputt")

    got = []
    with pytest.raises(ValueError, match="kaputt"):
        for item in detached(steps(), lambda: False, poll_s=0.01):
            got.append(item)
    assert got == [1]


def test_leaving_ends_the_loop_while_a_step_is_still_running_and_the_steps_are_closed():
    release, closed, stored = threading.Event(), threading.Event(), []

    def steps():
        try:
            yield "frage"
            release.wait(5)  # a slow search
            yield "antwort"
            stored.append("antwort")  # what a finished answer would store
        finally:
            closed.set()

    gone = threading.Event()
    loop = detached(steps(), gone.is_set, poll_s=0.02)
    assert next(loop) == "frage"
    t0 = time.monotonic()
    gone.set()
    assert list(loop) == []  # ends at once, without waiting for the slow step
    assert time.monotonic() - t0 < 1.0
    assert not closed.is_set()  # the step is still running in its thread
    release.set()
    assert closed.wait(5)  # then the steps are closed: their finally ran, nothing was stored
    assert stored == []


def test_an_item_that_arrives_after_leaving_is_not_given():
    gone, go_on = threading.Event(), threading.Event()

    def steps():
        yield 1
        go_on.wait(5)
        yield 2

    loop = detached(steps(), gone.is_set, poll_s=0.01)
    assert next(loop) == 1
    gone.set()
    go_on.set()
    time.sleep(0.2)  # item 2 is waiting for the caller by now
    assert list(loop) == []


def test_unchanged_is_n_updates_that_change_nothing():
    assert [u for u in unchanged(3)] == [{"__type__": "update"}] * 3
