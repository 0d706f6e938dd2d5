"""`kiportal policy check` and `kiportal ask` through click's CliRunner on a hash-embedder install."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from pdf_files import build_pdf, sized_lines

from ui.cli import cli

DOCS = {
    "faq.md": "# FAQ KI-Portal\n\nChatverläufe werden nach 90 Tagen automatisch gelöscht.\n",
    "server.md": "# Server\n\nDer städtische Server für die grüne Zone heißt KRN-KI-01.\n",
    "merkblatt.md": "# Merkblatt\n\nVor der Nutzung in der gelben Zone Namen durch [PERSON 1] ersetzen.\n",
}
MODELS = {
    "lokal": {"mode": "local", "label": "Lokales Modell"},
    "extraktiv": {"mode": "extractive", "label": "Nur Textstellen"},
    "rot": {"mode": "openai", "label": "Großes Modell", "zone": "red", "operator": "Anbieter X",
            "location": "USA", "base_url": "http://127.0.0.1:9/never-called"},
}


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")
    monkeypatch.setenv("KIPORTAL_LLM__MODELS", json.dumps(MODELS))
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")

    def invoke(*args):
        return CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), *args], obj={})

    res = invoke("ingest", str(docs), "--json")
    assert res.exit_code == 0, res.output
    return invoke


def test_policy_check_json_red_model_blocks_personal_data_and_removes_internal_passages(run):
    res = run("policy", "check", "--model", "rot", "--json",
              "Fasse den Bescheid an Frau Petra Schulz, Lindenstraße 12, 47906 Kempenrath, zusammen. Welcher Server?")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["action"] == "block" and data["zone"] == "red" and data["model"] == "rot"
    assert data["operator"] == "Anbieter X" and data["location"] == "USA" and data["model_called"] is False
    assert {"person_name", "address"} <= {d["kind"] for d in data["pii"]}
    assert "Petra" not in res.stdout and "Lindenstraße" not in res.stdout  # masked values only
    assert data["passages"] and data["removed"] == len(data["passages"])
    assert data["removed_by_class"] == {"intern": len(data["passages"])}
    assert data["allowed_classifications"] == ["oeffentlich"]


def test_policy_check_green_allows_and_prints_for_people(run):
    res = run("policy", "check", "--model", "lokal", "--json", "Wie heißt der städtische Server?")
    data = json.loads(res.stdout)
    assert data["action"] == "allow" and data["pii"] == [] and all(p["allowed"] for p in data["passages"])
    res = run("policy", "check", "--zone", "yellow", "Gliedere den Widerspruch von Herrn Klaus Meier, geboren am 03.04.1961.")
    assert res.exit_code == 0, res.output
    assert "Warnung" in res.stdout and "Personenname: K*** M***" in res.stdout and "kein Modell" in res.stdout
    res = run("policy", "check", "--model", "nein", "Frage?")
    assert res.exit_code != 0 and "Unbekanntes Modell" in res.output


def test_ask_json_with_the_extractive_model(run):
    res = run("ask", "--model", "extraktiv", "--json", "Wie lange werden Chatverläufe gespeichert?")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert "90 Tagen" in data["answer"] and not data["refused"]
    assert data["citations"][0]["source"].endswith("faq.md") and data["mode"] == "extractive"
    assert data["zone"] == "green" and data["policy"]["action"] == "allow"
    assert "passages" not in data and "prompt" not in data  # only with --trace
    traced = json.loads(run("ask", "-m", "extraktiv", "--json", "--trace", "Wie lange werden Chatverläufe gespeichert?").stdout)
    assert traced["passages"][0]["bm25_rank"] is not None and "Quellen:" in traced["prompt"]


def test_ask_goes_through_the_ampel(run):
    # the red model is never reached: the question carries personal data
    res = run("ask", "--model", "rot", "--json", "Fasse den Bescheid an Frau Petra Schulz, Lindenstraße 12, zusammen.")
    data = json.loads(res.stdout)
    assert data["refused"] and data["policy"]["action"] == "block" and "nicht gesendet" in data["answer"]


def test_ask_batch_one_line_per_question_and_human_output(run, tmp_path):
    qfile = tmp_path / "fragen.txt"
    qfile.write_text("Wie lange werden Chatverläufe gespeichert?\n\nWie heißt der städtische Server?\n", encoding="utf-8")
    res = run("ask", "-m", "extraktiv", "--batch", str(qfile), "--json")
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert [x["question"] for x in lines] == ["Wie lange werden Chatverläufe gespeichert?", "Wie heißt der städtische Server?"]
    assert "KRN-KI-01" in lines[1]["answer"]
    res = run("ask", "-m", "extraktiv", "--trace", "Wie heißt der städtische Server?")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert out.startswith("Modell: Grün · Nur Textstellen")
    assert "KRN-KI-01" in out and "Quellen:\n  [1] Server (server.md)" in out
    assert "### Blick unter die Haube" in out and "| BM25 |" in out
    assert run("ask").exit_code != 0


def test_policy_models_lists_zone_operator_location_and_roles(run):
    lines = [json.loads(x) for x in run("policy", "models", "--json").stdout.splitlines()]
    assert [x["key"] for x in lines] == ["lokal", "extraktiv", "rot"]  # green first, default first among them
    red = lines[-1]
    assert (red["zone"], red["operator"], red["location"], red["may_see"]) == ("red", "Anbieter X", "USA", ["oeffentlich"])
    assert lines[0]["default"] is True
    human = run("policy", "models").stdout
    assert "* lokal" in human and "  rot          Rot      Großes Modell" in human and "Anbieter X · USA" in human


def test_ask_names_a_pdf_source_by_its_cover_headline(run, tmp_path):
    """The passages are indexed with the PDF's first line ("Herausgeber:"); the sources name the headline."""
    folder = tmp_path / "richtlinien"
    folder.mkdir()
    cover = sized_lines([(10, "Herausgeber:"), (26, "Richtlinie Kormoranzählung"), (16, "Zählung am Stadtweiher")])
    body = "Die Kormoranzählung am Stadtweiher findet jeden Oktober statt und dauert zwei Tage.\n" * 12
    (folder / "kormoran.pdf").write_bytes(build_pdf([cover, body]))
    assert run("ingest", str(folder)).exit_code == 0
    res = run("ask", "-m", "extraktiv", "Wann findet die Kormoranzählung am Stadtweiher statt?")
    assert res.exit_code == 0, res.output
    sources = res.stdout.split("Quellen:\n", 1)[1]
    assert re.search(r"\[\d\] Richtlinie Kormoranzählung – Zählung am Stadtweiher \(kormoran\.pdf, Seite \d\)", sources)
    assert "Herausgeber" not in sources
