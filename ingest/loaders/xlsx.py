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
import warnings
from pathlib import Path

from corpus.models import ExtractedDocument
from ingest.errors import IngestError
from ingest.loaders.blocks import BlockBuilder, one_line, sensible_title
from ingest.loaders.limits import LoadLimits

log = logging.getLogger(__name__)

# openpyxl warns about every workbook feature it does not model (data validation,
# extensions); irrelevant for reading text. A module filter, not catch_warnings():
# that one is not thread-safe and loaders run in worker threads.
warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl\.")


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


HEADER_SCAN_ROWS = 20


def _pick_header(rows: list[list[str]], raw: list[tuple]) -> int:
    """Index of the header row among the first rows: title lines above a table are common.

    The header is the first row that is about as wide as the table and
    consists of text only (headers are labels, not numbers or dates).
    """
    counts = [sum(1 for v in r if v) for r in rows]
    widest = max(counts, default=0)
    for i, (row, n) in enumerate(zip(raw, counts)):
        if n >= 2 and n >= 0.5 * widest and all(isinstance(v, str) for v in row if v not in (None, "")):
            return i
    return 0


def _header_keys(values: list[str]) -> list[str]:
    """Header labels; an empty header cell belongs to the merged label on its left."""
    keys: list[str] = []
    for i, v in enumerate(values):
        if v:
            keys.append(v)
        elif keys and keys[-1]:
            keys.append(keys[-1])
        else:
            keys.append(f"Spalte {i + 1}")
    return keys


#: the longest header text repeated before each cell value ("Kopf: Wert")
MAX_KEY_CHARS = 80


def _row_text(values: list[str], keys: list[str]) -> str:
    pairs: list[list[str]] = []
    for i, v in enumerate(values):
        if not v:
            continue
        key = keys[i] if i < len(keys) else f"Spalte {i + 1}"
        if len(key) > MAX_KEY_CHARS:  # a header repeated in every cell: a long one would multiply the text
            key = key[:MAX_KEY_CHARS].rstrip() + " …"
        if pairs and pairs[-1][0] == key:
            pairs[-1][1] += " " + v  # same merged header: one "Kopf: a b" pair
        else:
            pairs.append([key, v])
    return " | ".join(f"{k}: {v}" for k, v in pairs)


def _sheet(ws, no: int, builder: BlockBuilder, limits: LoadLimits, name: str) -> None:
    start = len(builder.blocks)
    builder.add(ws.title, page=no, kind="heading", level=1)
    heading_only = len(builder.blocks)
    keys: list[str] | None = None
    pending: list[list[str]] = []  # first non-empty rows, until the header is known
    pending_raw: list[tuple] = []
    read = 0
    skipped = 0

    def emit(values: list[str]) -> None:
        nonlocal read
        read += 1
        builder.add(_row_text(values, keys or []), page=no, kind="table")

    def settle() -> None:
        nonlocal keys, skipped
        h = _pick_header(pending, pending_raw)
        for pre in pending[:h]:  # title lines above the table
            builder.add(" | ".join(v for v in pre if v), page=no, kind="table")
        keys = _header_keys(pending[h])
        for row in pending[h + 1:]:
            if read < limits.max_sheet_rows:
                emit(row)
            else:
                skipped += 1
        if h == len(pending) - 1 and read == 0:
            # Nothing below the header (yet): keep the labels as content.
            builder.add(" | ".join(v for v in pending[h] if v), page=no, kind="table")
        pending.clear()
        pending_raw.clear()

    for row in ws.iter_rows(values_only=True):
        if read >= limits.max_sheet_rows:
            # Past the limit only count, without formatting: that is the expensive part.
            if any(v is not None and v != "" for v in row):
                skipped += 1
            continue
        values = [_fmt(v) for v in row]
        if not any(values):
            continue
        if keys is None:
            pending.append(values)
            pending_raw.append(row)
            if len(pending) >= HEADER_SCAN_ROWS:
                settle()
            continue
        emit(values)
    if pending:
        settle()
    if skipped:
        log.warning("%s, Blatt %r: %d weitere Zeilen nicht indexiert (Grenze %d)", name, ws.title, skipped, limits.max_sheet_rows)
        builder.add(f"… ({skipped} weitere Zeilen nicht indexiert)", page=no, kind="paragraph")
    if len(builder.blocks) == heading_only:
        del builder.blocks[start:]  # an empty sheet contributes nothing, not even its name
