"""PDF loader: page-exact text, because citations point to the page a person opens.

pypdf's default ("plain") extraction is used: layout mode is several times
slower and does not help chunking. pypdf emits one line per text line and
rarely blank lines, so paragraphs and headings are reconstructed here with
cheap, conservative heuristics.
"""
from __future__ import annotations

import logging
import re
import statistics
from pathlib import Path

from corpus.models import ExtractedDocument
from ingest.errors import IngestError
from ingest.loaders.blocks import (
    BlockBuilder,
    clean_text,
    dehyphenate,
    heading_level,
    sensible_title,
    title_from_text,
)
from ingest.loaders.limits import LoadLimits

log = logging.getLogger(__name__)

# Scan detection: a text layer this thin is page numbers or a stamp, not content.
OCR_MIN_CHARS_PER_PAGE = 20
OCR_MIN_TOTAL_CHARS = 200

_PAGE_NUMBER_RE = re.compile(r"^(?:(?:seite|page|s\.)\s*)?\d{1,4}(?:\s*(?:/|von|of)\s*\d{1,4})?$", re.IGNORECASE)
_BULLET_RE = re.compile(r"^(?:[•▪●◦■□➢►–—*-]\s|\(?[a-z0-9]{1,2}\)\s)")
_SENTENCE_END = (".", "!", "?", ":", "“", '"', "»", "«")


def load_pdf(path: Path, limits: LoadLimits) -> ExtractedDocument:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(path, strict=False)
    except (PdfReadError, ValueError, OSError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise IngestError("corrupt", f"PDF nicht lesbar: {exc}") from exc

    if reader.is_encrypted:
        try:
            ok = reader.decrypt("")
        except DependencyError as exc:
            raise IngestError("encrypted", f"Entschlüsselung nicht möglich: {exc}") from exc
        except (PdfReadError, NotImplementedError, ValueError, KeyError) as exc:
            raise IngestError("encrypted", str(exc)) from exc
        if not ok:
            raise IngestError("encrypted", "Benutzerpasswort erforderlich")
        log.info("PDF mit leerem Benutzerpasswort entschlüsselt: %s", path.name)

    try:
        n_pages = len(reader.pages)
    except FileNotDecryptedError as exc:
        raise IngestError("encrypted", str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - any failure to find the page tree means corrupt
        raise IngestError("corrupt", f"Seitenbaum nicht lesbar: {exc}") from exc
    if n_pages == 0:
        raise IngestError("corrupt", "PDF enthält keine Seiten")
    if n_pages > limits.max_pages:
        raise IngestError("too_many_pages", f"{n_pages} Seiten (Grenze {limits.max_pages})")

    builder = BlockBuilder()
    total_chars = 0
    failed = 0
    first_page_text = ""
    for idx in range(n_pages):
        page_no = idx + 1
        try:
            raw = reader.pages[idx].extract_text() or ""
        except FileNotDecryptedError as exc:
            raise IngestError("encrypted", str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - one broken page must not lose the document
            failed += 1
            log.warning("PDF-Seite %d von %s übersprungen: %s: %s", page_no, path.name, type(exc).__name__, exc)
            continue
        text = clean_text(raw)
        total_chars += sum(1 for c in text if not c.isspace())
        if page_no == 1:
            first_page_text = text
        _page_blocks(text, page_no, builder)

    if failed == n_pages:
        raise IngestError("corrupt", "keine Seite lesbar")
    readable = n_pages - failed
    if total_chars < OCR_MIN_TOTAL_CHARS and total_chars / readable < OCR_MIN_CHARS_PER_PAGE:
        raise IngestError("needs_ocr", f"{total_chars} Zeichen Text auf {n_pages} Seiten")

    title = ""
    try:
        meta = reader.metadata
        title = sensible_title(meta.title if meta else None)
    except Exception as exc:  # noqa: BLE001 - broken metadata is not worth failing for
        log.debug("PDF-Metadaten nicht lesbar (%s): %s", path.name, exc)
    if not title:
        first = next((b for b in builder.blocks if b.page == 1 and b.kind == "heading"), None)
        title = first.text if first else title_from_text(first_page_text)
    return ExtractedDocument(
        format="pdf", title=title, blocks=tuple(builder.blocks), page_count=n_pages, page_kind="page"
    )


def _page_blocks(text: str, page_no: int, builder: BlockBuilder) -> None:
    """Turn one page's extracted text into heading and paragraph blocks."""
    if not text:
        return
    text = dehyphenate(text)
    lines = text.split("\n")
    # Running page numbers at the top or bottom are noise inside paragraphs.
    for i in (0, 1, -1, -2):
        if -len(lines) <= i < len(lines) and _PAGE_NUMBER_RE.match(lines[i]):
            lines[i] = ""

    long_lines = [len(ln) for ln in lines if len(ln) >= 20]
    typical = statistics.median(long_lines) if long_lines else 60.0

    para: list[str] = []

    def flush() -> None:
        if para:
            builder.add(" ".join(para), page=page_no)
            para.clear()

    at_boundary = True  # start of page, after a blank line, a heading or a sentence end
    for idx, line in enumerate(lines):
        if not line:
            flush()
            at_boundary = True
            continue
        nxt = lines[idx + 1] if idx + 1 < len(lines) else ""
        standalone = at_boundary and not nxt
        level = heading_level(line, standalone=standalone) if at_boundary else 0
        if level:
            flush()
            builder.add(line, page=page_no, kind="heading", level=level)
            at_boundary = True
            continue
        if _BULLET_RE.match(line) and para:
            flush()
        para.append(line)
        ends_sentence = line.endswith(_SENTENCE_END)
        at_boundary = ends_sentence
        if ends_sentence and len(line) < 0.75 * typical:
            flush()  # a short last line ending a sentence closes the paragraph
    flush()
