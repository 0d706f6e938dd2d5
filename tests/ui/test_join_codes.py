"""Join codes guessed: each unknown code counts for the user, the back-off then holds even the right
code back, an ended session's code is no guess, and every refusal is audited."""
from __future__ import annotations

import json

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
    assert len(refused) == FREE_UNKNOWN + 3 and {e["actor"] for e in refused} == {"mallory"}
    assert sorted({json.loads(e["detail"])["reason"] for e in refused}) == ["held_back", "unknown"]


def test_an_ended_sessions_code_is_found_and_not_counted(world):
    store, audit, clock, session, guard = world
    store.end(session.id)
    for _ in range(FREE_UNKNOWN + 5):
        assert guard.session(session.code, "mallory").id == session.id  # ended, not unknown: no guess
    with pytest.raises(SessionError, match="bereits beendet"):
        store.current_item(session.code)
    assert audit.count(action="training_code_refused") == 0
