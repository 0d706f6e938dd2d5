"""Login sessions: end on password/role change and removal, after idle time and maximum age."""
from __future__ import annotations

import pytest

from assistant.appdb import AppDB
from assistant.sessions import SessionStore
from assistant.users import UserStore


@pytest.fixture
def stores(tmp_path):
    db = AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}")
    users = UserStore(db)
    users.add("sam", "Passwort-123", "staff")
    return users, SessionStore(db, users, idle_s=600, max_age_s=3600)


def test_a_session_lives_until_its_user_changes(stores):
    users, sessions = stores
    token = sessions.open("sam")
    assert sessions.user_of(token) == "sam" and sessions.user_of("erfunden") is None
    users.set_password("sam", "Anderes-Passwort")
    assert sessions.user_of(token) is None
    token = sessions.open("sam")
    users.set_role("sam", "trainer")
    assert sessions.user_of(token) is None
    token = sessions.open("sam")
    users.remove("sam")
    users.add("sam", "Anderes-Passwort", "trainer")  # re-added: the old session stays dead
    assert sessions.user_of(token) is None
    assert sessions.open("niemand") is None


@pytest.mark.parametrize("idle, age, alive", [(0, 0, True), (599, 599, True), (601, 601, False),
                                              (100, 3599, True), (100, 3601, False)])
def test_idle_time_and_maximum_age(stores, idle, age, alive):
    _users, sessions = stores
    token = sessions.open("sam")
    sessions.db.execute("UPDATE sessions SET created_at = created_at - :a, last_seen = last_seen - :i",
                        {"a": age, "i": idle})
    assert (sessions.user_of(token) == "sam") is alive


def test_only_a_hash_of_the_token_is_stored_and_logout_ends_all(stores):
    _users, sessions = stores
    a, b = sessions.open("sam"), sessions.open("sam")
    stored = {r["token_hash"] for r in sessions.db.query("SELECT token_hash FROM sessions")}
    assert a not in stored and b not in stored and len(stored) == 2
    assert sessions.close_user("sam") == 2 and sessions.user_of(a) is None and sessions.user_of(b) is None
