"""Input for the Werkzeuge from files and page ranges, shared by the portal tab and the CLI.

Files are read by the same loaders as ingestion (content-sniffed, in a worker process with
the time and memory limits of ``limits.*``), so a hostile upload cannot hang the portal; the
text is data for the tool and is never stored in the knowledge base.

The Ampel's „Trotzdem senden“ confirms one input only: :func:`input_fingerprint` names what a run
would send, and :func:`confirmation` decides whether a confirmed run is the one the server warned about.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

from assistant.tools.result import ToolError


def read_file_text(settings, path: Path) -> tuple[str, str]:
    """(title, text) of a document file; a bad file raises :class:`ToolError` with the reason.

    The portal reads it while the tool holds the answer queue, so the whole read, text
    recognition included, gets ``tools.file_read_seconds`` (an attacker's 2,000-page scan held
    everyone's answers for hours under the ingest's limits); the operator's ``ocr.*`` settings hold."""
    from assistant import stopping
    from assistant.wiring import load_limits
    from ingest.errors import IngestError
    from ingest.loaders.isolated import ReadCancelled, make_loader

    seconds = settings.tools.file_read_seconds
    timeout = min(settings.limits.load_timeout_s, seconds) if settings.limits.load_timeout_s else 0.0
    # the read ends when the user leaves the run (Abbrechen): called off and sent again, each read went on
    loader = make_loader(load_limits(settings, file_seconds=seconds), timeout, settings.limits.load_max_memory_mb,
                         cancelled=stopping.stop_requested)
    try:
        doc = loader(Path(path))
    except ReadCancelled:
        raise stopping.Stopped from None
    except IngestError as exc:
        hint = (" Eine lange Datei oder einen Scan bitte in die Wissensbasis aufnehmen lassen und dort als Dokument"
                " wählen." if exc.code == "timeout" else "")
        raise ToolError(f"Die Datei ließ sich nicht lesen: {exc}{hint}") from None
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


#: :func:`confirmation`'s verdicts: the warned input again, no warning to confirm, another input
CONFIRMED, NOT_WARNED, CHANGED = "confirmed", "not_warned", "changed"


def input_fingerprint(tool: str, user: str, model: str, **fields: Any) -> str:
    """A hash of everything that decides what a tool run sends to the model: the tool, the user, the
    model key and the input (the text as the tool gets it – a file's text once read –, a document and
    its pages, a draft's kind and sources). The same input gives the same hash; no text is kept."""
    payload = json.dumps({"tool": tool, "user": user, "model": model, "fields": fields}, sort_keys=True,
                         ensure_ascii=False, separators=(",", ":"), default=list)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def confirmation(warned: str | None, current: str) -> str:
    """Whether a run sent with „Trotzdem senden“ may go out as confirmed: only when the server warned
    in this browser tab about exactly this input (``warned``: the fingerprint the warning run left in
    the tab's server-side state, taken once). :data:`CONFIRMED`, :data:`NOT_WARNED` (no warning held:
    none given, or already used) or :data:`CHANGED` (the warning was about another input)."""
    if not warned:
        return NOT_WARNED
    return CONFIRMED if hmac.compare_digest(warned, current) else CHANGED
