"""Red team: departments over the real portal's HTTP/gradio API.

Two departments (personalamt reads "personalakten", bauamt reads "bauakten"), a collection for
everyone ("allgemein"), and three staff users: petra (personalamt), bob (bauamt), nora (neither),
plus a trainer in each department. For every door a user must never receive one character of a
collection they may not read: no passage text, title, file name, snippet, page, document id or
score – also not through crafted collection names, another user's chat id or a link from before a
revoke. Each test also checks the positive case, so a door that shows nothing at all cannot pass.
"""
from __future__ import annotations


import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from docx_files import docx_text
from departments import DEPT_PASSWORD, DEPT_QUESTIONS
from gradio_client import Client
from gradio_client.exceptions import AppError

pytestmark = pytest.mark.integration

Q_BAU = DEPT_QUESTIONS["bauakten"]
Q_PERS = DEPT_QUESTIONS["personalakten"]
REFUSAL = "keine Informationen"


def client(portal, user: str) -> Client:
    c = Client(portal.url, auth=(user, DEPT_PASSWORD), verbose=False, download_files=False)
    c.predict(api_name="/session")  # the page load: narrows the filter to the user's collections
    return c


@contextmanager
def http(portal, user: str | None = None) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=portal.url, follow_redirects=False, timeout=30) as c:
        if user:
            assert c.post("login", data={"username": user, "password": DEPT_PASSWORD}).status_code == 200
        yield c


def ask(c: Client, question: str, collections=()) -> list:
    return c.predict(question, "extraktiv", list(collections), api_name="/ask")


def answer_text(result) -> str:
    content = result[0][-1]["content"]
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def links(text: str) -> list[str]:
    return [h.replace("&amp;", "&").split("#", 1)[0] for h in re.findall(r'href="([^"]+)"', text)]


# -- the collection filter ------------------------------------------------------------------------
@pytest.mark.parametrize("user, expected", [
    ("petra", ["allgemein", "personalakten"]), ("bob", ["allgemein", "bauakten"]), ("nora", ["allgemein"]),
    ("adam", ["allgemein", "bauakten", "personalakten"]),
])
def test_session_offers_only_readable_collections(dept_portal, user, expected):
    c = Client(dept_portal.url, auth=(user, DEPT_PASSWORD), verbose=False)
    colls = c.predict(api_name="/session")[2]
    assert [v for _, v in colls["choices"]] == expected


def test_page_configuration_names_no_collection(dept_portal):
    with http(dept_portal, "nora") as c:
        config = c.get("config").text
    assert "bauakten" not in config and "personalakten" not in config


# -- answers ---------------------------------------------------------------------------------------------
def test_members_get_their_department_answer(dept_portal):
    bob = ask(client(dept_portal, "bob"), Q_BAU)
    text = answer_text(bob)
    assert "312 Euro" in text and links(text), text
    petra = answer_text(ask(client(dept_portal, "petra"), Q_PERS))
    assert "47 Euro" in petra


@pytest.mark.parametrize("user, collection", [
    ("nora", "bauakten"), ("petra", "bauakten"), ("nora", "personalakten"), ("bob", "personalakten"),
])
def test_non_members_get_nothing_of_another_department(dept_portal, user, collection):
    question = DEPT_QUESTIONS[collection]
    result = ask(client(dept_portal, user), question)
    assert REFUSAL in answer_text(result)
    assert dept_portal.leaks(collection, result, typed=question) == []
    stored = dept_portal.server.handlers.chats
    chat = stored.get_chat(user, stored.list_chats(user)[0]["id"])
    assert dept_portal.leaks(collection, chat, typed=question) == []


@pytest.mark.parametrize("crafted", [["bauakten"], ["allgemein", "bauakten"], ["gibt-es-nicht"]])
def test_crafted_collection_names_are_refused_alike(dept_portal, crafted):
    nora = client(dept_portal, "nora")
    with pytest.raises(AppError) as err:
        ask(nora, Q_BAU, crafted)
    message = str(err.value).replace(crafted[-1], "X")
    assert dept_portal.leaks("bauakten", message, typed=Q_BAU + " ".join(crafted)) == []
    with pytest.raises(AppError) as unknown:
        ask(nora, Q_BAU, ["gibt-es-nicht"])
    assert message == str(unknown.value).replace("gibt-es-nicht", "X")  # unreadable looks like nonexistent


def test_another_users_chat_stays_closed(dept_portal):
    ask(client(dept_portal, "bob"), Q_BAU)
    bob_chat = dept_portal.server.handlers.chats.list_chats("bob")[0]["id"]
    nora = client(dept_portal, "nora")
    with pytest.raises(AppError) as err:
        nora.predict(bob_chat, api_name="/open_chat")
    assert dept_portal.leaks("bauakten", err.value) == []
    with pytest.raises(Exception):
        dept_portal.server.handlers.open_chat(_request(dept_portal, "nora"), bob_chat)


# -- documents and links ---------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ["doc/{id}", "doc/{id}/text", "doc/{id}/original"])
def test_a_signed_link_opens_nothing_without_the_right(dept_portal, route):
    rec = dept_portal.doc_of("bauakten")
    path = route.format(id=rec.doc_id)
    with http(dept_portal, "bob") as c:
        assert c.get(path, params={"t": dept_portal.sign(rec.doc_id, "bob")}).status_code in (200, 303)
    with http(dept_portal, "nora") as c:
        r = c.get(path, params={"t": dept_portal.sign(rec.doc_id, "nora")})
    assert r.status_code == 403 and "Kein Zugriff" in r.text
    assert dept_portal.leaks("bauakten", r.text) == [] and dept_portal.leaks("bauakten", dict(r.headers)) == []


def test_revoke_closes_links_hides_citations_and_keeps_the_answer(dept_portal):
    from assistant.access import Departments

    ctx = dept_portal.ctx
    dep = Departments(ctx.app.catalog, ctx.users, ctx.audit, ctx.app.settings)
    bob = client(dept_portal, "bob")
    before = answer_text(ask(bob, "Welche Gebühr gilt für eine Bauvoranfrage laut Gebührenliste?"))
    bau_id = dept_portal.doc_of("bauakten").doc_id
    old_links = [link for link in links(before) if bau_id in link]  # (sources from "allgemein" stay open)
    assert "312 Euro" in before and old_links
    chat_id = dept_portal.server.handlers.chats.list_chats("bob")[0]["id"]
    dep.revoke("bauakten", "bauamt", actor="test")
    try:
        with http(dept_portal, "bob") as c:
            for link in old_links:
                r = c.get(link)
                assert r.status_code == 403 and dept_portal.leaks("bauakten", r.text) == []
        bob = client(dept_portal, "bob")
        reopened = bob.predict(chat_id, api_name="/open_chat")
        text = answer_text(reopened)
        assert "312 Euro" in text  # the answer text stays the user's own
        assert not [link for link in links(text) if bau_id in link]
        rec = dept_portal.doc_of("bauakten")
        for secret in (rec.doc_id, Path(rec.source).name):  # the title may stand in the kept answer text
            assert secret not in str(reopened)
        exported = dept_portal.server.handlers.export_chat(_request(dept_portal, "bob"), chat_id)[1]
        assert "312 Euro" in exported and Path(rec.source).name not in exported and rec.doc_id not in exported
        assert "bauakten" not in [v for _, v in bob.predict(api_name="/session")[2]["choices"]]
        after = ask(bob, Q_BAU)
        assert REFUSAL in answer_text(after)
        assert dept_portal.leaks("bauakten", after[0][-1], typed=Q_BAU) == []
    finally:
        dep.grant("bauakten", "bauamt", actor="test")
    assert "312 Euro" in answer_text(ask(client(dept_portal, "bob"), Q_BAU))


def test_export_of_an_own_chat_lists_only_readable_sources(dept_portal):
    petra = client(dept_portal, "petra")
    ask(petra, Q_PERS)
    chat_id = dept_portal.server.handlers.chats.list_chats("petra")[0]["id"]
    exported = dept_portal.server.handlers.export_chat(_request(dept_portal, "petra"), chat_id)[1]
    assert "dienstvereinbarung-homeoffice.txt" in exported
    assert dept_portal.leaks("bauakten", exported) == []
    name, data = dept_portal.server.handlers.export_chat(_request(dept_portal, "petra"), chat_id, fmt="docx")
    word = docx_text(data)
    assert name.endswith(".docx") and "dienstvereinbarung-homeoffice.txt" in word
    assert dept_portal.leaks("bauakten", word) == []


# -- the trainer's doors -----------------------------------------------------------------------------
TRAINER_CALLS = [
    ("/trainer_inspect", lambda colls: (Q_BAU, "extraktiv", colls, 4, 1000, True, None, False)),
    ("/trainer_compare", lambda colls: (Q_BAU, "k", "extraktiv", "extraktiv", "extraktiv", 2, 6, colls, None)),
    ("/trainer_policy", lambda colls: (Q_BAU, "green", "extraktiv", colls, None)),
]


@pytest.mark.parametrize("api_name, args", TRAINER_CALLS)
@pytest.mark.parametrize("colls", [[], ["bauakten"], ["allgemein", "bauakten"]])
def test_trainer_views_stay_in_the_trainers_department(dept_portal, api_name, args, colls):
    tilo = client(dept_portal, "tilo")
    result = tilo.predict(*args(colls), api_name=api_name)
    assert dept_portal.leaks("bauakten", result, typed=Q_BAU + " ".join(colls)) == []
    # the same door shows the bauamt trainer their own documents
    tom = client(dept_portal, "tom")
    assert dept_portal.leaks("bauakten", tom.predict(*args([]), api_name=api_name), typed=Q_BAU)


def test_trainer_collection_choices(dept_portal):
    tilo = client(dept_portal, "tilo")
    colls = tilo.predict(None, api_name="/trainer_plans")[3]
    assert [v for _, v in colls["choices"]] == ["allgemein", "personalakten"]
    assert [v for _, v in tilo.predict(api_name="/trainer_collection_choices")["choices"]] == \
        ["allgemein", "personalakten"]


def test_projector_and_handout_hide_answers_from_other_departments(dept_portal):
    tom = client(dept_portal, "tom")
    session_update, info, _ = tom.predict("ki-kompass-starter", api_name="/trainer_session_start")
    sid, code = session_update["value"], info.split("`")[1]
    _answer, _inspect, slide = tom.predict(Q_BAU, "extraktiv", [], 4, 1000, True, sid, False,
                                           api_name="/trainer_inspect")
    assert "312 Euro" in slide  # the bauamt trainer sees the slide as shown
    for user in ("nora", "petra"):
        joined = client(dept_portal, user).predict(code, api_name="/training_join")
        assert dept_portal.leaks("bauakten", joined, typed=Q_BAU) == []
        assert "nicht lesen dürfen" in str(joined)
    assert "312 Euro" in str(client(dept_portal, "bob").predict(code, api_name="/training_join"))
    # another trainer who learns the session id may not open it at all
    with pytest.raises(AppError, match="gehört einer anderen Trainerin"):
        client(dept_portal, "tilo").predict(sid, api_name="/trainer_projector")
    # its own trainer, moved out of the bauamt since, sees projector and handout masked
    users = dept_portal.ctx.users
    users.set_groups("tom", [])
    try:
        projector = client(dept_portal, "tom").predict(sid, api_name="/trainer_projector")
        assert dept_portal.leaks("bauakten", projector, typed=Q_BAU) == [] and "nicht lesen dürfen" in projector
        handout, _status, _ = client(dept_portal, "tom").predict(sid, api_name="/trainer_session_end")
    finally:
        users.set_groups("tom", ["bauamt"])
    for path in handout["value"]:
        text = Path(path["path"] if isinstance(path, dict) else path).read_text(encoding="utf-8")
        assert dept_portal.leaks("bauakten", text, typed=Q_BAU) == [] and "nicht lesen dürfen" in text


def test_dashboard_and_feedback_lists_are_for_admins_only(dept_portal):
    nora = client(dept_portal, "nora")
    for api_name, args in (("/admin_dashboard", (30,)), ("/admin_audit", (None, "", None, None, ""))):
        with pytest.raises(AppError, match="Keine Berechtigung"):
            nora.predict(*args, api_name=api_name)


# -- helpers ---------------------------------------------------------------------------------------------
def _request(portal, user: str):
    """A gr.Request for calling a handler directly as ``user`` (password mode reads the user name)."""
    import gradio as gr

    return gr.Request(username=user)


# -- the Werkzeuge tab (summaries, plain language, drafts) ---------------------------------------------
def test_tools_offer_and_read_only_readable_documents(dept_portal):
    from ui.tools_tab import SOURCE_DOC, ToolHandlers

    nora_choices = client(dept_portal, "nora").predict(api_name="/tools_choices")
    assert dept_portal.leaks("bauakten", nora_choices) == [] and "bauakten" not in str(nora_choices)
    assert dept_portal.leaks("bauakten", client(dept_portal, "bob").predict(api_name="/tools_choices"))
    h = ToolHandlers(dept_portal.ctx)
    bau = dept_portal.doc_of("bauakten").doc_id
    # over HTTP, as an attacker sends it: the foreign id gets the notice of a document that does not exist
    nora = client(dept_portal, "nora")
    out = nora.predict(bau, "kurz", True, "extraktiv", api_name="/tool_zusammenfassung")
    assert "Dokument nicht gefunden" in out[2] and out[0] == "" and dept_portal.leaks("bauakten", out) == [], out
    for call in (lambda: list(h.summarize(_request(dept_portal, "nora"), bau, "kurz", True, "extraktiv")),
                 lambda: list(h.simplify(_request(dept_portal, "nora"), SOURCE_DOC, "", None, bau, "", False,
                                         "extraktiv"))):
        (view,) = call()  # said in plain words, as for a document that does not exist; nothing read
        assert "Dokument nicht gefunden" in view.progress and view.output_html == "" and view.run_id is None


def test_a_tool_runs_export_lists_only_sources_still_readable(dept_portal):
    """A reopened run hid a revoked source, but its export still listed it (found by an attacker's
    probe). Over the gradio API as bob: summarise a bauakten document, lose the department's
    right, export the run again; the text stays the user's own, the source is gone."""
    from assistant.access import Departments

    ctx = dept_portal.ctx
    dep = Departments(ctx.app.catalog, ctx.users, ctx.audit, ctx.app.settings)
    rec = dept_portal.doc_of("bauakten")

    def exported(c: Client) -> str:
        fd = c.predict(None, api_name="/tool_export_md_history")
        with http(dept_portal, "bob") as h:
            r = h.get(fd["value"]["url"].replace(dept_portal.url.rstrip("/"), "").lstrip("/"))
        assert r.status_code == 200, r.status_code
        return r.text

    bob = client(dept_portal, "bob")
    bob.predict(api_name="/tools_choices")
    bob.predict(rec.doc_id, "kurz", False, "extraktiv", api_name="/tool_zusammenfassung")
    from assistant.tools.history import ToolRunStore

    run_id = ToolRunStore(ctx.db).list_runs("bob")[0]["id"]
    bob.predict(api_name="/tool_history")
    bob.predict(run_id, api_name="/tool_open_run")
    before = exported(bob)
    assert "312 Euro" in before and "## Quellen" in before and rec.title in before.split("## Quellen")[1]
    dep.revoke("bauakten", "bauamt", actor="test")
    try:
        bob = client(dept_portal, "bob")
        bob.predict(api_name="/tools_choices")  # the page load fills the history list
        bob.predict(run_id, api_name="/tool_open_run")
        after = exported(bob)
    finally:
        dep.grant("bauakten", "bauamt", actor="test")
    assert "312 Euro" in after  # the run's text stays the user's own
    assert "## Quellen" not in after and rec.doc_id not in after
