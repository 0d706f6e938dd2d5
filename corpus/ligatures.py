"""Words a PDF font's ligatures broke apart, joined for reading: "Betroff ene" -> "Betroffene".

Why: some fonts set "ff", "fi" and "fl" as one glyph whose advance width pypdf reads as a gap, so
the extracted text has a space after the ligature ("modifi ziert", "fi nden", "öff entliche"). In
the shared corpus this hits the 188-page CityLAB handbook "Öffentliches Gestalten" (461 gaps on
100 pages); quotes from it read badly.

Why for reading only, not in the index: joining the words in the indexed text was measured in
session 41 and cost retrieval (the handbook's running footer "Öffentliches Gestalten" then matched
every question naming it; the frozen blind set lost two questions of evidence recall,
docs/results.md). So the index keeps pypdf's text, and what people read (quotes, excerpts, the
answer built on them, the text view, the display title, and the tools, which hand a document to
the model to rewrite for people) is joined where :func:`document_splits` says the document's font
splits its ligatures. The trainer's "Blick unter die Haube" shows passages and prompt as the
model read them, unjoined: that view is for seeing what the model got.

A word that really ends in such a pair before another word ("Begriff der", "Kick-off starten",
"Stoff bestehen") is rare, so a document counts only when its gaps are many and dense (the
handbook: 461 in 47,963 words, 96 per 10,000; the Berlin project management handbook: 8 real
pairs in 61,482 words), and a gap is joined only when the next piece is no function word.
"""
from __future__ import annotations

import re
import threading
from dataclasses import replace
from typing import Iterable, Iterator, Sequence

from corpus.models import Chunk
from corpus.text import stopwords

#: a ligature pair at the end of a piece, a space, and a lower-case piece after it
_GAP = re.compile(r"(?<![^\W\d_])(\w*(?:ff|fi|fl)) ([a-zäöüß][^\W\d_]*)")
#: so many gaps in one document, and so dense, say its font splits ligatures
MIN_GAPS = 12
MIN_GAPS_PER_10K_WORDS = 40


def _joinable(match: re.Match) -> bool:
    return match.group(2).lower() not in stopwords()


def _gaps(texts: Iterable[str | None]) -> Iterator[re.Match]:
    """Every ligature gap of ``texts`` (a pair whose second piece is no function word)."""
    return (m for t in texts if t for m in _GAP.finditer(t) if _joinable(m))


def gap_count(texts: Sequence[str | None]) -> int:
    """How many ligature gaps the texts hold."""
    return sum(1 for _ in _gaps(texts))


def splits_ligatures(texts: Sequence[str | None]) -> bool:
    """Whether a document's gaps (over all its texts) are many and dense enough to be its font's doing."""
    gaps = gap_count(texts)
    words = sum(len(t.split()) for t in texts if t)
    return gaps >= MIN_GAPS and gaps * 10_000 >= MIN_GAPS_PER_10K_WORDS * words


def document_splits(fmt: str, texts: Sequence[str | None]) -> bool:
    """Whether a document of format ``fmt`` is read joined: a PDF whose indexed passages' texts
    :func:`splits_ligatures`. Every reader decides on the same input, the passages as the catalog
    holds them (the ingest for the display title, the chain, the text view and the tools), so
    they cannot disagree near the threshold."""
    return fmt == "pdf" and splits_ligatures(texts)


def readable_chunks(fmt: str, chunks: Iterable[Chunk]) -> list[Chunk]:
    """All of a document's passages as people read them: joined where :func:`document_splits`
    (decide on the whole document, then pick pages, so a page range is read as the whole is)."""
    chunks = list(chunks)
    if document_splits(fmt, [c.text for c in chunks]):
        return [replace(c, text=close_gaps(c.text)) for c in chunks]
    return chunks


def close_gaps(text: str) -> str:
    """``text`` with every ligature gap joined (call it for a document that :func:`splits_ligatures`)."""
    return _GAP.sub(lambda m: m.group(1) + m.group(2) if _joinable(m) else m.group(0), text)


def gap_pairs(texts: Iterable[str | None]) -> dict[str, str]:
    """``{"Betroff ene": "Betroffene", …}``: every joinable gap of ``texts`` as it stands there."""
    return {m.group(0): m.group(1) + m.group(2) for m in _gaps(texts)}


class SplitDocuments:
    """Which documents of the catalog have their font's ligature gaps, decided once per version.

    The decision reads all of a document's passages, so it is kept per (doc_id, content hash) with
    the document's gaps as they stand in its text: a re-indexed file is decided again, and a
    process reads a document's passages once."""

    def __init__(self, catalog, max_docs: int = 1024) -> None:
        self.catalog = catalog
        self.max_docs = max_docs
        self._known: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()

    def gaps(self, records: Iterable) -> dict[str, dict[str, str]]:
        """``{doc_id: its gap pairs}`` for the documents among ``records`` (the catalog's, as the caller
        has them at hand) whose text splits its ligatures; only PDFs do."""
        out = {}
        for rec in records:
            if rec.format != "pdf":  # the one format whose fonts do it; no passages read for the rest
                continue
            key = (rec.doc_id, rec.sha256)
            with self._lock:
                known = self._known.get(key)
            if known is None:
                texts = [c.text for c in self.catalog.iter_chunks(rec.doc_id)]
                known = gap_pairs(texts) if document_splits(rec.format, texts) else {}
                with self._lock:
                    if len(self._known) >= self.max_docs:
                        self._known.clear()
                    self._known[key] = known
            if known:
                out[rec.doc_id] = known
        return out


def join_known_gaps(text: str, pairs: dict[str, str]) -> str:
    """``text`` with exactly the gaps ``pairs`` names joined: for text that only partly comes from a
    document that splits its ligatures (a model's sentence, a list of passages from several
    documents), where :func:`close_gaps` would also join "Zugriff erhalten" of another source."""
    if not pairs or not text:
        return text
    found = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, sorted(pairs, key=len, reverse=True))) + r")(?!\w)")
    return found.sub(lambda m: pairs[m.group(0)], text)
