"""Markdown loader: ATX/Setext headings become headings, everything else plain text.

No Markdown library is used: we need structure (headings) and clean text,
not HTML rendering, and a line scanner is faster and cannot emit markup.
Inline syntax (emphasis, links, images, inline HTML) is reduced to its text
so search and embeddings see words, not asterisks and URLs.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from corpus.models import ExtractedDocument
from ingest.loaders.blocks import BlockBuilder, decode_text_file, sensible_title, title_from_text
from ingest.loaders.limits import LoadLimits

log = logging.getLogger(__name__)

_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FM_TITLE_RE = re.compile(r"^(?:title|titel)[ \t]*:[ \t]*(.+?)[ \t]*$", re.MULTILINE | re.IGNORECASE)
# Pandoc title block: "% Titel" / "% Autor" / "% Datum" as the first lines.
_PANDOC_BLOCK_RE = re.compile(r"\A(?:%[^\n]*\n?)+")
_ATX_START_RE = re.compile(r" {0,3}(#{1,6})(?=[ \t]|$)")
_SETEXT_RE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_HR_RE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# possessive: with plain "\s*\|?\s*" a long run of spaces was tried split at every point (quadratic)
_TABLE_SEP_RE = re.compile(r"^\s*+\|?+\s*+:?+-{2,}+:?+\s*+(?:\|\s*+:?+-{2,}+:?+\s*+)*+\|?+\s*+$")
# Jekyll/Liquid template tags ({% include ... %}) are site machinery, never content.
# spans are bounded (here and below): an unclosed "{%" or "**" repeated would otherwise make each
# start scan to the end of the text, quadratic in its length (a 100 KB file held the reader for minutes)
LIQUID_RE = re.compile(r"\{%(?:[^%{]|%(?!\}))*%\}|\{\{(?:[^{}]|\}(?!\}))*\}\}")  # no "{" inside: linear
# Converter output sometimes flattens a page into one line: "…Wahlperiode   ## des Abgeordneten …".
_INLINE_ATX_RE = re.compile(r"(?<![ \t])[ \t]{3,}(?=#{1,6} )")  # from the start of a gap only: linear
_GAP_RE = re.compile(r"[ \t]{3,}")
MAX_HEADING_CHARS = 150

_INLINE_SUBS = (
    (re.compile(r"!\[([^\[\]]{0,300})\]\([^)]{0,1000}\)"), r"\1"),  # images -> alt text
    (re.compile(r"\[([^\[\]]{1,300})\]\([^)]{0,1000}\)"), r"\1"),  # links -> link text
    (re.compile(r"\[([^\[\]]{1,300})\]\[[^\[\]]{0,300}\]"), r"\1"),  # reference links
    (re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>"), ""),  # inline HTML tags
    (re.compile(r"(\*\*|__)(?=\S)(.{1,300}?)(?<=\S)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *italic*
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), r"\1"),  # _italic_
    (re.compile(r"~~(.{1,300}?)~~"), r"\1"),  # strikethrough
    (re.compile(r"`([^`\n]+)`"), r"\1"),  # inline code
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>])"), r"\1"),  # backslash escapes
)
_LIST_MARK_RE = re.compile(r"^(\s*)(?:[-*+]|\d{1,3}[.)])\s+(?:\[[ xX]\]\s+)?")
_QUOTE_RE = re.compile(r"^\s*>\s?")


def inline(text: str) -> str:
    """Reduce inline Markdown syntax to its visible text."""
    for pattern, repl in _INLINE_SUBS:
        text = pattern.sub(repl, text)
    return text


def _table_line(line: str) -> str:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    return " | ".join(c for c in cells if c)


def parse_front_matter(text: str) -> tuple[str, str]:
    """Split YAML front matter (or a Pandoc "% title" block) off; return (title or "", rest)."""
    m = _FRONT_MATTER_RE.match(text)
    if not m:
        pandoc = _PANDOC_BLOCK_RE.match(text)
        if pandoc:
            # First line is the title; author/date lines stay as text (they answer "since when?").
            lines = [ln.lstrip("%").strip() for ln in pandoc.group(0).splitlines()]
            return lines[0], "\n".join(lines[1:]) + "\n\n" + text[pandoc.end():]
        return "", text
    title = ""
    t = _FM_TITLE_RE.search(m.group(1))
    if t:
        title = t.group(1).strip().strip("\"'")
    return title, text[m.end():]


def atx_heading(line: str) -> tuple[int, str | None] | None:
    """An ATX heading ("## Titel ##") as (level, text), text None for a bare "#"; None if the line
    is none. By hand rather than one regex: the regex's lazy text tried the optional closing "#"s at
    every position of a long run of spaces, so a 50 KB line took 15 s."""
    m = _ATX_START_RE.match(line)
    if m is None:
        return None
    rest = line[m.end():]
    if not rest:
        return len(m.group(1)), None
    text = rest.strip(" \t")
    hashless = text.rstrip("#")
    if hashless != text and hashless[-1:] in (" ", "\t"):  # a closing sequence after a space or tab
        text = hashless.rstrip(" \t")
    return len(m.group(1)), text


def drop_html_comments(text: str) -> str:
    """Text without "<!-- … -->" (an unclosed one stays). A loop over str.find, since the regex
    "<!--.*?-->" scanned to the end of the text from each of 100,000 unclosed openers."""
    out: list[str] = []
    pos = 0
    while (start := text.find("<!--", pos)) >= 0 and (end := text.find("-->", start + 4)) >= 0:
        out.append(text[pos:start])
        pos = end + 3
    out.append(text[pos:])
    return "".join(out)


def load_markdown(path: Path, limits: LoadLimits) -> ExtractedDocument:
    text = decode_text_file(path.read_bytes(), path.name)
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    fm_title, text = parse_front_matter(text)
    text = drop_html_comments(text)
    text = LIQUID_RE.sub("", text)
    text = _INLINE_ATX_RE.sub("\n", text)

    builder = BlockBuilder()
    para: list[str] = []
    fence: str | None = None

    def flush() -> None:
        if not para:
            return
        lines = [ln for ln in para if ln.strip()]
        para.clear()
        if not lines:
            return
        if len(lines) >= 2 and any(_TABLE_SEP_RE.match(ln) for ln in lines[1:3]) and "|" in lines[0]:
            rows = [_table_line(inline(ln)) for ln in lines if not _TABLE_SEP_RE.match(ln)]
            builder.add("\n".join(rows), kind="table")
            return
        out = []
        for ln in lines:
            ln = _QUOTE_RE.sub("", ln)
            m = _LIST_MARK_RE.match(ln)
            if m:
                ln = "- " + ln[m.end():]
            out.append(inline(ln).strip())
        builder.add("\n".join(out))

    for line in text.split("\n"):
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
                flush()
            else:
                para.append(line)
            continue
        fm = _FENCE_RE.match(line)
        if fm:
            flush()
            fence = fm.group(1)[:3]
            continue
        atx = atx_heading(line)
        if atx:
            flush()
            level, heading, rest = atx[0], atx[1] or "", ""
            if len(heading) > MAX_HEADING_CHARS:
                # A "heading" running on for a page is a flattened block: keep its first
                # segment as the heading if that is a real title, the rest as text.
                head = _GAP_RE.split(heading, 1)[0]
                if len(head) <= MAX_HEADING_CHARS and sum(c.isalpha() for c in head) >= 3:
                    heading, rest = head, heading[len(head):]
                else:
                    heading, rest = "", heading
            builder.add(inline(heading), kind="heading", level=level)
            if rest.strip():
                builder.add(inline(_GAP_RE.sub("\n", rest.strip())))
            continue
        sm = _SETEXT_RE.match(line)
        if sm and len(para) == 1 and para[0].strip() and not _LIST_MARK_RE.match(para[0]):
            heading = para.pop()
            builder.add(inline(heading), kind="heading", level=1 if sm.group(1)[0] == "=" else 2)
            continue
        if not line.strip() or _HR_RE.match(line):
            flush()  # blank line or thematic break ends the paragraph
            continue
        para.append(line)
    flush()

    title = sensible_title(fm_title) or fm_title.strip()[:200]
    if not title:
        h1 = next((b.text for b in builder.blocks if b.kind == "heading" and b.level == 1), "")
        title = h1 or builder.first_heading()
    if not title and builder.blocks:
        title = title_from_text(builder.blocks[0].text)
    return ExtractedDocument(format="md", title=title, blocks=tuple(builder.blocks))
