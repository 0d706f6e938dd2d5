"""The user store's password decisions: the rule for a user's own new password, and the check alone."""
from __future__ import annotations

import pytest

from assistant.appdb import AppDB
from assistant.users import UserStore, new_password_problem, valid_new_user_name, valid_user_name


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


@pytest.mark.parametrize("name, safe, new", [
    ("anna", True, True), ("b.meier", True, True), ("anna.schmidt@stadt.de", True, True), ("j_mueller-2", True, True),
    ("jürgen", True, True), ("rené", True, True), ("Straße", True, True), ("ÖZGÜR", True, True),
    ("", False, False), ("...", False, False), ("a" * 65, False, False), ("a b", False, False),
    ("<b>x</b>", False, False), ("../../etc", False, False),
    # look like existing names (found by an attacker's probe): safe to handle, but no new account gets them
    ("\u0430dam", True, False),  # Cyrillic а: "adam"
    ("\uff41\uff44\uff41\uff4d", True, False),  # fullwidth "ａｄａｍ"
    ("p\u0435tra", True, False),  # Cyrillic е in "petra"
    ("\u0131nes", True, False), ("李雷", True, False), ("١٢٣", True, False),  # dotless ı, other scripts
    ("adam\u200b", False, False), ("ade\u0301", False, False), ("a\u00adb", False, False),  # invisible or combining
    ("a\u00d7b", False, False),  # the multiplication sign is in Latin-1 but no letter
])
def test_user_names(name, safe, new):
    assert valid_user_name(name) is safe and valid_new_user_name(name) is new


def test_an_account_from_before_the_latin_rule_keeps_working(tmp_path):
    """Accounts created when any letter was allowed keep their role changes (found by a review)."""
    users = UserStore(AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}"))
    with pytest.raises(ValueError):
        users.add("\u015fahin", "Alt-Passwort-1")
    users.db.execute("INSERT INTO users(name, password_hash, role, created_at) VALUES (:n, 'x', 'staff', 0)",
                     {"n": "\u015fahin"})
    users.set_role("\u015fahin", "trainer")
    assert users.get("\u015fahin").role == "trainer"
