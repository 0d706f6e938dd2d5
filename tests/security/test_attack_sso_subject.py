"""A name the identity provider handed on: header mode knew only the name, so the next person called
"tina" opened the previous tina's chats and kept her trainer role.

With ``auth.subject_header`` the proxy also sends the IdP's subject id. The first subject seen owns
the name; another one is refused, and nothing is changed, until an admin hands the name on (the
previous account removed and audited, its subject refused from then on). Sent as the proxy sends it,
over HTTP; the admin's step through the real CLI.
"""
from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from sec_client import audit, call, proxy

pytestmark = pytest.mark.integration

QUESTION = "Wann öffnet die Kantine im Rathaus?"


def _as(portal, user: str, subject: str | None):
    return proxy(portal, user, extra={"X-Remote-Sub": subject} if subject is not None else None)


def test_another_person_under_a_bound_name_is_refused_until_an_admin_hands_it_on(subject_portal):
    from assistant.chats import ChatStore
    from ui.cli import cli

    chats, users = ChatStore(subject_portal.ctx.db), subject_portal.ctx.users
    assert users.get("tina").role == "trainer"  # the admin gave the name a role
    tab = f"tab{time.monotonic_ns()}"
    with _as(subject_portal, "tina", "uuid-tina-1") as c:
        assert call(c, subject_portal, "session", [], session=tab)["success"]
        asked = call(c, subject_portal, "ask", [QUESTION, None, "extraktiv", []], session=tab)
        assert asked["success"] and "11:30" in str(asked["output"]), asked
    (old,) = chats.list_chats("tina")

    with _as(subject_portal, "tina", "uuid-tina-2") as c:  # another person under the name: nothing opens
        for _ in range(5):
            r = c.get("/")
            assert r.status_code == 403 and "anderen Person zugeordnet" in r.text
        assert call(c, subject_portal, "open_chat", [old["id"]])["join"] == 403
    assert chats.list_chats("tina") and users.get("tina").role == "trainer"  # nothing was changed
    (conflict,) = audit(subject_portal, "sso_subject_conflict", actor="tina")  # one row a minute, counted
    assert conflict["detail"]["attempts"] >= 6 and conflict["detail"]["reason"] == "subject_conflict"
    with _as(subject_portal, "tina", "uuid-tina-1") as c:  # the owner is not disturbed
        assert c.get("/").status_code == 200

    result = CliRunner().invoke(cli, ["--data-dir", str(subject_portal.home), "users", "handover", "tina", "--yes"])
    assert result.exit_code == 0 and "1 Chats" in result.output, result.output  # the admin hands the name on
    tab = f"tab{time.monotonic_ns()}"
    with _as(subject_portal, "tina", "uuid-tina-2") as c:
        loaded = call(c, subject_portal, "session", [], session=tab)
        assert loaded["success"] and "Kantine" not in str(loaded["output"]), loaded
        opened = call(c, subject_portal, "open_chat", [old["id"]], session=tab)
        assert opened["success"] is False and "11:30" not in str(opened), opened
        assert call(c, subject_portal, "trainer_plans", [None], session=tab)["success"] is False  # the old role is gone
    assert chats.list_chats("tina") == [] and users.get("tina") is None
    (handed,) = audit(subject_portal, "sso_handover")
    assert handed["target"] == "tina" and handed["detail"]["chats"] == 1 and handed["detail"]["role"] == "trainer"
    with _as(subject_portal, "tina", "uuid-tina-1") as c:  # the previous person's session at the proxy
        assert c.get("/").status_code == 403
    assert [e["detail"]["reason"] for e in audit(subject_portal, "header_auth_refused", actor="tina")] == [
        "subject_replaced"]


@pytest.mark.parametrize("subject", [None, "", "a b", "x" * 256, "ab\tcd"])
def test_without_a_valid_subject_nothing_opens(subject_portal, subject):
    with _as(subject_portal, "sam", subject) as c:
        assert c.get("/").status_code in (401, 403)
        assert call(c, subject_portal, "session", [])["join"] in (401, 403)


def test_an_account_prepared_with_its_owners_subject_is_refused_to_anyone_else(subject_portal):
    """An attacker's probe: an admin prepares "amelie" as trainer before her first sign-in; an insider who
    may choose her IdP user name signs in as "amelie" first and got the role. With --subject only the
    named subject owns the account."""
    from ui.cli import cli

    home = str(subject_portal.home)
    result = CliRunner().invoke(cli, ["--data-dir", home, "users", "add", "amelie", "--role", "trainer",
                                      "--password-stdin", "--subject", "uuid-amelie"],
                                input="Vorbereitet-Passwort-2026\n")
    assert result.exit_code == 0 and "SSO-Kennung: uuid-amelie" in result.output, result.output
    with _as(subject_portal, "amelie", "uuid-insider") as c:
        assert c.get("/").status_code == 403
        assert call(c, subject_portal, "trainer_plans", [None])["join"] == 403
    with _as(subject_portal, "amelie", "uuid-amelie") as c:
        assert c.get("/").status_code == 200
        assert call(c, subject_portal, "trainer_plans", [None])["success"]
    (added,) = [e for e in audit(subject_portal, "user_add") if e["target"] == "amelie"]
    assert added["detail"] == {"role": "trainer", "groups": [], "subject": "uuid-amelie"}
    bad = CliRunner().invoke(cli, ["--data-dir", home, "users", "sso-assign", "amelie", "uuid-other"])
    assert bad.exit_code != 0 and "gehört bereits einer anderen SSO-Kennung" in bad.output
    subject_portal.ctx.users.remove("amelie")
