"""Scanned files through the real loaders: mixed PDFs, images, multi-page TIFF, bad and huge images.

Pages are short (a few lines) so each OCR costs about a second; the quality itself is measured
in test_ocr.py.
"""
from __future__ import annotations

import struct
import time
import zlib

import pytest

from evals.ocr_samples import Scan, normalise, render_scan, write_mixed_pdf
from ingest.errors import IngestError
from ingest.loaders import LoadLimits, load_document
from ingest.loaders.detect import detect_format
from ingest.loaders.ocr import OcrOptions

TYPED = ("Stadt Kempenrath – Bauordnungsamt\n"
         "Die Baugenehmigung für das Grundstück Mühlenweg 12 wird hiermit erteilt. "
         "Die Gebühr von 312,40 € ist innerhalb von vier Wochen zu zahlen.")
SCANNED = ("Anlage: Stellungnahme des Umweltamts\n"
           "Gegen die Fällung der Rotbuche auf dem Flurstück 751/1 bestehen keine Bedenken.\n"
           "Aktenzeichen 67-2025/0412, Kempenrath, 14.03.2025")
SECOND = "Seite zwei der Akte: Die Schlussabnahme erfolgte am 02.06.2025 durch Herrn Jürgens."


def scan(text: str, **kw):
    return render_scan(text, Scan(**{"dpi": 200, "tilt_deg": 0.6, **kw}), seed=len(text))


def texts_by_page(doc) -> dict[int, str]:
    out: dict[int, str] = {}
    for b in doc.blocks:
        out[b.page] = normalise(out.get(b.page, "") + " " + b.text)
    return out


def test_mixed_pdf_keeps_the_text_layer_and_reads_the_scanned_page(tmp_path):
    path = write_mixed_pdf(tmp_path / "bauakte.pdf", TYPED, scan(SCANNED))
    doc = load_document(path)
    pages = texts_by_page(doc)
    assert doc.format == "pdf" and doc.page_count == 2
    assert normalise(TYPED.split("\n", 1)[1]) in pages[1]  # page 1: its text layer, exactly
    assert "Rotbuche" in pages[2] and "67-2025/0412" in pages[2] and "Umweltamts" in pages[2]
    conf = dict(doc.ocr_pages)
    assert set(conf) == {2} and conf[2] > 80  # only the scanned page was read by OCR


def test_mixed_pdf_without_ocr_keeps_the_text_page_only(tmp_path):
    path = write_mixed_pdf(tmp_path / "bauakte.pdf", TYPED, scan(SCANNED))
    doc = load_document(path, LoadLimits(ocr=OcrOptions(enabled=False)))
    assert {b.page for b in doc.blocks} == {1} and doc.ocr_pages == ()


def test_multi_page_tiff_is_a_document_with_one_page_per_frame(tmp_path):
    path = tmp_path / "akte.tif"
    first, second = scan(SCANNED), scan(SECOND, rotate90=True)
    first.save(path, save_all=True, append_images=[second], compression="tiff_deflate", dpi=(200, 200))
    assert detect_format(path) == "image"
    doc = load_document(path)
    pages = texts_by_page(doc)
    assert doc.format == "image" and doc.page_count == 2 and doc.page_kind == "page"
    assert "Rotbuche" in pages[1] and "Schlussabnahme" in pages[2] and "Jürgens" in pages[2]
    assert [p for p, _ in doc.ocr_pages] == [1, 2]
    assert doc.title.startswith("Anlage")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_png_and_jpeg_scans_are_read(tmp_path, fmt):
    path = tmp_path / f"scan.{fmt.lower()}"
    scan(SCANNED).save(path, format=fmt, dpi=(200, 200))
    doc = load_document(path)
    assert "Flurstück 751/1" in texts_by_page(doc)[1]


def test_a_scan_renamed_to_pdf_is_still_read_as_an_image(tmp_path):
    path = tmp_path / "scan.pdf"
    scan(SECOND).save(path, format="PNG")
    assert load_document(path).format == "image"


@pytest.mark.parametrize(("name", "data"), [
    ("kaputt.png", b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 2),
    ("kaputt.jpg", b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + bytes(300)),
    ("kaputt.tif", b"II*\x00" + b"\xff" * 64),
])
def test_a_corrupt_image_fails_with_a_clear_error(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(IngestError) as err:
        load_document(path)
    assert err.value.code == "corrupt" and "Bild" in str(err.value)


def test_a_truncated_scan_fails_instead_of_reading_half(tmp_path):
    path = tmp_path / "halb.png"
    scan(SECOND).save(path, format="PNG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError) as err:
        load_document(path)
    assert err.value.code == "corrupt"


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares ``width``×``height`` pixels: a decompression bomb's header."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


def test_an_oversized_image_is_refused_from_its_header_before_decoding(tmp_path):
    path = tmp_path / "riesig.png"
    path.write_bytes(_png_header_only(60_000, 60_000))  # 3.6 billion pixels in 100 bytes
    with pytest.raises(IngestError) as err:
        load_document(path)
    assert err.value.code == "too_large" and "Pixel" in str(err.value)
    path.write_bytes(_png_header_only(4000, 3000))
    with pytest.raises(IngestError) as err:  # the limit is a setting
        load_document(path, LoadLimits(max_image_pixels=10_000_000))
    assert err.value.code == "too_large"


def test_an_oversized_frame_deep_in_a_tiff_fails_the_file_before_any_ocr(tmp_path):
    from PIL import Image

    path = tmp_path / "akte.tif"
    small = Image.new("L", (200, 200), 255)
    big = Image.new("1", (5000, 4000), 1)  # 20 MP, over a 10 MP limit
    small.save(path, save_all=True, append_images=[small, big], compression="tiff_deflate")
    with pytest.raises(IngestError) as err:
        load_document(path, LoadLimits(max_image_pixels=10_000_000))
    assert err.value.code == "too_large" and "Bild 3" in str(err.value)


def test_images_are_refused_when_ocr_is_off(tmp_path):
    path = tmp_path / "scan.png"
    scan(SECOND).save(path, format="PNG")
    with pytest.raises(IngestError) as err:
        load_document(path, LoadLimits(ocr=OcrOptions(enabled=False)))
    assert err.value.code == "needs_ocr" and err.value.status == "needs_ocr"


def test_the_worker_reports_ocr_progress_and_gives_each_page_time(tmp_path, private_tmp):
    from ingest.loaders.isolated import IsolatedLoader

    path = tmp_path / "akte.tif"
    scan(SECOND).save(path, save_all=True, append_images=[scan(SCANNED)], dpi=(200, 200))
    # the file's own limit must lie between the moment the worker announces the OCR pages and the
    # end of reading them; a fixed second did not on a fast machine (two pages in 1.15 s, so the
    # stingy reader below sometimes finished in time), so it is taken from this machine's own read.
    # Close to the announcement, not halfway: the machine's speed changes between the probe and the
    # reads (a full run once read twice as fast as the probe); the reads below must be 3x faster to
    # finish in time, and announcing takes a fraction of it
    marks: list[float] = []
    probe = IsolatedLoader(LoadLimits(ocr=OcrOptions(seconds_per_page=60.0)), timeout_s=300.0)
    try:
        t0 = time.monotonic()
        probe(path, progress=lambda done, total: marks.append(time.monotonic() - t0))
        limit = marks[0] + 0.3 * (time.monotonic() - t0 - marks[0])
    finally:
        probe.close()
    seen: list[tuple[int, int]] = []
    # the limit alone would not do for two OCR pages; 60 s per announced page does
    loader = IsolatedLoader(LoadLimits(ocr=OcrOptions(seconds_per_page=60.0)), timeout_s=limit)
    try:
        doc = loader(path, progress=lambda done, total: seen.append((done, total)))
        assert seen == [(0, 2), (1, 2), (2, 2)] and doc.page_count == 2
        pid = loader.worker_pid
        stingy = IsolatedLoader(LoadLimits(ocr=OcrOptions(seconds_per_page=0.0)), timeout_s=limit)
        try:
            with pytest.raises(IngestError) as err:  # without the per-page time the limit holds
                stingy(path)
            assert err.value.code == "timeout"
            assert stingy.worker_pid is None
        finally:
            stingy.close()
        assert loader.worker_pid == pid  # the other worker was not touched
        capped = IsolatedLoader(LoadLimits(ocr=OcrOptions(seconds_per_page=60.0, max_file_seconds=0.0)), timeout_s=limit)
        try:
            with pytest.raises(IngestError) as err:  # the ceiling holds, however many pages are announced
                capped(path)
            assert err.value.code == "timeout" and "Texterkennung: " in str(err.value) and "von 2 Seiten gelesen" in str(err.value)
        finally:
            capped.close()
    finally:
        loader.close()
    # two workers were killed in the middle of a page: their page images went with them
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("pages, per_page, ceiling, seconds", [
    (2, 20.0, 10800.0, 40.0),
    (2000, 20.0, 10800.0, 10800.0),  # a hostile 2,000-page scan: 3 hours, not 11
    (0, 20.0, 10800.0, 0.0),
    (5, 0.0, 10800.0, 0.0),
    (5, 20.0, 0.0, 0.0),
])
def test_ocr_allowance_grows_with_the_pages_up_to_a_ceiling(pages, per_page, ceiling, seconds):
    from ingest.loaders.ocr import allowance
    assert allowance(pages, OcrOptions(seconds_per_page=per_page, max_file_seconds=ceiling)) == seconds


def test_an_upload_is_read_by_ocr_once_for_the_check_and_the_index(tmp_path, monkeypatch):
    from ingest.loaders import ocr as ocr_module
    from ingest.loaders.isolated import make_loader

    path = tmp_path / "scan.png"
    scan(SECOND).save(path, format="PNG")
    loader = make_loader(LoadLimits())
    first = loader(path)
    moved = tmp_path / "bauamt" / "scan.png"  # the checked upload moves into its collection folder
    moved.parent.mkdir()
    path.rename(moved)

    def no_second_ocr(*args, **kwargs):
        raise AssertionError("the same scan went through OCR twice")

    monkeypatch.setattr(ocr_module, "ocr_image", no_second_ocr)
    assert loader(moved) is first
    moved.write_bytes(moved.read_bytes() + b"\x00")  # other content: read again (and here: fails loudly)
    with pytest.raises(IngestError, match="OCR twice"):
        loader(moved)
