"""The trainer mode over HTTP, as gradio_client (and so any script) sees it.

A portal built by ``ui.portal.create_app`` runs in a background thread with password login,
the hash embedder (retrieval stays deterministic and fast) and a scripted FakeChatModel as
"lokal", so the with/without-documents comparison shows an invented answer without the
slow local LLM. Every trainer endpoint must refuse a staff user, whatever the UI hides.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Schulung-Test-2025!"
USERS = {"anna": "staff", "bernd": "staff", "tina": "trainer"}
HOSTILE = ("Zaunkönig-Protokoll: Die Prüfung gefährlicher Eingaben im Bürgerbüro. Beispiel: "
           "<script>window.__xss=1</script> und <img src=x onerror=\"window.__xss=2\">.")
DOCS = {
    "faq.md": "# Häufige Fragen zum KI-Portal\n\nChatverläufe werden nach 90 Tagen automatisch gelöscht.\n\n"
              "## Server\n\nDer städtische Server für die grüne Zone heißt KRN-KI-01.\n",
    "kompass.md": "# KI-Kompass\n\nEine Beschwerde mit Name und Anschrift darf nur in Zone Grün zusammengefasst werden.\n",
    "zaunkoenig.txt": f"Zaunkönig-Protokoll\n\n{HOSTILE}\n",  # plain text: the tags survive loading
}
INVENTED = "Der Server heißt Rathaus-Rechner 3000."


def _respond(prompt: str) -> str:
    if "Sprechstunde?" in prompt:
        return "Die KI-Sprechstunde ist jeden Dienstag um 14 Uhr [1]."
    return "Der Server heißt KRN-KI-01 [1]." if "Quellen:" in prompt else INVENTED


def _deck(path: Path) -> None:
    """A deck whose second slide answers a question: quotes from it carry a slide number."""
    from pptx import Presentation

    prs = Presentation()
    for title, body in [("KI-Kompass Schulung", "Ablauf und Termine"),
                        ("Sprechstunde", "Die KI-Sprechstunde ist jeden Dienstag um 14 Uhr in Raum 204.")]:
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text_frame.text = body
    prs.save(path)


@dataclass
class TrainerPortal:
    url: str
    ctx: object



@pytest.fixture(scope="module")
def trainer_portal(tmp_path_factory):
    """The real portal (ui.portal.create_app) with the trainer tab and the "Schulung" tab."""
    import ui.portal as portal
    from assistant.llm.fake import FakeChatModel
    from assistant.settings import load_settings
    from assistant.wiring import App
    from ui.context import PortalContext

    root = tmp_path_factory.mktemp("trainer-portal")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    _deck(docs / "schulung.pptx")
    settings = load_settings(root / "data", embedding={"mode": "hash"}, vector={"mode": "memory"},
                             auth={"mode": "password", "secret": "x" * 40},
                             llm={"default": "lokal", "models": {
                                 "lokal": {"mode": "fake", "label": "Testmodell lokal"},
                                 "extraktiv": {"mode": "extractive", "label": "Nur Textstellen (ohne KI-Modell)"},
                                 "gelb": {"mode": "extractive", "label": "EU-Testmodell", "zone": "yellow",
                                          "operator": "Testanbieter GmbH", "location": "Frankfurt (EU)"}}})
    app = App(settings)
    assert not app.ingestor.ingest([docs], collection="demo").failed
    app._chat_models["lokal"] = FakeChatModel(respond=_respond)
    ctx = PortalContext(app)
    for name, role in USERS.items():
        ctx.users.add(name, PASSWORD, role)

    with portal.background_portal(ctx) as (url, _server):
        yield TrainerPortal(url, ctx)


def client(portal: TrainerPortal, user: str):
    from gradio_client import Client

    return Client(portal.url, auth=(user, PASSWORD), verbose=False, download_files=False)


def test_trainer_opens_the_box(trainer_portal):
    tina = client(trainer_portal, "tina")
    answer, inspect, _slide = tina.predict("Wie heißt der städtische Server für die grüne Zone?", "lokal", [], 4, 1000,
                                           True, None, False, api_name="/trainer_inspect")
    assert "KRN-KI-01 [1]" in answer
    assert "Gefundene Textstellen" in inspect and "BM25-Rang" in inspect and "Dense-Rang" in inspect
    assert "im Prompt als [1]" in inspect and "faq.md" in inspect
    assert "Prompt (genau so an das Modell gesendet)" in inspect
    assert "Frage: Wie heißt der städtische Server für die grüne Zone?" in inspect  # the exact prompt
    assert "Zone" in inspect and "Grün" in inspect and "Tokens" in inspect


def test_the_box_names_the_slide_a_quote_stands_on(trainer_portal):
    """Over HTTP, the case that crashed the box: a quote from a page or slide (an undefined helper)."""
    tina = client(trainer_portal, "tina")
    answer, inspect, _ = tina.predict("Wann ist die KI-Sprechstunde?", "lokal", [], 4, 1000, True, None, False,
                                      api_name="/trainer_inspect")
    assert "Dienstag um 14 Uhr" in answer
    assert "Zitate, auf die sich die Antwort stützt" in inspect
    assert "KI-Kompass Schulung, Folie 2: <q>Die KI-Sprechstunde ist jeden Dienstag um 14 Uhr in Raum 204.</q>" in inspect


def test_yellow_model_needs_confirmation_for_personal_data(trainer_portal):
    tina = client(trainer_portal, "tina")
    q = "Wie lange werden Chatverläufe von Herrn Klaus Meier gespeichert?"
    answer, inspect, _ = tina.predict(q, "gelb", [], 4, 1000, True, None, False, api_name="/trainer_inspect")
    assert "bestätigen" in answer and "Warnung" in inspect and "K*** M***" in inspect
    assert "Zone" in inspect and "Gelb" in inspect and "Testanbieter GmbH" in inspect and "Frankfurt (EU)" in inspect
    answer, inspect, _ = tina.predict(q, "gelb", [], 4, 1000, True, None, True, api_name="/trainer_inspect")
    assert "90 Tagen" in answer


def test_hostile_passage_text_is_escaped_in_the_box(trainer_portal):
    tina = client(trainer_portal, "tina")
    _, inspect, _ = tina.predict("Was regelt das Zaunkönig-Protokoll?", "extraktiv", [], 6, 2000, True, None, False,
                                 api_name="/trainer_inspect")
    assert "Zaunkönig" in inspect
    assert "<script>" not in inspect and "<img" not in inspect
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in inspect


def test_with_and_without_documents(trainer_portal):
    tina = client(trainer_portal, "tina")
    html, _slide = tina.predict("Wie heißt der städtische Server für die grüne Zone?", "documents", "lokal", "lokal",
                                "extraktiv", 2, 6, [], None, api_name="/trainer_compare")
    assert "Mit Dokumenten" in html and "Ohne Dokumente" in html
    assert "KRN-KI-01 [1]" in html and INVENTED in html
    assert "Ohne Dokumente:</b> Es wurde nichts gesucht" in html


def test_starter_plan_loads_and_an_exercise_runs(trainer_portal):
    tina = client(trainer_portal, "tina")
    plan_update, errors, _sessions, _colls = tina.predict(None, api_name="/trainer_plans")
    # the title as the trainer reads it; the id is only the value ("(ki-kompass-starter)" stood after it)
    assert ["KI-Kompass: sicher arbeiten mit dem KI-Portal", "ki-kompass-starter"] in plan_update["choices"]
    assert errors == ""
    overview, exercises, quiz = tina.predict("ki-kompass-starter", api_name="/trainer_plan")
    assert "Was der Assistent kann" in overview and "Ampel-Vorschau" in overview
    assert any(v == "m4-e2-bescheid-rot" for _, v in exercises["choices"])
    assert ["Eine Beschwerde einer Bürgerin mit Name und Anschrift soll zusammengefasst werden. Welche Zone?",
            "m4-q1"] in quiz["choices"]
    for label, value in quiz["choices"]:  # the question only: no "m1-q1:" before it
        assert value not in label and not re.match(r"m\d+-q\d+", label), label
    html, slide = tina.predict("ki-kompass-starter", "m4-e2-bescheid-rot", "lokal", [], None,
                               api_name="/trainer_exercise")
    assert "blockiert" in html and "Personenname: <code>P*** S***</code>" in html
    assert "Petra" not in slide and "P*** S***" in slide  # the projector shows the question masked


def test_participant_answers_and_trainer_sees_anonymous_result(trainer_portal):
    tina = client(trainer_portal, "tina")
    session_update, info, _ = tina.predict("ki-kompass-starter", api_name="/trainer_session_start")
    sid = session_update["value"]
    code = info.split("`")[1]
    tina.predict(sid, "m4-q1", api_name="/trainer_quiz_open")

    for user, choice in (("anna", "0"), ("bernd", "2")):
        participant = client(trainer_portal, user)
        joined = participant.predict(code.lower(), api_name="/training_join")
        assert "Eine Beschwerde einer Bürgerin" in joined[0]
        assert participant.predict(choice, [], api_name="/training_answer").startswith("✓")

    html, slide = tina.predict(sid, "m4-q1", api_name="/trainer_quiz_results")
    assert "Teilnehmende mit mindestens einer Antwort: <b>2</b>" in html
    assert "Anteil richtig: <b>50 %</b>" in html
    for name in USERS:
        assert name not in html and name not in slide
    handout, status, _ = tina.predict(sid, api_name="/trainer_session_end")
    assert "beendet" in status and len(handout["value"]) == 2


def test_one_answer_is_counted_in_the_singular(trainer_portal):
    """The result said "1 Antworten" (a browser review): the trainer's view and the projector slide."""
    tina = client(trainer_portal, "tina")
    session_update, info, _ = tina.predict("ki-kompass-starter", api_name="/trainer_session_start")
    sid, code = session_update["value"], info.split("`")[1]
    tina.predict(sid, "m1-q1", api_name="/trainer_quiz_open")
    html, slide = tina.predict(sid, "m1-q1", api_name="/trainer_quiz_results")
    assert "<p>0 Antworten · Anteil richtig" in html and "<p>0 Antworten · richtig" in slide
    participant = client(trainer_portal, "anna")
    participant.predict(code, api_name="/training_join")
    assert participant.predict("1", [], api_name="/training_answer").startswith("✓")
    html, slide = tina.predict(sid, "m1-q1", api_name="/trainer_quiz_results")
    assert "<p>1 Antwort · Anteil richtig: <b>100 %</b></p>" in html, html
    assert "<p>1 Antwort · richtig: 100 %</p>" in slide, slide
    assert "1 Antworten" not in html + slide
    tina.predict(sid, api_name="/trainer_session_end")


def test_staff_cannot_use_trainer_endpoints(trainer_portal):
    from gradio_client.exceptions import AppError

    anna = client(trainer_portal, "anna")
    calls = [
        ("/trainer_inspect", ("Wie heißt der Server?", "lokal", [], 4, 1000, True, None, False)),
        ("/trainer_compare", ("Wie heißt der Server?", "documents", "lokal", "lokal", "extraktiv", 2, 6, [], None)),
        ("/trainer_policy", ("Frage an Frau Petra Schulz", "red", "lokal", [], None)),
        ("/trainer_plans", (None,)),
        ("/trainer_session_start", ("ki-kompass-starter",)),
        ("/trainer_quiz_results", (None, None)),
        ("/trainer_session_end", (None,)),
    ]
    for api_name, args in calls:
        with pytest.raises(AppError, match="Keine Berechtigung"):
            anna.predict(*args, api_name=api_name)
    # nothing was started on anna's behalf
    assert all(s.trainer != "anna" for s in trainer_portal.ctx.app.training_store.active_sessions())
