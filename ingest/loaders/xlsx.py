"""XLSX loader: one sheet is one page; every row is written as "Kopf: Wert" pairs.

A bare row "12 | 2023 | ja" is meaningless to retrieval once it is cut out of
its table; repeating the header in each row keeps the row self-explaining.
openpyxl runs in read-only/data-only mode (streaming, cached formula values)
so large workbooks do not blow up memory. Rows beyond ``max_sheet_rows`` are
counted and reported in a final block instead of vanishing silently.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from corpus.models import ExtractedDocument
from ingest.errors import IngestError
from ingest.loaders.blocks import BlockBuilder, one_line, sensible_title
from ingest.loaders.limits import LoadLimits

log = logging.getLogger(__name__)


def _fmt(value: object) -> str:
    """Render a cell value the way a German reader expects it, without float noise."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.10g}".replace(".", ",")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.strftime("%d.%m.%Y")
        return value.strftime("%d.%m.%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    return one_line(str(value))


def load_xlsx(path: Path, limits: LoadLimits) -> ExtractedDocument:
    from openpyxl import load_workbook

    wb = load_workbook(str(path), read_only=True, data_only=True)
    try:
        sheets = wb.worksheets
        if len(sheets) > limits.max_pages:
            raise IngestError("too_many_pages", f"{len(sheets)} Tabellenblätter (Grenze {limits.max_pages})")
        builder = BlockBuilder()
        for no, ws in enumerate(sheets, start=1):
            try:
                _sheet(ws, no, builder, limits, path.name)
            except IngestError:
                raise
            except Exception as exc:  # noqa: BLE001 - one broken sheet must not lose the workbook
                log.warning("Tabellenblatt %d von %s übersprungen: %s: %s", no, path.name, type(exc).__name__, exc)
        try:
            title = sensible_title(wb.properties.title)
        except Exception:  # noqa: BLE001 - metadata is optional
            title = ""
        return ExtractedDocument(
            format="xlsx", title=title, blocks=tuple(builder.blocks), page_count=len(sheets), page_kind="sheet"
        )
    finally:
        wb.close()


def _sheet(ws, no: int, builder: BlockBuilder, limits: LoadLimits, name: str) -> None:
    header: list[str] | None = None
    start = len(builder.blocks)
    builder.add(ws.title, page=no, kind="heading", level=1)
    heading_only = len(builder.blocks)
    read = 0
    skipped = 0
    for row in ws.iter_rows(values_only=True):
        if read >= limits.max_sheet_rows:
            # Past the limit only count, without formatting: that is the expensive part.
            if any(v is not None and v != "" for v in row):
                skipped += 1
            continue
        values = [_fmt(v) for v in row]
        if not any(values):
            continue
        if header is None:
            header = [h or f"Spalte {i + 1}" for i, h in enumerate(values)]
            continue
        read += 1
        pairs = []
        for i, v in enumerate(values):
            if v:
                key = header[i] if i < len(header) else f"Spalte {i + 1}"
                pairs.append(f"{key}: {v}")
        builder.add(" | ".join(pairs), page=no, kind="table")
    if header is not None and read == 0 and not skipped:
        # A sheet that is a single row (e.g. a list of names) is still content.
        builder.add(" | ".join(h for h in header if not h.startswith("Spalte ")), page=no, kind="table")
    if skipped:
        log.warning("%s, Blatt %r: %d weitere Zeilen nicht indexiert (Grenze %d)", name, ws.title, skipped, limits.max_sheet_rows)
        builder.add(f"… ({skipped} weitere Zeilen nicht indexiert)", page=no, kind="paragraph")
    if len(builder.blocks) == heading_only:
        del builder.blocks[start:]  # an empty sheet contributes nothing, not even its name
