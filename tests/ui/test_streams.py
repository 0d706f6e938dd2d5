"""ui.streams: a stream stops once its user leaves (StreamSwitches), leaving waits for that stop, and
the stream ends at once even while a step still runs (its steps run assistant.stopping.detached, tested in
tests/assistant/test_stopping.py), so nothing of the old chat or run is painted over what the user went to
(the browser tests in test_browser_admin.py show it end to end)."""
from __future__ import annotations

import threading
import time

from ui.streams import StreamSwitches, unchanged


def test_unchanged_is_n_updates_that_change_nothing():
    assert list(unchanged(3)) == [{"__type__": "update"}] * 3


def test_stream_renders_each_step_and_a_finished_stream_leaves_no_note():
    s = StreamSwitches(wait_s=0.0)
    assert list(s.stream("a", iter([1, 2]), lambda n: (n, -n), 2, note="Frage")) == [(1, -1), (2, -2)]
    assert s.switch("a") == "" and s._streams == {}


def test_stream_left_by_a_switch_ends_with_an_update_that_changes_nothing():
    """What Stopp relies on: nothing more is rendered, the last update is a no-op (gradio repeats the
    last one), and the switch gets the question back."""
    s = StreamSwitches(wait_s=0.1)
    go_on = threading.Event()

    def steps():
        yield "frage"
        go_on.wait(5)  # a slow search
        yield "antwort"

    out = s.stream("a", steps(), lambda step: (step,), 1, note="Wie lange gilt der Ausweis?")
    assert next(out) == ("frage",)
    assert s.switch("a") == "Wie lange gilt der Ausweis?"  # (the paused stream gives no answer within the wait)
    go_on.set()
    assert list(out) == [({"__type__": "update"},)]
    assert s._streams == {}


def test_a_stream_of_another_tab_goes_on_when_one_tab_is_left():
    s = StreamSwitches(wait_s=0.0)
    out = s.stream("b", iter(["x", "y"]), lambda step: (step,), 1)
    assert next(out) == ("x",)
    s.switch("a")
    assert list(out) == [("y",)]


def test_a_stream_sees_the_switch_of_its_own_session_only():
    s = StreamSwitches(wait_s=0.0)
    mine = s.begin("a")
    other = s.begin("b")
    s.switch("a")
    assert s.current("a") != mine
    assert s.current("b") == other
    s.end("a")
    s.end("b")


def test_leaving_waits_until_the_stream_has_stopped():
    s = StreamSwitches(wait_s=5.0)
    s.begin("a")
    stopped_at: list[float] = []

    def stream():
        time.sleep(0.3)  # the stream's next update
        stopped_at.append(time.monotonic())
        s.end("a")

    threading.Thread(target=stream).start()
    s.switch("a")
    left_at = time.monotonic()
    assert stopped_at and left_at >= stopped_at[0]


def test_leaving_without_a_stream_does_not_wait_and_the_wait_is_bounded():
    s = StreamSwitches(wait_s=0.2)
    t0 = time.monotonic()
    s.switch("idle")
    assert time.monotonic() - t0 < 0.1
    s.begin("stuck")  # a stream that never reaches its next update
    t0 = time.monotonic()
    s.switch("stuck")
    assert 0.15 < time.monotonic() - t0 < 2


def test_sessions_are_forgotten_beyond_the_limit_but_not_while_streaming():
    s = StreamSwitches(wait_s=0.0)
    s.MAX_SESSIONS = 3
    s.switch("a")
    started = s.begin("a")  # "a" streams an answer: its count must stay, or the stream would stop
    for name in "bcde":
        s.switch(name)
    assert s.current("a") == started == 1
    assert s.current("b") == 0 and s.current("e") == 1
    s.end("a")


def test_the_switch_that_stops_a_stream_gets_its_note_and_a_finished_stream_leaves_none():
    """"Stopp" puts the question back from here: the page's own state may not have the stream's value yet."""
    s = StreamSwitches(wait_s=1.0)
    started = s.begin("a", note="Wie lange gilt der Ausweis?")

    def stream():
        time.sleep(0.2)
        s.end("a", started)  # sees the switch at its next update and stops

    threading.Thread(target=stream).start()
    assert s.switch("a") == "Wie lange gilt der Ausweis?"
    done = s.begin("a", note="Und die Gebühr?")
    s.end("a", done)  # ran to its end
    assert s.switch("a") == "" and s._notes == {}
