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


# -- linear-time preparation for striprtf -------------------------------------------------------
# striprtf runs two patterns over the raw text whose backtracking is quadratic on hostile input: its
# hyperlink pattern (``.*HYPERLINK\s(".*")`` tried at every ``{\field{``: 64 KB of repeated field
# starts took 47 s, 128 KB 345 s) and its font-table pattern (``\f(\d+).*?\fcharset``: a 64 KB
# table of fonts without a charset 1.4 s). ``tame`` hands it text on which both are linear and
# that reads the same: a field start is written ``{\field {`` (the same group to RTF, but the link
# pattern never starts, so no link address is appended after a field's text; it rarely matched
# Word's output anyway), and the font table is rebuilt from its entries (number, charset, name),
# which is all striprtf reads from it: the charset decides how ``\'xx`` escapes are decoded.
_FIELD = "{\\field{"
_ESCAPED_OR_BRACE = re.compile(r"\\[\\{}]|[{}]")
_FONT_TOKEN = re.compile(r"\\f(\d{1,10})|\\fcharset(\d{1,3})|;")
_CONTROL = re.compile(r"\\[a-zA-Z]{1,32}-?\d{0,10} ?|\\.|[{}]")
MAX_FONTS = 4096


def _group_end(raw: str, start: int) -> int:
    """Position of the ``}`` closing the group opened at ``start`` (the text's end if never closed)."""
    depth = 0
    for m in _ESCAPED_OR_BRACE.finditer(raw, start):
        if m.group() == "{":
            depth += 1
        elif m.group() == "}":
            depth -= 1
            if depth == 0:
                return m.start()
    return len(raw)


def _rebuilt_font_table(raw: str) -> str:
    """The ``{\\fonttbl …}`` group replaced by one entry per font that names a charset."""
    at = raw.find("\\fonttbl")
    start = raw.rfind("{", 0, at) if at != -1 else -1
    if start == -1 or "}" in raw[start:at] or "{" in raw[start + 1:at]:
        return raw
    end = _group_end(raw, start)
    fonts: list[str] = []
    font, charset, name_from = None, None, at
    for m in _FONT_TOKEN.finditer(raw, at, end):
        if m.group(1) is not None:
            font, charset, name_from = m.group(1), None, m.end()
        elif m.group(2) is not None:
            charset, name_from = m.group(2), m.end()
        else:
            if font is not None and charset is not None and len(fonts) < MAX_FONTS:
                name = _CONTROL.sub("", raw[max(name_from, m.start() - 400):m.start()]).strip()[-100:]
                fonts.append(f"{{\\f{font}\\fcharset{charset} {name};}}")
            font, charset = None, None
    return raw[:start] + "{\\fonttbl" + "".join(fonts) + raw[end:]


def tame(raw: str) -> str:
    """``raw`` prepared so that striprtf reads it in linear time (see above)."""
    return _rebuilt_font_table(raw.replace(_FIELD, "{\\field {"))


def load_rtf(path: Path, limits: LoadLimits) -> ExtractedDocument:
    from striprtf.striprtf import rtf_to_text

    raw = path.read_bytes().decode("cp1252", errors="replace")
    text = rtf_to_text(tame(raw), encoding="cp1252", errors="replace")
    # striprtf ends each \par with a single newline: each line is a paragraph.
    paragraphs = [ln for ln in clean_text(text).split("\n") if ln.strip()]
    builder = BlockBuilder()
    paragraphs_to_blocks(paragraphs, builder)
    title = _info_title(raw, rtf_to_text) or builder.first_heading() or (title_from_text(builder.blocks[0].text) if builder.blocks else "")
    return ExtractedDocument(format="rtf", title=title[:200], blocks=tuple(builder.blocks))
