"""XLSX loader: one sheet is one page; every row is written as "Kopf: Wert" pairs.

A bare row "12 | 2023 | ja" is meaningless to retrieval once it is cut out of
its table; repeating the header in each row keeps the row self-explaining.
openpyxl runs in read-only/data-only mode (streaming, cached formula values)
so large workbooks do not blow up memory. Rows beyond ``max_sheet_rows`` are
counted and reported in a final block instead of vanishing silently.
"""
from __future__ import annotations

import bisect
import datetime as dt
import logging
import warnings
from pathlib import Path
from typing import Callable, Iterator

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

#: A row as its non-empty cells: column number (1 = A) → formatted value.
Row = dict[int, str]


def _sparse_rows(ws) -> Iterator[tuple[Row, dict[int, object]]]:
    """The sheet's non-empty rows, each as (formatted, raw) cells by column number.

    Straight from openpyxl's streaming parser rather than ``ws.iter_rows``: that one pads every
    row to the sheet's width and yields every missing row, so a sheet whose rows each hold one
    cell in column XFD made 16,384 values per row (4,000 rows 12 s, a million rows past the
    worker's time limit). Here the work is linear in the cells the file holds. Like openpyxl's
    reader, a row that repeats or goes back to an earlier row number is skipped and the last of
    two cells in one column wins; unlike it, cells outside a (wrong) ``<dimension>`` are read.
    """
    from openpyxl.worksheet._reader import WorkSheetParser

    wb = ws.parent
    last = 0
    with ws._get_source() as src:
        parser = WorkSheetParser(src, ws._shared_strings, data_only=wb.data_only, epoch=wb.epoch,
                                 date_formats=wb._date_formats, timedelta_formats=wb._timedelta_formats)
        for idx, cells in parser.parse():
            if idx <= last:
                continue
            last = idx
            raw = {c["column"]: c["value"] for c in cells}
            values = {col: text for col, v in sorted(raw.items()) if (text := _fmt(v))}
            if values:
                yield values, raw


def _pick_header(rows: list[Row], raw: list[dict[int, object]]) -> int:
    """Index of the header row among the first rows: title lines above a table are common.

    The header is the first row that is about as wide as the table and
    consists of text only (headers are labels, not numbers or dates).
    """
    widest = max((len(r) for r in rows), default=0)
    for i, (row, cells) in enumerate(zip(rows, raw)):
        n = len(row)
        if n >= 2 and n >= 0.5 * widest and all(isinstance(v, str) for v in cells.values() if v not in (None, "")):
            return i
    return 0


class _HeaderKeys:
    """Header labels by column; an empty header cell belongs to the merged label on its left.

    The label of an empty cell reaches as far as the table is wide (the sheet's declared width or
    the header row's last cell); further right a column is "Spalte N". Looked up per cell, so a
    wide sparse sheet costs nothing per empty column."""

    def __init__(self, header: Row, width: int) -> None:
        self.labels = header
        self.cols = sorted(header)
        self.width = max(width, self.cols[-1] if self.cols else 0)

    def __call__(self, col: int) -> str:
        if col in self.labels:
            return self.labels[col]
        left = bisect.bisect_left(self.cols, col)
        if left and col <= self.width:
            return self.labels[self.cols[left - 1]]
        return f"Spalte {col}"


#: the longest header text repeated before each cell value ("Kopf: Wert")
MAX_KEY_CHARS = 80


def _row_text(values: Row, key: Callable[[int], str]) -> str:
    pairs: list[list[str]] = []
    for col, v in values.items():
        label = key(col)
        if len(label) > MAX_KEY_CHARS:  # a header repeated in every cell: a long one would multiply the text
            label = label[:MAX_KEY_CHARS].rstrip() + " …"
        if pairs and pairs[-1][0] == label:
            pairs[-1][1] += " " + v  # same merged header: one "Kopf: a b" pair
        else:
            pairs.append([label, v])
    return " | ".join(f"{k}: {v}" for k, v in pairs)


def _sheet(ws, no: int, builder: BlockBuilder, limits: LoadLimits, name: str) -> None:
    start = len(builder.blocks)
    builder.add(ws.title, page=no, kind="heading", level=1)
    heading_only = len(builder.blocks)
    keys: Callable[[int], str] | None = None
    pending: list[Row] = []  # first non-empty rows, until the header is known
    pending_raw: list[dict[int, object]] = []
    read = 0
    skipped = 0

    def emit(values: Row) -> None:
        nonlocal read
        read += 1
        builder.add(_row_text(values, keys or (lambda col: f"Spalte {col}")), page=no, kind="table")

    def settle() -> None:
        nonlocal keys, skipped
        h = _pick_header(pending, pending_raw)
        for pre in pending[:h]:  # title lines above the table
            builder.add(" | ".join(pre.values()), page=no, kind="table")
        keys = _HeaderKeys(pending[h], ws.max_column or 0)
        for row in pending[h + 1:]:
            if read < limits.max_sheet_rows:
                emit(row)
            else:
                skipped += 1
        if h == len(pending) - 1 and read == 0:
            # Nothing below the header (yet): keep the labels as content.
            builder.add(" | ".join(pending[h].values()), page=no, kind="table")
        pending.clear()
        pending_raw.clear()

    for values, raw in _sparse_rows(ws):
        if read >= limits.max_sheet_rows:
            skipped += 1  # past the limit only counted
            continue
        if keys is None:
            pending.append(values)
            pending_raw.append(raw)
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
