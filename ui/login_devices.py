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
import time
from http.cookies import SimpleCookie

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


class DeviceCookies:
    """Issue and check the signed per-name device cookie (valid for :data:`KNOWN_S`, like a known address)."""

    def __init__(self, secret: bytes, ttl_s: float = KNOWN_S) -> None:
        self.signer = LinkSigner(secret, int(ttl_s), purpose="login-device")
        self.ttl_s = int(ttl_s)

    @staticmethod
    def cookie_name(name: str) -> str:
        """One cookie per name (several people may share a browser); the name itself is not in it."""
        return PREFIX + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]

    def issue(self, name: str, *, now: float | None = None) -> tuple[str, str]:
        return self.cookie_name(name), self.signer.sign("device", name, now=now)

    def vouches(self, cookies: dict[str, str], name: str, *, now: float | None = None) -> bool:
        """Whether the request's cookies hold a valid device cookie for ``name``."""
        return bool(name) and self.signer.verify(cookies.get(self.cookie_name(name)), "device", name,
                                                 now=now if now is not None else time.time())

    def header(self, cookie: tuple[str, str]) -> bytes:
        """The Set-Cookie value (SameSite is added by the guard, as for every cookie)."""
        name, value = cookie
        return f"{name}={value}; Max-Age={self.ttl_s}; Path=/; HttpOnly".encode("latin-1")


def device_cookies_of(cookie_header: str) -> dict[str, str]:
    """The device cookies in a Cookie header (nothing else of it); a malformed header holds none."""
    jar = SimpleCookie()
    try:
        jar.load(cookie_header or "")
    except Exception:
        return {}
    return {k: v.value for k, v in jar.items() if k.startswith(PREFIX)}
