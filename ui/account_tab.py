"""„Mein Konto“: every signed-in user changes their own password (password login only).

Why: an admin hands out a generated start password (Verwaltung > Benutzer), and only its owner
should know the one they keep. The form names no user: the handler changes the password of the
user signed in, checked on the server. The current password is checked under the login's own
throttle (a borrowed session must not become a way to guess the password; the per-name counter is
the login's), every attempt is audited, and a changed password ends every session of the user,
this one too (the session's stamp changes): the page signs out and the user signs in anew.
"""
from __future__ import annotations

import logging

import gradio as gr

from assistant.users import new_password_problem
from ui.chat_tab import shown_as_error
from ui.context import PortalContext
from ui.handlers import UserError
from ui.login import LoginThrottle

log = logging.getLogger(__name__)

#: the changed password has ended every session of the user already, so the page only reloads into
#: the login form. Not 'logout': that ends the user's sessions anew, and would end one the user just
#: opened with the new password in another tab of the same browser within the 2.5 s.
SIGN_OUT_JS = "() => { setTimeout(() => { window.location.href = './'; }, 2500); }"


class AccountUI:
    def __init__(self, ctx: PortalContext, throttle: LoginThrottle | None = None) -> None:
        self.ctx = ctx
        self.throttle = throttle or LoginThrottle(store=ctx.app.login_failures)

    def change_password(self, request: gr.Request | None, current: str, new: str, repeat: str) -> str:
        """Change the signed-in user's own password; returns the German confirmation."""
        user = self.ctx.require(request, "staff", start_password_ok=True)  # replacing it is what it is for
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
        # a changed password leaves no trace in the page (a refused one stays, to be corrected)
        return account.change_password(request, cur, nw, rep), "", "", ""

    change.click(shown_as_error(change_password), inputs=[current, new, repeat],
                 outputs=[result, current, new, repeat], api_name="change_password",
                 concurrency_limit=4).success(None, js=SIGN_OUT_JS)
