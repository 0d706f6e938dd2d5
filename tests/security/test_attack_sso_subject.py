"""A name the identity provider handed on: header mode knew only the name, so the next person called
"tina" opened the previous tina's chats and kept her trainer role.

With ``auth.subject_header`` the proxy also sends the IdP's subject id. The first subject seen owns
the name; a second one is the name handed on: the previous account (chats, role) is removed and
audited, and the replaced subject is refused from then on. Sent as the proxy sends it, over HTTP.
"""
from __future__ import annotations

import time

import pytest

from sec_client import audit, call, proxy

pytestmark = pytest.mark.integration

QUESTION = "Wann öffnet die Kantine im Rathaus?"


def _as(portal, user: str, subject: str | None):
    return proxy(portal, user, extra={"X-Remote-Sub": subject} if subject is not None else None)


def test_a_handed_on_name_starts_empty_and_the_previous_subject_is_refused(subject_portal):
    from assistant.chats import ChatStore

    chats, users = ChatStore(subject_portal.ctx.db), subject_portal.ctx.users
    assert users.get("tina").role == "trainer"  # the admin gave the name a role
    tab = f"tab{time.monotonic_ns()}"
    with _as(subject_portal, "tina", "uuid-tina-1") as c:
        assert call(c, subject_portal, "session", [], session=tab)["success"]
        asked = call(c, subject_portal, "ask", [QUESTION, None, "extraktiv", []], session=tab)
        assert asked["success"] and "11:30" in str(asked["output"]), asked
        with _as(subject_portal, "tina", "uuid-tina-1") as again:  # the same person again: nothing changes
            assert again.get("/").status_code == 200
    (old,) = chats.list_chats("tina")
    assert audit(subject_portal, "sso_subject_changed") == []

    tab = f"tab{time.monotonic_ns()}"
    with _as(subject_portal, "tina", "uuid-tina-2") as c:  # the IdP gave "tina" to someone else
        loaded = call(c, subject_portal, "session", [], session=tab)
        assert loaded["success"] and "Kantine" not in str(loaded["output"]), loaded
        opened = call(c, subject_portal, "open_chat", [old["id"]], session=tab)
        assert opened["success"] is False and "11:30" not in str(opened), opened
        refused = call(c, subject_portal, "trainer_plans", [None], session=tab)  # the old role is gone
        assert refused["success"] is False, refused
    assert chats.list_chats("tina") == [] and users.get("tina") is None
    (changed,) = audit(subject_portal, "sso_subject_changed")
    assert changed["actor"] == "tina" and changed["detail"]["chats"] == 1 and changed["detail"]["role"] == "trainer"

    with _as(subject_portal, "tina", "uuid-tina-1") as c:  # the previous person's session at the proxy
        r = c.get("/")
        assert r.status_code == 403 and "anderen Person" in r.text
        assert call(c, subject_portal, "session", [])["join"] == 403
    reasons = [e["detail"]["reason"] for e in audit(subject_portal, "header_auth_refused", actor="tina")]
    assert reasons and set(reasons) == {"subject_replaced"}


@pytest.mark.parametrize("subject", [None, "", "a b", "x" * 256, "ab\tcd"])
def test_without_a_valid_subject_nothing_opens(subject_portal, subject):
    with _as(subject_portal, "sam", subject) as c:
        assert c.get("/").status_code in (401, 403)
        assert call(c, subject_portal, "session", [])["join"] in (401, 403)
