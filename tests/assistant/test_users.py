"""The user store's password decisions: the rule for a user's own new password, and the check alone."""
from __future__ import annotations

import pytest

from assistant.appdb import AppDB
from assistant.users import UserStore, new_password_problem


@pytest.mark.parametrize("name, current, new, repeat, problem", [
    ("anna", "Alt-Passwort-1", "Neu-Passwort-22", "Neu-Passwort-22", None),
    ("anna", "", "Neu-Passwort-22", "Neu-Passwort-22", "bisheriges Passwort"),
    ("anna", "Alt-Passwort-1", "kurz", "kurz", "zu kurz"),
    ("anna", "Alt-Passwort-1", "x" * 257, "x" * 257, "zu lang"),
    ("anna", "Alt-Passwort-1", "Neu-Passwort-22", "Neu-Passwort-23", "stimmen nicht überein"),
    ("anna", "Gleich-Bleibt-7", "Gleich-Bleibt-7", "Gleich-Bleibt-7", "unterscheiden"),
    ("anna", "Alt-Passwort-1", "ANNA-2026-sicher", "ANNA-2026-sicher", "Benutzernamen"),
    ("b.meier", "Alt-Passwort-1", "12345678", "12345678", None),  # length is the rule, not the mix
    ("kai", "Alt-Passwort-1", "Kaiserslautern-1", "Kaiserslautern-1", None),  # too short a name to judge by
])
def test_new_password_problem(name, current, new, repeat, problem):
    found = new_password_problem(name, current, new, repeat)
    assert (found is None) if problem is None else (problem in found), found


def test_password_matches_checks_without_counting_a_login(tmp_path):
    users = UserStore(AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}"))
    users.add("anna", "Alt-Passwort-1")
    assert users.password_matches("anna", "Alt-Passwort-1")
    assert not users.password_matches("anna", "alt-passwort-1")
    assert not users.password_matches("niemand", "Alt-Passwort-1")
    assert users.list()[0]["last_login"] is None  # a check is no login
