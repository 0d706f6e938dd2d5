"""The German demo corpus: its build script, the committed files and the eval questions.

Text is extracted here directly with the format libraries (pypdf, python-pptx,
python-docx, openpyxl, striprtf, ...) so these tests do not depend on the
project's own loaders.
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from devtools import build_demo_corpus as demo_build

ROOT = Path(__file__).resolve().parents[2]
FILES_DIR = ROOT / "corpus" / "demo" / "files"
DATASET = ROOT / "evals" / "datasets" / "demo.jsonl"

PAGED = {"pdf", "pptx", "xlsx"}  # formats whose questions name a page, slide or sheet
TEXT_FORMATS = {"md", "html", "txt", "rtf"}
KINDS = {"slide", "page", "table", "statute", "fact"}
ODF_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"


# ------------------------------------------------------------------ extraction


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def extract_pages(path: Path) -> dict[int | None, str]:
    """Text per page (1-based; slide for pptx, sheet for xlsx) or {None: text}."""
    fmt = path.suffix.lstrip(".").lower()
    if fmt == "pdf":
        from pypdf import PdfReader

        return {i: page.extract_text() or "" for i, page in enumerate(PdfReader(path).pages, start=1)}
    if fmt == "pptx":
        from pptx import Presentation

        pages = {}
        for i, slide in enumerate(Presentation(path).slides, start=1):
            parts = []
            for shape in slide.shapes:
                if shape.has_text_frame:
                    parts.append(shape.text_frame.text)
                if shape.has_table:
                    parts += [cell.text for row in shape.table.rows for cell in row.cells]
            if slide.has_notes_slide:
                parts.append(slide.notes_slide.notes_text_frame.text)
            pages[i] = "\n".join(parts)
        return pages
    if fmt == "xlsx":
        from openpyxl import load_workbook

        wb = load_workbook(path)
        return {
            i: "\n".join(" | ".join("" if v is None else str(v) for v in row) for row in ws.iter_rows(values_only=True))
            for i, ws in enumerate(wb.worksheets, start=1)
        }
    if fmt == "docx":
        import docx

        document = docx.Document(str(path))
        parts = [p.text for p in document.paragraphs]
        parts += [cell.text for table in document.tables for row in table.rows for cell in row.cells]
        return {None: "\n".join(parts)}
    if fmt == "odt":
        with zipfile.ZipFile(path) as z:
            root = ElementTree.fromstring(z.read("content.xml"))
        parts = ["".join(el.itertext()) for el in root.iter() if el.tag in (ODF_TEXT + "p", ODF_TEXT + "h")]
        return {None: "\n".join(parts)}
    if fmt == "html":
        from bs4 import BeautifulSoup

        return {None: BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser").get_text("\n")}
    if fmt == "rtf":
        from striprtf.striprtf import rtf_to_text

        return {None: rtf_to_text(path.read_text(encoding="ascii"))}
    if fmt in ("md", "txt"):
        return {None: path.read_text(encoding="utf-8")}
    raise AssertionError(f"unknown format {fmt}")


# -------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sources() -> list[dict]:
    return demo_build.load_sources()


@pytest.fixture(scope="module")
def expected_names(sources) -> set[str]:
    return {name for doc in sources for name in demo_build.outputs(doc)}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo_build")
    demo_build.build(out)
    return out


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    lines = DATASET.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


# ----------------------------------------------------------------------- build


def test_sources_cover_every_format(sources):
    formats = {doc["format"] for doc in sources} | {"pdf" for doc in sources if doc.get("export_pdf")}
    assert formats == set(demo_build.FORMATS)
    assert 12 <= sum(len(demo_build.outputs(d)) for d in sources) <= 14


def test_build_renders_every_source(built, sources, expected_names):
    assert {p.name for p in built.iterdir()} == expected_names
    for doc in sources:
        path = built / doc["file"]
        fmt = doc["format"]
        if fmt == "pdf":
            from pypdf import PdfReader

            reader = PdfReader(path)
            assert len(reader.pages) == len(doc["pages"]), path.name
            assert reader.metadata.title == demo_build.pdf_text(doc["title"])
        elif fmt == "pptx":
            from pptx import Presentation

            prs = Presentation(path)
            assert len(prs.slides) == len(doc["pages"]), path.name
            assert prs.core_properties.title == doc["title"]
            for slide, page in zip(prs.slides, doc["pages"]):
                assert slide.shapes.title.text == page["title"]
                if page.get("notes"):
                    assert slide.has_notes_slide and slide.notes_slide.notes_text_frame.text.strip()
                if any(isinstance(b, dict) and "table" in b for b in page.get("body", [])):
                    assert any(shape.has_table for shape in slide.shapes), page["title"]
            if doc.get("export_pdf"):
                from pypdf import PdfReader

                assert len(PdfReader(built / doc["export_pdf"]).pages) == len(doc["pages"])
        elif fmt == "docx":
            import docx

            document = docx.Document(str(path))
            assert document.core_properties.title == doc["title"]
            assert document.tables, "the KI-Kompass needs its tables"
            assert any(p.style.name.startswith("Heading") for p in document.paragraphs)
        elif fmt == "odt":
            from odf.opendocument import load

            with zipfile.ZipFile(path) as z:
                first = z.infolist()[0]
                assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
                assert z.read("mimetype") == b"application/vnd.oasis.opendocument.text"
            load(str(path))
        elif fmt == "xlsx":
            from openpyxl import load_workbook

            assert load_workbook(path).sheetnames == [s["name"] for s in doc["sheets"]]
        elif fmt == "html":
            from bs4 import BeautifulSoup

            soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
            assert soup.title.string == doc["title"]
            assert soup.html["lang"] == "de"
        elif fmt == "rtf":
            raw = path.read_bytes()
            assert raw.startswith(b"{\\rtf1") and raw.isascii()
        text = _norm(extract_pages(path)[None if fmt not in PAGED else 1])
        assert _norm(doc["title"].split(":")[0]) in text or fmt in ("pptx", "xlsx"), path.name


def test_build_is_deterministic(built, tmp_path):
    again = demo_build.build(tmp_path)
    for path in again:
        assert path.read_bytes() == (built / path.name).read_bytes(), path.name


def test_rtf_escapes_non_ascii():
    assert demo_build.rtf_escape("Größe {x} \\ €") == "Gr\\'f6\\'dfe \\{x\\} \\\\ \\'80"
    assert demo_build.rtf_escape("→") == "\\u8594?"


def test_invalid_source_is_rejected(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "file: x.pdf\nformat: pdf\ntitle: T\nauthor: A\ndate: 2025-01-01\n"
        "pages:\n  - title: P\n    body:\n      - table:\n          header: [Zeit]\n          rows: [[10:00]]\n",
        encoding="utf-8")
    with pytest.raises(demo_build.SourceError, match="quote it"):
        demo_build.load_sources(tmp_path)


def test_committed_files_are_in_sync(built, expected_names):
    committed = {p.name for p in FILES_DIR.iterdir() if p.is_file()}
    assert committed == expected_names, "run: python -m corpus.demo.build"
    for name in sorted(expected_names):
        fresh, stored = built / name, FILES_DIR / name
        if fresh.suffix.lstrip(".") in TEXT_FORMATS:
            assert fresh.read_bytes() == stored.read_bytes(), f"{name} is stale: run python -m corpus.demo.build"
        else:
            assert {k: _norm(v) for k, v in extract_pages(fresh).items()} == {
                k: _norm(v) for k, v in extract_pages(stored).items()
            }, f"{name} is stale: run python -m corpus.demo.build"


# --------------------------------------------------------------------- dataset


def test_dataset_lines_are_valid(questions, expected_names):
    keys = {"id", "question", "expected_source", "expected_page", "key_terms", "answerable", "kind"}
    for q in questions:
        assert set(q) == keys, q.get("id")
        assert re.fullmatch(r"demo-\d{3}", q["id"]), q["id"]
        assert isinstance(q["question"], str) and q["question"].strip().endswith("?"), q["id"]
        assert q["kind"] in KINDS, q["id"]
        assert isinstance(q["answerable"], bool), q["id"]
        if q["answerable"]:
            assert q["expected_source"] in expected_names, q["id"]
            fmt = q["expected_source"].rsplit(".", 1)[1]
            if fmt in PAGED:
                assert isinstance(q["expected_page"], int) and q["expected_page"] >= 1, q["id"]
            else:
                assert q["expected_page"] is None, q["id"]
            assert 1 <= len(q["key_terms"]) <= 3, q["id"]
            assert all(isinstance(t, str) and t.strip() for t in q["key_terms"]), q["id"]
        else:
            assert q["expected_source"] is None and q["expected_page"] is None, q["id"]
            assert q["key_terms"] == [], q["id"]


def test_dataset_size_and_coverage(questions, expected_names):
    ids = [q["id"] for q in questions]
    assert len(ids) == len(set(ids)), "ids must be unique"
    assert len(questions) >= 36
    answerable = [q for q in questions if q["answerable"]]
    assert len(questions) - len(answerable) >= 6
    assert {q["expected_source"] for q in answerable} == expected_names, "every document needs a question"
    assert sum(q["kind"] == "slide" for q in answerable) >= 8
    assert sum(q["kind"] == "table" for q in answerable) >= 4


def test_key_terms_occur_on_expected_page(questions):
    cache: dict[str, dict[int | None, str]] = {}
    for q in questions:
        if not q["answerable"]:
            continue
        name = q["expected_source"]
        if name not in cache:
            cache[name] = {k: _norm(v) for k, v in extract_pages(FILES_DIR / name).items()}
        pages = cache[name]
        assert q["expected_page"] in pages, f"{q['id']}: {name} has no page {q['expected_page']}"
        text = pages[q["expected_page"]]
        for term in q["key_terms"]:
            assert _norm(term) in text, f"{q['id']}: {term!r} not on page {q['expected_page']} of {name}"
