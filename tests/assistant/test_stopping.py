"""assistant.stopping: work the user can leave (Stopp, Neuer Chat, Abbrechen) runs detached, and the
signal tells its slow steps that the user left."""
from __future__ import annotations

import contextvars
import threading
import time

import pytest

from assistant import stopping
from assistant.stopping import Stopped, check, detached, stop_requested, stoppable


@pytest.mark.parametrize("signal, stops", [
    (None, False),  # outside any stream: the command line, the evaluation
    (lambda: False, False),
    (lambda: True, True),
])
def test_check_raises_only_when_the_signal_says_stop(signal, stops):
    def run():
        assert stop_requested() is stops
        if stops:
            with pytest.raises(Stopped):
                check()
        else:
            check()

    if signal is None:
        run()
    else:
        with stoppable(signal):
            run()


def test_the_signal_ends_with_its_block_and_an_inner_one_wins():
    with stoppable(lambda: False):
        with stoppable(lambda: True):
            assert stop_requested()
        assert not stop_requested()
    assert not stop_requested()


def test_the_signal_belongs_to_the_thread_and_context_that_set_it():
    seen = []
    gate = threading.Event()
    with stoppable(lambda: True):
        ctx = contextvars.copy_context()
        other = threading.Thread(target=lambda: (gate.wait(5), seen.append(stop_requested())))
        other.start()
        mine = ctx.run(stop_requested)
        gate.set()
        other.join(5)
    assert mine is True and seen == [False]
    assert stopping._signal.get() is None


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
    assert time.monotonic() - t0 < 2.5  # a deadline well short of the step's 5 s, not a timing
    assert not closed.is_set()  # the step is still running in its thread
    release.set()
    assert closed.wait(5)  # then the steps are closed: their finally ran, nothing was stored
    assert stored == []


@pytest.mark.parametrize("stop_signal, read", [(True, "stopped"), (False, "all")])
def test_a_step_that_looks_at_the_stop_signal_ends_when_the_user_left(stop_signal, read):
    """What frees the local model after Stopp: its prompt reading asks ``stopping.check`` between parts.
    Without the signal (the stop bench's baseline) the step reads on to its end for nobody."""
    parts, done, ended = 40, [], threading.Event()

    def steps():
        try:
            yield "quellen"
            for _ in range(parts):  # the model reading a prompt, part by part
                check()
                time.sleep(0.01)
                done.append(1)
            yield "antwort"
        finally:
            ended.set()

    gone = threading.Event()
    loop = detached(steps(), gone.is_set, poll_s=0.02, stop_signal=stop_signal)
    assert next(loop) == "quellen"
    while not done:
        time.sleep(0.005)
    gone.set()
    assert list(loop) == []
    assert ended.wait(5)
    assert ("all" if len(done) == parts else "stopped") == read
    assert not stop_requested()  # the caller's own context never had the signal


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
