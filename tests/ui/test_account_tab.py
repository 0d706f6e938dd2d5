"""„Mein Konto“: a user changes their own password; the handler against the real app database."""
from __future__ import annotations

import gradio as gr
import pytest
from portal_world import PASSWORD

from ui.account_tab import AccountUI
from ui.handlers import UserError
from ui.login import LoginThrottle, MemoryLoginFailures
from ui.security import PermissionDenied

NEW = "Neues-Passwort-2027"


def req(name: str | None) -> gr.Request:
    return gr.Request(username=name)


@pytest.fixture
def account(portal_ctx):
    return AccountUI(portal_ctx, LoginThrottle(store=MemoryLoginFailures()))


def test_a_user_changes_their_own_password_and_every_session_ends(account, portal_ctx):
    users = portal_ctx.users
    stamp = users.stamp("anna")
    assert "abgemeldet" in account.change_password(req("anna"), PASSWORD, NEW, NEW)
    assert users.verify("anna", NEW) and not users.verify("anna", PASSWORD)
    assert users.stamp("anna") != stamp  # the stamp every session of anna carries: all of them end
    assert users.verify("bernd", PASSWORD)  # nobody else's password changed
    changed = portal_ctx.audit.entries(action="password_changed")
    assert [(e["actor"], e["target"]) for e in changed] == [("anna", "anna")]
    assert NEW not in str(portal_ctx.audit.entries()) and PASSWORD not in str(portal_ctx.audit.entries())


@pytest.mark.parametrize("current, new, repeat, message", [
    ("falsch-falsch", NEW, NEW, "bisherige Passwort stimmt nicht"),
    (PASSWORD, NEW, NEW + "x", "stimmen nicht überein"),
    (PASSWORD, "kurz", "kurz", "zu kurz"),
])
def test_refused_changes_change_nothing(account, portal_ctx, current, new, repeat, message):
    with pytest.raises(UserError, match=message):
        account.change_password(req("anna"), current, new, repeat)
    assert portal_ctx.users.verify("anna", PASSWORD)


def test_guessing_the_current_password_is_held_back(account, portal_ctx):
    """A borrowed session must not become a way to guess the password: the login's back-off."""
    for _ in range(3):
        with pytest.raises(UserError, match="stimmt nicht"):
            account.change_password(req("anna"), "geraten-123", NEW, NEW)
    with pytest.raises(UserError, match="Zu viele falsche Versuche"):
        account.change_password(req("anna"), PASSWORD, NEW, NEW)  # even the right one waits now
    assert portal_ctx.users.verify("anna", PASSWORD)
    assert len(portal_ctx.audit.entries(action="password_change_failed")) == 3
    assert portal_ctx.audit.entries(action="password_change_blocked")


def test_no_user_no_change(account):
    with pytest.raises(PermissionDenied):
        account.change_password(req(None), PASSWORD, NEW, NEW)
