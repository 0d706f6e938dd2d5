"""ChatSwitches: an answer still streaming stops once its user leaves the chat, and leaving waits for
that stop, so that nothing of the old chat is painted over the new one (the browser test in
test_browser_admin.py shows it end to end)."""
from __future__ import annotations

import threading
import time

from ui.chat_tab import ChatSwitches


def test_a_stream_sees_the_switch_of_its_own_session_only():
    s = ChatSwitches(wait_s=0.0)
    mine = s.begin("a")
    other = s.begin("b")
    s.switch("a")
    assert s.current("a") != mine
    assert s.current("b") == other
    s.end("a")
    s.end("b")


def test_leaving_waits_until_the_stream_has_stopped():
    s = ChatSwitches(wait_s=5.0)
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
    s = ChatSwitches(wait_s=0.2)
    t0 = time.monotonic()
    s.switch("idle")
    assert time.monotonic() - t0 < 0.1
    s.begin("stuck")  # a stream that never reaches its next update
    t0 = time.monotonic()
    s.switch("stuck")
    assert 0.15 < time.monotonic() - t0 < 2


def test_sessions_are_forgotten_beyond_the_limit_but_not_while_streaming():
    s = ChatSwitches(wait_s=0.0)
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
    s = ChatSwitches(wait_s=1.0)
    started = s.begin("a", note="Wie lange gilt der Ausweis?")

    def stream():
        time.sleep(0.2)
        s.end("a", started)  # sees the switch at its next update and stops

    threading.Thread(target=stream).start()
    assert s.switch("a") == "Wie lange gilt der Ausweis?"
    done = s.begin("a", note="Und die Gebühr?")
    s.end("a", done)  # ran to its end
    assert s.switch("a") == "" and s._notes == {}
