"""Document loaders: one file in, an ``ExtractedDocument`` (structured blocks) out.

``load_document`` is the only entry point the ingest pipeline needs. It owns
the guarantees the rest of the system relies on:

* size limits are checked before any byte of content is parsed;
* the format is detected from the content, never trusted from the name;
* every failure is an ``IngestError`` with a stable code, never a raw
  exception, so one bad file cannot stop a batch and the UI can explain it;
* file names are only ever passed to ``open()``, never to a shell.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import stat
import time
from pathlib import Path
from typing import Callable

from corpus.models import ExtractedDocument
from ingest.errors import IngestError, os_error_de
from ingest.loaders.blocks import one_line
from ingest.loaders.detect import HEAD_BYTES, detect_format, extension_format
from ingest.loaders.limits import LoadLimits, check_zip

__all__ = ["LoadLimits", "detect_format", "load_document"]

log = logging.getLogger(__name__)

_ZIP_FORMATS = frozenset({"docx", "pptx", "xlsx", "odt"})


def _loader(fmt: str) -> Callable[[Path, LoadLimits], ExtractedDocument]:
    """Import loaders lazily: a text-only ingest should not pay for python-pptx and friends."""
    if fmt == "pdf":
        from ingest.loaders.pdf import load_pdf
        return load_pdf
    if fmt == "docx":
        from ingest.loaders.docx import load_docx
        return load_docx
    if fmt == "pptx":
        from ingest.loaders.pptx import load_pptx
        return load_pptx
    if fmt == "xlsx":
        from ingest.loaders.xlsx import load_xlsx
        return load_xlsx
    if fmt == "odt":
        from ingest.loaders.odt import load_odt
        return load_odt
    if fmt == "html":
        from ingest.loaders.html import load_html
        return load_html
    if fmt == "md":
        from ingest.loaders.markdown import load_markdown
        return load_markdown
    if fmt == "txt":
        from ingest.loaders.text import load_text
        return load_text
    if fmt == "rtf":
        from ingest.loaders.rtf import load_rtf
        return load_rtf
    if fmt == "image":
        from ingest.loaders.scans import load_image
        return load_image
    raise IngestError("unsupported", fmt)


def _fallback_title(path: Path) -> str:
    """A readable title from the file name when the document has none."""
    return one_line(path.stem.replace("_", " "))[:200] or "Ohne Titel"


def load_document(path: Path, limits: LoadLimits = LoadLimits()) -> ExtractedDocument:
    """Read one file into an ``ExtractedDocument``; raise ``IngestError`` on any failure."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise IngestError("corrupt", f"Datei nicht lesbar: {os_error_de(exc)}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise IngestError("unsupported", "keine reguläre Datei")
    if st.st_size > limits.max_bytes:
        raise IngestError(
            "too_large",
            f"{st.st_size / 1048576:.1f} MB (Grenze {limits.max_bytes / 1048576:.0f} MB)",
        )
    if st.st_size == 0:
        raise IngestError("empty", "0 Bytes")

    started = time.perf_counter()
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
        fmt = detect_format(path, head)
        claimed = extension_format(path)
        if claimed is not None and claimed != fmt:
            log.warning(
                "Dateiendung passt nicht zum Inhalt, lese als %s: %s (Endung sagt %s)", fmt, path.name, claimed
            )
        if fmt in _ZIP_FORMATS:
            check_zip(path, limits)
        doc = _loader(fmt)(path, limits)
    except IngestError:
        raise
    except MemoryError as exc:
        raise IngestError("too_large", "Speicher reicht nicht zum Lesen") from exc
    except RecursionError as exc:
        raise IngestError("corrupt", "zu tief verschachtelt") from exc
    except Exception as exc:  # noqa: BLE001 - contract: parsers never leak raw exceptions
        log.warning("Parser-Fehler in %s: %s: %s", path.name, type(exc).__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG))
        raise IngestError("corrupt", f"{type(exc).__name__}: {str(exc)[:300]}") from exc

    if not doc.blocks:
        raise IngestError("empty", "kein Text gefunden")
    chars = sum(len(b.text) for b in doc.blocks)
    if chars > limits.max_text_chars:
        raise IngestError("too_large", f"{chars:,} Zeichen Text (Grenze {limits.max_text_chars:,})".replace(",", "."))
    if not doc.title:
        doc = dataclasses.replace(doc, title=_fallback_title(path))
    log.debug("%s gelesen als %s: %d Blöcke in %.2f s", path.name, fmt, len(doc.blocks), time.perf_counter() - started)
    return doc
