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


def tab(name: str | None, session: str) -> gr.Request:
    return gr.Request(username=name, session_hash=session)


def test_the_page_gets_a_refusal_as_a_notice_for_its_own_tab_once(account, portal_ctx):
    """The button's call fails (an HTTP client sees the reason as the error) without an error box in the
    page; the reason is then shown beside the button, to the tab that was refused and only once."""
    with pytest.raises(gr.Error, match="stimmen nicht überein") as refused:
        account.change_in_page(tab("anna", "t1"), PASSWORD, NEW, NEW + "x")
    assert refused.value.visible is False  # no box: gradio piled them up and marked every field „Fehler“
    assert account.refusal_notice(tab("bernd", "t1")) == ""  # another user with the same tab id
    assert account.refusal_notice(tab("anna", "t2")) == ""  # another tab of anna's
    assert account.refusal_notice(tab("anna", "t1")) == (
        "**Passwort nicht geändert:** Die beiden Eingaben des neuen Passworts stimmen nicht überein.")
    assert account.refusal_notice(tab("anna", "t1")) == ""  # once
    assert account.refusal_notice(tab(None, "t1")) == ""
    assert portal_ctx.users.verify("anna", PASSWORD)


def test_the_page_shows_the_latest_refusal_and_empties_the_fields_on_success(account, portal_ctx):
    for current in ("falsch-1-falsch", "falsch-2-falsch"):
        with pytest.raises(gr.Error, match="bisherige Passwort stimmt nicht"):
            account.change_in_page(tab("anna", "t1"), current, NEW, NEW)
    assert "stimmt nicht" in account.refusal_notice(tab("anna", "t1"))
    done, *fields = account.change_in_page(tab("anna", "t1"), PASSWORD, NEW, NEW)
    assert "abgemeldet" in done and fields == ["", "", ""]  # no password goes back to the page
    assert account.refusal_notice(tab("anna", "t1")) == ""
    assert portal_ctx.users.verify("anna", NEW)


def test_refusals_nobody_asks_for_do_not_pile_up(account):
    """A script calling the endpoint never asks for the page's notice: the store keeps the newest only."""
    from ui.account_tab import REFUSALS_KEPT

    for n in range(REFUSALS_KEPT + 20):
        with pytest.raises(gr.Error):
            account.change_in_page(tab("anna", f"t{n}"), PASSWORD, "kurz", "kurz")
    assert len(account._refusals) == REFUSALS_KEPT
    assert account.refusal_notice(tab("anna", "t0")) == ""
    assert "zu kurz" in account.refusal_notice(tab("anna", f"t{REFUSALS_KEPT + 19}"))


def test_the_page_call_without_a_user_is_refused_as_before(account):
    with pytest.raises(PermissionDenied):
        account.change_in_page(tab(None, "t1"), PASSWORD, NEW, NEW)
