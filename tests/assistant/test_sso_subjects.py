"""Which person an SSO name belongs to: bound at first sight, handed on once, the old subject refused."""
from __future__ import annotations

import pytest

from assistant.appdb import AppDB
from assistant.chats import ChatStore
from assistant.sso_subjects import Binding, SubjectBindings, valid_subject
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


def test_first_sight_binds_another_subject_is_refused_until_an_admin_hands_the_name_on(db):
    users, chats, subjects = UserStore(db), ChatStore(db), SubjectBindings(db)
    users.add("tina", "Passwort-Passwort-1", "trainer", ["bauamt"])
    chats.create_chat("tina", "Alt")
    assert subjects.bind("tina", "sub-1").bound and subjects.bind("tina", "sub-1") == Binding()  # then confirmed
    other = subjects.bind("tina", "sub-2")  # a rename, an IdP mistake or the name handed on: nothing changes
    assert other.refused and other.reason == "conflict"
    assert subjects.current("tina") == "sub-1" and users.get("tina").role == "trainer" and chats.list_chats("tina")

    left = subjects.hand_over("tina", users)  # the admin decides
    assert left == {"subject_replaced": True, "role": "trainer", "chats": 1, "tool_runs": 0, "training_sessions": 0}
    assert users.get("tina") is None and chats.list_chats("tina") == [] and subjects.current("tina") is None
    assert subjects.bind("tina", "sub-2").bound  # the next person to sign in owns the name
    assert subjects.bind("tina", "sub-1") == Binding(refused=True, reason="replaced")  # the previous one, for good …
    assert subjects.forgive("tina") == 1  # … unless an admin lets the subject in again
    assert subjects.bind("tina", "sub-1").reason == "conflict"  # (the name is sub-2's now)


def test_two_first_sights_at_once_leave_one_owner(db, monkeypatch):
    """Two replicas see two subjects of one new name at the same moment: the unique index lets one
    bind, the other reads again and is refused (never two current owners). Forced: replica B reads
    before A writes, then writes after."""
    a, b = SubjectBindings(db), SubjectBindings(AppDB(db.url) if hasattr(db, "url") else db)
    real_query, raced = b.db.query, []

    def stale_first_read(sql, params=None):
        if not raced:
            raced.append(1)
            assert a.bind("neu", "sub-a").bound  # A binds between B's read and B's write
            return []
        return real_query(sql, params)

    monkeypatch.setattr(b.db, "query", stale_first_read)
    assert b.bind("neu", "sub-b") == Binding(refused=True, reason="conflict")
    rows = real_query("SELECT subject FROM sso_subjects WHERE name='neu' AND replaced=0")
    assert [r["subject"] for r in rows] == ["sub-a"]


def test_an_account_an_admin_creates_belongs_to_the_next_person_who_signs_in(db):
    """Creating an account names a person anew: without this, the new colleague's account would be
    refused at her first sign-in (the name bound to the departed one's subject)."""
    users, subjects = UserStore(db), SubjectBindings(db)
    subjects.bind("tina", "sub-old")
    users.add("tina", "Passwort-Passwort-1", "trainer")  # the admin prepares the new colleague's account
    assert subjects.current("tina") is None
    assert subjects.bind("tina", "sub-new").bound and users.get("tina").role == "trainer"


def test_an_admin_names_the_owner_of_a_prepared_account(db):
    """An attacker's probe: a prepared account's role went to whoever signed in first with the name (an
    insider who may choose a user name at the IdP). The admin can name the owner's subject up front."""
    subjects = SubjectBindings(db)
    subjects.assign("adam", "sub-adam")
    assert subjects.bind("adam", "sub-insider") == Binding(refused=True, reason="conflict")
    assert subjects.bind("adam", "sub-adam") == Binding()
    subjects.assign("adam", "sub-adam")  # again: nothing changes
    with pytest.raises(ValueError, match="gehört bereits einer anderen SSO-Kennung"):
        subjects.assign("adam", "sub-other")
    with pytest.raises(ValueError, match="Ungültige SSO-Kennung"):
        subjects.assign("eva", "a b")
    subjects.hand_over("adam")  # sub-adam refused from now on …
    subjects.assign("adam", "sub-adam")  # … unless an admin names it the owner again
    assert subjects.bind("adam", "sub-adam") == Binding() and subjects.current("adam") == "sub-adam"


def test_an_account_made_with_its_owners_subject_is_bound_in_the_same_step(db):
    """The review: made in two steps (account, then binding) a sign-in in between bound the insider and
    left the prepared role to him. Now the account and its binding are one transaction, and an insider
    bound before it is replaced by the admin's choice."""
    users, subjects = UserStore(db), SubjectBindings(db)
    subjects.bind("amelie", "sub-insider")
    users.add("amelie", "Passwort-Passwort-1", "admin", subject="sub-amelie")
    assert subjects.current("amelie") == "sub-amelie"
    assert subjects.bind("amelie", "sub-insider") == Binding(refused=True, reason="conflict")
    with pytest.raises(ValueError, match="Ungültige SSO-Kennung"):
        users.add("bert", "Passwort-Passwort-1", "admin", subject="a b")
    assert users.get("bert") is None
