"""Text recognition quality: generated German scans read by the real Tesseract.

The pages are rendered at test time (evals.ocr_samples): German prose of a building file with
umlauts, ß, amounts, dates and file numbers, tilted, noisy and blurred like a scan, at 200 and
300 dpi, one of them turned by 90°. Character accuracy (edit distance) must reach 97 %.
"""
from __future__ import annotations

import pytest

from evals.ocr_samples import Scan, char_accuracy, german_text, normalise, render_scan, visible_text
from ingest.errors import IngestError
from ingest.loaders.ocr import OcrOptions, _text_from_data, ocr_image, ocr_pages

QUALITY_PAGES = [
    ("300 dpi, 0.8° tilt", Scan(dpi=300)),
    ("200 dpi, -1.2° tilt, serif", Scan(dpi=200, tilt_deg=-1.2, serif=True)),
    ("300 dpi, turned 90°", Scan(dpi=300, tilt_deg=0.5, rotate90=True)),
    ("200 dpi, heavier noise and blur", Scan(dpi=200, tilt_deg=1.0, noise=22.0, blur=0.9)),
]


@pytest.mark.slow
def test_german_scans_are_read_with_at_least_97_percent_character_accuracy():
    refs, jobs = {}, []
    for i, (name, scan) in enumerate(QUALITY_PAGES, 1):
        text = german_text(100 + i, sentences=12)  # half a page: enough characters, half the CI time
        refs[i] = (name, visible_text(text, scan))
        jobs.append((i, (lambda text=text, scan=scan, i=i: render_scan(text, scan, seed=i))))
    seen: list[tuple[int, int]] = []
    from ingest.loaders import ocr as ocr_module

    token = ocr_module.PROGRESS.set(lambda done, total: seen.append((done, total)))
    try:
        read = ocr_pages(jobs, OcrOptions(workers=2))
    finally:
        ocr_module.PROGRESS.reset(token)
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)  # progress: announced, then page by page
    for i, (name, ref) in refs.items():
        page = read[i]
        acc = char_accuracy(ref, page.text)
        assert acc >= 0.97, f"{name}: accuracy {acc:.4f}\n{page.text[:400]}"
        assert page.confidence > 80, name
        # the characters German needs survive as they are
        for needle in ("ß", "ä", "ö", "ü", "€"):
            if needle in ref:
                assert needle in page.text, f"{name}: {needle!r} lost"
    assert read[3].rotated in (90, 270) and all(read[i].rotated == 0 for i in (1, 2, 4))


def test_file_numbers_amounts_and_dates_come_through_exactly():
    text = ("Aktenzeichen 63-2024/0815 vom 03.11.2025\n"
            "Die Gebühr beträgt 1.234,56 € für die Straßenbaumaßnahme Größere Grünfläche.")
    page = ocr_image(render_scan(text, Scan(dpi=300, tilt_deg=0.4, noise=8.0), seed=5), OcrOptions())
    got = normalise(page.text)
    for token in ("63-2024/0815", "03.11.2025", "1.234,56", "€", "Straßenbaumaßnahme", "Größere", "Grünfläche"):
        assert token in got, (token, got)


def test_a_blank_page_and_a_photo_like_page_give_no_text():
    import numpy as np
    from PIL import Image

    blank = Image.new("L", (827, 1170), 255)
    assert ocr_image(blank).text == ""
    rng = np.random.default_rng(1)
    noise = Image.fromarray(rng.integers(0, 255, (600, 800), dtype=np.uint8), "L")  # a 'photo' of pure noise
    page = ocr_image(noise)
    assert page.text == ""  # never a page of garbage "words"


def test_ocr_switched_off_marks_the_file_instead_of_reading_it():
    with pytest.raises(IngestError) as err:
        ocr_pages([(1, lambda: None)], OcrOptions(enabled=False))
    assert err.value.code == "needs_ocr" and "ocr.enabled" in err.value.detail


@pytest.mark.parametrize(("data", "text", "words"), [
    # two lines of one paragraph, then a second paragraph; -1 entries are layout rows, not words
    ({"text": ["", "Sehr", "geehrte", "Damen", "", "Mit"], "conf": [-1, 90, 80, 70, -1, 60],
      "block_num": [1, 1, 1, 1, 2, 2], "par_num": [1, 1, 1, 1, 1, 1], "line_num": [1, 1, 1, 2, 1, 1]},
     "Sehr geehrte\nDamen\n\nMit", 4),
    ({"text": ["", " "], "conf": [-1, 95], "block_num": [1, 1], "par_num": [1, 1], "line_num": [1, 1]}, "", 0),
    ({"text": []}, "", 0),
])
def test_text_from_tesseract_table(data, text, words):
    got, conf, n = _text_from_data(data)
    assert (got, n) == (text, words)
    if words:
        assert conf == pytest.approx(75.0)


def test_char_accuracy_counts_edits_and_ignores_line_breaks():
    assert char_accuracy("Straße 12", "Straße\n12") == 1.0
    assert char_accuracy("Straße", "Strasse") == pytest.approx(1 - 2 / 6)
    assert char_accuracy("Verwal-\ntung", "Verwaltung") == 1.0
    assert char_accuracy("abc", "") == 0.0
