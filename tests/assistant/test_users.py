"""The user store's password decisions: the rule for a user's own new password, and the check alone."""
from __future__ import annotations

import pytest

from assistant.appdb import AppDB
from assistant.users import UserStore, new_password_problem, valid_user_name


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


@pytest.mark.parametrize("name, valid", [
    ("anna", True), ("b.meier", True), ("anna.schmidt@stadt.de", True), ("j_mueller-2", True),
    ("jürgen", True), ("rené", True), ("Straße", True), ("ÖZGÜR", True),
    ("", False), ("...", False), ("a" * 65, False), ("a b", False), ("<b>x</b>", False), ("../../etc", False),
    ("\u0430dam", False),  # Cyrillic а: looks like "adam" (found by an attacker's probe)
    ("\uff41\uff44\uff41\uff4d", False),  # fullwidth "ａｄａｍ"
    ("p\u0435tra", False),  # Cyrillic е in "petra"
    ("adam\u200b", False), ("ade\u0301", False), ("a\u00adb", False),  # zero-width space, combining accent, soft hyphen
    ("a\u00d7b", False), ("\u0131nes", False),  # the multiplication sign is in Latin-1 but no letter; dotless ı is not Latin-1
    ("李雷", False), ("١٢٣", False),  # other scripts' letters and digits
])
def test_user_names_are_latin_letters_digits_and_a_few_signs(name, valid):
    assert valid_user_name(name) is valid
