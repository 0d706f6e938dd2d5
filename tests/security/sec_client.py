"""Attack helpers for the security suite: raw HTTP clients and gradio's queue protocol by hand.

(A module of its own, not conftest.py: two conftest modules make ``from conftest import``
ambiguous when tests/ui runs in the same session.)
"""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import httpx

import portal_http
from portal_http import admin_session, call, file_value, http, upload  # noqa: F401  (this suite's API)

PASSWORD = "Sicher-Test-2026!"
PROXY = "127.0.0.2"  # the reverse proxy's address (any 127/8 address reaches the loopback portal)
PROXY_SECRET = "proxy-geheim-0815"


@dataclass
class Portal:
    url: str
    ctx: object
    server: object
    home: Path

    def fn_index(self, api_name: str) -> int:
        for index, fn in self.server.demo.fns.items():
            if fn.api_name == api_name:
                return index
        raise KeyError(api_name)


# -- clients: tests/portal_http.py, with this suite's password as the default -------------------
@contextmanager
def login(portal: Portal, user: str, password: str = PASSWORD, **kwargs) -> Iterator[httpx.Client]:
    """A raw HTTP client logged in through gradio's /login (the session cookie in its jar)."""
    with portal_http.login(portal, user, password, **kwargs) as c:
        yield c


def proxy(portal: Portal, user: str | None, groups: str = "", *, secret: str | None = PROXY_SECRET,
          source: str = PROXY, extra: dict | None = None) -> httpx.Client:
    """What the SSO proxy sends (or an attacker pretending to be it)."""
    headers = dict(extra or {})
    if user is not None:
        headers["X-Remote-User"] = user
    if groups:
        headers["X-Remote-Groups"] = groups
    if secret is not None:
        headers["X-Kiportal-Proxy-Secret"] = secret
    return http(portal, source=source, headers=headers)


def audit(portal: Portal, action: str, **filters) -> list[dict]:
    """Audit entries (newest first) with ``detail`` decoded."""
    return [{**e, "detail": json.loads(e["detail"] or "{}")} for e in portal.ctx.audit.entries(action=action, **filters)]


# -- the login throttle's probes: one client address each, through the trusted proxy -------------
def attempt(portal, address: str, name: str, password: str) -> int:
    """The status of one login through gradio's /login from ``address`` (X-Forwarded-For, sent by the
    proxy the portal trusts): 200 logged in, 400 wrong password, 429 held back (password not checked)."""
    with http(portal, source=PROXY, headers={"X-Forwarded-For": address}) as c:
        return c.post("login", data={"username": name, "password": password}).status_code


def burst(n: int, one: Callable[[int], object]) -> list:
    """``one(i)`` in ``n`` threads released at once; their results."""
    results, start = [None] * n, threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        results[i] = one(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
