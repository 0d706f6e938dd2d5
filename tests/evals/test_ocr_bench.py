"""The bench's OCR check without ../shared: a generated scan under the name of one of the corpus
scans is indexed, read by OCR and found; the missing other one is reported, not hidden."""
from __future__ import annotations

from evals.ocr_bench import SHARED_SCANS, shared_scans, summary_line
from evals.ocr_samples import Scan, render_scan

LETTER = ("Senatsverwaltung für Wirtschaft, Energie und Betriebe\n"
          "An die Open Data Community\n"
          "Liebe Open Data Community, mit der Regierungsbildung hat sich die Koalition zum Ziel gesetzt, "
          "Open Data weiter zu stärken.")


def test_shared_scans_reports_status_confidence_and_rank(hash_app, tmp_path):
    letter, image_page = list(SHARED_SCANS)
    docs = tmp_path / "docs"
    docs.mkdir()
    render_scan(LETTER, Scan(dpi=200, tilt_deg=0.4), seed=9).save(docs / letter, format="PDF", resolution=200)
    (docs / "notiz.md").write_text("# Notiz\n\nDie Kantine öffnet um 11:30 Uhr.\n", encoding="utf-8")
    hash_app.ingestor.ingest([docs])
    res = shared_scans(hash_app)
    rows = {r["file"]: r for r in res["scans"]}
    assert rows[letter]["status"] == "indexed" and rows[letter]["ocr_pages"] == 1
    assert rows[letter]["found"] and rows[letter]["rank"] == 1 and rows[letter]["confidence"] > 80
    assert rows[image_page] == {**rows[image_page], "status": "fehlt", "found": False, "rank": None}
    assert (res["searchable"], res["of"], res["ocr_documents_in_corpus"]) == (1, 2, 1)
    line = summary_line({"shared": res})
    assert "Scans durchsuchbar 1/2" in line and "NICHT gefunden" in line
