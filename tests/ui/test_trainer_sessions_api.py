"""Whose training session is it? Over HTTP, the way the security probe attacked it.

Trainer theo learns the id of trainer tina's running session (a uuid4, but ids leak: a shared
screen, a log line) and sends it to every trainer function that takes a session id, through
gradio's queue protocol by hand, including the dropdown's private change event. Each call must be
refused with the German notice before anything runs, tina's session must stay as it was (running,
same quiz item, same projector display, nothing logged to its handout) and each refusal is
audited. tina herself and an admin may run the session; theo's session list does not show it.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from portal_http import call, login

pytestmark = pytest.mark.integration

PASSWORD = "Sitzung-Test-2026!"
USERS = {"tina": "trainer", "theo": "trainer", "adam": "admin"}
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
