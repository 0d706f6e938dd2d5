"""Tool runs: per-user history (owner only), audit detail without text, Markdown and DOCX export."""
from __future__ import annotations


import pytest
from docx_files import docx_text

from assistant.appdb import AppDB
from assistant.tools.export import to_docx, to_markdown
from assistant.tools.history import RunNotFound, ToolRunStore, audit_detail
from assistant.tools.result import ToolResult


@pytest.fixture
def store(tmp_path):
    return ToolRunStore(AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}"))


def result() -> ToolResult:
    return ToolResult(tool="einfach", output="Sie zahlen 900 Euro.\n- bis zum 31.03.2025", title="Gebühr <b>",
                      notices=["Bitte prüfen."], policy={"action": "allow", "pii": [{"kind": "email", "masked": "x"}]},
                      details={"readability_before": {"flesch_amstad": 20.0, "wiener_sachtextformel": 14.0},
                               "readability_after": {"flesch_amstad": 70.0, "wiener_sachtextformel": 5.0},
                               "facts_changed": [{"kind": "date", "expected": "31.03.2025", "found": None,
                                                  "label": "Datum", "status": "dropped"}]},
                      citations=[{"n": 1, "doc_id": "d", "title": "Satzung", "page": 3}])


def test_runs_belong_to_their_owner(store):
    rid = store.save("anna", result(), "Eingabe")
    assert [r["id"] for r in store.list_runs("anna")] == [rid]
    assert store.list_runs("bernd") == []
    with pytest.raises(RunNotFound):
        store.get("bernd", rid)
    with pytest.raises(RunNotFound):
        store.delete("bernd", rid)
    run = store.get("anna", rid)
    assert run["input_text"] == "Eingabe" and run["result"]["readability_after"]["flesch_amstad"] == 70.0
    store.delete("anna", rid)
    assert store.list_runs("anna") == []


def test_audit_detail_keeps_no_text():
    d = audit_detail(result())
    assert d["tool"] == "einfach" and d["pii"] == ["email"] and d["facts_changed"] == 1
    assert "900" not in str(d)


def test_markdown_and_docx_export(store):
    run = store.get("anna", store.save("anna", result()))
    md = to_markdown(run)
    assert md.startswith("# Einfache Sprache: Gebühr &lt;b&gt;\n")  # document text is data, never markup
    assert "\n- bis zum 31.03.2025\n" in md  # the output's own list stays a list
    assert "Flesch nach Amstad" in md and "„31.03.2025“ → fehlt" in md and "[1] Satzung – S. 3" in md
    text = docx_text(to_docx(run))
    assert "Sie zahlen 900 Euro." in text and "bis zum 31.03.2025" in text and "Datum: „31.03.2025“ → fehlt" in text


def test_the_markdown_export_keeps_a_hostile_documents_markup_as_text(store):
    """Found by an attacker's probe: a summarised document's tracking image and a phishing link in
    its title reached the Markdown file as they were, for any viewer to load or follow."""
    hostile = ToolResult(tool="zusammenfassung", title='Merkblatt <img src="https://evil.example/t.png">',
                         output='- Beratung montags <img src="https://evil.example/track.png?leak=1">\n'
                                "[Portal](https://evil.example/login) ![x](https://evil.example/i.png) [1]",
                         notices=["Siehe <script>x</script>"],
                         citations=[{"n": 1, "doc_id": "d", "title": "[Login](https://evil.example)", "page": 2}])
    run = store.get("anna", store.save("anna", hostile))
    md = to_markdown(run)
    for raw in ("<img", "<script", "](https://", "![x]"):
        assert raw not in md, (raw, md)
    assert "&lt;img src=" in md and "\\[Portal\\]" in md and "- [1] \\[Login\\]" in md and md.count("\n- ") >= 3
    text = docx_text(to_docx(dict(run, title="a\x01b", result=dict(run["result"], output="x\x02y"))))
    assert "xy" in text  # a character XML cannot hold is dropped, not an export failure
    # a direction override shows a name in another order ("Rechnungexe.pdf"): dropped, as in the portal
    text = docx_text(to_docx(dict(run, result=dict(run["result"], output="- Rechnung\u202efdp.exe | 70,00 Euro"))))
    assert "\u202e" not in text and "Rechnungfdp.exe | 70,00 Euro" in text
