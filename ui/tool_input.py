"""Input for the Werkzeuge from files and page ranges, shared by the portal tab and the CLI.

Files are read by the same loaders as ingestion (content-sniffed, in a worker process with
the time and memory limits of ``limits.*``), so a hostile upload cannot hang the portal; the
text is data for the tool and is never stored in the knowledge base.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from assistant.tools.result import ToolError


def read_file_text(settings, path: Path) -> tuple[str, str]:
    """(title, text) of a document file; a bad file raises :class:`ToolError` with the reason."""
    from ingest.errors import IngestError
    from ingest.loaders import LoadLimits
    from ingest.loaders.isolated import make_loader

    s = settings.limits
    limits = LoadLimits(max_bytes=s.max_bytes, max_pages=s.max_pages, max_unzipped_bytes=s.max_unzipped_bytes,
                        max_zip_ratio=s.max_zip_ratio, max_text_chars=s.max_text_chars)
    loader = make_loader(limits, s.load_timeout_s, s.load_max_memory_mb)
    try:
        doc = loader(Path(path))
    except IngestError as exc:
        raise ToolError(f"Die Datei ließ sich nicht lesen: {exc}") from None
    finally:
        close = getattr(loader, "close", None)
        if close:
            close()
    text = "\n\n".join(b.text for b in doc.blocks if b.text.strip())
    if not text.strip():
        raise ToolError("Die Datei enthält keinen Text (gescannt? Dann bitte zuerst OCR).")
    return doc.display_title or doc.title, text


def parse_pages(value: str | None) -> tuple[int, int] | None:
    """"3-7", "3–7" or "5" → (3, 7) / (5, 5); empty → None."""
    value = (value or "").strip()
    if not value:
        return None
    m = re.fullmatch(r"(\d{1,5})\s*(?:[-–]\s*(\d{1,5}))?", value)
    if not m:
        raise ToolError(f"Seitenbereich nicht verstanden: {value!r} (z. B. 3-7)")
    a, b = int(m.group(1)), int(m.group(2) or m.group(1))
    if a < 1 or b < a:
        raise ToolError(f"Seitenbereich ungültig: {value!r}")
    return a, b


def upload_path(value: Any, user: str, audit=None) -> Path | None:
    """The one place that turns a gradio file value into a path (a single upload).

    Only a file this user uploaded through the portal is accepted (:func:`ui.file_values.received_files`:
    gradio received it in this server from this user, inside its upload folder, no symlink); any
    other value – a server path written into the JSON by a crafted client – is refused and audited."""
    from ui.file_values import UntrustedFile, received_files

    try:
        paths = received_files(value, user, audit)
    except UntrustedFile as exc:
        raise ToolError(str(exc)) from None
    if len(paths) > 1:
        raise ToolError("Bitte genau eine Datei hochladen.")
    return Path(paths[0]) if paths else None
