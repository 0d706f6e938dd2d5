"""Whose training session is it? Over HTTP, the way the security probe attacked it.

Trainer theo learns the id of trainer tina's running session (a uuid4, but ids leak: a shared
screen, a log line) and sends it to every trainer function that takes a session id, through
gradio's queue protocol by hand, including the dropdown's private change event. Each call must be
refused with the German notice before anything runs, tina's session must stay as it was (running,
same quiz item, same projector display, nothing logged to its handout) and each refusal is
audited. tina herself and an admin may run the session; theo's session list does not show it.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest

from portal_http import call, login

pytestmark = pytest.mark.integration

PASSWORD = "Sitzung-Test-2026!"
USERS = {"tina": "trainer", "theo": "trainer", "adam": "admin", "sara": "staff", "stefan": "staff"}
PLAN = "ki-kompass-starter"
QUESTION = "Wie heißt der städtische Server für die grüne Zone?"
NOT_YOURS = "gehört einer anderen Trainerin oder einem anderen Trainer"


@dataclass
class Portal:
    url: str
    ctx: object
    server: object

    def fn_index(self, api_name: str) -> int:
        """By api_name, or by handler name for a private event (the session dropdown's change)."""
        for index, dep in self.server.demo.fns.items():
            if api_name in (dep.api_name, getattr(dep.fn, "__name__", None)):
                return index
        raise KeyError(api_name)


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    from settings_factory import make_settings

    from assistant.wiring import App
    from ui.context import PortalContext
    from ui.portal import background_portal

    root = tmp_path_factory.mktemp("trainer-sessions")
    docs = root / "docs"
    docs.mkdir()
    (docs / "server.md").write_text("# Server\n\nDer städtische Server für die grüne Zone heißt KRN-KI-01.\n",
                                    encoding="utf-8")
    app = App(make_settings(root / "data", auth={"mode": "password"}, llm={"default": "extraktiv", "models": {
        "extraktiv": {"mode": "extractive", "label": "Nur Textstellen (ohne KI-Modell)"}}}))
    assert not app.ingestor.ingest([docs], collection="demo").failed
    ctx = PortalContext(app)
    for name, role in USERS.items():
        ctx.users.add(name, PASSWORD, role)
    with background_portal(ctx) as (url, server):
        yield Portal(url, ctx, server)


def _ok(result) -> list:
    assert result["join"] == 200 and result["success"], result
    return result["output"]


def _start(portal) -> str:
    with login(portal, "tina", PASSWORD) as c:
        session_update, info, _slide = _ok(call(c, portal, "trainer_session_start", [PLAN]))
        _ok(call(c, portal, "trainer_quiz_open", [session_update["value"], "m4-q1"]))
    assert "Teilnahmecode" in info
    return session_update["value"]


def _doors(sid: str) -> list[tuple[str, list]]:
    """Every trainer function that takes a session id, with otherwise valid arguments."""
    return [
        ("pick_session", [sid]),
        ("trainer_projector", [sid]),
        ("trainer_quiz_open", [sid, "m1-q1"]),
        ("trainer_quiz_results", [sid, "m4-q1"]),
        ("trainer_session_end", [sid]),
        ("trainer_inspect", [QUESTION, "extraktiv", [], 4, 1000, True, sid, False]),
        ("trainer_compare", [QUESTION, "documents", "extraktiv", "extraktiv", "extraktiv", 2, 6, [], sid]),
        ("trainer_policy", ["Darf der Bescheid an Frau Petra Schulz ins rote Modell?", "red", "extraktiv", [], sid]),
        ("trainer_exercise", [PLAN, "m4-e2-bescheid-rot", "extraktiv", [], sid]),
    ]


def test_another_trainer_is_refused_at_every_door_and_nothing_changes(portal):
    store, audit = portal.ctx.app.training_store, portal.ctx.audit
    sid = _start(portal)
    before, logged = store.get(sid), store.entries(sid)
    assert before.current_item == "m4-q1" and before.display["kind"] == "quiz_open"
    refused_before = audit.count(action="training_refused")

    with login(portal, "theo", PASSWORD) as c:
        for door, args in _doors(sid):
            result = call(c, portal, door, args)
            assert result["success"] is False and NOT_YOURS in str(result["error"]), (door, result)
        _plans, _errors, sessions, _colls = _ok(call(c, portal, "trainer_plans", [None]))
    assert sid not in [value for _label, value in sessions["choices"]]  # theo's list holds only his own

    after = store.get(sid)
    assert after.active and after.current_item == "m4-q1" and after.display == before.display
    assert store.entries(sid) == logged  # nothing reached tina's handout
    refused = audit.entries(action="training_refused")[: len(_doors(sid))]
    assert audit.count(action="training_refused") - refused_before == len(_doors(sid))
    assert {(e["actor"], e["target"]) for e in refused} == {("theo", before.code)}


def test_the_sessions_trainer_and_an_admin_may_run_it(portal):
    store = portal.ctx.app.training_store
    sid = _start(portal)
    code = store.get(sid).code
    with login(portal, "tina", PASSWORD) as c:
        info, _slide = _ok(call(c, portal, "pick_session", [sid]))
        assert code in info
        _answer, _inspect, slide = _ok(call(c, portal, "trainer_inspect",
                                            [QUESTION, "extraktiv", [], 4, 1000, True, sid, False]))
    assert "KRN-KI-01" in slide and store.get(sid).display["kind"] == "answer"
    assert [e["kind"] for e in store.entries(sid)] == ["question"]

    with login(portal, "adam", PASSWORD) as c:
        _plans, _errors, sessions, _colls = _ok(call(c, portal, "trainer_plans", [None]))
        labels = dict((value, label) for label, value in sessions["choices"])
        assert labels[sid] == f"{code} – KI-Kompass: sicher arbeiten mit dem KI-Portal (von tina)"
        html, _slide = _ok(call(c, portal, "trainer_quiz_results", [sid, "m4-q1"]))
        assert "Teilnehmende mit mindestens einer Antwort" in html
        handout, status, _ = _ok(call(c, portal, "trainer_session_end", [sid]))
    assert "beendet" in status and len(handout["value"]) == 2
    assert not store.get(sid).active


def test_guessing_join_codes_is_counted_and_audited_then_holds_even_the_right_code_back(portal):
    """Staff sara guesses codes through the join (the one event that takes a code from the client;
    the quiz events read the code gradio keeps on the server, so a code sent to them is not used).
    Each unknown code is audited and counted. Once her free tries are used up (the rest of a guessing
    script stands in as counter rows), the right code is refused too and nothing of hers is stored,
    while stefan joins and answers with it."""
    from ui.join_codes import FREE_UNKNOWN

    store, audit, counters = portal.ctx.app.training_store, portal.ctx.audit, portal.ctx.app.login_failures
    sid = _start(portal)
    code = store.get(sid).code
    before = audit.count(action="training_code_refused")
    guesses = ["QQQQQQ", "q7m-3qx", "ZZZZZZZZ"]
    with login(portal, "sara", PASSWORD) as c:
        for guess in guesses:
            result = call(c, portal, "training_join", [guess])
            assert result["success"] is False and "Unbekannter Teilnahmecode" in str(result["error"]), result
        result = call(c, portal, "training_current", [code])  # a code sent for the server's State
        assert result["success"] is False and "Bitte zuerst mit dem Teilnahmecode" in str(result["error"])
        for _ in range(FREE_UNKNOWN):
            counters.add(["t:sara"], time.time(), 3600.0)
        result = call(c, portal, "training_join", [code])
        assert result["success"] is False and "Zu viele unbekannte Teilnahmecodes" in str(result["error"]), result
        result = call(c, portal, "training_answer", [code, "m4-q1", "0", []])
        assert result["success"] is False
    assert store.my_choice(code, "m4-q1", "sara") is None
    refused = audit.entries(action="training_code_refused", limit=4)
    assert audit.count(action="training_code_refused") - before == 4
    assert [(e["actor"], e["target"], json.loads(e["detail"])["reason"]) for e in reversed(refused)] == (
        [("sara", "QQQQQQ", "unknown"), ("sara", "Q7M3QX", "unknown"), ("sara", "ZZZZZZZZ", "unknown"),
         ("sara", "", "held_back")])
    # held back: one row a minute for the user, counting the tries, naming the codes tried
    assert json.loads(refused[0]["detail"]) == {"reason": "held_back", "attempts": 1, "codes": [code]}

    with login(portal, "stefan", PASSWORD) as c:
        joined = _ok(call(c, portal, "training_join", [code], session="stefan-tab"))
        assert "Quizfrage" in joined[1]
        _ok(call(c, portal, "training_answer", [None, None, "0", []], session="stefan-tab"))
    assert store.my_choice(code, "m4-q1", "stefan") == [0]


def test_the_trainers_views_take_no_question_longer_than_the_chat_does(portal):
    """Found by an attacker's probe: 1.9 MB questions in Blick unter die Haube, Vergleich and the Ampel
    preview kept the shared answer queue busy and went onto every participant's projector view."""
    from assistant.questions import MAX_QUESTION_CHARS

    store = portal.ctx.app.training_store
    sid = _start(portal)
    before, logged = store.get(sid).display, store.entries(sid)
    long_q = "Wie heißt der Server? " * (MAX_QUESTION_CHARS // 20)
    assert len(long_q.strip()) > MAX_QUESTION_CHARS
    doors = [("trainer_inspect", [long_q, "extraktiv", [], 4, 1000, True, sid, False]),
             ("trainer_compare", [long_q, "documents", "extraktiv", "extraktiv", "extraktiv", 2, 6, [], sid]),
             ("trainer_policy", [long_q, "red", "extraktiv", [], sid])]
    with login(portal, "tina", PASSWORD) as c:
        for door, args in doors:
            result = call(c, portal, door, args)
            assert result["success"] is False and "zu lang" in str(result["error"]), (door, result)
        ok = _ok(call(c, portal, "trainer_inspect", [long_q[:MAX_QUESTION_CHARS], "extraktiv", [], 4, 1000, True,
                                                     sid, False]))  # at the limit: answered
        assert "KRN-KI-01" in ok[0]
    assert [e["kind"] for e in store.entries(sid)] == [e["kind"] for e in logged] + ["question"]
    assert store.get(sid).display != before and long_q not in str(store.get(sid).display)


def test_a_real_case_typed_into_the_trainers_views_reaches_neither_projector_nor_handout(portal):
    """Found by an attacker's probe: the Ampel preview masked personal data in the question for the room,
    Blick unter die Haube and Vergleich showed and kept it as typed."""
    store = portal.ctx.app.training_store
    sid = _start(portal)
    question = "Wie heißt der Server für den Bescheid an Frau Petra Schulz, petra.schulz@example.org?"
    with login(portal, "tina", PASSWORD) as c:
        _ok(call(c, portal, "trainer_inspect", [question, "extraktiv", [], 4, 1000, True, sid, False]))
        shown = str(store.get(sid).display)
        _ok(call(c, portal, "trainer_compare", [question, "documents", "extraktiv", "extraktiv", "extraktiv", 2, 6,
                                                [], sid]))
        shown += str(store.get(sid).display)
        shown += str(call(c, portal, "trainer_projector", [sid])["output"])
    kept = str(store.entries(sid)[-2:])
    for text in (shown, kept):
        assert "petra.schulz@example.org" not in text and "Petra Schulz" not in text, text[:500]
    assert "Wie heißt der Server" in shown and "Wie heißt der Server" in kept
