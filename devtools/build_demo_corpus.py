"""Render the German demo corpus from its YAML sources into real file formats.

Usage (from a checkout, with the development extra installed; ``make demo``)::

    python -m devtools.build_demo_corpus [--out DIR] [--only NAME ...]

A development tool, not part of the installed portal: the rendered files in
``corpus/demo/files/`` are committed, so only people who change a source need it (and fpdf2).

Every ``corpus/demo/sources/*.yaml`` describes one document (schema: see
``sources/README.md``). The output is deterministic: all metadata timestamps are
taken from the document's ``date`` and zip containers (PPTX, DOCX, XLSX, ODT) are
rewritten with fixed entry dates, so a re-build does not change the bytes.
"""
from __future__ import annotations

import argparse
import datetime as dt
import html
import io
import logging
import re
import textwrap
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("devtools.build_demo_corpus")

HERE = Path(__file__).resolve().parents[1] / "corpus" / "demo"
SOURCES_DIR = HERE / "sources"
DEFAULT_OUT = HERE / "files"

FORMATS = ("pdf", "pptx", "docx", "odt", "xlsx", "html", "md", "txt", "rtf")
PAGED = ("pdf", "pptx")
SECTIONED = ("docx", "odt", "rtf", "html", "md", "txt")
BLOCK_KEYS = ("heading", "bullets", "numbered", "table")

Doc = dict[str, Any]


# --------------------------------------------------------------------------- sources


class SourceError(ValueError):
    """A source file does not follow the schema in sources/README.md."""


def load_sources(sources_dir: Path = SOURCES_DIR) -> list[Doc]:
    """Load and validate every ``*.yaml`` source, sorted by file name."""
    docs = []
    for path in sorted(sources_dir.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        validate(doc, path.name)
        doc["_source"] = path.name
        docs.append(doc)
    names = [n for d in docs for n in outputs(d)]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise SourceError(f"duplicate output file names: {sorted(dupes)}")
    return docs


def outputs(doc: Doc) -> list[str]:
    """File names a source renders to (the main file, plus a PDF export for decks)."""
    names = [doc["file"]]
    if doc.get("export_pdf"):
        names.append(doc["export_pdf"])
    return names


def _require_str(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise SourceError(f"{where}: expected a string, got {type(value).__name__} {value!r} (quote it)")


def _validate_blocks(blocks: Any, where: str) -> None:
    if not isinstance(blocks, list):
        raise SourceError(f"{where}: body must be a list")
    for i, block in enumerate(blocks):
        w = f"{where}[{i}]"
        if isinstance(block, str):
            continue
        if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in BLOCK_KEYS:
            raise SourceError(f"{w}: block must be a string or one of {BLOCK_KEYS}")
        key, value = next(iter(block.items()))
        if key == "heading":
            _require_str(value, w)
        elif key in ("bullets", "numbered"):
            if not isinstance(value, list) or not value:
                raise SourceError(f"{w}: {key} must be a non-empty list")
            for j, item in enumerate(value):
                _require_str(item, f"{w}.{key}[{j}]")
        else:
            _validate_table(value, w, allow_numbers=False)


def _validate_table(table: Any, where: str, allow_numbers: bool) -> None:
    if not isinstance(table, dict) or "header" not in table or "rows" not in table:
        raise SourceError(f"{where}: table needs header and rows")
    ncols = len(table["header"])
    for j, cell in enumerate(table["header"]):
        _require_str(cell, f"{where}.header[{j}]")
    for r, row in enumerate(table["rows"]):
        if len(row) != ncols:
            raise SourceError(f"{where}.rows[{r}]: {len(row)} cells, header has {ncols}")
        for j, cell in enumerate(row):
            if allow_numbers and isinstance(cell, (int, float)) and not isinstance(cell, bool):
                continue
            _require_str(cell, f"{where}.rows[{r}][{j}]")
    if "widths" in table and len(table["widths"]) != ncols:
        raise SourceError(f"{where}: widths must have {ncols} entries")


def validate(doc: Any, name: str) -> None:
    """Raise SourceError unless ``doc`` follows the schema."""
    if not isinstance(doc, dict):
        raise SourceError(f"{name}: top level must be a mapping")
    for key in ("file", "format", "title", "author", "date"):
        if key not in doc:
            raise SourceError(f"{name}: missing key {key!r}")
    fmt = doc["format"]
    if fmt not in FORMATS:
        raise SourceError(f"{name}: unknown format {fmt!r}")
    if not doc["file"].endswith("." + fmt):
        raise SourceError(f"{name}: file {doc['file']!r} does not end with .{fmt}")
    if not isinstance(doc["date"], dt.date):
        raise SourceError(f"{name}: date must be an ISO date (YYYY-MM-DD)")
    if doc.get("export_pdf") and (fmt != "pptx" or not doc["export_pdf"].endswith(".pdf")):
        raise SourceError(f"{name}: export_pdf is only for pptx sources and must end with .pdf")
    if fmt in PAGED:
        pages = doc.get("pages")
        if not isinstance(pages, list) or not pages:
            raise SourceError(f"{name}: {fmt} needs a non-empty pages list")
        for i, page in enumerate(pages):
            _require_str(page.get("title"), f"{name}: pages[{i}].title")
            _validate_blocks(page.get("body", []), f"{name}: pages[{i}].body")
            if "notes" in page:
                _require_str(page["notes"], f"{name}: pages[{i}].notes")
    elif fmt in SECTIONED:
        _validate_blocks(doc.get("preamble", []), f"{name}: preamble")
        sections = doc.get("sections")
        if not isinstance(sections, list) or not sections:
            raise SourceError(f"{name}: {fmt} needs a non-empty sections list")
        for i, sec in enumerate(sections):
            _require_str(sec.get("heading"), f"{name}: sections[{i}].heading")
            if sec.get("level", 1) not in (1, 2, 3):
                raise SourceError(f"{name}: sections[{i}].level must be 1, 2 or 3")
            _validate_blocks(sec.get("body", []), f"{name}: sections[{i}].body")
    else:  # xlsx
        sheets = doc.get("sheets")
        if not isinstance(sheets, list) or not sheets:
            raise SourceError(f"{name}: xlsx needs a non-empty sheets list")
        for i, sheet in enumerate(sheets):
            _require_str(sheet.get("name"), f"{name}: sheets[{i}].name")
            _validate_table(sheet, f"{name}: sheets[{i}]", allow_numbers=True)


def _timestamp(doc: Doc) -> dt.datetime:
    """The document's fixed timestamp (naive, meant as UTC): its date at 09:00."""
    d = doc["date"]
    return dt.datetime(d.year, d.month, d.day, 9, 0, 0)


def _blocks(body: Iterable[Any]) -> Iterable[tuple[str, Any]]:
    """Yield (kind, value) for a body: kind is paragraph/heading/bullets/numbered/table."""
    for block in body:
        if isinstance(block, str):
            yield "paragraph", block.strip()
        else:
            yield next(iter(block.items()))


def _clean(text: str) -> str:
    return " ".join(text.split())


# ----------------------------------------------------------------------- zip helpers


_CORE_DATE_RE = re.compile(r"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)")


def _normalize_zip(path: Path, when: dt.datetime) -> None:
    """Rewrite a zip container with fixed entry dates (and fixed OOXML core dates)."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(path) as zin:
        entries = [(info, zin.read(info.filename)) for info in zin.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zout:
        for info, data in entries:
            if info.filename == "docProps/core.xml":
                data = _CORE_DATE_RE.sub(lambda m: f"{m.group(1)}{stamp}{m.group(3)}", data.decode("utf-8")).encode("utf-8")
            zi = zipfile.ZipInfo(info.filename, date_time=when.timetuple()[:6])
            zi.compress_type = info.compress_type
            zi.external_attr = 0o644 << 16
            zi.create_system = 3
            zout.writestr(zi, data)
    path.write_bytes(buf.getvalue())


# ------------------------------------------------------------------------------- PDF

_LATIN1_MAP = str.maketrans({
    "–": "-", "—": "-", "‑": "-", "„": "»", "“": "«", "”": "«", "‚": "'", "‘": "'", "’": "'",
    "…": "...", "•": "-", "€": "EUR", "\u202f": " ",
})


def pdf_text(text: str) -> str:
    """Map text to what the PDF core font (latin-1) can show."""
    out = text.translate(_LATIN1_MAP)
    out.encode("latin-1")  # raises on anything still unsupported
    return out


def _render_pdf_pages(doc: Doc, path: Path, slides: bool) -> None:
    from fpdf import FPDF

    title = doc["title"]
    footer_label = "Folie" if slides else "Seite"

    class _PDF(FPDF):
        def footer(self) -> None:  # noqa: D401 - fpdf2 hook
            self.set_y(-12)
            self.set_font("Helvetica", "", 8)
            self.set_text_color(110, 110, 110)
            label = f"{footer_label} {self.page_no()} von {{nb}}"
            if not slides:
                label = f"{title} - {label}"
            self.cell(0, 5, pdf_text(label), align="C")
            self.set_text_color(0, 0, 0)

    if slides:  # same aspect ratio as the 4:3 deck: 10 x 7.5 inch
        pdf = _PDF(orientation="L", unit="mm", format=(190.5, 254.0))
        margin, title_size, text_size, line_h = 16, 24, 15, 8
    else:
        pdf = _PDF(orientation="P", unit="mm", format="A4")
        margin, title_size, text_size, line_h = 20, 16, 10.5, 5.5
    pdf.set_margins(margin, margin, margin)
    pdf.set_auto_page_break(True, margin=18)
    pdf.set_creation_date(_timestamp(doc).replace(tzinfo=dt.timezone.utc))
    pdf.set_title(pdf_text(title))
    pdf.set_author(pdf_text(doc["author"]))
    pdf.set_subject(pdf_text(doc.get("subject", "")))
    pdf.set_creator("kiportal corpus.demo.build")  # unchanged: a re-build keeps the bytes
    pdf.set_lang("de-DE")

    for number, page in enumerate(doc["pages"], start=1):
        pdf.add_page()
        is_title_slide = slides and page.get("layout") == "title"
        if is_title_slide:
            pdf.ln(45)
        pdf.set_font("Helvetica", "B", title_size)
        pdf.multi_cell(0, title_size * 0.5, pdf_text(page["title"]), new_x="LMARGIN", new_y="NEXT",
                       align="C" if is_title_slide else "L")
        pdf.ln(4 if slides else 3)
        for kind, value in _blocks(page.get("body", [])):
            if kind == "paragraph":
                pdf.set_font("Helvetica", "", text_size)
                pdf.multi_cell(0, line_h, pdf_text(_clean(value)), new_x="LMARGIN", new_y="NEXT",
                               align="C" if is_title_slide else "L")
                pdf.ln(2)
            elif kind == "heading":
                pdf.ln(1)
                pdf.set_font("Helvetica", "B", text_size + 1.5)
                pdf.multi_cell(0, line_h, pdf_text(_clean(value)), new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1)
            elif kind in ("bullets", "numbered"):
                pdf.set_font("Helvetica", "", text_size)
                for i, item in enumerate(value, start=1):
                    marker = f"{i}." if kind == "numbered" else "-"
                    pdf.set_x(pdf.l_margin + 2)
                    pdf.cell(6, line_h, marker)
                    pdf.multi_cell(0, line_h, pdf_text(_clean(item)), new_x="LMARGIN", new_y="NEXT")
                    pdf.ln(1 if not slides else 2)
                pdf.ln(1)
            else:  # table
                pdf.set_font("Helvetica", "", text_size - (2 if slides else 1))
                widths = tuple(value.get("widths") or [1] * len(value["header"]))
                with pdf.table(col_widths=widths, first_row_as_headings=True, text_align="LEFT",
                               line_height=line_h * (0.85 if slides else 0.95),
                               padding=(1.2, 1.5) if slides else (0.8, 1.2)) as table:
                    for row in [value["header"], *value["rows"]]:
                        cells = table.row()
                        for cell in row:
                            cells.cell(pdf_text(_clean(str(cell))))
                pdf.ln(3)
        if pdf.page != number:
            raise SourceError(f"{doc['_source']}: content of page {number} ({page['title']!r}) overflows the page")
    pdf.output(str(path))


def render_pdf(doc: Doc, path: Path) -> None:
    _render_pdf_pages(doc, path, slides=False)


def render_pptx_as_pdf(doc: Doc, path: Path) -> None:
    """The deck exported as PDF, one page per slide (speaker notes are not printed)."""
    _render_pdf_pages(doc, path, slides=True)


# ------------------------------------------------------------------------------ PPTX


def render_pptx(doc: Doc, path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Emu, Inches, Pt

    prs = Presentation()  # default template, 4:3 (10 x 7.5 in)
    layout_title, layout_content, layout_title_only = prs.slide_layouts[0], prs.slide_layouts[1], prs.slide_layouts[5]
    width = prs.slide_width

    for page in doc["pages"]:
        blocks = list(_blocks(page.get("body", [])))
        has_table = any(kind == "table" for kind, _ in blocks)
        if page.get("layout") == "title":
            slide = prs.slides.add_slide(layout_title)
            slide.shapes.title.text = page["title"]
            sub = slide.placeholders[1].text_frame
            lines = [v for kind, v in blocks if kind == "paragraph"]
            sub.text = lines[0] if lines else ""
            for line in lines[1:]:
                sub.add_paragraph().text = line
            for para in sub.paragraphs:
                for run in para.runs:
                    run.font.size = Pt(18)
        elif not has_table:
            slide = prs.slides.add_slide(layout_content)
            slide.shapes.title.text = page["title"]
            body = slide.placeholders[1].text_frame
            _fill_text_frame(body, blocks, Pt(20))
        else:
            slide = prs.slides.add_slide(layout_title_only)
            slide.shapes.title.text = page["title"]
            top = Inches(1.7)
            text_blocks = [(k, v) for k, v in blocks if k != "table"]
            if text_blocks:
                box = slide.shapes.add_textbox(Inches(0.5), top, width - Inches(1.0), Inches(0.8))
                box.text_frame.word_wrap = True
                _fill_text_frame(box.text_frame, text_blocks, Pt(18))
                top += Inches(0.9)
            for kind, table in blocks:
                if kind != "table":
                    continue
                rows = [table["header"], *table["rows"]]
                weights = table.get("widths") or [1] * len(table["header"])
                total_w = width - Inches(1.0)
                shape = slide.shapes.add_table(len(rows), len(weights), Inches(0.5), top, total_w,
                                               Inches(0.45) * len(rows))
                grid = shape.table
                for j, w in enumerate(weights):
                    grid.columns[j].width = Emu(int(total_w * w / sum(weights)))
                for r, row in enumerate(rows):
                    for j, cell in enumerate(row):
                        grid.cell(r, j).text = str(cell)
                        for para in grid.cell(r, j).text_frame.paragraphs:
                            for run in para.runs:
                                run.font.size = Pt(14)
                top += Inches(0.45) * len(rows) + Inches(0.3)
        _fit_title(slide.shapes.title, Pt)
        if page.get("notes"):
            slide.notes_slide.notes_text_frame.text = _clean(page["notes"])

    _core_properties(prs.core_properties, doc)
    prs.save(str(path))
    _normalize_zip(path, _timestamp(doc))


def _fit_title(title_shape: Any, pt: Callable[[float], Any]) -> None:
    """Shrink long titles so they stay inside the title placeholder (python-pptx has no autofit)."""
    n = len(title_shape.text_frame.text)
    size = 40 if n <= 32 else 32 if n <= 48 else 28 if n <= 64 else 24
    for para in title_shape.text_frame.paragraphs:
        for run in para.runs:
            run.font.size = pt(size)


def _fill_text_frame(frame: Any, blocks: list[tuple[str, Any]], size: Any) -> None:
    lines: list[tuple[str, int]] = []
    for kind, value in blocks:
        if kind in ("paragraph", "heading"):
            lines.append((_clean(value), 0))
        elif kind in ("bullets", "numbered"):
            for i, item in enumerate(value, start=1):
                lines.append(((f"{i}. " if kind == "numbered" else "") + _clean(item), 0))
    frame.text = lines[0][0] if lines else ""
    for text, level in lines[1:]:
        para = frame.add_paragraph()
        para.text = text
        para.level = level
    for para in frame.paragraphs:
        for run in para.runs:
            run.font.size = size


def _core_properties(props: Any, doc: Doc) -> None:
    when = _timestamp(doc)
    props.title = doc["title"]
    props.author = doc["author"]
    props.subject = doc.get("subject", "")
    props.keywords = "Demo-Korpus kiportal"
    props.language = "de-DE"
    props.last_modified_by = doc["author"]
    props.revision = 1
    props.created = when
    props.modified = when
    props.last_printed = when


# ------------------------------------------------------------------------------ DOCX


def render_docx(doc: Doc, path: Path) -> None:
    import docx
    from docx.shared import Pt

    document = docx.Document()
    document.add_heading(doc["title"], level=0)
    _docx_blocks(document, doc.get("preamble", []))
    for sec in doc["sections"]:
        document.add_heading(sec["heading"], level=sec.get("level", 1))
        _docx_blocks(document, sec.get("body", []))
    for table in document.tables:
        for row in table.rows:
            for cell in row.cells:
                for para in cell.paragraphs:
                    for run in para.runs:
                        run.font.size = Pt(9.5)
    _core_properties(document.core_properties, doc)
    document.save(str(path))
    _normalize_zip(path, _timestamp(doc))


def _docx_blocks(document: Any, body: list[Any]) -> None:
    for kind, value in _blocks(body):
        if kind == "paragraph":
            document.add_paragraph(_clean(value))
        elif kind == "heading":
            document.add_heading(_clean(value), level=3)
        elif kind in ("bullets", "numbered"):
            style = "List Bullet" if kind == "bullets" else "List Number"
            for item in value:
                document.add_paragraph(_clean(item), style=style)
        else:
            rows = [value["header"], *value["rows"]]
            table = document.add_table(rows=len(rows), cols=len(value["header"]))
            table.style = "Table Grid"
            for r, row in enumerate(rows):
                for j, cell in enumerate(row):
                    target = table.cell(r, j)
                    target.text = _clean(str(cell))
                    if r == 0:
                        for run in target.paragraphs[0].runs:
                            run.bold = True
            document.add_paragraph()


# ------------------------------------------------------------------------------- ODT


def render_odt(doc: Doc, path: Path) -> None:
    from odf.element import Element

    # odfpy collects namespace prefixes in a class-level dict shared by every document
    # of the process, so a second document would declare more namespaces than the
    # first. Render each document against a fresh dict to keep the bytes stable.
    shared = Element.namespaces
    Element.namespaces = {}
    try:
        _render_odt(doc, path)
    finally:
        Element.namespaces = shared
    _normalize_zip(path, _timestamp(doc))


def _render_odt(doc: Doc, path: Path) -> None:
    from odf import dc, meta
    from odf.opendocument import OpenDocumentText
    from odf.style import (
        ListLevelProperties,
        ParagraphProperties,
        Style,
        TableCellProperties,
        TextProperties,
    )
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, List, ListItem, ListLevelStyleBullet, ListLevelStyleNumber, ListStyle, P

    odt = OpenDocumentText()
    when = _timestamp(doc).strftime("%Y-%m-%dT%H:%M:%S")
    odt.meta.addElement(dc.Title(text=doc["title"]))
    odt.meta.addElement(dc.Subject(text=doc.get("subject", "")))
    odt.meta.addElement(dc.Creator(text=doc["author"]))
    odt.meta.addElement(dc.Date(text=when))
    odt.meta.addElement(meta.InitialCreator(text=doc["author"]))
    odt.meta.addElement(meta.CreationDate(text=when))
    odt.meta.addElement(dc.Language(text="de-DE"))

    def pstyle(name: str, size: str, bold: bool = False, margin: str = "0.2cm", outline: int | None = None) -> Style:
        family = "paragraph"
        style = Style(name=name, family=family, **({"defaultoutlinelevel": str(outline)} if outline else {}))
        style.addElement(ParagraphProperties(marginbottom=margin, margintop="0.1cm"))
        props = {"fontsize": size, "fontfamily": "Liberation Sans"}
        if bold:
            props["fontweight"] = "bold"
        style.addElement(TextProperties(**props))
        odt.styles.addElement(style)
        return style

    s_title = pstyle("Title", "18pt", bold=True, margin="0.4cm")
    s_h = {1: pstyle("Heading_20_1", "14pt", True, "0.2cm", 1), 2: pstyle("Heading_20_2", "12pt", True, "0.15cm", 2),
           3: pstyle("Heading_20_3", "11pt", True, "0.1cm", 3)}
    s_body = pstyle("Text_20_body", "11pt")
    s_cell = pstyle("Table_20_Contents", "10pt", margin="0cm")
    s_head_cell = pstyle("Table_20_Heading", "10pt", bold=True, margin="0cm")

    cell_style = Style(name="TableCellFrame", family="table-cell")
    cell_style.addElement(TableCellProperties(border="0.5pt solid #000000", padding="0.1cm"))
    odt.automaticstyles.addElement(cell_style)

    bullet_style = ListStyle(name="BulletList")
    level = ListLevelStyleBullet(level="1", bulletchar="•")
    level.addElement(ListLevelProperties(spacebefore="0.4cm", minlabelwidth="0.5cm"))
    bullet_style.addElement(level)
    number_style = ListStyle(name="NumberList")
    nlevel = ListLevelStyleNumber(level="1", numformat="1", numsuffix=".")
    nlevel.addElement(ListLevelProperties(spacebefore="0.4cm", minlabelwidth="0.6cm"))
    number_style.addElement(nlevel)
    odt.automaticstyles.addElement(bullet_style)
    odt.automaticstyles.addElement(number_style)

    def add_blocks(body: list[Any]) -> None:
        for kind, value in _blocks(body):
            if kind == "paragraph":
                odt.text.addElement(P(stylename=s_body, text=_clean(value)))
            elif kind == "heading":
                odt.text.addElement(H(outlinelevel=3, stylename=s_h[3], text=_clean(value)))
            elif kind in ("bullets", "numbered"):
                lst = List(stylename=bullet_style if kind == "bullets" else number_style)
                for item in value:
                    li = ListItem()
                    li.addElement(P(stylename=s_body, text=_clean(item)))
                    lst.addElement(li)
                odt.text.addElement(lst)
            else:
                tbl = Table(name=f"Tabelle{len(odt.text.getElementsByType(Table)) + 1}")
                tbl.addElement(TableColumn(numbercolumnsrepeated=len(value["header"])))
                for r, row in enumerate([value["header"], *value["rows"]]):
                    tr = TableRow()
                    for cell in row:
                        tc = TableCell(stylename=cell_style, valuetype="string")
                        tc.addElement(P(stylename=s_head_cell if r == 0 else s_cell, text=_clean(str(cell))))
                        tr.addElement(tc)
                    tbl.addElement(tr)
                odt.text.addElement(tbl)

    odt.text.addElement(P(stylename=s_title, text=doc["title"]))
    add_blocks(doc.get("preamble", []))
    for sec in doc["sections"]:
        lvl = sec.get("level", 1)
        odt.text.addElement(H(outlinelevel=lvl, stylename=s_h[lvl], text=sec["heading"]))
        add_blocks(sec.get("body", []))
    odt.save(str(path))


# ------------------------------------------------------------------------------ XLSX


def render_xlsx(doc: Doc, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    for sheet in doc["sheets"]:
        ws = wb.create_sheet(sheet["name"])
        row_no = 1
        if sheet.get("title"):
            ws.cell(row=1, column=1, value=sheet["title"]).font = Font(bold=True, size=13)
            row_no = 3
        header_row = row_no
        for j, text in enumerate(sheet["header"], start=1):
            cell = ws.cell(row=row_no, column=j, value=text)
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor="DDE6F0")
        formats = {int(k): v for k, v in (sheet.get("number_format") or {}).items()}
        for row in sheet["rows"]:
            row_no += 1
            is_sum = any(isinstance(c, str) and c == "Summe" for c in row)
            for j, value in enumerate(row, start=1):
                if value == "":
                    continue
                cell = ws.cell(row=row_no, column=j, value=value)
                cell.alignment = Alignment(wrap_text=isinstance(value, str), vertical="top")
                if j - 1 in formats and isinstance(value, (int, float)):
                    cell.number_format = formats[j - 1]
                if is_sum:
                    cell.font = Font(bold=True)
        if sheet.get("footer"):
            ws.cell(row=row_no + 2, column=1, value=sheet["footer"]).font = Font(italic=True)
        for j, w in enumerate(sheet.get("widths") or [], start=1):
            ws.column_dimensions[get_column_letter(j)].width = w
        ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    props = wb.properties
    props.title = doc["title"]
    props.creator = doc["author"]
    props.lastModifiedBy = doc["author"]
    props.subject = doc.get("subject", "")
    props.language = "de-DE"
    props.created = _timestamp(doc)
    wb.save(str(path))
    _normalize_zip(path, _timestamp(doc))  # openpyxl stamps "modified" with now(): fixed here


# ------------------------------------------------------------------------------ HTML


def render_html(doc: Doc, path: Path) -> None:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="de">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{e(doc['title'])}</title>",
        f'<meta name="author" content="{e(doc["author"])}">',
        f'<meta name="description" content="{e(doc.get("subject", ""))}">',
        f'<meta name="date" content="{doc["date"].isoformat()}">',
        "<style>body{font-family:sans-serif;max-width:48rem;margin:2rem auto;line-height:1.5}"
        "table{border-collapse:collapse}th,td{border:1px solid #999;padding:.3rem .5rem;text-align:left}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{e(doc['title'])}</h1>",
    ]
    out += _html_blocks(doc.get("preamble", []))
    out.append("</header>")
    out.append("<main>")
    for sec in doc["sections"]:
        lvl = sec.get("level", 1) + 1
        out.append(f"<h{lvl}>{e(sec['heading'])}</h{lvl}>")
        out += _html_blocks(sec.get("body", []))
    out += ["</main>", "</body>", "</html>", ""]
    path.write_text("\n".join(out), encoding="utf-8", newline="\n")


def _html_blocks(body: list[Any]) -> list[str]:
    e = html.escape
    out: list[str] = []
    for kind, value in _blocks(body):
        if kind == "paragraph":
            out.append(f"<p>{e(_clean(value))}</p>")
        elif kind == "heading":
            out.append(f"<h4>{e(_clean(value))}</h4>")
        elif kind in ("bullets", "numbered"):
            tag = "ul" if kind == "bullets" else "ol"
            out.append(f"<{tag}>")
            out += [f"<li>{e(_clean(item))}</li>" for item in value]
            out.append(f"</{tag}>")
        else:
            out.append("<table>")
            out.append("<thead><tr>" + "".join(f"<th>{e(str(c))}</th>" for c in value["header"]) + "</tr></thead>")
            out.append("<tbody>")
            for row in value["rows"]:
                out.append("<tr>" + "".join(f"<td>{e(_clean(str(c)))}</td>" for c in row) + "</tr>")
            out.append("</tbody>")
            out.append("</table>")
    return out


# -------------------------------------------------------------------------------- MD


def render_md(doc: Doc, path: Path) -> None:
    out = [f"# {doc['title']}", ""]
    out += _md_blocks(doc.get("preamble", []))
    for sec in doc["sections"]:
        out += ["#" * (sec.get("level", 1) + 1) + " " + sec["heading"], ""]
        out += _md_blocks(sec.get("body", []))
    path.write_text("\n".join(out).rstrip("\n") + "\n", encoding="utf-8", newline="\n")


def _md_blocks(body: list[Any]) -> list[str]:
    out: list[str] = []
    for kind, value in _blocks(body):
        if kind == "paragraph":
            out += [_clean(value), ""]
        elif kind == "heading":
            out += [f"**{_clean(value)}**", ""]
        elif kind in ("bullets", "numbered"):
            out += [("- " if kind == "bullets" else f"{i}. ") + _clean(item) for i, item in enumerate(value, 1)]
            out.append("")
        else:
            def row(cells: list[Any]) -> str:
                return "| " + " | ".join(_clean(str(c)).replace("|", "\\|") for c in cells) + " |"
            out.append(row(value["header"]))
            out.append("|" + "|".join(" --- " for _ in value["header"]) + "|")
            out += [row(r) for r in value["rows"]]
            out.append("")
    return out


# ------------------------------------------------------------------------------- TXT


def render_txt(doc: Doc, path: Path) -> None:
    out = [doc["title"].upper(), "=" * len(doc["title"]), ""]
    out += _txt_blocks(doc.get("preamble", []))
    for sec in doc["sections"]:
        underline = "-" if sec.get("level", 1) == 1 else "."
        out += [sec["heading"], underline * len(sec["heading"]), ""]
        out += _txt_blocks(sec.get("body", []))
    path.write_text("\n".join(out).rstrip("\n") + "\n", encoding="utf-8", newline="\n")


def _txt_blocks(body: list[Any]) -> list[str]:
    out: list[str] = []
    for kind, value in _blocks(body):
        if kind in ("paragraph", "heading"):
            out += textwrap.wrap(_clean(value), 78, break_long_words=False, break_on_hyphens=False)
            out.append("")
        elif kind in ("bullets", "numbered"):
            for i, item in enumerate(value, start=1):
                marker = "  - " if kind == "bullets" else f"  {i}. "
                out += textwrap.wrap(_clean(item), 78, initial_indent=marker, subsequent_indent=" " * len(marker),
                                     break_long_words=False, break_on_hyphens=False)
            out.append("")
        else:
            out.append(" | ".join(value["header"]))
            out += [" | ".join(_clean(str(c)) for c in row) for row in value["rows"]]
            out.append("")
    return out


# ------------------------------------------------------------------------------- RTF


def rtf_escape(text: str) -> str:
    """Escape text for RTF: control characters, cp1252 as \\'xx, the rest as \\uN?."""
    out = []
    for ch in text:
        if ch in "\\{}":
            out.append("\\" + ch)
        elif ord(ch) < 128:
            out.append(ch)
        else:
            try:
                out.append("\\'%02x" % ch.encode("cp1252")[0])
            except UnicodeEncodeError:
                code = ord(ch)
                out.append(f"\\u{code if code < 32768 else code - 65536}?")
    return "".join(out)


def render_rtf(doc: Doc, path: Path) -> None:
    when = _timestamp(doc)
    stamp = f"\\yr{when.year}\\mo{when.month}\\dy{when.day}\\hr{when.hour}\\min{when.minute}"
    out = [
        "{\\rtf1\\ansi\\ansicpg1252\\deff0",
        "{\\fonttbl{\\f0\\fswiss\\fcharset0 Arial;}}",
        "{\\info{\\title " + rtf_escape(doc["title"]) + "}{\\author " + rtf_escape(doc["author"]) + "}"
        "{\\subject " + rtf_escape(doc.get("subject", "")) + "}{\\creatim" + stamp + "}{\\revtim" + stamp + "}}",
        "\\paperw11906\\paperh16838\\margl1417\\margr1417\\margt1417\\margb1134",
        "\\f0\\fs22",
        "\\pard\\sa240\\b\\fs32 " + rtf_escape(doc["title"]) + "\\b0\\fs22\\par",
    ]
    out += _rtf_blocks(doc.get("preamble", []))
    for sec in doc["sections"]:
        size = {1: 26, 2: 24, 3: 22}[sec.get("level", 1)]
        out.append(f"\\pard\\sb240\\sa120\\keepn\\b\\fs{size} " + rtf_escape(sec["heading"]) + "\\b0\\fs22\\par")
        out += _rtf_blocks(sec.get("body", []))
    out.append("}")
    path.write_bytes(("\r\n".join(out) + "\r\n").encode("ascii"))


def _rtf_blocks(body: list[Any]) -> list[str]:
    out: list[str] = []
    for kind, value in _blocks(body):
        if kind == "paragraph":
            out.append("\\pard\\sa120 " + rtf_escape(_clean(value)) + "\\par")
        elif kind == "heading":
            out.append("\\pard\\sb120\\sa60\\b " + rtf_escape(_clean(value)) + "\\b0\\par")
        elif kind in ("bullets", "numbered"):
            for i, item in enumerate(value, start=1):
                marker = "\\'95" if kind == "bullets" else f"{i}."
                out.append(f"\\pard\\fi-360\\li720\\sa60 {marker}\\tab " + rtf_escape(_clean(item)) + "\\par")
        else:
            weights = value.get("widths") or [1] * len(value["header"])
            total = 9072  # text width in twips (A4 minus margins)
            edges, acc = [], 0
            for w in weights:
                acc += total * w / sum(weights)
                edges.append(int(round(acc)))
            rowdef = "\\trowd\\trgaph108\\trleft0" + "".join(
                f"\\clbrdrt\\brdrs\\brdrw10\\clbrdrl\\brdrs\\brdrw10\\clbrdrb\\brdrs\\brdrw10\\clbrdrr\\brdrs\\brdrw10\\cellx{x}"
                for x in edges)
            for r, row in enumerate([value["header"], *value["rows"]]):
                cells = "".join(
                    ("\\b " if r == 0 else "") + rtf_escape(_clean(str(c))) + ("\\b0" if r == 0 else "") + "\\cell "
                    for c in row)
                out.append(rowdef + "\\pard\\intbl " + cells + "\\row")
            out.append("\\pard\\sa120\\par")
    return out


# ----------------------------------------------------------------------------- build

RENDERERS: dict[str, Callable[[Doc, Path], None]] = {
    "pdf": render_pdf,
    "pptx": render_pptx,
    "docx": render_docx,
    "odt": render_odt,
    "xlsx": render_xlsx,
    "html": render_html,
    "md": render_md,
    "txt": render_txt,
    "rtf": render_rtf,
}


def build(out_dir: Path = DEFAULT_OUT, sources_dir: Path = SOURCES_DIR, only: Iterable[str] | None = None) -> list[Path]:
    """Render every source (or those whose file/source name is in ``only``) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = set(only or [])
    written: list[Path] = []
    for doc in load_sources(sources_dir):
        if wanted and not wanted & {doc["_source"], *outputs(doc)}:
            continue
        target = out_dir / doc["file"]
        RENDERERS[doc["format"]](doc, target)
        written.append(target)
        log.info("rendered %s (%s)", target.name, doc["format"])
        if doc.get("export_pdf"):
            export = out_dir / doc["export_pdf"]
            render_pptx_as_pdf(doc, export)
            written.append(export)
            log.info("rendered %s (pdf export of %s)", export.name, doc["file"])
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the German demo corpus from corpus/demo/sources.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--only", nargs="*", help="render only these sources/output file names")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    written = build(args.out, only=args.only)
    log.info("%d files written to %s", len(written), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
