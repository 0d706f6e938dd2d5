"""The Werkzeuge with the real local model (Qwen2.5-Coder-1.5B via llama.cpp): one short text per tool.

Kept short on purpose (2 shared cores): one revision pass, small output limits."""
from __future__ import annotations

import pytest

from assistant.tools.facts import added_facts, extract_facts
from assistant.tools.service import run_to_end

pytestmark = [pytest.mark.llm, pytest.mark.integration]

BESCHEID = ("Gemäß § 8 Abs. 1 der Verwaltungsgebührensatzung wird die Gebühr für die Ausstellung der Bescheinigung auf "
            "25,00 € festgesetzt. Der Betrag ist unter Angabe des Aktenzeichens innerhalb von zwei Wochen nach "
            "Bekanntgabe dieses Bescheides auf das Konto der Gemeindekasse zu überweisen.")
SATZUNG = ("# Friedhofssatzung Kempenrath\n\n## § 1 Ruhezeit\n\nDie Ruhezeit der Verstorbenen beträgt 20 Jahre; bei "
           "Aschen beträgt sie 15 Jahre.\n\n## § 2 Grabmale\n\nGrabmale müssen standsicher sein und dürfen nur von "
           "Steinmetzen errichtet werden.\n")


@pytest.fixture(scope="module")
def app(tmp_path_factory, app_factory, gguf_path):
    root = tmp_path_factory.mktemp("tools-llm")
    app = app_factory(root / "data", tools={"max_revisions": 1, "output_tokens": 200, "summary_map_tokens": 120})
    app.settings.llm.models["lokal"].model = str(gguf_path)
    docs = root / "docs"
    docs.mkdir()
    (docs / "friedhof.md").write_text(SATZUNG, encoding="utf-8")
    assert not app.ingestor.ingest([docs], collection="satzungen").failed
    return app


def test_einfache_sprache_is_easier_and_every_reported_fact_is_from_the_input(app):
    events = list(app.tools.simplify(text=BESCHEID, model="lokal"))
    res = events[-1]["result"]
    assert res.status == "ok" and res.output.strip() and res.output.strip() != BESCHEID
    assert any(e["type"] == "token" for e in events)  # streamed
    d = res.details
    assert d["readability_after"]["flesch_amstad"] > d["readability_before"]["flesch_amstad"]
    assert d["revisions"] <= 1
    source_facts = {f.text for f in extract_facts(BESCHEID)}
    assert all(f["expected"] in source_facts for f in d["facts_changed"])


def test_summary_cites_sections_of_the_document(app):
    (rec,) = app.catalog.documents()
    res = run_to_end(app.tools.summarize(rec.doc_id, length="kurz", model="lokal"))
    assert res.status == "ok" and res.output.startswith("- ")
    assert res.details["citations_valid"] >= 1
    assert all(c["doc_id"] == rec.doc_id for c in res.citations)


def test_buergerbrief_has_no_invented_facts(app):
    instruction = "Antwort an eine Bürgerin: Ihr Antrag auf einen Anwohnerparkausweis ist eingegangen und wird bearbeitet."
    res = run_to_end(app.tools.draft("buergerbrief", instruction, model="lokal"))
    assert res.status == "ok" and "Sie" in res.output
    assert added_facts(instruction, res.output) == []
