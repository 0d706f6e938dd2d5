"""The OCR part of `kiportal bench`: pages per minute on this machine, and the real scans found.

* Speed and accuracy on generated German scans (:mod:`evals.ocr_samples`, seeds the tests do
  not use): the configured number of parallel pages against one page at a time in the same
  run, so the ratio says what the parallel pages bring on these cores.
* The two scans of ``../shared/corpus/docs`` (SOURCES.tsv marks them HARD: a scanned letter
  without text layer and an image-only page) must be indexed by the bench's ingest of the
  whole corpus, read by OCR, and found by a search for what they say.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: file -> a question about its content (what a person would search for)
SHARED_SCANS = {
    "okfde_BerlinOpenData-220217.pdf": "Brief der Senatsverwaltung für Wirtschaft an die Open Data Community",
    "tsb_opendata-tests.pdf": "Ideation & Prototyping Lab digitale Werkzeuge mit Bürgerinnen erproben",
}


def ocr_speed(settings, pages: int = 6) -> dict:
    """Pages per minute (configured workers and one worker) and character accuracy."""
    from evals.ocr_samples import Scan, char_accuracy, german_text, render_scan, visible_text
    from ingest.loaders.ocr import OcrOptions, ocr_pages

    scans, refs = [], []
    for i in range(pages):
        scan = Scan(dpi=300 if i % 2 == 0 else 200, tilt_deg=(1.0 if i % 3 else -0.7), serif=bool(i % 2),
                    rotate90=(i == pages - 1))
        text = german_text(5000 + i)
        scans.append(render_scan(text, scan, seed=5000 + i))
        refs.append(visible_text(text, scan))
    o = settings.ocr
    runs = {}
    for workers in dict.fromkeys((o.workers, 1)):
        opts = OcrOptions(languages=o.languages, dpi=o.dpi, workers=workers, page_timeout_s=o.page_timeout_s, osd=o.osd)
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        read = ocr_pages([(i, (lambda im=im: im)) for i, im in enumerate(scans)], opts)
        secs = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
        accs = [char_accuracy(refs[i], read[i].text) for i in range(pages)]
        runs[workers] = {"seconds": round(secs, 1), "pages_per_min": round(60 * pages / secs, 1),
                         # CPU time (tesseract processes included) does not depend on who else uses the
                         # cores: what a page costs, and what two free cores would read per minute
                         "cpu_s_per_page": round(cpu / pages, 2),
                         "pages_per_min_2_free_cores": round(2 * 60 * pages / cpu, 1) if cpu > 0 else None,
                         "accuracy_min": round(min(accs), 4), "accuracy_mean": round(sum(accs) / len(accs), 4),
                         "confidence_mean": round(sum(p.confidence for p in read.values()) / pages, 1)}
    best = runs[o.workers]
    return {"pages": pages, "workers": o.workers, "pages_per_min": best["pages_per_min"],
            "cpu_s_per_page": best["cpu_s_per_page"], "pages_per_min_2_free_cores": best["pages_per_min_2_free_cores"],
            "pages_per_min_1_worker": runs[1]["pages_per_min"],
            "ratio_vs_1_worker": round(best["pages_per_min"] / runs[1]["pages_per_min"], 2),
            "accuracy_min": best["accuracy_min"], "accuracy_mean": best["accuracy_mean"],
            "confidence_mean": best["confidence_mean"], "runs": {str(k): v for k, v in runs.items()}}


def _cpu_seconds() -> float:
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def shared_scans(app, k: int = 5) -> dict:
    """The HARD scans of ../shared in the bench's index: status, OCR confidence, found by search."""
    by_name = {Path(r.source).name: r for r in app.catalog.documents()}
    rows = []
    for name, question in SHARED_SCANS.items():
        rec = by_name.get(name)
        row = {"file": name, "status": rec.status if rec else "fehlt", "ocr_pages": len(rec.ocr_pages) if rec else 0}
        if rec and rec.ocr_pages:
            row["confidence"] = round(sum(rec.ocr_pages.values()) / len(rec.ocr_pages), 1)
        hits = app.retriever.search(question, k=k).hits if rec and rec.status == "indexed" else []
        rank = next((i for i, h in enumerate(hits, 1) if h.chunk.doc_id == rec.doc_id), None) if rec else None
        row.update(question=question, rank=rank, found=rank is not None)
        rows.append(row)
    docs = [r for r in by_name.values() if r.ocr_pages]
    return {"scans": rows, "searchable": sum(r["found"] for r in rows), "of": len(rows),
            "ocr_documents_in_corpus": len(docs), "ocr_pages_in_corpus": sum(len(r.ocr_pages) for r in docs)}


def summary_line(ocr: dict) -> str:
    """One line for the terminal summary."""
    sp, sc = ocr.get("speed", {}), ocr.get("shared", {})
    parts = []
    if sp:
        parts.append(f"OCR: {sp['pages_per_min']} Seiten/min mit {sp['workers']} parallel "
                     f"({sp['ratio_vs_1_worker']} × eine Seite), {sp['cpu_s_per_page']} CPU-s/Seite "
                     f"(= {sp['pages_per_min_2_free_cores']} Seiten/min auf 2 freien Kernen), "
                     f"Zeichengenauigkeit min {sp['accuracy_min']:.3f}")
    if sc:
        found = ", ".join(f"{s['file']} {'Rang ' + str(s['rank']) if s['found'] else 'NICHT gefunden'}"
                          f" ({s.get('confidence', '–')} %)" for s in sc["scans"])
        parts.append(f"Scans durchsuchbar {sc['searchable']}/{sc['of']}: {found}; "
                     f"{sc['ocr_pages_in_corpus']} OCR-Seiten in {sc['ocr_documents_in_corpus']} Dokumenten")
    return " · ".join(parts)
