"""The Werkzeuge service on a hash-embedder install with scripted models: the Ampel exactly as in
the chat (nothing reaches a yellow/red model before the check), whole documents, cited drafts."""
from __future__ import annotations

import pytest

from assistant.llm.fake import FakeChatModel
from assistant.tools.result import ToolError
from assistant.tools.service import run_to_end

MODELS = {
    "lokal": {"mode": "fake", "label": "Testmodell"},
    "gelb": {"mode": "fake", "label": "EU-Modell", "zone": "yellow"},
    "rot": {"mode": "fake", "label": "Großes Modell", "zone": "red"},
    "extraktiv": {"mode": "extractive", "label": "Nur Textstellen"},
}
SATZUNG = ("# Friedhofssatzung\n\n## § 1 Gebühren\n\nDie Gebühr für ein Reihengrab beträgt 900 Euro. Sie ist innerhalb "
           "von vier Wochen zu zahlen.\n\n## § 2 Ruhezeit\n\nDie Ruhezeit für Erdbestattungen beträgt 20 Jahre.\n\n"
           "## § 3 Inkrafttreten\n\nDiese Satzung tritt am 1. Januar 2025 in Kraft.\n")
PII_TEXT = "Bitte den Bescheid an Frau Petra Schulz, Lindenstraße 12, 47906 Kempenrath, in Einfache Sprache bringen."


@pytest.fixture
def app(tmp_path):
    from settings_factory import make_settings

    from assistant.wiring import App

    app = App(make_settings(tmp_path / "data", llm={"default": "lokal", "models": MODELS}))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "friedhofssatzung.md").write_text(SATZUNG, encoding="utf-8")
    assert not app.ingestor.ingest([docs], collection="satzungen").failed
    app._fakes = {}
    for key in ("lokal", "gelb", "rot"):
        app._chat_models[key] = app._fakes[key] = FakeChatModel(responses=["Sie zahlen 900 Euro."])
    return app


def doc_id(app) -> str:
    (rec,) = app.catalog.documents()
    return rec.doc_id


def test_red_model_never_sees_pasted_personal_data(app):
    res = run_to_end(app.tools.simplify(text=PII_TEXT, model="rot"))
    assert res.status == "blocked" and res.output == ""
    assert app._fakes["rot"].calls == []
    assert any("Personen" in n or "personen" in n for n in res.notices)
    assert {p["kind"] for p in res.policy["pii"]} >= {"person_name", "address"}


def test_yellow_model_warns_first_and_runs_after_confirmation(app):
    res = run_to_end(app.tools.draft("email", PII_TEXT, model="gelb"))
    assert res.status == "warn" and app._fakes["gelb"].calls == []
    res = run_to_end(app.tools.draft("email", PII_TEXT, model="gelb", confirmed=True))
    assert res.status == "ok" and len(app._fakes["gelb"].calls) == 1


def test_green_model_gets_personal_data_without_a_warning(app):
    res = run_to_end(app.tools.simplify(text=PII_TEXT, model="lokal"))
    assert res.status == "ok" and len(app._fakes["lokal"].calls) >= 1


def test_summary_of_an_internal_document_is_blocked_for_a_red_model(app):
    res = run_to_end(app.tools.summarize(doc_id(app), model="rot"))
    assert res.status == "blocked" and app._fakes["rot"].calls == []
    assert any("intern" in n for n in res.notices)


def test_summary_reads_the_whole_document_with_section_citations(app):
    app._fakes["lokal"].respond = lambda p: ("- Ein Reihengrab kostet 900 Euro Gebühr (Abschn. 1)\n"
                                             "- Die Ruhezeit für Erdbestattungen beträgt 20 Jahre (Abschn. 1)")
    res = run_to_end(app.tools.summarize(doc_id(app), length="kurz", model="lokal"))
    assert res.status == "ok"
    call = app._fakes["lokal"].calls[0]
    assert "900 Euro" in call and "1. Januar 2025" in call  # every passage read, not top-k
    assert res.details["citations_valid"] == 2 and res.citations[0]["label"] == "Abschn. 1"


def test_extractive_profile_summarises_without_a_model(app):
    res = run_to_end(app.tools.summarize(doc_id(app), length="kurz", model="extraktiv"))
    assert res.status == "ok" and res.output.startswith("- ")
    assert res.details["citations_valid"] == res.details["citations_total"] > 0


def test_simplify_a_knowledge_base_document(app):
    res = run_to_end(app.tools.simplify(doc_id=doc_id(app), model="lokal"))
    assert "Die Gebühr für ein Reihengrab beträgt 900 Euro" in app._fakes["lokal"].calls[0]
    assert res.citations[0]["doc_id"] == doc_id(app)
    dropped = {f["expected"] for f in res.details["facts_changed"]}
    assert "20 Jahre" in dropped and "900 Euro" not in dropped  # the fake kept only the fee


def test_draft_with_cited_passages_and_placeholders(app):
    app._fakes["lokal"].respond = lambda p: ("Betreff: Gebühr\n\nSehr geehrte Frau Meier,\ndie Gebühr beträgt 900 Euro [1]. "
                                             "Ihr Aktenzeichen ist Az. 77-12/2025. Zahlen Sie bis 15.02.2025 [4].")
    res = run_to_end(app.tools.draft("buergerbrief", "Antwort auf eine Frage nach der Grabgebühr", model="lokal",
                                     use_documents=True))
    assert "[1]" in res.output and "[4]" not in res.output
    assert "Meier" not in res.output and "[Name]" in res.output
    assert "77-12/2025" not in res.output and "[Aktenzeichen]" in res.output
    assert "15.02.2025" not in res.output and "[Datum]" in res.output
    assert "900 Euro" in res.output  # a fact of the source stays
    assert res.citations and res.citations[0]["cited"] is True
    assert "Quellen:" in app._fakes["lokal"].calls[0]


@pytest.mark.parametrize("call, message", [
    (lambda t: t.simplify(text="  ", model="lokal"), "Bitte einen Text"),
    (lambda t: t.simplify(text="Text", model="extraktiv"), "Sprachmodell"),
    (lambda t: t.summarize("nope", model="lokal"), "nicht gefunden"),
    (lambda t: t.summarize("nope", model="lokal", length="riesig"), "Länge"),
    (lambda t: t.draft("fax", "x", model="lokal"), "Unbekannte Art"),
    (lambda t: t.draft("email", "", model="lokal"), "Anweisung"),
])
def test_bad_input_gets_a_clear_german_error(app, call, message):
    with pytest.raises(ToolError, match=message):
        run_to_end(call(app.tools))


def test_tools_read_and_show_a_document_whose_font_splits_ligatures_joined(app, tmp_path):
    """pypdf reads "Betroff enen" where a font sets "ff" as one glyph (corpus.ligatures). The tools
    hand a document's text to the model to rewrite for people, so they hand it joined, and cite it
    joined; the index keeps pypdf's text."""
    from pdf_files import build_pdf

    broken = ("Die Betroff enen des Kormoranplans treff en sich jeden Oktober am Stadtweiher, um Konfl ikte "
              "zu defi nieren und Lösungen zu fi nden.")
    folder = tmp_path / "handbuch"
    folder.mkdir()
    (folder / "kormoranplan.pdf").write_bytes(build_pdf(["Kormoranplan\n" + "\n".join([broken] * 6)] * 3))
    assert not app.ingestor.ingest([folder], collection="satzungen").failed
    rec = next(r for r in app.catalog.documents() if r.source.endswith("kormoranplan.pdf"))
    assert "Betroff enen" in next(iter(app.catalog.iter_chunks(rec.doc_id))).text  # indexed as read

    run_to_end(app.tools.simplify(doc_id=rec.doc_id, pages=(2, 3), model="lokal"))
    prompt = app._fakes["lokal"].calls[0]
    assert "Die Betroffenen des Kormoranplans treffen sich" in prompt and "Betroff enen" not in prompt

    res = run_to_end(app.tools.draft("email", "Einladung der Betroffenen des Kormoranplans", model="lokal",
                                     use_documents=True))
    prompt = app._fakes["lokal"].calls[-1]
    assert "Lösungen zu finden" in prompt and "fi nden" not in prompt
    cit = next(c for c in res.citations if c["doc_id"] == rec.doc_id)
    assert "Konflikte" in cit["snippet"] and "Konfl ikte" not in cit["snippet"]


def test_a_confirmation_never_opens_the_red_zone(app):
    """„Trotzdem senden“ confirms a yellow-zone warning only: for a red model pasted personal data stays
    blocked, confirmed or not (the portal's confirmed events come here with confirmed=True)."""
    for events in (app.tools.simplify(text=PII_TEXT, model="rot", confirmed=True),
                   app.tools.draft("email", PII_TEXT, model="rot", confirmed=True)):
        res = run_to_end(events)
        assert res.status == "blocked" and res.output == ""
    assert app._fakes["rot"].calls == []
