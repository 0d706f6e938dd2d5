"""Join codes guessed: each unknown code counts for the user, the back-off then holds even the right
code back, an ended session's code is no guess, and every refusal is audited."""
from __future__ import annotations

import json
import threading
import time

import pytest

from assistant.appdb import AppDB
from assistant.audit import AuditLog
from assistant.login_failures import WINDOW_S, DBLoginFailures
from assistant.training.plans import BUNDLED_DIR, load_plan
from assistant.training.sessions import SessionError, TrainingStore, UnknownCode
from ui.join_codes import FREE_UNKNOWN, JoinCodeGuard


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path):
    db = AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}")
    store, audit, clock = TrainingStore(db, secret="geheim"), AuditLog(db), Clock()
    session = store.start(load_plan(BUNDLED_DIR / "ki-kompass-starter.yaml"), "tina")
    return store, audit, clock, session, JoinCodeGuard(store, DBLoginFailures(db), audit, clock=clock)


def _guess(guard, n: int, user: str = "mallory") -> None:
    for i in range(n):
        with pytest.raises(UnknownCode):
            guard.session(f"ZZZ{i:03d}", user)


def test_unknown_codes_cost_nothing_until_the_free_ones_are_used_up(world):
    store, audit, clock, session, guard = world
    _guess(guard, FREE_UNKNOWN - 1)
    assert guard.session(session.code.lower(), "mallory").id == session.id  # a typo-prone person gets in
    _guess(guard, 1)
    with pytest.raises(SessionError, match="Zu viele unbekannte Teilnahmecodes"):
        guard.session(session.code, "mallory")  # held back: the right code too
    assert guard.session(session.code, "maria").id == session.id  # counted per user
    clock.now += 3  # the back-off's first step is 2 s, then 4, 8 … up to 15 minutes
    assert guard.session(session.code, "mallory").id == session.id
    _guess(guard, 1)
    with pytest.raises(SessionError, match="in 4 Sekunden"):  # and a guess in the back-off is no guess
        guard.session("ZZZ999", "mallory")
    clock.now += WINDOW_S + 1  # an hour without a wrong code: the counter starts again
    assert guard.session(session.code, "mallory").id == session.id
    refused = audit.entries(action="training_code_refused", limit=100)
    assert {e["actor"] for e in refused} == {"mallory"}
    details = [json.loads(e["detail"]) for e in refused]
    assert [d["reason"] for d in details].count("unknown") == FREE_UNKNOWN + 1
    # the two held-back tries 3 s apart are one row of that minute, both counted
    assert [d["attempts"] for d in details if d["reason"] == "held_back"] == [2]


def test_held_back_codes_are_one_counted_row_a_minute(world):
    store, audit, clock, session, guard = world
    _guess(guard, FREE_UNKNOWN)
    for _ in range(50):  # hammering in the back-off: costs the guesser nothing, must not grow the audit
        with pytest.raises(SessionError, match="Zu viele"):
            guard.session("ZZZ999", "mallory")
    clock.now += 61
    _guess(guard, 1)  # the back-off's 2 s have passed: one more guess counts
    with pytest.raises(SessionError, match="Zu viele"):
        guard.session("ZZZ999", "mallory")
    held = [json.loads(e["detail"]) for e in audit.entries(action="training_code_refused", limit=200)
            if json.loads(e["detail"])["reason"] == "held_back"]
    assert sorted(d["attempts"] for d in held) == [1, 50]
    assert sorted(len(d["codes"]) for d in held) == [1, 1]  # the codes tried, each once


class SlowCounters:
    """The login throttle's table, read slowly: parallel joins all read the count before any counts."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def get(self, keys):
        found = self.inner.get(keys)
        time.sleep(0.2)
        return found

    def add(self, keys, now, window_s):
        self.inner.add(keys, now, window_s)


def test_a_parallel_burst_passes_one_guess_when_a_back_off_ends(world, tmp_path):
    store, audit, clock, session, guard = world
    _guess(guard, FREE_UNKNOWN)
    clock.now += 3  # the back-off of 2 s has just ended
    slow = JoinCodeGuard(store, SlowCounters(guard.counters), audit, clock=clock)
    outcomes: list[str] = []

    def join(i: int) -> None:
        try:
            slow.session(f"YYY{i:03d}", "mallory")
        except UnknownCode:
            outcomes.append("guessed")
        except SessionError:
            outcomes.append("held back")

    threads = [threading.Thread(target=join, args=(i,)) for i in range(6)]  # a user's 6 open events
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcomes) == ["guessed"] + ["held back"] * 5


def test_an_ended_sessions_code_is_found_and_not_counted(world):
    store, audit, clock, session, guard = world
    store.end(session.id)
    for _ in range(FREE_UNKNOWN + 5):
        assert guard.session(session.code, "mallory").id == session.id  # ended, not unknown: no guess
    with pytest.raises(SessionError, match="bereits beendet"):
        store.current_item(session.code)
    assert audit.count(action="training_code_refused") == 0
