"""assistant.stopping: the signal that tells slow work its user left (Stopp, Neuer Chat, Abbrechen)."""
from __future__ import annotations

import contextvars
import threading

import pytest

from assistant import stopping
from assistant.stopping import Stopped, check, stop_requested, stoppable


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


def test_a_stop_passes_handlers_that_turn_errors_into_answers():
    """The chain falls back to an extractive answer on ``Exception`` and the handlers would store it."""
    with pytest.raises(Stopped):
        try:
            with stoppable(lambda: True):
                check()
        except Exception:  # noqa: BLE001 - what the chain's fallback catches
            pytest.fail("a stop must not look like a model failure")


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
