"""„Mein Konto“: every signed-in user changes their own password (password login only).

Why: an admin hands out a generated start password (Verwaltung > Benutzer), and only its owner
should know the one they keep. The form names no user: the handler changes the password of the
user signed in, checked on the server. The current password is checked under the login's own
throttle (a borrowed session must not become a way to guess the password; the per-name counter is
the login's), every attempt is audited, and a changed password ends every session of the user,
this one too (the session's stamp changes): the page signs out and the user signs in anew.

A refused change stays a failed call for whoever calls the endpoint (its German reason as the error),
but the page shows no error for it: gradio marked every output of a failed event "Fehler", the three
password fields among them, each to be closed by hand, and piled the error boxes up (a browser
review). The page says why beside the button instead, and the fields keep what was typed.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict

import gradio as gr

from assistant.escaping import md_esc
from assistant.users import new_password_problem
from ui.context import PortalContext
from ui.handlers import UserError
from ui.login import LoginThrottle
from ui.security import resolve_user

log = logging.getLogger(__name__)

#: the changed password has ended every session of the user already, so the page only reloads into
#: the login form. Not 'logout': that ends the user's sessions anew, and would end one the user just
#: opened with the new password in another tab of the same browser within the 2.5 s.
SIGN_OUT_JS = "() => { setTimeout(() => { window.location.href = './'; }, 2500); }"
#: the notice beside the button while the server checks: a refusal answered with the same words twice
#: in a row is seen to be answered anew (a fourth try seemed to do nothing, a browser review)
CHECKING = "Wird geprüft …"
#: refusals kept for the page's notice: a caller that never asks for the notice (a script calling the
#: endpoint) must not grow the store without end
REFUSALS_KEPT = 256


def refusal_notice_text(reason: str) -> str:
    """A refused change as the page says it beside the button."""
    return f"**Passwort nicht geändert:** {md_esc(reason)}"


class AccountUI:
    def __init__(self, ctx: PortalContext, throttle: LoginThrottle | None = None) -> None:
        self.ctx = ctx
        self.throttle = throttle or LoginThrottle(store=ctx.app.login_failures)
        self._refusals: OrderedDict[tuple[str, str], str] = OrderedDict()  # (user, tab) -> last reason
        self._refusals_lock = threading.Lock()

    def change_password(self, request: gr.Request | None, current: str, new: str, repeat: str) -> str:
        """Change the signed-in user's own password; returns the German confirmation."""
        user = self.ctx.require(request, "staff", start_password_ok=True)  # replacing it is what it is for
        return self._change(user, current, new, repeat)

    def change_in_page(self, request: gr.Request | None, current: str, new: str,
                       repeat: str) -> tuple[str, str, str, str]:
        """The button: the confirmation and the three fields emptied (a changed password leaves no
        trace in the page). A refusal fails the call with its reason, for the page without an error
        box or marks (the fields keep what was typed); :meth:`refusal_notice` then shows the reason."""
        user = self.ctx.require(request, "staff", start_password_ok=True)
        try:
            return self._change(user, current, new, repeat), "", "", ""
        except UserError as exc:
            self._keep_refusal(user.name, request, str(exc))
            raise gr.Error(str(exc), visible=False, print_exception=False) from None

    def refusal_notice(self, request: gr.Request | None) -> str:
        """After a failed change: the reason beside the button, for this user's tab only, once. Empty
        when the call failed otherwise (its own error box says why: a session that ended, an internal
        error)."""
        user = resolve_user(request, self.ctx.app.settings, self.ctx.users, start_password_ok=True)
        if user is None:
            return ""
        with self._refusals_lock:
            reason = self._refusals.pop((user.name, _tab(request)), None)
        return refusal_notice_text(reason) if reason else ""

    def _keep_refusal(self, name: str, request: gr.Request | None, reason: str) -> None:
        with self._refusals_lock:
            self._refusals.pop((name, _tab(request)), None)
            self._refusals[(name, _tab(request))] = reason
            while len(self._refusals) > REFUSALS_KEPT:
                self._refusals.popitem(last=False)

    def _change(self, user, current: str, new: str, repeat: str) -> str:
        if self.ctx.app.settings.auth.mode != "password":
            raise UserError("Die Anmeldung läuft nicht über Passwörter dieses Portals; ändern Sie Ihr Passwort "
                            "dort, wo Sie sich anmelden.")
        current, new, repeat = current or "", new or "", repeat or ""
        problem = new_password_problem(user.name, current, new, repeat)
        if problem:
            raise UserError(problem)
        wait, _ = self.throttle.begin(user.name, "")  # counts a held-back attempt itself
        if wait > 0:
            self.ctx.audit.record("password_change_blocked", user.name, user.name, {"wait_s": round(wait, 1)})
            raise UserError(f"Zu viele falsche Versuche. Bitte warten Sie {int(wait) + 1} Sekunden.")
        try:
            matches = self.ctx.users.password_matches(user.name, current)
        except BaseException:  # a broken check counts as a failed one (begin() counted it as running)
            self.throttle.failed(user.name, "")
            raise
        if not matches:
            self.throttle.failed(user.name, "")
            self.ctx.audit.record("password_change_failed", user.name, user.name)
            raise UserError("Das bisherige Passwort stimmt nicht.")
        self.throttle.succeeded(user.name, "")
        self.ctx.users.set_password(user.name, new)
        self.ctx.audit.record("password_changed", user.name, user.name)
        log.info("user %s changed their password", user.name)
        return "Ihr Passwort wurde geändert. Sie werden abgemeldet; bitte melden Sie sich mit dem neuen Passwort an."


def _tab(request: gr.Request | None) -> str:
    return str(getattr(request, "session_hash", None) or "")


def build(ctx: PortalContext) -> None:
    """The tab's content (the portal adds the „Mein Konto“ tab for every role, with password login only)."""
    account = AccountUI(ctx)
    gr.Markdown("### Passwort ändern\nMindestens 8 Zeichen, nicht Ihr Benutzername. Nach der Änderung werden Sie "
                "überall abgemeldet, auch in anderen Browsern.")
    with gr.Column(elem_id="kp-account"):
        current = gr.Textbox(label="Bisheriges Passwort", type="password", max_lines=1, elem_id="kp-pw-current")
        new = gr.Textbox(label="Neues Passwort", type="password", max_lines=1, elem_id="kp-pw-new")
        repeat = gr.Textbox(label="Neues Passwort wiederholen", type="password", max_lines=1, elem_id="kp-pw-repeat")
        change = gr.Button("Passwort ändern", variant="primary", elem_id="kp-pw-change")
        result = gr.Markdown("", elem_id="kp-pw-result")

    def change_password(cur: str, nw: str, rep: str, request: gr.Request):
        return account.change_in_page(request, cur, nw, rep)

    def refusal_notice(request: gr.Request):
        return account.refusal_notice(request)

    # every click says "Wird geprüft …" at once, in the browser; the check itself shows no progress marks on
    # the fields (a failed event's are "Fehler") and takes one click at a time (a double click is one try)
    change.click(None, outputs=[result], js=f"() => {CHECKING!r}", queue=False, show_progress="hidden")
    checked = change.click(change_password, inputs=[current, new, repeat], outputs=[result, current, new, repeat],
                           api_name="change_password", concurrency_limit=4, show_progress="hidden")
    checked.success(None, js=SIGN_OUT_JS)
    checked.failure(refusal_notice, outputs=[result], api_visibility="private", concurrency_limit=None,
                    show_progress="hidden")
