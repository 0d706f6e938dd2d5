"""RTF loader via striprtf: every RTF paragraph (\\par) becomes a block.

RTF is 7-bit ASCII with escapes, so the bytes are read as cp1252 (the
default ANSI code page); striprtf applies the document's own code page to
``\\'xx`` escapes and handles ``\\uN`` Unicode escapes itself.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from corpus.models import ExtractedDocument
from ingest.loaders.blocks import BlockBuilder, clean_text, sensible_title, title_from_text
from ingest.loaders.limits import LoadLimits
from ingest.loaders.text import paragraphs_to_blocks

log = logging.getLogger(__name__)

_INFO_TITLE_RE = re.compile(r"\{\\title\s+((?:[^{}\\]|\\[^{}])*)\}")


def _info_title(raw: str, rtf_to_text) -> str:
    """The title from the RTF ``{\\info{\\title ...}}`` group, if the author set one."""
    m = _INFO_TITLE_RE.search(raw[:65536])
    if not m:
        return ""
    try:
        return sensible_title(rtf_to_text("{\\rtf1 " + m.group(1) + "}", encoding="cp1252", errors="replace"))
    except Exception:  # noqa: BLE001 - a broken info group is not worth failing for
        return ""


def load_rtf(path: Path, limits: LoadLimits) -> ExtractedDocument:
    from striprtf.striprtf import rtf_to_text

    raw = path.read_bytes().decode("cp1252", errors="replace")
    text = rtf_to_text(raw, encoding="cp1252", errors="replace")
    # striprtf ends each \par with a single newline: each line is a paragraph.
    paragraphs = [ln for ln in clean_text(text).split("\n") if ln.strip()]
    builder = BlockBuilder()
    paragraphs_to_blocks(paragraphs, builder)
    title = _info_title(raw, rtf_to_text) or builder.first_heading() or (title_from_text(builder.blocks[0].text) if builder.blocks else "")
    return ExtractedDocument(format="rtf", title=title[:200], blocks=tuple(builder.blocks))
