"""Attack helpers for the security suite: raw HTTP clients and gradio's queue protocol by hand.

(A module of its own, not conftest.py: two conftest modules make ``from conftest import``
ambiguous when tests/ui runs in the same session.)
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx

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


# -- clients -------------------------------------------------------------------------------
def http(portal: Portal, *, source: str = "127.0.0.1", headers: dict | None = None) -> httpx.Client:
    """A raw HTTP client connecting from ``source`` (127.0.0.2 = the trusted proxy)."""
    return httpx.Client(base_url=portal.url, follow_redirects=False, timeout=60, headers=headers or {},
                        transport=httpx.HTTPTransport(local_address=source))


@contextmanager
def login(portal: Portal, user: str, password: str = PASSWORD, **kwargs) -> Iterator[httpx.Client]:
    """A raw HTTP client logged in through gradio's /login (the session cookie in its jar)."""
    with http(portal, **kwargs) as c:
        r = c.post("login", data={"username": user, "password": password})
        assert r.status_code == 200, r.text
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


def call(c: httpx.Client, portal: Portal, api_name: str, data: list, *, timeout_s: float = 120,
         session: str | None = None) -> dict:
    """One event through gradio's queue, as the browser sends it: join, then read the SSE stream.

    ``session`` is the browser tab's session hash (component state, e.g. dropdown choices loaded
    for the user, lives there). Returns {"join": status code, "join_body": …, "output": final
    output or None, "error": message or None, "success": …}."""
    session = session or f"sec{time.monotonic_ns()}"
    r = c.post("gradio_api/queue/join", json={"data": data, "fn_index": portal.fn_index(api_name),
                                               "session_hash": session, "event_data": None, "trigger_id": None})
    out = {"join": r.status_code, "join_body": r.text, "output": None, "error": None, "success": None}
    if r.status_code != 200:
        return out
    with c.stream("GET", "gradio_api/queue/data", params={"session_hash": session}, timeout=timeout_s) as s:
        for line in s.iter_lines():
            if not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            if msg.get("msg") == "process_completed":
                out["success"] = msg.get("success")
                out["output"] = (msg.get("output") or {}).get("data")
                out["error"] = (msg.get("output") or {}).get("error")
                return out
    return out


def upload(c: httpx.Client, name: str, content: bytes) -> httpx.Response:
    return c.post("gradio_api/upload", files=[("files", (name, content, "text/plain"))])


def file_value(path: str) -> dict:
    return {"path": path, "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}


def admin_session(c: httpx.Client, portal: Portal) -> str:
    """A tab session in which the admin area has loaded its collection choices (as the page does)."""
    session = f"adm{time.monotonic_ns()}"
    loaded = call(c, portal, "admin_collection_choices", [], session=session)
    assert loaded["success"], loaded
    return session


def audit(portal: Portal, action: str, **filters) -> list[dict]:
    """Audit entries (newest first) with ``detail`` decoded."""
    return [{**e, "detail": json.loads(e["detail"] or "{}")} for e in portal.ctx.audit.entries(action=action, **filters)]
