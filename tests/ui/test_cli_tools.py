"""`kiportal tool …` through click's CliRunner on a hash-embedder install with a scripted model:
--json objects, the Ampel's exit code, history and export (Markdown, DOCX)."""
from __future__ import annotations

import json

import pytest
from docx_files import docx_text
from click.testing import CliRunner

from assistant.llm.fake import FakeChatModel
from ui.cli import cli

MODELS = {
    "lokal": {"mode": "fake", "label": "Testmodell"},
    "rot": {"mode": "fake", "label": "Großes Modell", "zone": "red"},
    "extraktiv": {"mode": "extractive", "label": "Nur Textstellen"},
}
SATZUNG = ("# Friedhofssatzung\n\n## § 8 Ruhezeit\n\nDie Ruhezeit der Verstorbenen beträgt 20 Jahre. Die Ruhezeit von "
           "Aschen beträgt 15 Jahre.\n\n## § 18 Standsicherheit\n\nGrabmale müssen standsicher sein.\n")
BESCHEID = ("Die Gebühr wird auf 25,00 € festgesetzt. Der Betrag ist bis zum 15.03.2026 unter Angabe des Aktenzeichens "
            "Az. 20-114/2026 zu überweisen. Sollte die Zahlung nicht erfolgen, würden Säumniszuschläge erhoben werden.")


@pytest.fixture
def run(tmp_path, monkeypatch):
    from assistant.wiring import App

    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")
    monkeypatch.setenv("KIPORTAL_VECTOR__MODE", "chroma")
    monkeypatch.setenv("KIPORTAL_LLM__MODELS", json.dumps(MODELS))
    fake = FakeChatModel(respond=lambda p: (
        "1. Sie zahlen sonst mehr." if "Sätze:" in p else
        "- Die Ruhezeit der Verstorbenen beträgt 20 Jahre (Abschn. 1)" if "Ausschnitt:" in p else
        "Betreff: Ruhezeit\n\nSehr geehrter Herr Brandt,\ndie Ruhezeit für Aschen beträgt 15 Jahre [1]." if "Anweisung:" in p
        else "Sie zahlen 25,00 €.\nZahlen Sie bis zum 15.03.2026.\nSollte die Zahlung nicht erfolgen, würden Sie mehr zahlen."))
    monkeypatch.setattr(App, "chat_model", lambda self, key: None if key == "extraktiv" else fake)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "friedhof.md").write_text(SATZUNG, encoding="utf-8")
    (tmp_path / "bescheid.txt").write_text(BESCHEID, encoding="utf-8")

    def invoke(*args, input=None):
        return CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), *args], obj={}, input=input)

    assert invoke("ingest", str(docs), "--json").exit_code == 0
    invoke.tmp = tmp_path
    invoke.fake = fake
    return invoke


def _doc_id(run) -> str:
    res = run("docs", "list", "--json")
    return json.loads(res.stdout.splitlines()[0])["doc_id"]


def test_einfach_json_has_the_issue_fields_and_is_saved_and_exported(run):
    res = run("tool", "einfach", str(run.tmp / "bescheid.txt"), "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["status"] == "ok" and data["tool"] == "einfach"
    assert data["output"] == "Sie zahlen 25,00 €.\nZahlen Sie bis zum 15.03.2026.\nSie zahlen sonst mehr."
    assert data["readability_after"]["flesch_amstad"] > data["readability_before"]["flesch_amstad"]
    assert {"wiener_sachtextformel", "flesch_amstad"} <= set(data["readability_before"])
    assert [f["expected"] for f in data["facts_changed"]] == ["Az. 20-114/2026"]
    assert data["revisions"] == 1 and data["citations"] == []
    run_id = data["run_id"]

    listed = [json.loads(line) for line in run("tool", "verlauf", "--json").stdout.splitlines()]
    assert [r["id"] for r in listed] == [run_id]
    md = run("tool", "export", run_id)
    assert md.exit_code == 0 and "Az. 20-114/2026" in md.stdout and "Flesch" in md.stdout
    out = run.tmp / "x.docx"
    assert run("tool", "export", run_id, "--format", "docx", "--out", str(out)).exit_code == 0
    assert "Sie zahlen 25,00 €." in docx_text(out.read_bytes())


def test_einfach_reads_stdin_and_prints_for_people(run):
    res = run("tool", "einfach", "-", "--leicht", input=BESCHEID)
    assert res.exit_code == 0, res.output
    assert "Lesbarkeit – Flesch (Amstad):" in res.stdout and "Leichter Sprache" in res.stdout
    assert "Aktenzeichen: „Az. 20-114/2026“ → fehlt" in res.stdout


def test_red_model_with_personal_data_exits_3_and_sends_nothing(run):
    res = run("tool", "einfach", "-", "--model", "rot", "--json",
              input="Bescheid an Frau Petra Schulz, Lindenstraße 12, 47906 Kempenrath.")
    assert res.exit_code == 3
    assert json.loads(res.stdout)["status"] == "blocked" and run.fake.calls == []


def test_zusammenfassung_and_entwurf_json(run):
    doc = _doc_id(run)
    res = run("tool", "zusammenfassung", doc, "--laenge", "kurz", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["output"] == "- Die Ruhezeit der Verstorbenen beträgt 20 Jahre (Abschn. 1)"
    assert data["citations"][0]["doc_id"] == doc and data["citations_valid"] == 1

    res = run("tool", "entwurf", "--art", "buergerbrief", "Antwort zur Ruhezeit von Urnen", "--dokumente", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert "Brandt" not in data["output"] and "[Name]" in data["output"] and "15 Jahre [1]" in data["output"]
    assert data["citations"][0]["cited"] is True and data["invented_replaced"][0]["kind"] == "name"


@pytest.mark.parametrize("args, message", [
    (("tool", "zusammenfassung", "gibtsnicht"), "nicht gefunden"),
    (("tool", "einfach"), "Genau eines"),
    (("tool", "einfach", "fehlt.txt"), "nicht gefunden"),
    (("tool", "einfach", "-", "--model", "extraktiv"), "Sprachmodell"),
    (("tool", "export", "nope"), "nicht gefunden"),
])
def test_bad_input_fails_with_a_clear_message(run, args, message):
    res = run(*args, input="Text")
    assert res.exit_code != 0 and message in res.output
