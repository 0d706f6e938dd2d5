"""„Mein Konto“ over HTTP: the password change has no door to anyone else's password.

The endpoint takes (current, new, repeat) and changes the password of the user whose session
calls it; there is no name to forge. Anonymous calls are refused at the door, another user's
password cannot be set even knowing it, and a changed password ends the caller's session.
"""
from __future__ import annotations

import pytest

from sec_client import PASSWORD, audit, call, http, login

NEW = "Neu-Passwort-2027-X"


@pytest.fixture
def kai(pw_portal):
    """A user of this test alone (the suite's users are shared by its modules)."""
    users = pw_portal.ctx.users
    if users.get("kai") is not None:
        users.remove("kai")
    users.add("kai", PASSWORD, "staff")
    yield "kai"
    users.remove("kai")


def test_anonymous_calls_are_refused(pw_portal, kai):
    with http(pw_portal) as anonymous:
        result = call(anonymous, pw_portal, "change_password", [PASSWORD, NEW, NEW])
    assert result["join"] in (401, 403) or result["success"] is False, result
    assert pw_portal.ctx.users.verify("kai", PASSWORD)


def test_another_user_cannot_set_kais_password(pw_portal, kai):
    """bernd knows kai's password and sends it as "current": only bernd's own password is checked."""
    with login(pw_portal, "bernd") as bernd:
        result = call(bernd, pw_portal, "change_password", [PASSWORD + "-kai", NEW, NEW])
        assert result["success"] is False and "stimmt nicht" in result["error"]
    assert pw_portal.ctx.users.verify("kai", PASSWORD) and pw_portal.ctx.users.verify("bernd", PASSWORD)


def test_a_change_ends_the_session_that_made_it(pw_portal, kai):
    with login(pw_portal, "kai") as c:
        result = call(c, pw_portal, "change_password", [PASSWORD, NEW, NEW])
        assert result["success"], result
        assert "abgemeldet" in result["output"][0]
        assert result["output"][1:] == ["", "", ""]  # no password is sent back to the page
        after = call(c, pw_portal, "session", [])
        assert after["join"] in (401, 403) or after["success"] is False, after
    assert pw_portal.ctx.users.verify("kai", NEW) and not pw_portal.ctx.users.verify("kai", PASSWORD)
    with login(pw_portal, "kai", NEW) as again:
        assert call(again, pw_portal, "session", [])["success"]
    assert [e["actor"] for e in audit(pw_portal, "password_changed")][:1] == ["kai"]


def test_a_start_password_opens_nothing_but_its_own_change(pw_portal):
    """An admin's start password (which the admin, and whoever passed it on, also knows) opens the
    page and the password change, nothing else, over HTTP as in the page; the owner's own password
    opens the rest."""
    from assistant.user_admin import UserAdmin

    app = pw_portal.ctx.app
    admin = UserAdmin(app.users, app.departments, app.audit, "password")
    if app.users.get("neo") is not None:
        app.users.remove("neo")
    _, start = admin.create("neo", "staff", [], "adam")
    try:
        with login(pw_portal, "neo", start) as c:
            page = call(c, pw_portal, "session", [])
            assert page["success"] and "Startpasswort" in str(page["output"][0])
            assert page["output"][1]["choices"] == [] and page["output"][2]["choices"] == []  # no models, no collections
            for api_name, data in (("ask", ["Welche Zonen hat das Ampelsystem?", None, "extraktiv", []]),
                                   ("export_chat", [None]), ("tool_history", [])):
                refused = call(c, pw_portal, api_name, data)
                assert refused["success"] is False and "Startpasswort" in (refused["error"] or ""), (api_name, refused)
            assert call(c, pw_portal, "change_password", [start, NEW, NEW])["success"]
        with login(pw_portal, "neo", NEW) as c:
            asked = call(c, pw_portal, "ask", ["Welche Zonen hat das Ampelsystem?", None, "extraktiv", []])
            assert asked["success"], asked
    finally:
        app.users.remove("neo")
