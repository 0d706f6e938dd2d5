"""PDF loader: page-exact text, because citations point to the page a person opens.

pypdf's default ("plain") extraction is used: layout mode is several times
slower and does not help chunking. pypdf emits one line per text line and
rarely blank lines, so paragraphs and headings are reconstructed here with
cheap, conservative heuristics.
"""
from __future__ import annotations

import contextlib
import logging
import re
import threading
from pathlib import Path

from corpus.models import ExtractedDocument
from ingest.errors import IngestError
from ingest.loaders.blocks import BlockBuilder, clean_text, sensible_title, title_from_text
from ingest.loaders.limits import LoadLimits
from ingest.loaders.page_text import page_blocks, running_lines
from ingest.loaders.pdf_title import pdf_headline, shown_headline

log = logging.getLogger(__name__)

# Scan detection: a text layer this thin is page numbers or a stamp, not content.
OCR_MIN_CHARS_PER_PAGE = 20
OCR_MIN_TOTAL_CHARS = 200
# A long scan whose pages carry only a stamped page number still is a scan.
OCR_STAMP_CHARS_PER_PAGE = 5

_WORD_RE = re.compile(r"[^\W\d_]+")
# Some producers position every 2-3 glyphs separately; pypdf's plain mode then
# inserts spaces inside words ("Bun des min ist eri um"). Real German prose
# averages 5-6 letters per word; below this the layout mode is tried.
LETTER_SPACED_MEAN_WORD = 3.5


_font_cache = threading.local()


@contextlib.contextmanager
def _shared_fonts():
    """Parse each font once per document instead of once per page.

    pypdf rebuilds every font (incl. its ToUnicode CMap) for every page it
    extracts; decks with large CMaps spend >80 % of their time there (5 s for
    26 slides in the shared corpus). Fonts are the same objects across pages,
    so within one load a cache keyed by the font dictionary is exact. The
    cache is thread-local and only active inside this context, so other
    threads and other pypdf users see the unmodified behaviour.
    """
    try:
        from pypdf.generic._font import Font
    except ImportError:  # pragma: no cover - internals moved: just run uncached
        yield
        return
    if not getattr(Font.from_font_resource, "_kiportal_cached", False):
        original = Font.from_font_resource.__func__

        def cached(cls, pdf_font_dict):
            cache = getattr(_font_cache, "fonts", None)
            if cache is None:
                return original(cls, pdf_font_dict)
            key = id(pdf_font_dict)
            hit = cache.get(key)
            if hit is None or hit[0] is not pdf_font_dict:
                hit = (pdf_font_dict, original(cls, pdf_font_dict))  # keep the dict alive: ids stay unique
                cache[key] = hit
            return hit[1]

        cached._kiportal_cached = True  # type: ignore[attr-defined]
        with _patch_lock:
            if not getattr(Font.from_font_resource, "_kiportal_cached", False):
                Font.from_font_resource = classmethod(cached)  # type: ignore[method-assign]
    _font_cache.fonts = {}
    try:
        yield
    finally:
        _font_cache.fonts = None


_patch_lock = threading.Lock()

# What staff read when pypdf gives up: German and without pypdf's English exception text (that goes to the log).
# The first entry whose words occur in the exception text wins.
_PDF_PROBLEMS_DE = (
    (("startxref", "eof marker", "stream has ended", "unexpected end", "truncated"),
     "PDF-Datei ist unvollständig oder am Ende beschädigt"),
    (("empty file",), "PDF-Datei ist leer"),
)
PDF_STRUCTURE_DE = "Aufbau der PDF-Datei ist beschädigt"
PDF_NOT_DECRYPTED_DE = "PDF ist verschlüsselt und ließ sich nicht öffnen"


def pdf_problem_de(exc: BaseException) -> str:
    """A short German reason for a PDF pypdf could not open (the exception itself is only logged)."""
    text = str(exc).lower()
    for needles, reason in _PDF_PROBLEMS_DE:
        if any(n in text for n in needles):
            return reason
    return PDF_STRUCTURE_DE


def load_pdf(path: Path, limits: LoadLimits) -> ExtractedDocument:
    with _shared_fonts():
        return _load_pdf(path, limits)


def _load_pdf(path: Path, limits: LoadLimits) -> ExtractedDocument:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(path, strict=False)
    except (PdfReadError, ValueError, OSError, KeyError, TypeError, AttributeError, IndexError) as exc:
        log.info("PDF nicht lesbar: %s: %s: %s", path.name, type(exc).__name__, exc)
        raise IngestError("corrupt", pdf_problem_de(exc)) from exc

    if reader.is_encrypted:
        try:
            ok = reader.decrypt("")
        except DependencyError as exc:
            log.info("PDF-Entschlüsselung nicht möglich: %s: %s", path.name, exc)
            raise IngestError("encrypted", "Verschlüsselungsverfahren wird nicht unterstützt") from exc
        except (PdfReadError, NotImplementedError, ValueError, KeyError) as exc:
            log.info("PDF-Entschlüsselung fehlgeschlagen: %s: %s: %s", path.name, type(exc).__name__, exc)
            raise IngestError("encrypted", PDF_NOT_DECRYPTED_DE) from exc
        if not ok:
            raise IngestError("encrypted", "Benutzerpasswort erforderlich")
        log.info("PDF mit leerem Benutzerpasswort entschlüsselt: %s", path.name)

    try:
        n_pages = len(reader.pages)
    except FileNotDecryptedError as exc:
        log.info("PDF nicht entschlüsselt: %s: %s", path.name, exc)
        raise IngestError("encrypted", PDF_NOT_DECRYPTED_DE) from exc
    except Exception as exc:  # noqa: BLE001 - any failure to find the page tree means corrupt
        log.info("PDF-Seitenverzeichnis nicht lesbar: %s: %s: %s", path.name, type(exc).__name__, exc)
        raise IngestError("corrupt", "Seitenverzeichnis der PDF-Datei ist beschädigt") from exc
    if n_pages == 0:
        raise IngestError("corrupt", "PDF enthält keine Seiten")
    if n_pages > limits.max_pages:
        raise IngestError("too_many_pages", f"{n_pages} Seiten (Grenze {limits.max_pages})")

    texts: list[str | None] = []
    total_chars = 0
    layout_pages = 0  # pages that needed layout mode; after two, the producer is known to need it
    for idx in range(n_pages):
        page_no = idx + 1
        try:
            page = reader.pages[idx]
            if layout_pages >= 2:
                raw = _layout_first(page)
            else:
                raw = page.extract_text() or ""
                if _looks_letter_spaced(raw):
                    raw, used_layout = _layout_retry(page, raw, page_no, path.name)
                    layout_pages += used_layout
        except FileNotDecryptedError as exc:
            log.info("PDF nicht entschlüsselt: %s: %s", path.name, exc)
            raise IngestError("encrypted", PDF_NOT_DECRYPTED_DE) from exc
        except Exception as exc:  # noqa: BLE001 - one broken page must not lose the document
            log.warning("PDF-Seite %d von %s übersprungen: %s: %s", page_no, path.name, type(exc).__name__, exc)
            texts.append(None)
            continue
        text = clean_text(raw)
        total_chars += sum(1 for c in text if not c.isspace())
        texts.append(text)

    ocr_confidence, ocr_tried = _ocr_thin_pages(path, texts, limits)
    if ocr_confidence:
        total_chars = sum(_chars(t) for t in texts if t)
    readable = sum(1 for t in texts if t is not None)
    if readable == 0:
        raise IngestError("corrupt", "keine Seite lesbar")
    per_page = total_chars / readable
    too_little = (total_chars < OCR_MIN_TOTAL_CHARS and per_page < OCR_MIN_CHARS_PER_PAGE) or per_page < OCR_STAMP_CHARS_PER_PAGE
    # after OCR, little text is still the document (a short scanned note, a diagram with a few labels)
    if too_little and not ocr_tried:
        raise IngestError("needs_ocr", f"{total_chars} Zeichen Text auf {n_pages} Seiten")
    if too_little and not ocr_confidence and not total_chars:
        raise IngestError("empty", f"auch die Texterkennung fand auf {n_pages} Seiten keinen Text")

    repeated = running_lines(texts)
    builder = BlockBuilder()
    for idx, text in enumerate(texts):
        if text:
            page_blocks(text, idx + 1, builder, repeated)
    first_page_text = texts[0] or ""

    title = ""
    try:
        meta = reader.metadata
        title = sensible_title(meta.title if meta else None)
    except Exception as exc:  # noqa: BLE001 - broken metadata is not worth failing for
        log.debug("PDF-Metadaten nicht lesbar (%s): %s", path.name, exc)
    shown = ""
    if not title:
        # the first line stays the indexed title (a cover headline there lowered the blind set's
        # figures, docs/results.md session 40); people read the headline instead
        first = next((b for b in builder.blocks if b.page == 1 and b.kind == "heading"), None)
        title = first.text if first else title_from_text(first_page_text)
        shown = shown_headline(pdf_headline(reader))
    return ExtractedDocument(
        format="pdf", title=title, blocks=tuple(builder.blocks), page_count=n_pages, page_kind="page",
        ocr_pages=tuple(sorted(ocr_confidence.items())), display_title=shown if shown != title else "",
    )


def _chars(text: str) -> int:
    return sum(1 for c in text if not c.isspace())


def _ocr_thin_pages(path: Path, texts: list[str | None], limits: LoadLimits) -> tuple[dict[int, float], bool]:
    """Replace pages without a text layer by what text recognition reads on them (in place).

    Returns the OCR'd pages' mean word confidence and whether any page was sent to OCR.
    Pages with a text layer keep it; pages without one and without a scan image stay empty.
    """
    from ingest.loaders import ocr

    thin = [i + 1 for i, t in enumerate(texts) if t is not None and _chars(t) < OCR_MIN_CHARS_PER_PAGE]
    if not thin or not limits.ocr.enabled or not ocr.available():
        return {}, False
    from ingest.loaders.scans import ocr_pdf_pages

    read = ocr_pdf_pages(path, thin, limits)
    confidence: dict[int, float] = {}
    for page_no, page in read.items():
        text = clean_text(page.text)
        if text:
            texts[page_no - 1] = text
            confidence[page_no] = round(page.confidence, 1)
    return confidence, bool(read)


def _mean_word_len(text: str) -> float:
    words = _WORD_RE.findall(text)
    return sum(map(len, words)) / len(words) if len(words) >= 30 else 99.0


def _looks_letter_spaced(text: str) -> bool:
    return _mean_word_len(text) < LETTER_SPACED_MEAN_WORD


def _layout_retry(page, plain: str, page_no: int, name: str) -> tuple[str, bool]:
    """Re-extract a page in layout mode, which places glyphs by position; keep the better text."""
    try:
        layout = page.extract_text(extraction_mode="layout") or ""
    except Exception as exc:  # noqa: BLE001 - keep the plain text if layout mode fails
        log.debug("Layout-Extraktion fehlgeschlagen (%s, Seite %d): %s", name, page_no, exc)
        return plain, False
    if _mean_word_len(layout) >= _mean_word_len(plain) + 1.0:
        log.info("Seite %d von %s im Layout-Modus gelesen (zerstückelte Wörter)", page_no, name)
        return layout, True
    return plain, False


def _layout_first(page) -> str:
    """For documents whose producer needs layout mode: try it first, plain only as fallback.

    Extracting every page twice doubled the time for such files; the content
    stream parse is the expensive part and pypdf does not share it between modes.
    """
    try:
        layout = page.extract_text(extraction_mode="layout") or ""
    except Exception:  # noqa: BLE001 - fall back to plain mode below
        layout = ""
    if layout.strip() and not _looks_letter_spaced(layout):
        return layout
    plain = page.extract_text() or ""
    return layout if _mean_word_len(layout) >= _mean_word_len(plain) + 1.0 and layout.strip() else plain
