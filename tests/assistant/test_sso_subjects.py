"""Which person an SSO name belongs to: bound at first sight, handed on once, the old subject refused."""
from __future__ import annotations

import threading

import pytest

from assistant.appdb import AppDB
from assistant.chats import ChatStore
from assistant.sso_subjects import SubjectBindings, valid_subject
from assistant.users import UserStore


@pytest.fixture
def db(any_db_url):
    return AppDB(any_db_url)


@pytest.mark.parametrize("subject, ok", [
    ("f81d4fae-7dec-11d0-a765-00a0c91e6bf6", True), ("1234567", True), ("erika@stadt.example", True),
    ("", False), ("a b", False), ("tab\there", False), ("x" * 255, True), ("x" * 256, False), ("\x00", False),
])
def test_valid_subject(subject, ok):
    assert valid_subject(subject) is ok


def test_first_sight_binds_a_second_subject_hands_the_name_on_once(db):
    users, chats, subjects = UserStore(db), ChatStore(db), SubjectBindings(db)
    users.add("tina", "Passwort-Passwort-1", "trainer", ["bauamt"])
    chats.create_chat("tina", "Alt")
    assert subjects.bind("tina", "sub-1", users) == subjects.bind("tina", "sub-1", users)  # nothing happens
    assert subjects.current("tina") == "sub-1" and users.get("tina").role == "trainer"

    handed = subjects.bind("tina", "sub-2", users)
    assert handed.handed_on and not handed.refused
    assert handed.removed == {"role": "trainer", "chats": 1, "tool_runs": 0, "training_sessions": 0}
    assert users.get("tina") is None and chats.list_chats("tina") == []
    assert subjects.current("tina") == "sub-2"
    assert subjects.bind("tina", "sub-1", users).refused  # the previous person, for good
    assert not subjects.bind("tina", "sub-2", users).handed_on  # the new one stays
    assert subjects.bind("tina", "sub-3").removed == {"chats": 0, "tool_runs": 0, "training_sessions": 0}
    assert subjects.bind("tina", "sub-2").refused


def test_two_first_sights_at_once_leave_one_owner(any_db_url):
    """Two replicas see two subjects of one new name at the same moment: one binds, the other hands
    the name on (never two current owners)."""
    url = any_db_url
    SubjectBindings(AppDB(url))
    results, start = {}, threading.Barrier(2)

    def first(subject: str) -> None:
        bindings = SubjectBindings(AppDB(url))
        start.wait()
        results[subject] = bindings.bind("neu", subject)

    threads = [threading.Thread(target=first, args=(s,)) for s in ("sub-a", "sub-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = AppDB(url).query("SELECT subject FROM sso_subjects WHERE name='neu' AND replaced=0")
    assert len(rows) == 1
    assert sorted(r.handed_on for r in results.values()) == [False, True]
    assert SubjectBindings(AppDB(url)).current("neu") == rows[0]["subject"]


def test_an_account_an_admin_creates_belongs_to_the_next_person_who_signs_in(db):
    """Creating an account names a person anew: without this, the admin's account for a new colleague
    who got a departed one's name was removed again at her first sign-in (the name handed on)."""
    users, subjects = UserStore(db), SubjectBindings(db)
    subjects.bind("tina", "sub-old")
    subjects.bind("tina", "sub-older-session")  # handed on once: sub-old is refused for good
    users.add("tina", "Passwort-Passwort-1", "trainer")  # the admin prepares the new colleague's account
    assert subjects.current("tina") is None
    first = subjects.bind("tina", "sub-new", users)
    assert not first.handed_on and users.get("tina").role == "trainer"
    assert subjects.bind("tina", "sub-old", users).refused
