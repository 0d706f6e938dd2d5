"""Attacks of session 51's probe: the door's proxy headers, answers first on the local model, the chat's
model list as options.

What changed that day and was probed:

1. ``ui.forwarded``: X-Forwarded-Host and kin reach gradio only from a trusted proxy (or loopback when
   ``auth.trusted_proxies`` is empty), X-Gradio-Server from nobody. Tried: the headers in other
   spellings, repeated, with a tab or a space before the colon, an absolute request target, two Host
   headers, the routes that build URLs (the page, ``/config``, gradio's logout redirect, the file URLs of
   a queue event's output, from the join and from the event stream, ``/gradio_api/upload``,
   ``/gradio_api/info``), a websocket, a trusted proxy's root sticking for the next visitor; and the
   client address the login throttle counts (X-Forwarded-For from a stranger, repeated from the proxy).
2. ``assistant.llm.local`` and ``assistant.llm.fair_lock``: a tool's part (background) steps aside
   between two tokens for a waiting chat answer (urgent). Tried: which events count as urgent or
   background over HTTP; Stopp of a tool while it stands aside, and Stopp at the very moment the lock
   comes back (never leaked, never given back twice); Stopp of the answer it stood aside for; a steady
   stream of answers (two at a time: ``server.concurrency = 2``, or one user's open events) against a tool.
3. The chat's model choice is a ``gr.Radio``: a staff user sending the key of an admin-only or a
   red model the role may not use, in the chat, the tools and the trainer's events.

Found and fixed:

* Two Host headers: the door checked ``server.allowed_hosts`` against the last one, Starlette (and so
  gradio's root URL) takes the first, so ``Host: evil.example`` before the allowed name put
  ``http://evil.example`` into ``/config`` and the page past the host check. The same split held for
  two Cookie headers (the door's user from the last, gradio's from the first). The door now refuses a
  request with either header twice (400; RFC 9110 allows one Host, RFC 6265 one Cookie).
* Answers first starved the tools: an urgent waiter went ahead of every waiting part, so with two
  answers at a time (``server.concurrency = 2``, or one account keeping its open events busy) an answer
  was always waiting and a tool never got the model back, for as long as the questions came (before the
  change the lock served in arrival order). Now an answer passes a waiting part only during the turn in
  which it first passed it (``assistant.llm.fair_lock``): the part comes next after that holder, so a
  tool moves under any stream of answers and an answer still waits for at most one part's 16 tokens.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from typing import ClassVar

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import Field

from assistant import stopping
from assistant.llm.fair_lock import FairLock
from assistant.llm.fake import FakeChatModel
from portal_http import call, http, login, upload
from portal_world import FAKE_MODELS, SATZUNG, fake_model_portal, tools_respond

PASSWORD = "Probe-S51-Test-2026!"
USERS = {"anna": "staff", "tina": "trainer", "adam": "admin"}
PROXY, OUTSIDER = "127.0.0.2", "127.0.0.1"
PUBLIC = "kiportal.stadt.example"
EVIL = "evil.example"
FORGED = {"X-Forwarded-Host": EVIL, "X-Forwarded-Proto": "https", "X-Forwarded-Port": "8443",
          "X-Forwarded-Prefix": "/evil", "Forwarded": f"for=203.0.113.66;host={EVIL};proto=https",
          "X-Gradio-Server": f"https://{EVIL}/"}
MODELS = {**FAKE_MODELS,
          "rot": {**FAKE_MODELS["rot"], "roles": ["trainer", "admin"]},  # red, and not for staff
          "chef": {"mode": "fake", "label": "Nur für die Administration", "roles": ["admin"]}}


class KindRecorder(FakeChatModel):
    """The fake model, saying it steps aside like the local one, and noting for each generation whether
    it came as background work (``background=True``, the tools) or as an answer."""

    steps_aside_for_answers: ClassVar[bool] = True
    kinds: list[str] = Field(default_factory=list)

    def _note(self, kwargs) -> None:
        self.kinds.append("background" if kwargs.get("background") else "urgent")

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self._note(kwargs)
        return super()._generate(messages, stop, run_manager, **kwargs)

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        self._note(kwargs)
        yield from super()._stream(messages, stop, run_manager, **kwargs)


@pytest.fixture(scope="module")
def s51(tmp_path_factory):
    """Password mode behind the proxy at 127.0.0.2, the public name as the one allowed host; "lokal",
    "gelb" and "rot" answered by one :class:`KindRecorder`, "chef" (admins only) by a fake of its own."""
    with fake_model_portal(tmp_path_factory.mktemp("s51"), doc=("friedhof.md", SATZUNG), respond=tools_respond,
                           users=USERS, password=PASSWORD,
                           auth={"mode": "password", "secret": "s" * 40, "trusted_proxies": [PROXY]},
                           server={"allowed_hosts": [PUBLIC]}, llm={"default": "lokal", "models": MODELS}) as portal:
        recorder, chef = KindRecorder(respond=tools_respond), FakeChatModel(respond=tools_respond)
        models = portal.ctx.app._chat_models
        for key in ("lokal", "gelb", "rot"):
            models[key] = recorder
        models["chef"] = chef
        portal.recorder, portal.chef = recorder, chef
        portal.own_root = portal.url.rstrip("/")
        yield portal


def _tab() -> str:
    return f"s51{time.monotonic_ns()}"


def _address(portal) -> tuple[str, int]:
    host, port = portal.url.rstrip("/").split("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def _raw(portal, head: bytes, *, source: str = OUTSIDER) -> tuple[int, bytes]:
    """One request exactly as written (header names and repeats as given): (status, body)."""
    sock = socket.create_connection(_address(portal), timeout=30, source_address=(source, 0))
    try:
        sock.sendall(head + b"Connection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    finally:
        sock.close()
    status_line, _, rest = data.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in headers.lower():
        out, pos = b"", 0
        while True:
            size_end = body.index(b"\r\n", pos)
            size = int(body[pos:size_end].split(b";")[0], 16)
            if size == 0:
                break
            out += body[size_end + 2: size_end + 2 + size]
            pos = size_end + 2 + size + 2
        body = out
    return int(status_line.split()[1]), body


def _host(portal) -> bytes:
    """The Host line of a request for the portal's own address."""
    host, port = _address(portal)
    return f"Host: {host}:{port}".encode()


def _cookie(c) -> bytes:
    return "; ".join(f"{k}={v}" for k, v in c.cookies.items()).encode()


def _root_of(body: bytes) -> str:
    return json.loads(body)["root"]


# == 1. the door's proxy headers ========================================================================
def test_two_host_headers_are_refused_whichever_comes_first(s51):
    """The hole: the door checked the allowed host in the last Host header, gradio built the root URL
    from the first: ``Host: evil.example`` first put ``http://evil.example`` into /config."""
    with login(s51, "anna", PASSWORD) as c:
        cookie = _cookie(c)
        assert c.get("config", headers={"Host": EVIL}).status_code == 400  # one foreign Host: refused
        assert _root_of(c.get("config", headers={"Host": PUBLIC}).content) == f"http://{PUBLIC}"
    for first, second in ((EVIL, PUBLIC), (PUBLIC, EVIL), (PUBLIC, PUBLIC)):
        for path in (b"/config", b"/"):
            status, body = _raw(s51, b"GET " + path + b" HTTP/1.1\r\nHost: " + first.encode() + b"\r\nHost: "
                                + second.encode() + b"\r\nCookie: " + cookie + b"\r\n")
            assert status == 400 and EVIL.encode() not in body, (first, second, path, status, body[-200:])


def test_two_cookie_headers_are_refused(s51):
    """The door named the user from the last Cookie header, gradio from the first: two sessions in one
    request were two users at once (the door's limits and file owners for one, the handlers for the other)."""
    with login(s51, "anna", PASSWORD) as anna, login(s51, "adam", PASSWORD) as adam:
        for first, second in ((_cookie(anna), _cookie(adam)), (_cookie(adam), _cookie(anna))):
            status, body = _raw(s51, b"GET /config HTTP/1.1\r\n" + _host(s51) + b"\r\nCookie: " + first
                                + b"\r\nCookie: " + second + b"\r\n")
            assert status == 400, (status, body[:200])
        status, body = _raw(s51, b"GET /config HTTP/1.1\r\n" + _host(s51) + b"\r\nCookie: " + _cookie(anna) + b"\r\n")
        assert status == 200 and json.loads(body)["username"] == "anna"


@pytest.mark.parametrize("lines", [
    [b"X-FORWARDED-HOST: evil.example", b"x-forwarded-proto: https"],
    [b"x-Forwarded-Host: evil.example", b"X-Forwarded-Host: evil.example"],   # repeated
    [b"X-Forwarded-Host:\tevil.example"],                                      # a tab before the value
    [b"X-Forwarded-Host:    evil.example   "],
    [b"X-Forwarded-Host: evil.example, kiportal.stadt.example"],               # a list: gradio takes the first
    [b"x-gradio-server: https://evil.example/", b"X-GRADIO-SERVER: https://evil.example/"],
    [b"Forwarded: host=evil.example;proto=https"],
])
def test_the_forwarding_headers_of_a_stranger_in_any_spelling_name_no_root(s51, lines):
    with login(s51, "anna", PASSWORD) as c:
        cookie = _cookie(c)
    head = b"\r\n".join([_host(s51), b"Cookie: " + cookie, *lines]) + b"\r\n"
    status, body = _raw(s51, b"GET /config HTTP/1.1\r\n" + head)
    assert status == 200 and _root_of(body) == s51.own_root
    status, body = _raw(s51, b"GET / HTTP/1.1\r\n" + head)
    assert status == 200 and EVIL.encode() not in body


def test_malformed_header_lines_never_reach_the_app(s51):
    """A space before the colon or a folded line: the HTTP parser refuses the request itself."""
    with login(s51, "anna", PASSWORD) as c:
        cookie = _cookie(c)
    for line in (b"X-Forwarded-Host : evil.example", b"X-Forwarded-Host:\r\n evil.example"):
        status, body = _raw(s51, b"GET /config HTTP/1.1\r\n" + _host(s51) + b"\r\nCookie: " + cookie + b"\r\n" + line
                            + b"\r\n")
        assert status == 400 and EVIL.encode() not in body


def test_an_absolute_request_target_names_no_root(s51):
    with login(s51, "anna", PASSWORD) as c:
        cookie = _cookie(c)
    status, body = _raw(s51, b"GET http://evil.example/config HTTP/1.1\r\n" + _host(s51) + b"\r\nCookie: " + cookie
                        + b"\r\n")
    assert status == 200 and _root_of(body) == s51.own_root


def test_head_and_gradio_routes_that_build_urls_name_no_forged_root(s51):
    with login(s51, "anna", PASSWORD) as c:
        head = c.head("", headers=FORGED)
        assert head.status_code == 200 and EVIL not in json.dumps(dict(head.headers))
        info = c.get("gradio_api/info", headers=FORGED)
        assert EVIL not in info.text and EVIL not in json.dumps(dict(info.headers))
        up = upload(c, "notiz.txt", b"Die Ruhezeit betraegt 20 Jahre.")  # the stranger's headers on the upload
        assert up.status_code == 200 and EVIL not in up.text
        c.headers.update(FORGED)
        r = upload(c, "notiz2.txt", b"Die Ruhezeit betraegt 20 Jahre.")
        assert r.status_code == 200 and EVIL not in r.text
    with login(s51, "anna", PASSWORD) as c:  # gradio's logout redirects to the root it builds
        out = c.get("logout", headers=FORGED)
        assert EVIL not in out.headers.get("location", "") and EVIL not in out.text


def _export_url(c, portal, *, join_headers: dict, stream_headers: dict) -> str:
    """A chat (asked with "Nur Textstellen"), then its export: the URL of the file the event returns."""
    tab = _tab()  # the chat's id is the tab's state: asked and exported in one tab
    asked = call(c, portal, "ask", ["Wie lange ist die Ruhezeit der Verstorbenen?", None, "extraktiv", []],
                 session=tab)
    assert asked["success"], asked
    chat_id = asked["output"][1]
    r = c.post("gradio_api/queue/join", headers=join_headers,
               json={"data": [chat_id], "fn_index": portal.fn_index("export_chat"), "session_hash": tab,
                     "event_data": None, "trigger_id": None})
    assert r.status_code == 200, r.text
    with c.stream("GET", "gradio_api/queue/data", params={"session_hash": tab}, headers=stream_headers,
                  timeout=60) as s:
        for line in s.iter_lines():
            if line.startswith("data:"):
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    assert msg.get("success"), msg
                    return json.dumps(msg["output"]["data"])
    raise AssertionError("no answer")


@pytest.mark.parametrize("where", ["join", "stream"])
def test_the_file_urls_of_an_event_name_the_portal_not_a_forged_host(s51, where):
    with login(s51, "anna", PASSWORD) as c:
        out = _export_url(c, s51, join_headers=FORGED if where == "join" else {},
                          stream_headers=FORGED if where == "stream" else {})
    assert "gradio_api/file=" in out and EVIL not in out and f"{s51.own_root}/gradio_api/file=" in out


def test_the_proxys_public_root_does_not_stick_for_the_next_visitor(s51):
    """gradio rewrites file URLs in a copy of its config per request; the proxy's name stays in its answer."""
    with login(s51, "anna", PASSWORD, source=PROXY) as c:
        proxied = c.get("config", headers={"X-Forwarded-Host": PUBLIC, "X-Forwarded-Proto": "https"})
        out = _export_url(c, s51, join_headers={"X-Forwarded-Host": PUBLIC, "X-Forwarded-Proto": "https"},
                          stream_headers={})
    assert proxied.json()["root"] == f"https://{PUBLIC}" and f"https://{PUBLIC}/gradio_api/file=" in out
    with login(s51, "anna", PASSWORD) as c:
        assert c.get("config").json()["root"] == s51.own_root
        assert f"{s51.own_root}/gradio_api/file=" in _export_url(c, s51, join_headers={}, stream_headers={})


def _failed_login_address(portal, source: str, headers) -> str:
    audit = portal.ctx.audit
    before = {row["id"] for row in audit.entries(action="login_failed")}
    with http(portal, source=source) as c:
        r = c.post("login", data={"username": "niemand", "password": "falsch"}, headers=headers)
    assert r.status_code in (400, 401), r.text
    (row,) = [row for row in audit.entries(action="login_failed") if row["id"] not in before]
    return json.loads(row["detail"])["address"]


def test_the_login_throttle_counts_the_address_the_door_trusts(s51):
    # a stranger's X-Forwarded-For, in any spelling or repeat, is no address
    for headers in ({"X-Forwarded-For": "203.0.113.9"}, [("x-FORWARDED-for", "203.0.113.9")],
                    [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-For", "203.0.113.10")]):
        assert _failed_login_address(s51, OUTSIDER, headers) == OUTSIDER, headers
    # the proxy's: the entry it added, last in the list, also when the client's came as a header of its own
    assert _failed_login_address(s51, PROXY, {"X-Forwarded-For": "203.0.113.9, 198.51.100.4"}) == "198.51.100.4"
    assert _failed_login_address(s51, PROXY, [("X-Forwarded-For", "203.0.113.9"),
                                              ("X-Forwarded-For", "198.51.100.4")]) == "198.51.100.4"
    assert _failed_login_address(s51, PROXY, {}) == PROXY
    # an empty last entry ("203.0.113.9,") is no address either: the proxy's own counts (it was "", which
    # the throttle's per-address counter skipped)
    assert _failed_login_address(s51, PROXY, {"X-Forwarded-For": "203.0.113.9,"}) == PROXY


def test_a_websocket_gets_the_same_cleaning_as_a_request(tmp_path):
    """gradio 6 serves no websocket of its own; the door cleans one anyway before the app sees it."""
    import asyncio

    from settings_factory import make_settings
    from ui.http_guard import GuardConfig, PortalGuard

    seen: list[dict] = []

    async def app(scope, receive, send):
        seen.append(scope)

    guard = PortalGuard(app, GuardConfig(settings=make_settings(tmp_path, auth={"mode": "none"}), users=None,
                                         audit=None))
    closed: list[dict] = []

    async def send(message):
        closed.append(message)

    async def receive():
        return {"type": "websocket.connect"}

    def connect(peer: str, headers: list, host: list = [(b"host", b"127.0.0.1:7860")]) -> None:  # noqa: B006
        scope = {"type": "websocket", "path": "/ws", "headers": [*headers, *host],
                 "client": (peer, 5000), "scheme": "ws", "query_string": b""}
        asyncio.run(guard(scope, receive, send))

    connect("198.51.100.7", [(b"x-forwarded-host", b"evil.example"), (b"x-gradio-server", b"https://evil.example")])
    assert {k for k, _ in seen[-1]["headers"]} == {b"host"}
    connect("127.0.0.1", [(b"x-forwarded-host", b"kiportal.stadt.example"), (b"x-gradio-server", b"x")])
    assert {k for k, _ in seen[-1]["headers"]} == {b"host", b"x-forwarded-host"}
    n = len(seen)
    for hosts in ([b"evil.example", b"127.0.0.1:7860"], [b"127.0.0.1:7860", b"evil.example"]):
        connect("127.0.0.1", [], [(b"host", h) for h in hosts])  # two Hosts: closed, never reaches the app
        assert len(seen) == n and closed[-1] == {"type": "websocket.close", "code": 1008}, hosts


# == 3. the chat's model list as options: the role decides, whatever key is sent =========================
def _session(c, portal) -> str:
    """A tab whose page load narrowed the chat's model options to the user's role."""
    tab = _tab()
    loaded = call(c, portal, "session", [], session=tab)
    assert loaded["success"], loaded
    return tab


def _refused(out: dict) -> bool:
    return out["join"] != 200 or out["success"] is False


def test_staff_cannot_answer_with_a_model_outside_the_role(s51):
    calls = len(s51.chef.calls)
    with login(s51, "anna", PASSWORD) as c:
        loaded = call(c, s51, "session", [], session=(tab := _tab()))
        offered = {key for _, key in loaded["output"][1]["choices"]}
        assert "chef" not in offered and "rot" not in offered and "lokal" in offered
        for key in ("chef", "rot", "unbekannt", 0, ["lokal", "chef"]):
            for session in (tab, _tab()):  # the tab the page load narrowed, and a bare one (all options)
                out = call(c, s51, "ask", ["Wie lange ist die Ruhezeit?", None, key, []], session=session)
                assert _refused(out), (key, out)
    assert len(s51.chef.calls) == calls
    with login(s51, "adam", PASSWORD) as c:  # the admin may: the key itself works
        out = call(c, s51, "ask", ["Wie lange ist die Ruhezeit der Verstorbenen?", None, "chef", []], session=_session(c, s51))
        assert out["success"], out
    assert len(s51.chef.calls) > calls


def _tool_runs(portal, key) -> list[tuple[str, list]]:
    return [("tool_zusammenfassung", [portal.doc_id, "kurz", False, key]),
            ("tool_einfach", ["Text einfügen", "Der Antrag wird vom Amt geprüft.", None, None, "", False, key]),
            ("tool_entwurf", ["email", "Termin am Montag bestätigen", False, [], key])]


def test_staff_cannot_run_a_tool_with_a_model_outside_the_role(s51):
    calls = len(s51.chef.calls)
    with login(s51, "anna", PASSWORD) as c:
        for key in ("chef", "rot"):
            for api_name, data in _tool_runs(s51, key):
                out = call(c, s51, api_name, data, session=_tab())
                assert _refused(out), (api_name, key, out)
        for api_name, data in _tool_runs(s51, "lokal"):  # the same inputs with the role's model: they run
            out = call(c, s51, api_name, data, session=_tab())
            assert out["success"], (api_name, out)
    assert len(s51.chef.calls) == calls


def test_the_trainers_events_keep_to_the_role(s51):
    calls = len(s51.chef.calls)
    compare = lambda model, left, right: [  # noqa: E731
        "Wie lange ist die Ruhezeit?", "models", model, left, right, None, None, [], None]
    inspect = lambda model: ["Wie lange ist die Ruhezeit?", model, [], 4, 800, True, None, False]  # noqa: E731
    with login(s51, "anna", PASSWORD) as c:  # staff: no trainer event at all, with any model
        for api_name, data in (("trainer_compare", compare("lokal", "lokal", "extraktiv")),
                               ("trainer_inspect", inspect("lokal")),
                               ("trainer_exercise", [None, None, "lokal", [], None])):
            assert _refused(call(c, s51, api_name, data, session=_tab())), api_name
    with login(s51, "tina", PASSWORD) as c:  # a trainer: not the admins' model, on either side
        for data in (compare("chef", "lokal", "extraktiv"), compare("lokal", "chef", "extraktiv"),
                     compare("lokal", "lokal", "chef")):
            assert _refused(call(c, s51, "trainer_compare", data, session=_tab())), data
        assert _refused(call(c, s51, "trainer_inspect", inspect("chef"), session=_tab()))
        ok = call(c, s51, "trainer_compare", compare("lokal", "rot", "extraktiv"), session=_tab())
        assert ok["success"], ok  # the red model is the trainer's to show
    assert len(s51.chef.calls) == calls


# == 2. answers first: who counts as what, over HTTP ======================================================
def test_a_chat_answer_is_urgent_and_a_tools_part_is_background_over_http(s51):
    """Nothing a client sends makes its answer background work or its tool an answer."""
    rec = s51.recorder
    with login(s51, "anna", PASSWORD) as c:
        rec.kinds.clear()
        out = call(c, s51, "ask", ["Wie lange ist die Ruhezeit der Verstorbenen?", None, "lokal", []], session=_tab())
        assert out["success"] and rec.kinds and set(rec.kinds) == {"urgent"}, (out, rec.kinds)
        rec.kinds.clear()
        out = call(c, s51, "tool_zusammenfassung", [s51.doc_id, "kurz", False, "lokal"], session=_tab())
        assert out["success"] and rec.kinds and set(rec.kinds) == {"background"}, (out, rec.kinds)
    with login(s51, "tina", PASSWORD) as c:
        rec.kinds.clear()
        out = call(c, s51, "trainer_compare", ["Wie lange ist die Ruhezeit?", "models", "lokal", "lokal", "gelb",
                                               None, None, [], None], session=_tab())
        assert out["success"] and rec.kinds and set(rec.kinds) == {"urgent"}, (out, rec.kinds)


# == 2. answers first: the lock and the local model's turn ===============================================
class _StubLlama:
    """llama.cpp as LocalLlamaChat sees it. ``eval`` looks at the stop signal and the hook between parts,
    one token a part, as StoppableLlama's does; the model's state is the tokens it read (its KV cache),
    and each token it writes names the first word and the length of that state, so a generation that
    went on from another one's state writes other words."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.between_parts = None
        self.n_tokens = 0
        self.tokens: list[str] = []
        self.delay_s = delay_s

    def eval(self, tokens) -> None:
        for token in tokens:
            stopping.check()
            if self.between_parts is not None:
                self.between_parts()
            del self.tokens[self.n_tokens:]
            self.tokens.append(token)
            self.n_tokens += 1
            if self.delay_s:
                time.sleep(self.delay_s)

    def create_chat_completion(self, messages, max_tokens=8, **kwargs):
        self.n_tokens = 0
        self.eval(messages[-1]["content"].split())
        for _ in range(max_tokens):
            word = f"{self.tokens[0]}{self.n_tokens}"
            yield {"choices": [{"delta": {"content": word + " "}}]}
            self.eval([word])


class _StubSnapshot:
    """What ``_Snapshot`` keeps, for the stub: the tokens read."""

    def __init__(self, llama) -> None:
        self.tokens, self.n_tokens = list(llama.tokens[: llama.n_tokens]), llama.n_tokens

    def restore(self, llama) -> None:
        llama.tokens, llama.n_tokens = list(self.tokens), self.n_tokens


@pytest.fixture
def stub_chat(monkeypatch):
    from assistant.llm import local

    monkeypatch.setattr(local, "_Snapshot", _StubSnapshot)
    chat = local.LocalLlamaChat(model_path="/nonexistent.gguf", refusal_text="")
    chat._llama = _StubLlama(delay_s=0.002)
    return chat


def _wait_until(cond, seconds: float = 10.0) -> None:
    end = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


TOOL = [HumanMessage(content="werkzeug teil eins")]
QUESTION = [HumanMessage(content="frage nach der ruhezeit")]


def _text(stream) -> str:
    return "".join(c.content for c in stream)


def test_stopp_while_a_tools_part_stands_aside_leaves_the_lock_with_the_answer(stub_chat):
    from assistant.llm.backends import for_background

    chat, lock = stub_chat, stub_chat._lock
    alone = _text(for_background(chat).stream(TOOL, max_tokens=120))
    stop, outcome, written = threading.Event(), {}, []

    def tool() -> None:
        try:
            with stopping.stoppable(stop.is_set):
                for chunk in for_background(chat).stream(TOOL, max_tokens=120):
                    written.append(chunk.content)
        except stopping.Stopped:
            outcome["stopped"] = True

    t = threading.Thread(target=tool)
    t.start()
    _wait_until(lambda: len(written) >= 20)
    answer = chat.stream(QUESTION, max_tokens=30)
    first = next(answer)  # the tool stood aside: the answer holds the model, the tool waits for it
    _wait_until(lambda: len(lock._waiters) == 1)
    assert first.content.startswith("frage") and lock.locked()
    stop.set()  # Stopp on the tool while it waits
    t.join(5)
    assert outcome.get("stopped") and not t.is_alive()
    assert lock.locked() and not lock._waiters  # still the answer's: not given back by the tool
    rest = _text(answer)
    assert all(w.startswith("frage") for w in (first.content + rest).split())  # nothing of the tool's
    assert not lock.locked() and chat._llama.between_parts is None
    assert "".join(written) == alone[: len("".join(written))]  # what the tool wrote before was its own
    assert _text(for_background(chat).stream(TOOL, max_tokens=120)) == alone  # the model serves on
    assert not lock.locked()


def test_stopp_of_the_answer_a_tool_stood_aside_for_lets_the_tool_go_on_unchanged(stub_chat):
    from assistant.llm.backends import for_background

    chat, lock = stub_chat, stub_chat._lock
    alone = _text(for_background(chat).stream(TOOL, max_tokens=120))
    written, done = [], threading.Event()

    def tool() -> None:
        for chunk in for_background(chat).stream(TOOL, max_tokens=120):
            written.append(chunk.content)
        done.set()

    t = threading.Thread(target=tool)
    t.start()
    _wait_until(lambda: len(written) >= 20)
    answer = chat.stream(QUESTION, max_tokens=30)
    next(answer)
    next(answer)
    answer.close()  # the user's Stopp (gradio closes the stream) in the middle of the answer
    assert done.wait(10)
    t.join(5)
    assert "".join(written) == alone and not lock.locked()


def test_the_lock_handed_back_at_the_moment_of_stopp_is_owned_once():
    """A waiter whose stop comes just as the lock is handed to it owns the lock (``acquire`` says True),
    gives it back once, and a second give-back of its turn changes nothing."""
    from assistant.llm.local import _Turn

    lock = FairLock()
    lock.acquire()  # the answer the tool stood aside for
    handed = {"done": False}

    def stop_now() -> bool:  # the answer ends and hands over exactly while the tool looks at its stop signal
        if not handed["done"]:
            handed["done"] = True
            lock.release()
        return True

    turn = _Turn(lock, urgent=False)
    with stopping.stoppable(stop_now):
        turn.take()
    assert turn.held and lock.locked() and not lock._waiters
    turn.give_back()
    turn.give_back()
    assert not lock.locked()
    with lock:  # usable as before
        assert lock.locked()
    assert not lock.locked()


def test_a_stopped_waiter_that_is_not_handed_the_lock_takes_nothing():
    from assistant.llm.local import _Turn

    lock = FairLock()
    lock.acquire()
    turn = _Turn(lock, urgent=True)
    with stopping.stoppable(lambda: True), pytest.raises(stopping.Stopped):
        turn.take()
    assert not turn.held and lock.locked() and not lock._waiters and not lock.urgent_waiting()
    turn.give_back()  # nothing to give
    lock.release()
    assert not lock.locked()


def _flood(lock: FairLock, stop: threading.Event, workers: int = 2, hold_s: float = 0.01) -> list[threading.Thread]:
    """``workers`` answers at a time, each asking again as soon as it is done (server.concurrency = 2, or
    one account keeping its open events busy): an answer is always waiting."""

    def answer_after_answer() -> None:
        while not stop.is_set():
            lock.acquire(urgent=True)
            try:
                time.sleep(hold_s)
            finally:
                lock.release()

    threads = [threading.Thread(target=answer_after_answer, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    return threads


def test_a_steady_stream_of_answers_does_not_starve_a_waiting_tool_part():
    lock, stop = FairLock(), threading.Event()
    threads = _flood(lock, stop)
    try:
        _wait_until(lock.urgent_waiting)
        got = lock.acquire(timeout=3)  # a tool's next part
        if got:
            lock.release()
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    assert got, "a tool's part never got the model while answers kept coming"
    assert not lock.locked()


def test_an_answer_passes_a_waiting_part_only_in_the_turn_it_found_it():
    """The order the fix gives: answers that come while one holder keeps the lock all go ahead of a
    waiting part (as before); an answer that comes after the lock changed hands lines up behind it."""
    lock, order, threads = FairLock(), [], []
    done = threading.Event()  # every holder keeps the lock until the line is complete

    def waiter(name: str, urgent: bool) -> None:
        def run() -> None:
            lock.acquire(urgent=urgent)
            order.append(name)
            done.wait(5)
            lock.release()

        threads.append(threading.Thread(target=run))
        threads[-1].start()

    lock.acquire()  # an answer being written
    for n, (name, urgent) in enumerate([("tool", False), ("answer-1", True), ("answer-2", True)], 1):
        waiter(name, urgent)
        _wait_until(lambda n=n: len(lock._waiters) == n)
    lock.release()  # that answer ends: answer-1 holds now, in a new turn
    _wait_until(lambda: order == ["answer-1"])
    waiter("answer-3", True)  # behind the tool it finds passed in an earlier turn
    _wait_until(lambda: len(lock._waiters) == 3)
    done.set()
    for t in threads:
        t.join(5)
    assert order == ["answer-1", "answer-2", "tool", "answer-3"]
    assert not lock.locked() and not lock._passed and not lock._urgent


def test_a_tool_moves_under_a_steady_stream_of_answers_and_writes_its_own_text(stub_chat):
    from assistant.llm.backends import for_background

    chat = stub_chat
    chat._llama.delay_s = 0.0005
    alone = _text(for_background(chat).stream(TOOL, max_tokens=200))
    stop, result = threading.Event(), {}

    def answers() -> None:
        while not stop.is_set():
            text = _text(chat.stream(QUESTION, max_tokens=20))
            assert all(w.startswith("frage") for w in text.split()), text

    flood = [threading.Thread(target=answers, daemon=True) for _ in range(2)]
    for t in flood:
        t.start()
    try:
        _wait_until(chat._lock.urgent_waiting)
        tool = threading.Thread(target=lambda: result.setdefault("text", _text(for_background(chat).stream(
            TOOL, max_tokens=200))), daemon=True)
        tool.start()
        tool.join(20)
    finally:
        stop.set()
        for t in flood:
            t.join(10)
    assert result.get("text") == alone, "the tool did not finish while answers kept coming"
    assert not chat._lock.locked()


# == 2. the real model: Stopp of a tool standing aside, then answer and tool unchanged =====================
@pytest.mark.llm
def test_the_real_model_after_a_tool_was_stopped_while_standing_aside(gguf_path):
    """llama.cpp's state after a tool part was stopped while it stood aside for an answer: the answer
    is the one it gives alone (nothing of the tool's text), the next tool run writes what it writes alone."""
    from assistant.llm.backends import for_background
    from assistant.llm.local import LocalLlamaChat

    chat = LocalLlamaChat(model_path=str(gguf_path), n_ctx=1024, max_tokens=32)
    tool_messages = [SystemMessage(content="Schreibe in Einfacher Sprache."),
                     HumanMessage(content="Erkläre in zehn kurzen Sätzen, wie man einen Personalausweis beantragt.")]
    answer_messages = [SystemMessage(content="Antworte kurz und nur aus der Quelle."),
                       HumanMessage(content="Quelle: Die Bibliothek öffnet montags um 9 Uhr.\n"
                                            "Frage: Wann öffnet die Bibliothek am Montag?")]
    chat.llama.reset()
    tool_alone = _text(chat.stream(tool_messages))
    chat.llama.reset()
    answer_alone = _text(chat.stream(answer_messages, max_tokens=12))

    chat.llama.reset()
    stop, written, outcome = threading.Event(), [], {}

    def tool() -> None:
        try:
            with stopping.stoppable(stop.is_set):
                for chunk in for_background(chat).stream(tool_messages):
                    written.append(chunk.content)
        except stopping.Stopped:
            outcome["stopped"] = True

    t = threading.Thread(target=tool)
    t.start()
    _wait_until(lambda: len(written) >= 5, 120)
    answer = chat.stream(answer_messages, max_tokens=12)
    first = next(answer)  # the tool stood aside
    stop.set()
    t.join(30)
    assert outcome.get("stopped") and chat._lock.locked()
    assert first.content + _text(answer) == answer_alone and "9" in answer_alone
    assert not chat._lock.locked() and chat.llama.between_parts is None
    assert tool_alone.startswith("".join(written))
    chat.llama.reset()
    assert _text(for_background(chat).stream(tool_messages)) == tool_alone
    assert not chat._lock.locked()
