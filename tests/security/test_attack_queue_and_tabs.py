"""Attacks on gradio's shared queue and its browser tabs (found by an attacker's probe):

* a staff account joined 300 answers in 16 s and everyone else waited behind them;
* one upload request of 30 files wrote 300 MB (gradio takes 1,000 files per request);
* with another user's tab id (gradio's session hash) one read that user's streamed answer;
* a link on a foreign site ended the user's sessions (gradio's logout is a GET).

All sent as raw HTTP against the real portal (gradio's queue protocol by hand).
"""
from __future__ import annotations

import threading
import time

import httpx
import pytest

from sec_client import audit, call, login

ASK = "Wann öffnet die Kantine im Rathaus?"


def join(c: httpx.Client, portal, session: str, question: str = ASK) -> httpx.Response:
    return c.post("gradio_api/queue/join", json={"data": [question, None, "extraktiv", []],
                                                  "fn_index": portal.fn_index("ask"), "session_hash": session,
                                                  "event_data": None, "trigger_id": None})


def opened(c: httpx.Client, path: str, **kwargs) -> httpx.Response:
    """The answer to a GET of an event stream, read up to its head only (an open stream never ends)."""
    with c.stream("GET", path, **kwargs) as r:
        if r.status_code == 200:
            return r
        r.read()
        return r


def test_another_users_tab_is_refused_on_every_route_that_names_it(pw_portal):
    with login(pw_portal, "tina") as tina, login(pw_portal, "sam") as sam:
        tab = f"tina{time.monotonic_ns()}"
        mine = call(tina, pw_portal, "new_chat", [], session=tab)
        assert mine["success"], mine
        before = len(audit(pw_portal, "tab_refused", actor="sam"))
        attempts = {
            "stream": lambda: opened(sam, "gradio_api/queue/data", params={"session_hash": tab}),
            "heartbeat": lambda: opened(sam, f"gradio_api/heartbeat/{tab}"),
            "join": lambda: join(sam, pw_portal, tab),
            "cancel": lambda: sam.post("gradio_api/cancel", json={"session_hash": tab, "fn_index": 0, "event_id": "x"}),
        }
        for route, attempt in attempts.items():
            r = attempt()
            assert r.status_code == 403, (route, r.status_code)
            assert "anderen Benutzer" in r.json()["detail"], route
        assert len(audit(pw_portal, "tab_refused", actor="sam")) == before + 4
        again = call(tina, pw_portal, "new_chat", [], session=tab)  # the owner's tab still works
        assert again["success"], again


def test_gradios_call_routes_are_closed(pw_portal):
    """/call/<name> joins the queue without a tab and streams by event id: a second door, closed."""
    with login(pw_portal, "sam") as sam:
        assert sam.post("gradio_api/call/ask", json={"data": [ASK, None, "extraktiv", []]}).status_code == 404
        assert sam.get("gradio_api/call/ask/abc").status_code == 404


def test_a_queued_answer_cannot_skip_the_queue_through_run(pw_portal):
    """gradio's /run/<name> ran a queued event directly, past the queue and every limit on it."""
    with login(pw_portal, "sam") as sam:
        r = sam.post("gradio_api/run/ask", json={"data": [ASK, None, "extraktiv", []], "session_hash": "run1"})
        assert r.status_code == 404, r.text[:200]


def hold_answers(portal, monkeypatch) -> threading.Event:
    """Every answer waits until the test sets the returned gate, so joined events stay open (the
    queue, its concurrency limit and the door are the real ones)."""
    gate = threading.Event()
    assistant = portal.ctx.app.assistant
    real = assistant.stream

    def held(*args, **kwargs):
        gate.wait(30)
        yield from real(*args, **kwargs)

    monkeypatch.setattr(assistant, "stream", held)
    return gate


@pytest.fixture
def answers_held(pw_portal, monkeypatch):
    gate = hold_answers(pw_portal, monkeypatch)
    yield gate
    gate.set()


def test_without_login_the_one_user_has_no_event_limit(open_portal, monkeypatch):
    """Mode none: one user on one machine; `kiportal loadtest` simulates its users as that one user."""
    gate = hold_answers(open_portal, monkeypatch)
    try:
        with httpx.Client(base_url=open_portal.url, timeout=60) as c:
            n = open_portal.ctx.app.settings.server.max_open_events_per_user + 3
            assert [join(c, open_portal, f"lokal{i}-{time.monotonic_ns()}").status_code for i in range(n)] == [200] * n
    finally:
        gate.set()


def test_one_user_cannot_fill_the_queue(pw_portal, answers_held):
    limit = pw_portal.ctx.app.settings.server.max_open_events_per_user
    with login(pw_portal, "bernd") as bernd, login(pw_portal, "anna") as anna:
        codes = [join(bernd, pw_portal, f"flood{i}-{time.monotonic_ns()}").status_code for i in range(limit + 3)]
        assert codes[:limit] == [200] * limit
        assert codes[limit:] == [429] * 3
        r = join(bernd, pw_portal, f"flood-x-{time.monotonic_ns()}")
        assert r.status_code == 429 and "Anfragen in Arbeit" in r.json()["detail"]
        assert join(anna, pw_portal, f"anna-{time.monotonic_ns()}").status_code == 200  # others still get in
        other_kind = bernd.post("gradio_api/queue/join", json={  # counted per kind: his page still loads
            "data": [], "fn_index": pw_portal.fn_index("session"), "session_hash": f"load-{time.monotonic_ns()}",
            "event_data": None, "trigger_id": None})
        assert other_kind.status_code == 200, other_kind.text
        answers_held.set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # once bernd's answers are done, he may ask again
            r = join(bernd, pw_portal, f"later-{time.monotonic_ns()}")
            if r.status_code == 200:
                break
            time.sleep(0.5)
        assert r.status_code == 200, r.text


def test_uploads_count_against_a_quota_per_user(pw_portal, monkeypatch):
    monkeypatch.setattr(pw_portal.ctx.app.settings.server, "upload_quota_mb", 2)
    half_mb = b"x" * (512 * 1024)  # max_upload_mb = 1 per file in this portal
    with login(pw_portal, "anna") as anna, login(pw_portal, "mayor") as mayor:
        many = anna.post("gradio_api/upload", files=[("files", (f"t{i}.txt", half_mb, "text/plain")) for i in range(5)])
        assert many.status_code == 413, many.status_code  # 2.5 MB in one request
        assert "Upload-Kontingent" in many.json()["detail"]
        first = anna.post("gradio_api/upload", files=[("files", ("a.txt", half_mb, "text/plain"))])
        assert first.status_code == 200, first.text
        assert mayor.post("gradio_api/upload", files=[("files", ("b.txt", half_mb, "text/plain"))]).status_code == 200


def test_a_foreign_site_cannot_log_the_user_out(pw_portal):
    with login(pw_portal, "mayor") as c:
        assert call(c, pw_portal, "new_chat", [])["success"]
        r = c.get("logout", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
        assert r.status_code == 403
        assert call(c, pw_portal, "new_chat", [])["success"]  # still logged in
        r = c.get("logout", headers={"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"})
        assert r.status_code in (302, 303, 307)
