"""User management in the Verwaltung tab (Benutzer), attacked over HTTP like every admin endpoint:
a staff user and a trainer call each new endpoint through gradio's queue protocol by hand and are
refused, and no user, role or password changes. An admin's own calls obey the safety rules, and
with SSO login no password is ever made.
"""
from __future__ import annotations

import logging
import re
import time

import pytest

from sec_client import PASSWORD, audit, call, login, proxy

USER_ENDPOINTS = ("admin_users", "admin_add_user", "admin_set_user_role", "admin_reset_user_password",
                  "admin_remove_user")


def _snapshot(portal) -> list:
    users = portal.ctx.users
    return [(u["name"], u["role"], tuple(u["groups"]), users.stamp(u["name"])) for u in users.list()]


def attacks(victim: str, attacker: str) -> list[tuple[str, list]]:
    """Each endpoint with what an attacker would send: make an admin, promote oneself, take the admin's
    password, remove the admin; and the same with no user chosen (which only the role check stops)."""
    return [("admin_users", []),
            ("admin_add_user", ["mallory", "admin", []]),
            ("admin_set_user_role", [attacker, "admin"]),
            ("admin_set_user_role", [None, "admin"]),
            ("admin_reset_user_password", [victim]),
            ("admin_reset_user_password", [None]),
            ("admin_remove_user", [victim, True]),
            ("admin_remove_user", [None, True])]


@pytest.mark.parametrize("who", ["sam", "tina"])  # staff and trainer
def test_non_admins_calling_the_user_endpoints_are_refused(pw_portal, who):
    before = _snapshot(pw_portal)
    audit_before = len(audit(pw_portal, "user_*"))
    with login(pw_portal, who) as c:
        for api_name, data in attacks("adam", who):
            result = call(c, pw_portal, api_name, data)
            assert result["join"] == 200 and result["success"] is False, (who, api_name, result)
            message = result["error"] or ""
            # a chosen user outside the (empty) choices of a non-admin's page is refused by gradio before
            # the handler runs; everything else reaches the handler's role check
            assert "Keine Berechtigung" in message or "not in the list of choices" in message, (api_name, message)
            if data[:1] == [None] or api_name in ("admin_users", "admin_add_user"):
                assert "Keine Berechtigung" in message, (api_name, message)
        quiet = call(c, pw_portal, "admin_users_on_load", [])  # the page load: empty, no error
        assert quiet["success"] and quiet["output"][0]["data"] == [], quiet
    assert _snapshot(pw_portal) == before
    assert len(audit(pw_portal, "user_*")) == audit_before
    assert pw_portal.ctx.users.get("mallory") is None
    assert pw_portal.ctx.users.verify("adam", PASSWORD) is not None


def test_every_user_endpoint_is_covered():
    """A new user endpoint needs its attack here (the names come from the tab's wiring)."""
    assert {name for name, _ in attacks("adam", "sam")} == set(USER_ENDPOINTS)


def test_an_admin_over_http_gets_a_one_time_password_and_the_rules_hold(pw_portal, caplog):
    caplog.set_level(logging.DEBUG)
    name = f"neu{time.monotonic_ns() % 10**8}"
    with login(pw_portal, "adam") as c:
        session = f"users{time.monotonic_ns()}"
        table = call(c, pw_portal, "admin_users_on_load", [], session=session)
        assert "sam" in str(table["output"][0]["data"])
        made = call(c, pw_portal, "admin_add_user", [name, "staff", []], session=session)
        assert made["success"], made
        password = re.search(r"Startpasswort: (\S+)", made["output"][0]).group(1)
        # the admin's own account and the rules: refused, with the reason
        for api_name, data, reason in (("admin_set_user_role", ["adam", "staff"], "selbst"),
                                       ("admin_remove_user", ["adam", True], "eigene Konto")):
            result = call(c, pw_portal, api_name, data, session=session)
            assert result["success"] and reason in result["output"][0], result
        assert pw_portal.ctx.users.get("adam").role == "admin"
        with login(pw_portal, name, password) as newcomer:  # the new user logs in with it
            assert call(newcomer, pw_portal, "session", [])["success"]
        removed = call(c, pw_portal, "admin_remove_user", [name, True], session=session)
        assert removed["success"] and "gelöscht" in removed["output"][0], removed
    assert pw_portal.ctx.users.get(name) is None
    entries = audit(pw_portal, "user_*", actor="adam")
    assert {e["action"] for e in entries if e["target"] == name} == {"user_add", "user_remove"}
    assert password not in caplog.text and password not in str(entries)


def test_with_sso_login_an_admin_makes_no_passwords(hdr_portal):
    before = _snapshot(hdr_portal)
    with proxy(hdr_portal, "adam", "kiportal-admins") as admin:
        made = call(admin, hdr_portal, "admin_add_user", ["mallory", "staff", []])
        assert made["success"] and "SSO-Proxy" in made["output"][0], made
        assert "SSO-Proxy" in str(call(admin, hdr_portal, "admin_reset_user_password", [None])["output"])
    with proxy(hdr_portal, "sam") as staff:  # and staff is refused here too
        result = call(staff, hdr_portal, "admin_add_user", ["mallory", "admin", []])
        assert result["success"] is False and "Keine Berechtigung" in (result["error"] or "")
    assert _snapshot(hdr_portal) == before and hdr_portal.ctx.users.get("mallory") is None


def test_a_removed_accounts_chats_do_not_pass_to_a_new_account_of_the_same_name(pw_portal):
    """Found by an attacker's probe: an admin removed petra (personalamt) and later created a new
    petra (bauamt); the new account listed and opened the old one's chats, answers of a department
    it may not read. Removing an account now removes its chats and tool runs (assistant.user_data).
    All over HTTP: the admin's calls, both accounts' own password change, question and chat list."""
    from assistant.chats import ChatStore

    name, own = f"kim{time.monotonic_ns() % 10**8}", "Eigenes-Passwort-2026"
    chats = ChatStore(pw_portal.ctx.db)

    def created(admin, session) -> None:
        made = call(admin, pw_portal, "admin_add_user", [name, "staff", []], session=session)
        start = re.search(r"Startpasswort: (\S+)", made["output"][0]).group(1)
        with login(pw_portal, name, start) as c:
            changed = call(c, pw_portal, "change_password", [start, own, own])
            assert changed["success"] and "geändert" in changed["output"][0], changed

    def tab() -> str:
        return f"tab{time.monotonic_ns()}"

    with login(pw_portal, "adam") as admin:
        session = f"users{time.monotonic_ns()}"
        call(admin, pw_portal, "admin_users_on_load", [], session=session)
        created(admin, session)
        with login(pw_portal, name, own) as c:
            t = tab()
            assert call(c, pw_portal, "session", [], session=t)["success"]
            asked = call(c, pw_portal, "ask", ["Wann öffnet die Kantine im Rathaus?", None, "extraktiv", []], session=t)
            assert asked["success"] and "11:30" in str(asked["output"]), asked
        (old,) = chats.list_chats(name)
        call(admin, pw_portal, "admin_users_on_load", [], session=session)  # the new name among the choices
        removed = call(admin, pw_portal, "admin_remove_user", [name, True], session=session)
        assert removed["success"] and "gelöscht" in removed["output"][0], removed
        created(admin, session)
    with login(pw_portal, name, own) as c:
        t = tab()
        loaded = call(c, pw_portal, "session", [], session=t)
        assert loaded["success"] and "Kantine" not in str(loaded["output"]), loaded
        opened = call(c, pw_portal, "open_chat", [old["id"]], session=t)
        assert opened["success"] is False and "11:30" not in str(opened), opened
    assert chats.list_chats(name) == []
    (entry,) = [e for e in audit(pw_portal, "user_remove", actor="adam") if e["target"] == name]
    assert entry["detail"]["chats"] == 1 and entry["detail"]["tool_runs"] == 0


def test_an_admin_over_http_cannot_create_a_look_alike_of_an_existing_name(pw_portal):
    """Found by an attacker's probe: "аdam" (Cyrillic а) and a fullwidth "ａｄａｍ" were created and
    sat beside adam in the admin's list, looking the same."""
    with login(pw_portal, "adam") as c:
        session = f"users{time.monotonic_ns()}"
        call(c, pw_portal, "admin_users_on_load", [], session=session)
        for name in ("\u0430dam", "\uff41\uff44\uff41\uff4d", "p\u0435tra"):
            result = call(c, pw_portal, "admin_add_user", [name, "admin", []], session=session)
            assert result["success"] and "Ungültiger Benutzername" in result["output"][0], (name, result)
            assert pw_portal.ctx.users.get(name) is None
        made = call(c, pw_portal, "admin_add_user", ["jürgen.weiß", "staff", []], session=session)  # the positive twin
        assert made["success"] and "Startpasswort" in made["output"][0], made
        call(c, pw_portal, "admin_users_on_load", [], session=session)
        assert call(c, pw_portal, "admin_remove_user", ["jürgen.weiß", True], session=session)["success"]
    assert pw_portal.ctx.users.get("jürgen.weiß") is None
