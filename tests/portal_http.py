"""Talking to a running portal over HTTP the way a browser does: login, gradio's queue protocol
by hand, uploads. Shared by the security suite (tests/security/sec_client.py) and the cluster
tests (tests/cluster/), which drive portals in other processes.

A portal here is anything with ``url`` and ``fn_index(api_name)``: an in-process portal reads
the index from its gradio Blocks, a portal in another process from its ``/config``.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx


def http(portal, *, source: str = "127.0.0.1", headers: dict | None = None) -> httpx.Client:
    """A raw HTTP client connecting from ``source`` (127.0.0.2 = the trusted proxy)."""
    return httpx.Client(base_url=portal.url, follow_redirects=False, timeout=60, headers=headers or {},
                        transport=httpx.HTTPTransport(local_address=source))


@contextmanager
def login(portal, user: str, password: str, **kwargs) -> Iterator[httpx.Client]:
    """A raw HTTP client logged in through gradio's /login (the session cookie in its jar)."""
    with http(portal, **kwargs) as c:
        r = c.post("login", data={"username": user, "password": password})
        assert r.status_code == 200, r.text
        yield c


def call(c: httpx.Client, portal, api_name: str, data: list, *, timeout_s: float = 120,
         session: str | None = None) -> dict:
    """One event through gradio's queue, as the browser sends it: join, then read the SSE stream.

    ``session`` is the browser tab's session hash (component state, e.g. dropdown choices loaded
    for the user, lives there). Returns {"join": status code, "join_body": …, "output": final
    output or None, "error": message or None, "title": the error's heading, "success": …}."""
    session = session or f"sec{time.monotonic_ns()}"
    r = c.post("gradio_api/queue/join", json={"data": data, "fn_index": portal.fn_index(api_name),
                                               "session_hash": session, "event_data": None, "trigger_id": None})
    out = {"join": r.status_code, "join_body": r.text, "output": None, "error": None, "title": None, "success": None}
    if r.status_code != 200:
        return out
    event_id = r.json().get("event_id")
    with c.stream("GET", "gradio_api/queue/data", params={"session_hash": session}, timeout=timeout_s) as s:
        for line in s.iter_lines():
            if not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            # the tab's stream carries all its events: another one may finish first (a stopped answer)
            if msg.get("msg") == "process_completed" and msg.get("event_id") in (None, event_id):
                out["success"] = msg.get("success")
                out["output"] = (msg.get("output") or {}).get("data")
                out["error"] = (msg.get("output") or {}).get("error")
                out["title"] = (msg.get("output") or {}).get("title")  # the error box's heading
                return out
    return out


def upload(c: httpx.Client, name: str, content: bytes) -> httpx.Response:
    return c.post("gradio_api/upload", files=[("files", (name, content, "text/plain"))])


def file_value(path: str) -> dict:
    return {"path": path, "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}


def admin_session(c: httpx.Client, portal) -> str:
    """A tab session in which the admin area has loaded its collection choices (as the page does)."""
    session = f"adm{time.monotonic_ns()}"
    loaded = call(c, portal, "admin_collection_choices", [], session=session)
    assert loaded["success"], loaded
    return session


class RemotePortal:
    """A portal in another process (``kiportal serve``): its event indexes come from ``/config``,
    read once with a logged-in client (the config is part of the login-protected page)."""

    def __init__(self, url: str) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self._fns: dict[str, int] = {}

    def load_config(self, c: httpx.Client) -> None:
        r = c.get("config")
        assert r.status_code == 200, (r.status_code, r.text[:300])
        self._fns = {d["api_name"]: d["id"] for d in r.json()["dependencies"] if d.get("api_name")}

    def fn_index(self, api_name: str) -> int:
        return self._fns[api_name]
