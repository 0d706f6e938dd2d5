"""Attacks on the features of session 32 (Mein Konto, user management, Stopp, Abbrechen, Word export),
sent as raw HTTP against the real portal (gradio's queue protocol by hand).

Holes this probe found, each fixed at its one home:

* A query naming ``session_hash`` twice (``?session_hash=mine&session_hash=theirs``) passed the tab
  check with the first and gradio read the second: another user's streamed question and answer.
* gradio's ``/run/…`` (the direct route of unqueued events) runs with the state of the tab its body
  names, and the door did not check that tab: "Frage bearbeiten" handed out another user's question
  that the personal-data warning held back.
* A burst of parallel password checks (login, "Mein Konto") all passed the back-off: each read the
  counters before the first Argon2 check had finished and counted its failure.
* gradio's ``/gradio_api/deep_link?session_hash=…`` saved any tab's page state for ``/config`` to hand
  out: another user read the start password an admin had just been shown.
"""
from __future__ import annotations

import json
import re
import threading
import time
from contextlib import contextmanager

import httpx
import pytest

from sec_client import PASSWORD, attempt, audit, burst, call, login

ASK = "Wann öffnet die Kantine im Rathaus?"
PERSONAL = "Welche Öffnungszeit gilt für die Beschwerde von Frau Müller, geb. 03.04.1980, zur Kantine?"


def join(c: httpx.Client, portal, api_name: str, data: list, session: str, event_data=None) -> httpx.Response:
    return c.post("gradio_api/queue/join", json={"data": data, "fn_index": portal.fn_index(api_name),
                                                  "session_hash": session, "event_data": event_data,
                                                  "trigger_id": None})


def stream(c: httpx.Client, query: str, timeout_s: float = 60) -> tuple[int, list[dict]]:
    """Status and messages of ``gradio_api/queue/data?<query>`` up to the first completed event."""
    messages = []
    with c.stream("GET", f"gradio_api/queue/data?{query}", timeout=timeout_s) as s:
        if s.status_code != 200:
            s.read()
            return s.status_code, []
        for line in s.iter_lines():
            if line.startswith("data:"):
                messages.append(json.loads(line[5:]))
                if messages[-1].get("msg") == "process_completed":
                    break
    return 200, messages


def tab(name: str) -> str:
    return f"{name}{time.monotonic_ns()}"


# -- tabs: every way gradio reads a session hash is checked ------------------------------------------
def test_a_repeated_session_hash_does_not_open_another_users_stream(pw_portal):
    with login(pw_portal, "tina") as tina, login(pw_portal, "sam") as sam:
        mine, hers = tab("sam"), tab("tina")
        assert call(sam, pw_portal, "new_chat", [], session=mine)["success"]  # sam's own tab
        assert join(tina, pw_portal, "ask", [ASK, None, "extraktiv", []], hers).status_code == 200
        before = len(audit(pw_portal, "tab_refused", actor="sam"))
        for query in (f"session_hash={mine}&session_hash={hers}", f"session_hash={hers}&session_hash={mine}",
                      f"session_hash={mine}&session%5Fhash={hers}"):
            status, messages = stream(sam, query)
            assert status == 403 and messages == [], (query, status, messages)
        assert len(audit(pw_portal, "tab_refused", actor="sam")) == before + 3
        status, messages = stream(tina, f"session_hash={hers}")  # the owner still gets her answer
        assert status == 200 and "11:30" in json.dumps(messages[-1], ensure_ascii=False)


@contextmanager
def yellow(portal, key: str = "extraktiv"):
    """The model as an EU-hosted one (zone yellow): a question with personal data is held back with a
    warning, and the page keeps it in its state until the user confirms or edits it."""
    spec = portal.ctx.app.settings.llm.models[key]
    zone = spec.zone
    spec.zone = "yellow"
    try:
        yield key
    finally:
        spec.zone = zone


def test_an_unqueued_event_cannot_run_in_another_users_tab(pw_portal):
    """"Frage bearbeiten" (queue=False: gradio runs it at ``/run/…``) returns the question the warning
    held back, from the state of the tab the body names."""
    edit = pw_portal.fn_index("edit_question")
    with login(pw_portal, "tina") as tina, login(pw_portal, "sam") as sam, yellow(pw_portal) as model:
        hers = tab("tina")
        warned = call(tina, pw_portal, "ask", [PERSONAL, None, model, []], session=hers)
        assert warned["success"] and "Bitte prüfen" in json.dumps(warned["output"], ensure_ascii=False), warned
        for route in ("gradio_api/run/predict", "gradio_api/api/predict", "gradio_api/run/predict/"):
            r = sam.post(route, json={"data": [None], "fn_index": edit, "session_hash": hers})
            assert r.status_code == 403 and "Müller" not in r.text, (route, r.status_code, r.text[:300])
        own = tina.post("gradio_api/run/predict", json={"data": [None], "fn_index": edit, "session_hash": hers})
        assert own.status_code == 200 and own.json()["data"][2] == PERSONAL, own.text[:300]  # hers, for her


# -- password checks: a burst is no way round the back-off ---------------------------------------------
@pytest.fixture
def own_user(pw_portal):
    """A user of one test (the suite's users are shared by its modules)."""
    made = []

    def make(name: str) -> str:
        if pw_portal.ctx.users.get(name) is not None:
            pw_portal.ctx.users.remove(name)
        pw_portal.ctx.users.add(name, PASSWORD, "staff")
        made.append(name)
        return name

    yield make
    for name in made:
        pw_portal.ctx.users.remove(name)


def test_a_burst_of_parallel_logins_gets_no_more_guesses_than_a_sequence(pw_portal, own_user):
    name, address = own_user("kora"), "203.0.113.88"  # through the trusted proxy: an address of its own

    statuses = burst(12, lambda i: attempt(pw_portal, address, name, f"Falsch-{i}-2026"))
    checked = audit(pw_portal, "login_failed", actor=name)
    blocked = audit(pw_portal, "login_blocked", actor=name)
    assert sorted(statuses) == [400] * len(checked) + [429] * (12 - len(checked))  # wrong / held back unchecked
    # LoginThrottle.max_failures (3), then 2, 4, 8 … s back-off: as many guesses as a sequence gets.
    # (Under load the burst once got 2: a failure being recorded counted twice for a moment; the store
    # now records it and ends its check in one step, LoginThrottle._ended.)
    assert len(checked) == 3, len(checked)
    assert len(checked) + sum(e["detail"]["attempts"] for e in blocked) == 12  # held ones: one row, counted
    assert len(blocked) == 1
    with login(pw_portal, name):  # the owner, from her own address, logs in at once
        pass


def test_a_burst_of_parallel_password_changes_gets_no_more_guesses(pw_portal, own_user):
    """A borrowed session guessing the owner's password through "Mein Konto", many tabs at once."""
    name, new = own_user("kira"), "Neu-Passwort-2027-X"
    with login(pw_portal, name) as c:
        errors = burst(6, lambda i: call(c, pw_portal, "change_password", [f"Falsch-{i}-2026", new, new],
                                         session=tab(f"kira{i}-"))["error"] or "")
    assert sum("stimmt nicht" in e for e in errors) == 3, errors
    assert sum("Zu viele falsche Versuche" in e for e in errors) == 3, errors
    assert len(audit(pw_portal, "password_change_failed", actor=name)) == 3
    assert pw_portal.ctx.users.verify(name, PASSWORD)


# -- a tab's page state: gradio's deep links --------------------------------------------------------
def test_no_deep_link_hands_out_another_tabs_page_state(pw_portal):
    """gradio's ``/gradio_api/deep_link?session_hash=…`` saved the whole page state of the named tab and
    ``/config?deep_link=…`` returned it: sam read the start password adam had just been shown."""
    name = f"neu{time.monotonic_ns() % 10**8}"
    try:
        with login(pw_portal, "adam") as adam, login(pw_portal, "sam") as sam:
            his = tab("adam")
            made = call(adam, pw_portal, "admin_add_user", [name, "staff", []], session=his)
            password = re.search(r"Startpasswort: (\S+)", made["output"][0]).group(1)
            for who in (sam, adam):  # the portal has no deep links: closed for everyone
                r = who.get("gradio_api/deep_link", params={"session_hash": his})
                assert r.status_code == 404 and password not in r.text, (r.status_code, r.text[:200])
            config = sam.get("config", params={"deep_link": "LwiWqeLGD-Q"})
            assert password not in config.text
    finally:
        pw_portal.ctx.users.remove(name)


# -- Stopp (chat) and Abbrechen (Werkzeuge): only in one's own tab --------------------------------------
def test_stopp_and_abbrechen_reach_only_ones_own_tab(pw_portal, monkeypatch):
    """The switch keeps the question of a stream per session hash (chosen by the client): another user's
    Stopp with tina's hash is refused at the door, and sam's own Stopp hands back nothing of hers."""
    gate = threading.Event()
    real = pw_portal.ctx.app.assistant.stream

    def held(*args, **kwargs):
        gate.wait(30)
        yield from real(*args, **kwargs)

    monkeypatch.setattr(pw_portal.ctx.app.assistant, "stream", held)
    secret = "Wann öffnet die Kantine? Frage von Tina Geheimnis-4711"
    try:
        with login(pw_portal, "tina") as tina, login(pw_portal, "sam") as sam:
            hers, mine = tab("tina"), tab("sam")
            assert join(tina, pw_portal, "ask", [secret, None, "extraktiv", []], hers).status_code == 200
            time.sleep(1.0)  # her answer is streaming (held before its first word)
            for api_name, data in (("stop", [None, ""]), ("cancelled", [])):
                r = join(sam, pw_portal, api_name, data, hers)
                assert r.status_code == 403 and "anderen Benutzer" in r.json()["detail"], (api_name, r.text)
            own = call(sam, pw_portal, "stop", [None, ""], session=mine)
            assert own["success"] and "Geheimnis-4711" not in json.dumps(own, ensure_ascii=False), own
            back = call(tina, pw_portal, "stop", [None, ""], session=hers)  # hers, in her tab
            assert back["success"] and back["output"][2] == secret, back
    finally:
        gate.set()


# -- user management: every event that touches users, also those without an API name -----------------
USER_FNS = {"user_choices": [], "user_groups": [None], "user_role": [None], "select_user": [],
            "set_user_groups": [None, []], "users_on_load": [], "users_table": []}


class ByIndex:
    """A portal whose ``fn_index`` is a fixed event (for events without an API name)."""

    def __init__(self, portal, index: int) -> None:
        self.url, self.index = portal.url, index

    def fn_index(self, _api_name: str) -> int:
        return self.index


def test_staff_calling_every_user_event_by_index_gets_nothing(pw_portal):
    fns = {i: fn for i, fn in pw_portal.server.demo.fns.items()
           if getattr(fn.fn, "__name__", "") in USER_FNS}
    assert {fn.fn.__name__ for fn in fns.values()} == set(USER_FNS)
    assert any(fn.api_name and fn.api_name.startswith("false") for fn in fns.values())  # the unnamed ones too
    row = {"index": [0, 0], "value": "adam", "row_value": ["adam", "Administration", "–", "nie"], "selected": True}
    before = [(u["name"], u["role"], tuple(u["groups"])) for u in pw_portal.ctx.users.list()]
    with login(pw_portal, "sam") as sam:
        for index, fn in fns.items():
            name = fn.fn.__name__
            session = tab("samusers")
            r = sam.post("gradio_api/queue/join", json={
                "data": USER_FNS[name], "fn_index": index, "session_hash": session, "trigger_id": None,
                "event_data": row if name == "select_user" else None})
            assert r.status_code == 200, (name, r.text)
            status, messages = stream(sam, f"session_hash={session}")
            done = messages[-1]
            text = json.dumps(done, ensure_ascii=False)
            if name == "users_on_load":  # the page load: quietly empty
                assert done["success"] and done["output"]["data"][0]["data"] == [], (index, text)
            else:
                assert done["success"] is False and "Keine Berechtigung" in text, (index, name, text)
            assert "adam" not in text.replace('"value": "adam"', "") and "mayor" not in text, (index, name, text)
    assert [(u["name"], u["role"], tuple(u["groups"])) for u in pw_portal.ctx.users.list()] == before


# -- Mein Konto exists only where the portal keeps passwords --------------------------------------------
@pytest.mark.parametrize("fixture", ["hdr_portal", "open_portal"])
def test_without_password_login_there_is_no_password_change(request, fixture):
    portal = request.getfixturevalue(fixture)
    names = {fn.api_name for fn in portal.server.demo.fns.values()}
    assert "change_password" not in names
    assert not any(getattr(fn.fn, "__name__", "") == "change_password" for fn in portal.server.demo.fns.values())
