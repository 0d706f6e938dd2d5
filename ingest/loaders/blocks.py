"""Text clean-up and block building shared by all loaders.

Every format ends up as the same ``Block`` stream, so the normalisation rules
(whitespace, soft hyphens, NULs, empty blocks, heading heuristics) live here
once instead of drifting apart in nine loaders.
"""
from __future__ import annotations

import codecs
import logging
import re

from corpus.models import Block
from ingest.errors import IngestError

log = logging.getLogger(__name__)

# Characters that carry no text: soft hyphen, zero-width space/joiners, BOM, word joiner.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
# C0/C1 control characters except tab/newline/carriage return/form feed.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_HSPACE_RE = re.compile(r"[^\S\n]+")  # any whitespace except newline
_MANY_NEWLINES_RE = re.compile(r"\n{3,}")
_WS_RE = re.compile(r"\s+")

MAX_TITLE_CHARS = 200


def clean_text(text: str) -> str:
    """Normalise text but keep paragraph structure (single and double newlines).

    Removes invisible characters and control characters (NUL included) because
    they break tokenisers and make identical text look different to dedup.
    """
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    text = text.translate(_INVISIBLE)
    text = _CONTROL_RE.sub("", text)
    text = _HSPACE_RE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _MANY_NEWLINES_RE.sub("\n\n", text)
    return text.strip()


def one_line(text: str) -> str:
    """Collapse all whitespace to single spaces: for headings, titles and table cells."""
    if not text:
        return ""
    text = text.translate(_INVISIBLE)
    text = _CONTROL_RE.sub(" ", text)
    return _WS_RE.sub(" ", text).strip()


def split_paragraphs(text: str) -> list[str]:
    """Split cleaned text at blank lines."""
    return [p for p in clean_text(text).split("\n\n") if p.strip()]


# "Verwal-\ntung" -> "Verwaltung"; also "Anfor -\nderungen" as some PDF producers emit.
# Not when the next word is a conjunction: "Hoch-\nund Tiefbau" keeps its hyphen.
_DEHYPHEN_RE = re.compile(
    r"(?<=[^\W\d_])[ \t]?-[ \t]*\n[ \t]*"
    r"(?!(?:und|oder|bzw|sowie|bis|als|noch|wie)\b)"
    r"(?=[a-zäöüß])"
)


def dehyphenate(text: str) -> str:
    """Rejoin words split by line-end hyphenation when the next line starts lowercase."""
    return _DEHYPHEN_RE.sub("", text)


# --- heading heuristics (for formats without explicit structure: PDF, TXT, RTF) ---

_NUMBERED_RE = re.compile(
    r"^(?:"
    r"(?P<num>\d{1,2}(?:\.\d{1,3}){0,5})\.?"  # 3 / 3. / 3.2 / 3.2.1
    r"|(?P<roman>[IVX]{1,5})\."  # II.
    r"|(?P<para>§{1,2}\s*\d{1,4}[a-z]?)"  # § 5 / §12a
    r"|(?P<art>(?:Art\.|Artikel|Teil|Abschnitt|Kapitel|Anlage)\s+\d{1,3}[a-z]?)"
    r")\s+(?P<title>[^\W\d_][^\n]{1,})$"
)
_DATE_RE = re.compile(r"\d{4}|\b\d{1,2}\.\s*\w")  # "Vom 8. Juli 2024" is a date line, not a heading
# A structural label alone on its line; its title follows on the next line ("§ 2" / "Zuständigkeit").
LABEL_RE = re.compile(r"^(?:§{1,2}\s*\d{1,4}[a-z]?|(?:Art\.|Artikel|Teil|Abschnitt|Kapitel|Anlage)\s+\d{1,3}[a-z]?)$")
# A heading line ending like this continues on the next line ("Änderung des" / "E-Government-Gesetzes").
CONTINUES_RE = re.compile(r"\b(?:des|der|die|das|dem|den|und|oder|für|von|zur|zum|mit|über|im|in|zu|auf|bei|nach)$")
_TERMINAL_PUNCT = (".", ",", ";", "!", "?")


def label_heading(label: str, following: list[str]) -> tuple[str, int]:
    """Join a label line ("§ 2", "Artikel 1") with its title lines; return (heading, lines used).

    ``following`` are the next lines/paragraphs. Returns ("", 0) when the next
    line is not a plausible title, so the label stays ordinary text.
    """
    if not LABEL_RE.match(label) or not following:
        return "", 0
    heading, used = label, 0
    for nxt in following[:3]:
        nxt = nxt.strip()
        if not nxt or len(nxt) > 80 or nxt.endswith(_TERMINAL_PUNCT + (":",)) or len(heading) + len(nxt) > 160:
            break
        heading, used = f"{heading} {nxt}", used + 1
        if not CONTINUES_RE.search(nxt):
            break
    return (heading, used) if used else ("", 0)


def heading_level(line: str, *, standalone: bool = False) -> int:
    """Return a heading level (>=1) if ``line`` looks like a heading, else 0.

    Deliberately conservative: a false heading splits a paragraph and gives
    chunks a wrong section name, which is worse than a missed heading.
    ``standalone`` means the line is a paragraph of its own (blank lines
    around it), which makes a short un-numbered line plausible as a heading.
    """
    line = line.strip()
    if not line or len(line) > 80 or "\n" in line:
        return 0
    letters = [c for c in line if c.isalpha()]
    if len(letters) < 3:
        return 0
    m = _NUMBERED_RE.match(line)
    if m:
        title = m.group("title")
        if title.endswith((",", ";")) or len(title.split()) > 12:
            return 0
        if title.endswith(".") and not m.group("para") and not m.group("art"):
            # "3. Die Gemeinde erhebt Gebühren." is a list item, not a heading.
            return 0
        if m.group("num"):
            return min(m.group("num").count(".") + 1, 6)
        return 2 if (m.group("para") or m.group("art")) else 1
    if line.endswith(_TERMINAL_PUNCT):
        return 0
    upper = sum(1 for c in letters if c.isupper())
    if len(letters) >= 4 and upper / len(letters) >= 0.9 and len(line) <= 60:
        return 1
    if standalone and len(line) <= 60 and len(line.split()) <= 8 and line[0].isupper() and not _DATE_RE.search(line):
        return 2
    return 0


class BlockBuilder:
    """Collects blocks, dropping the ones that are empty after normalisation."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []

    def add(self, text: str, page: int | None = None, kind: str = "paragraph", level: int = 0) -> None:
        if kind in ("heading", "title"):
            text = one_line(text)
        elif kind == "table":
            text = "\n".join(filter(None, (one_line(r) for r in text.split("\n"))))
        else:
            text = clean_text(text)
        if text:
            self.blocks.append(Block(text=text, page=page, kind=kind, level=level))  # type: ignore[arg-type]

    def add_table(self, rows: list[list[str]], page: int | None = None) -> None:
        """Add table rows as one block, one row per line, cells joined with " | "."""
        lines = []
        for row in rows:
            # Empty cells (also the covered part of merged cells) carry nothing to search.
            cells = [c for c in (one_line(c) for c in row) if c]
            if cells:
                lines.append(" | ".join(cells))
        if lines:
            self.add("\n".join(lines), page=page, kind="table")

    def first_heading(self) -> str:
        for b in self.blocks:
            if b.kind in ("title", "heading"):
                return b.text
        return ""


_JUNK_TITLE_RE = re.compile(
    r"^(?:microsoft (?:word|powerpoint|excel) - .*|untitled.*|unbenannt.*|ohne titel|titel|title"
    r"|dokument\s*\d*|document\s*\d*|präsentation\s*\d*|presentation\s*\d*|folie\s*\d*|seite\s*\d*"
    r"|powerpoint-präsentation|powerpoint presentation|vordruck|vorlage|template|slide\s*\d*)$"
    r"|durch klicken hinzufügen|click to add"
    r"|\.(?:docx?|dotx?|pptx?|potx?|xlsx?|pdf|odt|rtf|indd|qxp|qxd|tmp|txt|pages|numbers|key|ai|psd|html?)$",
    re.IGNORECASE,
)


def sensible_title(title: object) -> str:
    """Return ``title`` cleaned, or "" if it is producer junk rather than a real title.

    PDF and Office metadata titles are often "Microsoft Word - bericht.docx",
    "Unbenannt" or a file name; such a title is worse than the first heading.
    """
    if not isinstance(title, str):
        return ""
    t = one_line(title)
    if len(t) < 3 or sum(c.isalpha() for c in t) < 3:
        return ""
    if _JUNK_TITLE_RE.search(t):
        return ""
    if " " not in t and re.search(r"[_\d]", t):
        return ""  # "Antrag_Modellprojekte_SC", "Postkarten_v5-cc18-web": a file name, not a title
    return t[:MAX_TITLE_CHARS]


def title_from_text(text: str) -> str:
    """First line of ``text`` as a title candidate, cut at a sensible length."""
    for line in text.split("\n"):
        line = one_line(line)
        if line:
            return line if len(line) <= MAX_TITLE_CHARS else line[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return ""


# --- decoding -----------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_bytes(data: bytes, name: str = "") -> str:
    """Decode text bytes: UTF-8 (with or without BOM), UTF-16/32 with BOM, else cp1252/latin-1.

    Municipal text files are often exported from old Windows software in
    cp1252; guessing wrong would turn every umlaut into mojibake, so UTF-8 is
    tried strictly first and the fallback is logged.
    """
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(enc)
            except UnicodeDecodeError:
                break
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
        log.info("Text ist kein UTF-8, als cp1252 gelesen: %s", name)
    except UnicodeDecodeError:
        text = data.decode("latin-1")
        log.info("Text ist kein UTF-8, als latin-1 gelesen: %s", name)
    return text


_JUNK_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff]")


def junk_ratio(text: str) -> float:
    """Share of control, replacement and private-use chars: high means binary, not text."""
    if not text:
        return 0.0
    return len(_JUNK_RE.findall(text)) / len(text)


def decode_text_file(data: bytes, name: str = "") -> str:
    """Decode and reject binary garbage that merely happens to decode."""
    text = decode_bytes(data, name)
    if junk_ratio(text[:200_000]) > 0.05:
        raise IngestError("corrupt", "undecodable text / Text nicht dekodierbar")
    return text
