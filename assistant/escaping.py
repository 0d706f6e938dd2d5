"""Escaping for the two markups kiportal writes: HTML and Markdown. One home, used everywhere.

Document text, file names, answers and user names are data written by others. Every
string that reaches HTML goes through :func:`esc`, every string that reaches Markdown
(the chatbot, the admin area, exports, handouts) through :func:`md_esc`, so no markup in
them is ever interpreted: no injected links, images, layout, formulas or scripts, and no
direction controls that show a file name or sentence in another order than it has.
"""
from __future__ import annotations

import html
import re
import unicodedata
from typing import Any

from corpus.text import without_direction_controls


def esc(value: Any) -> str:
    """HTML-escape anything (quotes too: values also land in attributes); direction controls dropped."""
    return html.escape(without_direction_controls("" if value is None else str(value)), quote=True)


_MD_INLINE = re.compile(r"([\\`*_\[\]()|~$])")
_MD_LINE_START = re.compile(r"^(\s*)([#+\-=]|\d+(?=[.)]))", re.MULTILINE)
# what GitHub-flavoured Markdown turns into a link without any markup: a scheme's "://", "www." and
# the "@" of an e-mail address, also inside a word (marked, the chat's renderer, looks for them anywhere);
# a backslash before the colon, dot or at sign shows the same text
_MD_AUTOLINK = re.compile(r"(?i)(?:https?|ftp)(?=://)|www(?=\.)|(?<=[\w.+-])(?=@[\w-])")


def md_esc(value: Any, *, cell: bool = False) -> str:
    """Markdown-escape text: HTML entities for ``<>&`` (Markdown passes raw HTML through),
    backslashes before inline syntax (emphasis, links and their parentheses, code, table pipes,
    formula dollars) and before block
    syntax at line starts (headings, quotes, lists), and before the colon of ``https://``, the dot
    of ``www.`` and the at sign of an e-mail address, which GitHub-flavoured Markdown (the chat's)
    would make a link of: a phishing address in a document stays text to copy, not a click.
    Other dots and hyphens inside a line stay readable. ``cell``: one line, for a table cell."""
    text = html.escape(without_direction_controls("" if value is None else str(value)), quote=False)
    text = _MD_INLINE.sub(r"\\\1", text)
    text = _MD_AUTOLINK.sub(lambda m: m.group(0) + "\\", text)
    if cell:
        text = re.sub(r"\s*\n\s*", " ", text).strip()
    return _MD_LINE_START.sub(_escape_line_start, text)


def _escape_line_start(m: re.Match) -> str:
    lead, mark = m.group(1), m.group(2)
    return lead + (mark + "\\" if mark[0].isdigit() else "\\" + mark)


def md_code_block(text: str) -> str:
    """A fenced block that the text cannot close: the fence is longer than any backtick run in it."""
    longest = max((len(m) for m in re.findall(r"`+", text or "")), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


_CITATION = re.compile(r"\\\[(\d{1,3})\\\](?!:)")
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def md_text(text: str) -> str:
    """A message or tool output for a Markdown file: literal in any viewer (links, images and HTML
    stay text). Citation marks stay readable as ``[1]``: with parentheses escaped and no ``[1]:``
    left unescaped (a reference definition), they can link nowhere."""
    return _CITATION.sub(r"[\1]", md_esc((text or "").strip()))


def xml_text(text: Any) -> str:
    """Text a Word document can hold (XML 1.0 allows no control characters but tab and newlines), in
    the order it has: direction overrides dropped as in the portal ("Rechnung\u202efdp.exe" showed as
    "Rechnungexe.pdf" in an exported summary, an attacker's probe)."""
    return without_direction_controls(_NOT_XML.sub("", "" if text is None else str(text)))


def one_line(value: str) -> str:
    """A value as the log keeps it, on one line: tabs and line breaks as spaces, other control and format
    characters (terminal escapes, bidi overrides, zero-width marks) written out as ``\\uXXXX``. Names and titles come from requests
    and documents; raw, a login name with ``ESC[2J`` cleared the screen of an operator running
    ``kiportal audit export``, and one with a newline forged a line (found by an attacker's probe).
    Inside JSON the same text is a valid escape of the same character."""
    return "".join(" " if ch in "\t\n\r" else f"\\u{ord(ch):04x}" if unicodedata.category(ch) in _HIDDEN else ch
                   for ch in value)


_HIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
