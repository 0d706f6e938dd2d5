"""Scans through the whole pipeline (hash embedder, real Tesseract): stored page confidences,
searchable OCR text cited with its page, OCR page progress, and scans indexed before OCR retried."""
from __future__ import annotations

from pathlib import Path

from evals.ocr_samples import Scan, render_scan, write_mixed_pdf

LETTER = ("Senatsverwaltung für Wirtschaft\n"
          "Liebe Open Data Community, die Koalition hat sich zum Ziel gesetzt, das Open-Data-Gesetz "
          "zu novellieren. Die Stellungnahme erbitten wir bis zum 31.03.2017.")
TYPED = "Deckblatt der Bauakte Mühlenweg 12. Die Unterlagen wurden vollständig geprüft."


def _scan(text: str):
    return render_scan(text, Scan(dpi=200, tilt_deg=0.5), seed=3)


def test_scans_are_indexed_with_page_confidences_and_found(hash_app, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    write_mixed_pdf(docs / "bauakte.pdf", TYPED, _scan(LETTER))
    _scan("Schlussabnahme der Garage am 02.06.2025 durch Herrn Jürgens.").save(docs / "abnahme.png", dpi=(200, 200))
    seen: list[str] = []
    summary = hash_app.ingestor.ingest([docs], progress=lambda done, total, name: seen.append(name))
    assert summary.failed == [] and summary.added == 2
    assert any("bauakte.pdf: Texterkennung Seite 1/1" in s for s in seen)  # page progress reaches the display
    recs = {Path(r.source).name: r for r in hash_app.catalog.documents()}
    assert set(recs["bauakte.pdf"].ocr_pages) == {2} and recs["bauakte.pdf"].ocr_pages[2] > 80
    assert recs["abnahme.png"].format == "image" and set(recs["abnahme.png"].ocr_pages) == {1}
    assert recs["bauakte.pdf"].low_confidence_pages(99.9) == [2] and recs["bauakte.pdf"].low_confidence_pages(10) == []
    hits = hash_app.retriever.search("Open Data Community Stellungnahme", k=3).hits
    assert hits[0].chunk.doc_id == recs["bauakte.pdf"].doc_id and hits[0].chunk.page == 2
    hits = hash_app.retriever.search("Schlussabnahme Garage Jürgens", k=3).hits
    assert hits[0].chunk.doc_id == recs["abnahme.png"].doc_id and hits[0].chunk.page == 1
    # a new version with a text layer only drops the page confidences
    (docs / "abnahme.png").unlink()
    write_mixed_pdf(docs / "bauakte.pdf", TYPED, _scan(""))
    hash_app.ingestor.ingest([docs], prune_under=[docs])
    assert hash_app.catalog.get(recs["bauakte.pdf"].doc_id).ocr_pages == {}


def test_a_scan_marked_needs_ocr_before_is_read_on_the_next_run(hash_app, tmp_path):
    from ingest.loaders import LoadLimits
    from ingest.loaders.isolated import make_loader
    from ingest.loaders.ocr import OcrOptions

    docs = tmp_path / "docs"
    docs.mkdir()
    path = docs / "scan.pdf"
    img = _scan(LETTER)
    img.save(path, format="PDF", resolution=200)  # an image-only PDF, as a scanner writes it
    ingestor = hash_app.ingestor
    real_loader = ingestor.loader
    ingestor.loader = make_loader(LoadLimits(ocr=OcrOptions(enabled=False)))  # as before OCR existed
    ingestor.ingest([docs])
    assert hash_app.catalog.documents()[0].status == "needs_ocr"
    ingestor.loader = real_loader
    summary = ingestor.ingest([docs])  # same file, same hash: read again because it waited for OCR
    assert summary.updated + summary.added == 1
    rec = hash_app.catalog.documents()[0]
    assert rec.status == "indexed" and set(rec.ocr_pages) == {1}
