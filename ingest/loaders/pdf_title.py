"""A PDF's title as a reader sees it: the headline in the largest type on its first page.

Why: a source is cited by its title, and "Herausgeber:, Seite 51" helps nobody. Without a metadata
title the loader takes the first line of text, which in the test corpus was a label
("Herausgeber:", "Normgeber: Innenministerium"), a page number ("1", "Seite 1"), a funding note
printed above the title on six project sheets, or one word of a cover ("Tor"). The cover's
headline is set in the largest type; body text, funding notes and labels are not.

The headline is shown to people only (``ExtractedDocument.display_title``); the first line stays
the title indexed with every passage, because indexing the headline lowered the frozen blind
set's retrieval figures (docs/results.md, session 40).

Pure over the text fragments pypdf reports (text, effective font size), so it is tested with tables.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from typing import Sequence

from ingest.loaders.blocks import one_line

log = logging.getLogger(__name__)

HEADLINE_RATIO = 1.25  # the headline's type is at least this much larger than the body text's
MAX_HEADLINE_CHARS = 160  # longer "headlines" are body text set large (a cover that is all text)
MIN_MEAN_WORD = 3.5  # letter-spaced type comes out as "Bek ann tma chu ng": no title

SHOWN_CHARS = 100  # a source's name is cut at a word before this many characters

Fragment = tuple[float, str]  # effective font size, text


def _alnum(text: str) -> int:
    return sum(c.isalnum() for c in text)


def body_size(fragments: Sequence[Fragment]) -> float | None:
    """The font size that carries the most characters: the body text."""
    chars: Counter[float] = Counter()
    for size, text in fragments:
        chars[size] += _alnum(text)
    chars = Counter({s: n for s, n in chars.items() if n})
    return chars.most_common(1)[0][0] if chars else None


def _runs(fragments: Sequence[Fragment]) -> list[tuple[float, str]]:
    """Consecutive fragments of one size joined into one run of text; a line break (often a
    fragment of its own, of any size) becomes a space."""
    runs: list[tuple[float, list[str]]] = []
    gap = False
    for size, text in fragments:
        if not _alnum(text):
            gap = gap or bool(text) and text.isspace()
            continue
        piece = text.replace("\n", " ")
        if runs and runs[-1][0] == size:
            runs[-1][1].append((" " if gap else "") + piece)
        else:
            runs.append((size, [piece]))
        gap = text.endswith("\n")
    return [(size, re.sub(r"\s+", " ", "".join(parts)).strip()) for size, parts in runs]


def _usable(text: str) -> bool:
    words = re.findall(r"[^\W\d_]+", text)
    return (sum(c.isalpha() for c in text) >= 3 and len(text) <= MAX_HEADLINE_CHARS
            and bool(words) and sum(map(len, words)) / len(words) >= MIN_MEAN_WORD)


def headline(first_page: Sequence[Fragment], body: float | None) -> str:
    """The first page's headline: the first run of its largest type, if that type is clearly
    larger than ``body`` (the document's body text), with the run in the next-largest such type
    after it as a subtitle; runs that are no title (a page number, letter-spaced type, a cover
    set large all over) are passed over ("Öffentliches Gestalten – Handbuch für innovatives Arbeiten in der
    Verwaltung"). "" when the page has no such type or its text is no title."""
    if body is None:
        return ""
    runs = [(s, t) for s, t in _runs(first_page) if s >= HEADLINE_RATIO * body and _usable(t)]
    picked: list[str] = []
    after = -1
    for size in sorted({s for s, _ in runs}, reverse=True)[:2]:
        at = next((i for i, (s, _) in enumerate(runs) if s == size and i > after), None)
        if at is None:
            break
        picked.append(runs[at][1])
        after = at
    return " – ".join(picked)


def _undoubled(text: str) -> str:
    """"Open Open Data Data Ranking Ranking" -> "Open Data Ranking": type printed twice for a bold
    look comes out with every word doubled."""
    words = text.split(" ")
    if len(words) >= 4 and len(words) % 2 == 0 and all(words[i] == words[i + 1] for i in range(0, len(words), 2)):
        return " ".join(words[::2])
    return text


def shown_headline(text: str, limit: int = SHOWN_CHARS) -> str:
    """The headline as a source's name: ligatures spelled out ("Redeﬁning"), doubled type undone,
    cut at a word before ``limit`` characters (a long subtitle would push the page number out of
    the source's line)."""
    text = _undoubled(one_line(unicodedata.normalize("NFKC", text)))  # no control characters: a terminal prints it
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" –-:,")
    return cut + "…"


def fragments(page) -> list[Fragment]:
    """(effective font size, text) of a pypdf page, in the content stream's order."""
    out: list[Fragment] = []

    def visit(text, cm, tm, _font, size):
        scale = (abs(tm[3]) or abs(tm[0]) or 1.0) * (abs(cm[3]) or abs(cm[0]) or 1.0)
        out.append((round(float(size) * scale, 1), text or ""))

    page.extract_text(visitor_text=visit)
    return out


def pdf_headline(reader, body_pages: int = 3) -> str:
    """The headline of a pypdf reader's first page (body size taken over its first pages: a
    cover alone has too little body text to tell). "" on any failure: a title is not worth one."""
    try:
        first = fragments(reader.pages[0])
        sample = list(first)
        for i in range(1, min(body_pages, len(reader.pages))):
            sample.extend(fragments(reader.pages[i]))
        return headline(first, body_size(sample))
    except Exception as exc:  # noqa: BLE001 - odd fonts or matrices must not cost the document
        log.debug("Überschrift der ersten Seite nicht lesbar: %s", exc)
        return ""
