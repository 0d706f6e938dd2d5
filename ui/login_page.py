"""The portal's own login page (password mode), and what a held-back login tells the person.

Why not gradio's login page: it answers every refusal with "Falsche Anmeldedaten" and empties the
name field, also when the password was never checked because the throttle held the try back (a
stranger guessing the name, colleagues behind one address at nine), so the owner typed the right
password again and again and dug the back-off deeper; its page had no title and spoke English to
screen readers. This page keeps the name, says "falsch" only for a checked wrong password, and
tells a held-back person how long to wait (HTTP 429 from :func:`ui.login.make_auth`). A hold-back
is decided before the password is checked, so the answer says nothing about the password.

The page is static apart from its texts and a nonce: no gradio code, a strict policy, and it posts
to gradio's ``login`` route like gradio's own form.
"""
from __future__ import annotations

import html
import json
import math
import secrets

WRONG = "Benutzername oder Passwort ist falsch."
PARALLEL = ("Gerade werden mehrere Anmeldungen mit diesem Namen oder von dieser Adresse geprüft. "
            "Bitte versuchen Sie es in einigen Sekunden erneut.")


def wait_words(wait_s: float) -> str:
    """A back-off's wait in German words: "1 Sekunde", "40 Sekunden", "15 Minuten"."""
    seconds = max(1, math.ceil(wait_s))
    if seconds < 90:
        return "1 Sekunde" if seconds == 1 else f"{seconds} Sekunden"
    return f"{math.ceil(seconds / 60)} Minuten"


def held_back_message(wait_s: float, reason: str) -> str:
    """What a held-back login says (German): how long to wait, never whether the password was right."""
    if reason == "parallel":
        return PARALLEL
    return (f"Zu viele fehlgeschlagene Anmeldungen. Bitte versuchen Sie es in {wait_words(wait_s)} erneut. "
            f"Ihr Passwort wurde dabei nicht geprüft.")


_STYLE = """
:root { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; }
body { margin: 0; padding: 0 .8rem; background: #f3f4f6; color: #1f2937; }
main { max-width: 26rem; margin: 8vh auto 2rem; background: #fff; border: 1px solid #d1d5db;
       border-radius: .6rem; padding: 1.6rem 1.8rem; }
h1 { font-size: 1.35rem; margin: 0 0 .3rem; }
.hint { color: #4b5563; margin: 0 0 1.2rem; }
label { display: block; font-weight: 600; margin: .9rem 0 .3rem; }
input { box-sizing: border-box; width: 100%; font: inherit; padding: .55rem .6rem; border: 1px solid #6b7280;
        border-radius: .35rem; }
button { margin-top: 1.3rem; width: 100%; font: inherit; font-weight: 600; padding: .6rem; border: 0;
         border-radius: .35rem; background: #1d4ed8; color: #fff; cursor: pointer; }
button:disabled { background: #6b7280; cursor: wait; }
#kp-login-message { min-height: 1.4em; margin: 1rem 0 0; color: #9a1c1c; font-weight: 600; }
input:focus-visible, button:focus-visible { outline: 3px solid #0b57d0; outline-offset: 2px; }
"""

_SCRIPT = """
const form = document.getElementById('kp-login');
const message = document.getElementById('kp-login-message');
const button = form.querySelector('button');
form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  message.textContent = '';
  button.disabled = true;
  button.textContent = 'Anmeldung läuft …';
  try {
    const response = await fetch(form.getAttribute('action'), { method: 'POST', body: new FormData(form),
                                                                credentials: 'same-origin' });
    if (response.ok) { window.location.reload(); return; }
    let detail = '';
    try { detail = (await response.json()).detail; } catch (e) { detail = ''; }
    if (response.status === 429) {
      // held back, the password unchecked: it stays, and the button waits out the back-off (a try
      // in the wait would count and double it)
      waitOut(Number(response.headers.get('Retry-After')) || 1,
              typeof detail === 'string' && detail ? detail : 'Bitte warten Sie kurz.');
      return;
    }
    message.textContent = response.status === 400 ? WRONG :
      `Die Anmeldung ist gerade nicht möglich (Fehler ${response.status}). Bitte versuchen Sie es später erneut.`;
    form.password.value = '';
  } catch (e) {
    message.textContent = 'Das Portal ist nicht erreichbar. Bitte prüfen Sie die Verbindung.';
  }
  ready();
});
function ready() {
  button.disabled = false;
  button.textContent = 'Anmelden';
  (form.username.value ? form.password : form.username).focus();
}
function waitOut(seconds, text) {
  message.textContent = text;
  let left = Math.ceil(seconds);
  const tick = () => {
    if (left <= 0) { message.textContent = 'Sie können sich jetzt wieder anmelden.'; ready(); return; }
    button.textContent = `Anmelden (in ${left} s)`;
    left -= 1;
    setTimeout(tick, 1000);
  };
  tick();
}
"""


def login_page(title: str, heading: str, hint: str) -> tuple[bytes, str]:
    """The page and its Content-Security-Policy (a fresh nonce for its one script and style).
    ``title`` (the browser tab's), ``heading`` and ``hint`` are plain text."""
    nonce = secrets.token_urlsafe(16)
    script = _SCRIPT.replace("WRONG", json.dumps(WRONG, ensure_ascii=False))
    body = f"""<!doctype html>
<html lang="de">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Anmelden – {html.escape(title)}</title>
<style nonce="{nonce}">{_STYLE}</style>
</head>
<body>
<main>
<h1>{html.escape(heading)}</h1>
<p class="hint">{html.escape(hint)}</p>
<form id="kp-login" action="login" method="post">
<label for="kp-login-name">Benutzername</label>
<input id="kp-login-name" name="username" type="text" autocomplete="username" autocapitalize="none"
       spellcheck="false" required autofocus>
<label for="kp-login-password">Passwort</label>
<input id="kp-login-password" name="password" type="password" autocomplete="current-password" required>
<p id="kp-login-message" role="alert" aria-live="assertive"></p>
<button type="submit">Anmelden</button>
</form>
</main>
<script nonce="{nonce}">{script}</script>
</body>
</html>
"""
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:; "
           f"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    return body.encode("utf-8"), csp
