"""Words a PDF's ligatures broke apart, joined again: "Betroff ene" -> "Betroffene", "fi nden" -> "finden".

Why: some fonts set "ff", "fi" and "fl" as one glyph whose advance width pypdf reads as a gap, so
it writes a space after the ligature. In the shared corpus this hit one document, the 188-page
CityLAB handbook "Öffentliches Gestalten": 489 broken words on 100 of its pages ("modifi ziert",
"defi nieren", "häufi g", "Konfl ikt", "öff entliche"). Neither the keyword index nor the
embedding then knows "finden", "Betroffene" or "öffentliche" on those pages, and quotes read
badly. Its pages were the ones retrieval missed most (docs/results.md, session 38).

A word that really ends in a ligature pair before another word ("Begriff der", "Kick-off starten",
"Stoff bestehen") is rare, so the repair runs only on a document where such gaps are many and
dense (the handbook: 461 in 47,963 words, 96 per 10,000; the Berlin project management handbook:
8 real pairs in 61,482 words; a 1,846-word clothing rule: 4 real pairs), and joins only when the
next piece is no function word. Pure, over the document's page texts.
"""
from __future__ import annotations

import re
from typing import Sequence

from corpus.text import stopwords

#: a ligature pair at the end of a piece, a space, and a lower-case piece after it
_GAP = re.compile(r"(?<![^\W\d_])(\w*(?:ff|fi|fl)) ([a-zäöüß][^\W\d_]*)")
#: so many gaps in one document, and so dense, say its font splits ligatures
MIN_GAPS = 12
MIN_GAPS_PER_10K_WORDS = 40


def _joinable(match: re.Match) -> bool:
    return match.group(2).lower() not in stopwords()


def gap_count(texts: Sequence[str | None]) -> int:
    """How many ligature gaps the page texts hold (pairs whose second piece is no function word)."""
    return sum(1 for t in texts if t for m in _GAP.finditer(t) if _joinable(m))


def splits_ligatures(texts: Sequence[str | None]) -> bool:
    """Whether the document's gaps are many and dense enough to be its font's doing."""
    gaps = gap_count(texts)
    words = sum(len(t.split()) for t in texts if t)
    return gaps >= MIN_GAPS and gaps * 10_000 >= MIN_GAPS_PER_10K_WORDS * words


def close_ligature_gaps(texts: Sequence[str | None]) -> list[str | None]:
    """The page texts with ligature gaps closed where the document :func:`splits_ligatures`; else
    unchanged (a page that could not be read stays ``None``)."""
    if not splits_ligatures(texts):
        return list(texts)
    join = lambda m: m.group(1) + m.group(2) if _joinable(m) else m.group(0)  # noqa: E731
    return [_GAP.sub(join, t) if t else t for t in texts]
