"""Resource limits for loading one file, and the zip-bomb guard for Office archives.

Limits exist because the portal indexes whatever a municipality drops into a
folder: a single hostile or broken file must not exhaust memory or time for
the whole ingest run. Checks happen before any parser touches the content.
"""
from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import IngestError
from ingest.loaders.ocr import OcrOptions

log = logging.getLogger(__name__)

#: A member must expand to more than this before its ratio counts as suspicious:
#: small XML parts compress extremely well and are harmless.
ZIP_RATIO_MIN_MEMBER_BYTES = 10 * 1024 * 1024
#: More members than any real Office document has; many tiny members are a
#: cheap way to make parsers spend time on nothing.
MAX_ZIP_MEMBERS = 20_000


@dataclass(frozen=True)
class LoadLimits:
    """Upper bounds for one file. Defaults fit real municipal documents with margin."""

    max_bytes: int = 100 * 1024 * 1024
    max_pages: int = 2000
    max_unzipped_bytes: int = 500 * 1024 * 1024
    max_zip_ratio: float = 200.0
    max_sheet_rows: int = 20000
    #: characters of extracted text: a small file whose text explodes (a spreadsheet repeating a long
    #: header in every cell) is refused in the reading worker, before the text reaches the indexer
    max_text_chars: int = 20_000_000
    #: pixels of one image or page (decompression-bomb guard: checked from the header, before decoding)
    max_image_pixels: int = 80_000_000
    ocr: OcrOptions = OcrOptions()


def check_zip(path: Path, limits: LoadLimits) -> None:
    """Reject Office archives that would expand suspiciously, before a parser inflates them.

    Only the central directory is read, so this costs almost nothing even for
    large files. Declared sizes are an upper bound of what ``zipfile`` will
    ever hand out (it stops at ``file_size``), so trusting them is safe.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise IngestError("corrupt", f"ZIP-Archiv nicht lesbar: {exc}") from exc

    if len(infos) > MAX_ZIP_MEMBERS:
        raise IngestError("zip_bomb", f"{len(infos)} Einträge im Archiv")
    total = 0
    for info in infos:
        total += info.file_size
        if total > limits.max_unzipped_bytes:
            raise IngestError(
                "zip_bomb",
                f"entpackt mehr als {limits.max_unzipped_bytes // (1024 * 1024)} MB",
            )
        if info.file_size > ZIP_RATIO_MIN_MEMBER_BYTES:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_zip_ratio:
                raise IngestError(
                    "zip_bomb",
                    f"Eintrag {info.filename!r} hat Kompressionsrate {ratio:.0f}:1",
                )
