"""Which OCR path: pytesseract (ours) against ocrmypdf, on the same generated scans, on 2 cores.

Run once to choose the engine (docs/results.md "Texterkennung"); ocrmypdf is not a dependency
of kiportal, so this needs a venv that has it (``pip install ocrmypdf`` and Debian's
``ghostscript``)::

    python -m evals.ocr_compare --pages 6

Both paths read the same pages with the same Tesseract and German model; the figures are
character accuracy (edit distance, see :mod:`evals.ocr_samples`) and pages per minute.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evals.ocr_samples import Scan, char_accuracy, german_text, render_scan, visible_text


def sample_pages(n: int) -> list[tuple[object, str]]:
    """``n`` scans: 300 and 200 dpi alternating, tilted both ways, every fourth turned by 90°."""
    out = []
    for i in range(n):
        scan = Scan(dpi=300 if i % 2 == 0 else 200, tilt_deg=(0.9 if i % 3 else -1.2), serif=bool(i % 2),
                    rotate90=(i % 4 == 3))
        text = german_text(1000 + i)
        out.append((render_scan(text, scan, seed=i), visible_text(text, scan)))
    return out


def run_pytesseract(pages, workers: int, osd: bool = True) -> dict:
    from ingest.loaders.ocr import OcrOptions, ocr_pages

    t0 = time.perf_counter()
    got = ocr_pages([(i, (lambda im=im: im)) for i, (im, _ref) in enumerate(pages)], OcrOptions(workers=workers, osd=osd))
    secs = time.perf_counter() - t0
    accs = [char_accuracy(ref, got[i].text) for i, (_im, ref) in enumerate(pages)]
    return {"engine": f"pytesseract, {workers} Seiten parallel", "seconds": round(secs, 1),
            "pages_per_min": round(60 * len(pages) / secs, 1), "accuracy_min": round(min(accs), 4),
            "accuracy_mean": round(sum(accs) / len(accs), 4)}


def run_ocrmypdf(pages, jobs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "scan.pdf"
        first, rest = pages[0][0], [p[0] for p in pages[1:]]
        first.save(src, save_all=True, append_images=rest, resolution=300)  # Pillow writes an image-only PDF
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ocrmypdf", "-q", "-l", "deu", "--rotate-pages", "--deskew",
                        "--jobs", str(jobs), "--output-type", "pdf", "--sidecar", str(Path(tmp) / "out.txt"),
                        str(src), str(Path(tmp) / "out.pdf")], check=True)
        secs = time.perf_counter() - t0
        texts = (Path(tmp) / "out.txt").read_text(encoding="utf-8").split("\f")
    accs = [char_accuracy(ref, texts[i] if i < len(texts) else "") for i, (_im, ref) in enumerate(pages)]
    return {"engine": f"ocrmypdf --rotate-pages --deskew, --jobs {jobs}", "seconds": round(secs, 1),
            "pages_per_min": round(60 * len(pages) / secs, 1), "accuracy_min": round(min(accs), 4),
            "accuracy_mean": round(sum(accs) / len(accs), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=6)
    args = ap.parse_args()
    pages = sample_pages(args.pages)
    rows = [run_pytesseract(pages, 2), run_pytesseract(pages, 1)]
    try:
        import ocrmypdf  # noqa: F401
    except ImportError:
        rows.append({"engine": "ocrmypdf", "error": "nicht installiert"})
    else:
        rows.append(run_ocrmypdf(pages, 2))
    print(json.dumps({"pages": args.pages, "cpus": os.cpu_count(), "results": rows}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
