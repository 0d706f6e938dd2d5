"""Hostile, broken and oversized input: always an IngestError with the right code, never a raw exception."""
from __future__ import annotations

import logging
import os
import random
import time
import zipfile

import pytest

from ingest.errors import IngestError
from ingest.loaders import LoadLimits, load_document


def code_of(path, limits: LoadLimits | None = None) -> str:
    with pytest.raises(IngestError) as err:
        load_document(path, limits or LoadLimits())
    return err.value.code


# --- size and emptiness ----------------------------------------------------------------


def test_empty_file(tmp_path):
    (tmp_path / "leer.pdf").touch()
    assert code_of(tmp_path / "leer.pdf") == "empty"


def test_file_with_only_whitespace_is_empty(tmp_path):
    (tmp_path / "leer.txt").write_text(" \n\n\t \n", encoding="utf-8")
    assert code_of(tmp_path / "leer.txt") == "empty"


def test_docx_without_text_is_empty(tmp_path):
    import docx

    docx.Document().save(tmp_path / "leer.docx")
    assert code_of(tmp_path / "leer.docx") == "empty"


def test_too_large_is_rejected_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "riesig.pdf"
    with open(path, "wb") as fh:  # sparse: takes no disk space
        fh.truncate(LoadLimits().max_bytes + 1)

    def no_reading(*args, **kwargs):
        raise AssertionError("content must not be read for an oversized file")

    monkeypatch.setattr("ingest.loaders.detect_format", no_reading)
    assert code_of(path) == "too_large"


def test_custom_size_limit(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("x" * 2000, encoding="utf-8")
    assert code_of(path, LoadLimits(max_bytes=1000)) == "too_large"
    assert load_document(path, LoadLimits(max_bytes=5000)).blocks


def test_too_many_pages_pdf_and_slides(tmp_path, make_pdf, make_pptx):
    pdf = make_pdf(tmp_path / "dick.pdf", ["Eine Seite mit ausreichend Text für den Test."] * 3)
    assert code_of(pdf, LoadLimits(max_pages=2)) == "too_many_pages"
    assert load_document(pdf, LoadLimits(max_pages=3)).page_count == 3
    assert code_of(make_pptx(tmp_path / "f.pptx"), LoadLimits(max_pages=1)) == "too_many_pages"


def test_too_many_sheets(tmp_path, make_xlsx):
    assert code_of(make_xlsx(tmp_path / "t.xlsx"), LoadLimits(max_pages=2)) == "too_many_pages"


def test_directory_and_missing_file(tmp_path):
    assert code_of(tmp_path) == "unsupported"
    assert code_of(tmp_path / "gibt-es-nicht.pdf") == "corrupt"


# --- broken and disguised files ----------------------------------------------------------


def test_truncated_pdf_is_corrupt(tmp_path, make_pdf):
    data = make_pdf(tmp_path / "ok.pdf", ["Ein ganz normaler Text auf Seite eins."] * 2).read_bytes()
    for frac in (0.1, 0.5, 0.9):
        broken = tmp_path / f"abgebrochen-{frac}.pdf"
        broken.write_bytes(data[: int(len(data) * frac)])
        assert code_of(broken) == "corrupt", frac


def test_pdf_header_then_garbage_is_corrupt(tmp_path):
    path = tmp_path / "muell.pdf"
    path.write_bytes(b"%PDF-1.7\n" + random.Random(1).randbytes(3000))
    assert code_of(path) == "corrupt"


def test_random_bytes_named_docx_is_corrupt(tmp_path):
    path = tmp_path / "bericht.docx"
    path.write_bytes(random.Random(0).randbytes(5000))  # seeded: os.urandom may start with "MZ" or gzip's magic
    assert code_of(path) == "corrupt"


def test_zip_named_docx_without_word_parts(tmp_path):
    path = tmp_path / "bericht.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "kein Word")
    assert code_of(path) == "unsupported"


def test_docx_with_broken_xml_is_corrupt(tmp_path, make_docx):
    good = make_docx(tmp_path / "gut.docx")
    bad = tmp_path / "kaputt.docx"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "word/document.xml":
                data = data[: len(data) // 2]
            zout.writestr(info.filename, data)
    assert code_of(bad) == "corrupt"


def test_a_broken_png_is_corrupt(tmp_path):
    path = tmp_path / "foto.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(500))
    assert code_of(path) == "corrupt"


def test_encrypted_pdf(tmp_path, make_pdf):
    path = make_pdf(tmp_path / "geheim.pdf", ["Vertraulicher Inhalt"], encrypt_password="geheim")
    with pytest.raises(IngestError) as err:
        load_document(path)
    assert err.value.code == "encrypted"
    assert err.value.status == "failed"
    assert "passwortgeschützt" in str(err.value)  # German first for the person reading it


def test_password_protected_odt(tmp_path):
    path = tmp_path / "geheim.odt"
    manifest = ('<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
                '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
                '<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="x"/>'
                "</manifest:file-entry></manifest:manifest>")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
        zf.writestr("content.xml", os.urandom(2000))
        zf.writestr("META-INF/manifest.xml", manifest)
    assert code_of(path) == "encrypted"


def test_mislabelled_docx_loads_by_content_with_warning(tmp_path, make_docx, caplog):
    path = make_docx(tmp_path / "bericht.pdf")
    with caplog.at_level(logging.WARNING):
        doc = load_document(path)
    assert doc.format == "docx"
    assert any(b.text == "1 Allgemeines" for b in doc.blocks)
    assert any("Dateiendung" in r.getMessage() and "bericht.pdf" in r.getMessage() for r in caplog.records)


def test_rtf_saved_as_doc_loads(tmp_path):
    path = tmp_path / "brief.doc"
    path.write_bytes(rb"{\rtf1\ansi Sehr geehrte Damen und Herren,\par}")
    assert load_document(path).format == "rtf"


def test_text_that_turns_into_garbage_is_corrupt(tmp_path):
    path = tmp_path / "halb.txt"
    path.write_bytes(b"Ordentlicher Anfang. " * 500 + bytes(range(0, 32)) * 2000)
    assert code_of(path) == "corrupt"


def test_unexpected_parser_exception_becomes_corrupt(tmp_path, monkeypatch):
    import ingest.loaders.text as text_loader

    def explode(path, limits):
        raise KeyError("interner Fehler")

    monkeypatch.setattr(text_loader, "load_text", explode)
    path = tmp_path / "a.txt"
    path.write_text("Inhalt", encoding="utf-8")
    with pytest.raises(IngestError) as err:
        load_document(path)
    assert err.value.code == "corrupt"
    assert "KeyError" in err.value.detail


# --- zip bombs ----------------------------------------------------------------------------


def test_zip_bomb_member_ratio(tmp_path):
    path = tmp_path / "bombe.docx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
        zf.writestr("word/media/null.bin", b"\x00" * (50 * 1024 * 1024))
    assert path.stat().st_size < 1024 * 1024
    started = time.perf_counter()
    assert code_of(path) == "zip_bomb"
    assert time.perf_counter() - started < 2  # judged from the directory, nothing inflated


def test_zip_bomb_total_size(tmp_path, make_docx):
    path = make_docx(tmp_path / "normal.docx")
    assert code_of(path, LoadLimits(max_unzipped_bytes=10_000)) == "zip_bomb"
    assert load_document(path).blocks


def test_small_members_with_high_ratio_are_fine(tmp_path, make_xlsx):
    # Repetitive XML compresses >200:1 but is harmless below the 10 MB member threshold.
    path = make_xlsx(tmp_path / "t.xlsx")
    assert load_document(path, LoadLimits(max_zip_ratio=1.0)).format == "xlsx"


# --- hostile file names ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "-rf ..; ü ß.txt",
        "--help.txt",
        "$(reboot) `id` & | > .txt",
        "zeile\numbruch.txt",
        "a" * 200 + ".txt",
        "  leerzeichen  .txt",
        "Ämter Übersicht 'zitat' \"doppelt\".txt",
    ],
)
def test_hostile_names_just_work(tmp_path, name):
    path = tmp_path / name
    path.write_text("Inhalt der Datei mit Namen.", encoding="utf-8")
    doc = load_document(path)
    assert doc.blocks[0].text == "Inhalt der Datei mit Namen."
    assert "\n" not in doc.title


def test_hostile_name_title_fallback_is_one_line(tmp_path):
    import docx

    d = docx.Document()
    d.add_paragraph("x" * 300 + ".")  # first paragraph far too long to be a title
    d.save(tmp_path / "pro\ntokoll_2025.docx")
    doc = load_document(tmp_path / "pro\ntokoll_2025.docx")
    assert doc.title and "\n" not in doc.title and len(doc.title) <= 200
