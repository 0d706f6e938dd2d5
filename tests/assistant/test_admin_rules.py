"""The admin's safety rules for portal users (assistant.admin_rules), as tables, and the service that
applies them in the Verwaltung tab (assistant.user_admin)."""
from __future__ import annotations

import json

import pytest

from assistant.admin_rules import AdminError, refused_role_change, refused_user_removal
from assistant.users import PASSWORD_ALPHABET, new_password

TWO_ADMINS = {"adam": "admin", "berta": "admin", "erika": "staff", "tina": "trainer"}
ONE_ADMIN = {"adam": "admin", "erika": "staff", "tina": "trainer"}
# acting as someone not stored (header mode: an admin by SSO group, or the local user without login)
OUTSIDER = "sso-admin"


@pytest.mark.parametrize("actor, target, roles, refused", [
    ("adam", "erika", ONE_ADMIN, None),            # an ordinary user
    ("adam", "tina", ONE_ADMIN, None),
    ("adam", "berta", TWO_ADMINS, None),           # another admin, one stays
    ("adam", "adam", TWO_ADMINS, "eigene Konto"),  # never oneself, even with another admin left
    ("adam", "adam", ONE_ADMIN, "eigene Konto"),
    (OUTSIDER, "adam", ONE_ADMIN, "letzte"),       # the last admin stays, whoever asks
    (OUTSIDER, "adam", TWO_ADMINS, None),
    ("adam", "niemand", ONE_ADMIN, None),          # unknown: the caller says so, not the rule
])
def test_who_may_remove_whom(actor, target, roles, refused):
    why = refused_user_removal(actor, target, roles)
    assert (why is None) if refused is None else (refused in why), why


@pytest.mark.parametrize("actor, target, new_role, roles, refused", [
    ("adam", "erika", "trainer", ONE_ADMIN, None),        # promote and demote others freely
    ("adam", "tina", "staff", ONE_ADMIN, None),
    ("adam", "erika", "admin", ONE_ADMIN, None),
    ("adam", "berta", "staff", TWO_ADMINS, None),         # another admin, one stays
    ("adam", "adam", "admin", ONE_ADMIN, None),           # keeping one's own role is no change
    ("adam", "adam", "trainer", TWO_ADMINS, "selbst"),    # never take it from oneself
    ("adam", "adam", "staff", ONE_ADMIN, "selbst"),
    (OUTSIDER, "adam", "staff", ONE_ADMIN, "letzte"),     # the last admin stays an admin
    (OUTSIDER, "adam", "trainer", TWO_ADMINS, None),
    (OUTSIDER, "adam", "admin", ONE_ADMIN, None),
    ("adam", "niemand", "staff", ONE_ADMIN, None),
])
def test_who_may_change_whose_role(actor, target, new_role, roles, refused):
    why = refused_role_change(actor, target, new_role, roles)
    assert (why is None) if refused is None else (refused in why), why


def test_generated_passwords_are_long_random_and_typeable():
    seen = {new_password() for _ in range(200)}
    assert len(seen) == 200
    for pw in seen:
        groups = pw.split("-")
        assert len(groups) == 4 and all(len(g) == 5 for g in groups)
        assert set(pw.replace("-", "")) <= set(PASSWORD_ALPHABET)
    assert not set("0O1lI") & set(PASSWORD_ALPHABET)


# -- the service (a real user store and audit log) --------------------------------------------------
@pytest.fixture
def app(tmp_path):
    from settings_factory import make_settings

    from assistant.wiring import App

    a = App(make_settings(tmp_path / "data", auth={"mode": "password"}, access={"groups": ["bauamt", "personalamt"]}))
    a.users.add("adam", "geheim-123", "admin")
    a.users.add("erika", "geheim-123", "staff")
    return a


def _svc(app, mode: str = "password"):
    from assistant.user_admin import UserAdmin

    return UserAdmin(app.users, app.departments, app.audit, mode)


def _audit(app, action):
    return [(e["actor"], e["target"], json.loads(e["detail"])) for e in app.audit.entries(action=action)]


def test_create_gives_a_one_time_password_stored_only_as_a_hash(app):
    user, password = _svc(app).create(" clara ", "trainer", ["bauamt"], "adam")
    assert (user.name, user.role, user.groups) == ("clara", "trainer", ("bauamt",))
    assert app.users.verify("clara", password) is not None
    stored = app.app_db.one("SELECT password_hash FROM users WHERE name='clara'")["password_hash"]
    assert stored.startswith("$argon2id$") and password not in stored
    assert _audit(app, "user_add") == [("adam", "clara", {"role": "trainer", "groups": ["bauamt"]})]
    rows = app.audit.entries(limit=100)
    assert not any(password in (e["detail"] or "") + e["target"] for e in rows)


@pytest.mark.parametrize("name, role, groups, message", [
    ("", "staff", [], "Benutzernamen eingeben"),
    ("../etc", "staff", [], "Ungültiger Benutzername"),
    ("<b>x</b>", "staff", [], "Ungültiger Benutzername"),
    ("x" * 65, "staff", [], "Ungültiger Benutzername"),
    ("erika", "staff", [], "gibt es schon"),
    ("clara", "root", [], "Unbekannte Rolle"),
    ("clara", "staff", ["kaemmerei"], "Unbekannte Gruppe"),
    ("clara", "staff", ["alle"], "keine Gruppe"),
])
def test_create_refuses_bad_input_and_changes_nothing(app, name, role, groups, message):
    before = app.users.list()
    with pytest.raises(AdminError, match=message):
        _svc(app).create(name, role, groups, "adam")
    assert app.users.list() == before and app.audit.entries(action="user_add") == []


@pytest.mark.parametrize("mode, message", [("header", "SSO-Proxy"), ("none", "ohne Anmeldung")])
def test_without_password_login_no_passwords_are_made(app, mode, message):
    svc = _svc(app, mode)
    with pytest.raises(AdminError, match=message):
        svc.create("clara", "staff", [], "adam")
    with pytest.raises(AdminError, match=message):
        svc.reset_password("erika", "adam")
    assert app.users.get("clara") is None and app.users.verify("erika", "geheim-123") is not None
    assert svc.set_role("erika", "trainer", "adam") == ("staff", "trainer")  # roles still count with SSO


def test_reset_role_and_remove_are_audited_without_the_password(app):
    svc = _svc(app)
    user, password = svc.reset_password("erika", "adam")
    assert app.users.verify("erika", "geheim-123") is None and app.users.verify("erika", password) is not None
    assert _audit(app, "user_passwd") == [("adam", "erika", {"generated": True})]
    assert svc.set_role("erika", "admin", "adam") == ("staff", "admin")
    assert svc.set_role("erika", "admin", "adam") == ("admin", "admin")  # no change, no entry
    assert _audit(app, "user_role") == [("adam", "erika", {"before": "staff", "after": "admin"})]
    svc.remove("adam", "erika")  # another admin is left (erika)
    assert app.users.get("adam") is None
    assert _audit(app, "user_remove") == [("erika", "adam", {"role": "admin", "groups": [], "chats": 0,
                                                                    "tool_runs": 0, "training_sessions": 0})]
    assert not any(password in (e["detail"] or "") for e in app.audit.entries(limit=100))


def test_safety_rules_hold_in_the_service(app):
    svc = _svc(app)
    for call, message in ((lambda: svc.remove("adam", "adam"), "eigene Konto"),
                          (lambda: svc.set_role("adam", "staff", "adam"), "selbst"),
                          (lambda: svc.remove("adam", "lokal"), "letzte"),
                          (lambda: svc.set_role("adam", "trainer", "lokal"), "letzte"),
                          (lambda: svc.remove("niemand", "adam"), "gibt es nicht"),
                          (lambda: svc.reset_password("", "adam"), "auswählen"),
                          (lambda: svc.set_role("erika", "chef", "adam"), "Unbekannte Rolle")):
        with pytest.raises(AdminError, match=message):
            call()
    assert app.users.get("adam").role == "admin" and app.users.get("erika").role == "staff"
    assert app.audit.entries(action="user_*") == []


@pytest.mark.parametrize("change", ["demote", "remove"])
def test_two_admins_at_once_never_leave_none(app, monkeypatch, change):
    """adam and ada, the only admins, act against each other at the same moment. The check reads the
    admins, then the change is written: held apart by the users lock, the second sees one admin left
    and is refused (a pause between reading and writing makes the race certain without the lock)."""
    import threading
    import time

    from assistant.user_admin import UserAdmin

    app.users.add("ada", "Passwort-Ada-12", "admin")
    read = UserAdmin._roles

    def slow_roles(self):
        roles = read(self)
        time.sleep(0.3)  # the other admin reads meanwhile
        return roles

    monkeypatch.setattr(UserAdmin, "_roles", slow_roles)
    svc = _svc(app)
    outcomes: dict[str, str] = {}

    def act(actor: str, target: str) -> None:
        try:
            if change == "demote":
                svc.set_role(target, "staff", actor)
            else:
                svc.remove(target, actor)
            outcomes[actor] = "done"
        except AdminError as exc:
            outcomes[actor] = str(exc)

    threads = [threading.Thread(target=act, args=pair) for pair in (("adam", "ada"), ("ada", "adam"))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    admins = [u["name"] for u in app.users.list() if u["role"] == "admin"]
    assert len(admins) == 1, (admins, outcomes)
    assert sorted(v == "done" for v in outcomes.values()) == [False, True], outcomes


def test_start_passwords_must_be_replaced_by_their_owner(app):
    """A created user and a reset password are on a start password; the owner's own change ends that."""
    svc = _svc(app)
    user, start = svc.create("neo", "staff", [], "adam")
    assert app.users.get("neo").must_change
    app.users.set_password("neo", "Neos-eigenes-Passwort")
    assert not app.users.get("neo").must_change
    svc.reset_password("neo", "adam")
    assert app.users.get("neo").must_change
    assert not app.users.get("erika").must_change  # users made on the command line choose their own
