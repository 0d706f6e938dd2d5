"""Format detection goes by content; the extension only separates text-ish formats."""
from __future__ import annotations

import zipfile

import pytest

from ingest.errors import IngestError
from ingest.loaders import detect_format

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89" + b"\x00" * 64
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + bytes(range(256))
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def code_of(path) -> str:
    with pytest.raises(IngestError) as err:
        detect_format(path)
    return err.value.code


def test_office_formats_by_zip_members(tmp_path, make_docx, make_pptx, make_xlsx, make_odt):
    assert detect_format(make_docx(tmp_path / "a.docx")) == "docx"
    assert detect_format(make_pptx(tmp_path / "a.pptx")) == "pptx"
    assert detect_format(make_xlsx(tmp_path / "a.xlsx")) == "xlsx"
    assert detect_format(make_odt(tmp_path / "a.odt")) == "odt"


def test_office_formats_ignore_a_wrong_or_missing_extension(tmp_path, make_docx, make_pptx, make_xlsx, make_odt):
    assert detect_format(make_docx(tmp_path / "bericht.pdf")) == "docx"
    assert detect_format(make_pptx(tmp_path / "folien")) == "pptx"
    assert detect_format(make_xlsx(tmp_path / "tabelle.docx")) == "xlsx"
    assert detect_format(make_odt(tmp_path / "brief.txt")) == "odt"


def test_pdf_and_rtf_by_magic(tmp_path, make_pdf):
    assert detect_format(make_pdf(tmp_path / "x.bin", ["Text"])) == "pdf"
    assert detect_format(write(tmp_path / "alt.doc", rb"{\rtf1\ansi Hallo\par}")) == "rtf"
    assert detect_format(write(tmp_path / "bom.rtf", b"\xef\xbb\xbf" + rb"{\rtf1 x}")) == "rtf"


def test_pdf_header_after_junk_only_when_named_pdf(tmp_path):
    junk_then_pdf = b"Content-Type: application/pdf\r\n\r\n%PDF-1.4\n..."
    assert detect_format(write(tmp_path / "mail.pdf", junk_then_pdf)) == "pdf"
    assert detect_format(write(tmp_path / "notiz.txt", b"Ein PDF beginnt mit %PDF-1.7, das ist alles.")) == "txt"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("seite.html", b"<!DOCTYPE html><html><body>x</body></html>", "html"),
        ("seite.txt", b"  <!doctype html>\n<html lang=de><p>x</p></html>", "html"),  # content wins
        ("export", b"<?xml version='1.0'?>\n<html xmlns='http://www.w3.org/1999/xhtml'><body/></html>", "html"),
        ("fragment.htm", b"<p>Nur ein Absatz</p>", "html"),
        ("notiz.md", b"Kein Titel, nur Text.", "md"),
        ("notiz.txt", b"# Sieht aus wie Markdown", "txt"),  # the name decides between text formats
        ("README", b"# Titel\n\nText", "md"),
        ("liesmich", b"---\ntitle: x\n---\nText", "md"),
        ("daten.csv", b"a;b;c\n1;2;3\n", "txt"),
        ("ohne_endung", "Grüße aus dem Rathaus".encode("cp1252"), "txt"),
        ("utf16.txt", "Hallo Welt".encode("utf-16"), "txt"),
        ("kaputt.html", b"Nur Text, obwohl .html", "txt"),
        ("text.pdf", b"Das ist gar kein PDF, sondern Text.", "txt"),
    ],
)
def test_text_formats(tmp_path, name, content, expected):
    assert detect_format(write(tmp_path / name, content)) == expected


def test_head_argument_is_used(tmp_path):
    path = write(tmp_path / "x.txt", b"irrelevant")
    assert detect_format(path, head=b"%PDF-1.7\n") == "pdf"


@pytest.mark.parametrize(
    ("name", "content"),
    [("bild.gif", b"GIF89a" + bytes(64)), ("programm", ELF), ("alt.doc", OLE), ("alt.xls", OLE),
     ("archiv.gz", b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4), ("druck.ps", b"%!PS-Adobe-3.0\n")],
)
def test_unknown_binaries_are_unsupported(tmp_path, name, content):
    assert code_of(write(tmp_path / name, content)) == "unsupported"


def test_encrypted_ooxml_is_told_apart_from_legacy_doc(tmp_path):
    body = OLE + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 50 + "EncryptedPackage".encode("utf-16-le")
    assert code_of(write(tmp_path / "vertraulich.docx", body)) == "encrypted"
    assert code_of(write(tmp_path / "alt.doc", OLE + "WordDocument".encode("utf-16-le"))) == "unsupported"


def test_other_zips_are_unsupported(tmp_path):
    ods = tmp_path / "tabelle.ods"
    with zipfile.ZipFile(ods, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("content.xml", "<x/>")
    assert code_of(ods) == "unsupported"
    plain = tmp_path / "fotos.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("bild.jpg", b"\xff\xd8\xff")
    assert code_of(plain) == "unsupported"


def test_odt_without_mimetype_member_is_found_by_manifest(tmp_path, make_odt):
    src = make_odt(tmp_path / "a.odt")
    dst = tmp_path / "b.odt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename != "mimetype":
                zout.writestr(info.filename, zin.read(info))
    assert detect_format(dst) == "odt"


def test_random_bytes_named_like_a_document_are_corrupt(tmp_path):
    import random

    rng = random.Random(7)
    data = bytes(rng.randrange(256) for _ in range(4096))
    assert code_of(write(tmp_path / "bericht.docx", data)) == "corrupt"
    assert code_of(write(tmp_path / "bericht.pdf", data)) == "corrupt"
    assert code_of(write(tmp_path / "bericht.dat", data)) == "unsupported"


def test_truncated_zip_is_corrupt(tmp_path, make_docx):
    data = make_docx(tmp_path / "ok.docx").read_bytes()
    assert code_of(write(tmp_path / "halb.docx", data[: len(data) // 2])) == "corrupt"


@pytest.mark.parametrize(("name", "content"), [("bild.png", PNG), ("bild.pdf", PNG), ("foto.jpg", b"\xff\xd8\xff\xe0" + bytes(64)),
                                              ("akte.tif", b"II*\x00" + bytes(64)), ("akte", b"MM\x00*" + bytes(64))])
def test_scanned_images_are_images_whatever_their_name(tmp_path, name, content):
    assert detect_format(write(tmp_path / name, content)) == "image"


@pytest.mark.parametrize("magic", [b"7z\xbc\xaf\x27\x1c", b"\x7fELF", b"\x1f\x8b"])
def test_a_short_image_or_binary_is_unsupported_whatever_its_bytes_decode_to(tmp_path, magic):
    # 64 random bytes after the signature decode as "text" about 2 % of the time
    # (cp1252 maps most bytes to letters); the signature must decide, not the luck of the tail.
    import random

    rng = random.Random(3)
    for i in range(300):
        body = magic + bytes(rng.randrange(256) for _ in range(64))
        assert code_of(write(tmp_path / f"bild{i}.docx", body)) == "unsupported", body


@pytest.mark.parametrize("start", ["MZ-Bericht", "RIFF-Analyse", "ID3-Tags", "OggS Test", "GIF87a Notiz"])
def test_text_that_begins_like_a_printable_signature_stays_text(tmp_path, start):
    path = write(tmp_path / "notiz.txt", f"{start}: Die Bibliothek öffnet um 9 Uhr.\n".encode())
    assert detect_format(path) == "txt"


@pytest.mark.parametrize(("name", "content", "detail"), [
    ("programm", ELF, "ausführbares Programm im ELF-Format"),
    ("setup.pdf", b"MZ\x90\x00\x03\x00\x00\x00" + bytes(range(256)), "ausführbares Windows-Programm"),
    ("bild.docx", b"GIF89a" + bytes(64), "GIF-Bild"),
])
def test_unsupported_binaries_are_named_in_german(tmp_path, name, content, detail):
    with pytest.raises(IngestError) as err:
        detect_format(write(tmp_path / name, content))
    assert (err.value.code, err.value.detail) == ("unsupported", detail)


def test_a_broken_zip_is_explained_without_the_zipfile_message(tmp_path, make_docx, caplog):
    import logging

    data = make_docx(tmp_path / "a.docx").read_bytes()
    with caplog.at_level(logging.INFO, logger="ingest.loaders.detect"), pytest.raises(IngestError) as err:
        detect_format(write(tmp_path / "halb.docx", data[: len(data) // 2]))
    assert (err.value.code, err.value.detail) == ("corrupt", "ZIP-Archiv unvollständig oder beschädigt")
    assert any("halb.docx" in r.getMessage() for r in caplog.records)  # the technical reason stays in the log
