"""Device cookies: a browser its owner signed in with is not held back by strangers guessing the name.

The name's own counter slows a guess spread over many addresses; it holds back only addresses the
name has not logged in from (``login_known``). An attacker's probe showed the gap: an owner at a new
address (home office, a changed IP, the first login) was kept out for good by strangers polling the
name from rotating addresses, since the one try per minute the name lets through was nearly always
theirs. After a successful login the browser now gets a signed cookie bound to the name (OWASP's
"device cookie"); a try that presents it is treated like one from a known address, so only its
address's and pair's own counters hold it. The cookie proves nothing else: it is no session, and
strangers without it are slowed as before. A new browser at a new address still waits with them.
"""
from __future__ import annotations

import contextvars
import hashlib
import hmac
import time

from assistant.links import LinkSigner
from assistant.login_failures import KNOWN_S

PREFIX = "kp-device-"

#: The cookies of the current login request (set by ui.http_guard): gradio's ``auth`` callable
#: receives only name and password.
request_cookies: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("kiportal_login_cookies", default={})
#: Cookies a successful login issues, for the guard to send with the login's answer (a list the
#: guard sets per login request; None elsewhere).
issued: contextvars.ContextVar[list[tuple[str, str]] | None] = contextvars.ContextVar("kiportal_login_issued",
                                                                                       default=None)


#: Failed password checks one device cookie may carry (in the window of the login counters) before
#: it vouches no more: a copied cookie is no way round the name's counter (OWASP locks it out too).
FAILURES_FREE = 3


class DeviceCookies:
    """Issue and check the signed per-name device cookie (valid for :data:`KNOWN_S`, like a known address).

    Bound to the name and to the account's credentials stamp (``UserStore.stamp``: the password hash,
    role and creation time), so a new password, a role change or an account removed and made anew
    ends every cookie of the name. Failed checks made with a cookie are counted under its signature
    in the login counters (``store``); after :data:`FAILURES_FREE` it vouches no more."""

    def __init__(self, secret: bytes, users, store, *, ttl_s: float = KNOWN_S, window_s: float = 3600.0) -> None:
        self.signer = LinkSigner(secret, int(ttl_s), purpose="login-device")
        self._name_key = hashlib.sha256(b"kiportal-device-name|" + secret).digest()
        self.users = users
        self.store = store
        self.ttl_s = int(ttl_s)
        self.window_s = window_s

    def cookie_name(self, name: str) -> str:
        """One cookie per name (several people may share a browser), keyed with the secret: the cookie
        names on a shared PC do not tell, by a dictionary of names, who signed in there."""
        return PREFIX + hmac.new(self._name_key, name.encode("utf-8"), hashlib.sha256).hexdigest()[:16]

    def issue(self, name: str, *, now: float | None = None) -> tuple[str, str]:
        return self.cookie_name(name), self.signer.sign(f"device\x1f{self.users.stamp(name)}", name, now=now)

    def token(self, cookies: dict[str, str], name: str, *, now: float | None = None) -> str | None:
        """The request's valid device cookie for ``name`` (None: none, forged, expired, of older
        credentials, or spent on failed checks). Never raises on crafted values."""
        value = cookies.get(self.cookie_name(name)) if name else None
        stamp = self.users.stamp(name) if value else None
        now = now if now is not None else time.time()
        if stamp is None or not self.signer.verify(value, f"device\x1f{stamp}", name, now=now):
            return None
        failures, last = self.store.get([self.failure_key(value)]).get(self.failure_key(value), (0, 0.0))
        return None if failures >= FAILURES_FREE and now - last <= self.window_s else value

    @staticmethod
    def failure_key(token: str) -> str:
        return "d:" + token.rsplit(".", 1)[-1][:24]

    def failed(self, token: str, *, now: float | None = None) -> None:
        """A wrong password came with this cookie."""
        self.store.add([self.failure_key(token)], now if now is not None else time.time(), self.window_s)


def cookie_header(cookie: tuple[str, str], *, secure: bool) -> bytes:
    """The Set-Cookie value (SameSite is added by the guard, as for every cookie); ``secure`` when the
    browser reached the portal over HTTPS (a Secure cookie over plain http would not be kept)."""
    name, value = cookie
    return (f"{name}={value}; Max-Age={int(KNOWN_S)}; Path=/; HttpOnly" + ("; Secure" if secure else "")).encode(
        "latin-1")


def device_cookies_of(cookie_header_value: str) -> dict[str, str]:
    """The device cookies in a Cookie header (nothing else of it). Starlette's lenient parser, as gradio
    reads its own cookies: one malformed cookie beside them does not hide them."""
    from starlette.requests import cookie_parser

    return {k: v for k, v in cookie_parser(cookie_header_value or "").items() if k.startswith(PREFIX)}
