"""Words a PDF font's ligatures broke apart are joined for reading, only in a document full of such
gaps (corpus.ligatures); the catalog's decision is kept per document version."""
from __future__ import annotations

import pytest

from corpus.catalog import DocumentRecord
from corpus.ligatures import SplitDocuments, close_gaps, gap_count, gap_pairs, join_known_gaps, splits_ligatures

BROKEN = "Die Betroff enen treff en sich, um Konfl ikte zu defi nieren und Lösungen zu fi nden; das ist häufi g so."
JOINED = "Die Betroffenen treffen sich, um Konflikte zu definieren und Lösungen zu finden; das ist häufig so."


@pytest.mark.parametrize(("text", "expected"), [
    (BROKEN, JOINED),
    ("Die öff entliche Verwaltung", "Die öffentliche Verwaltung"),
    ("Der Begriff der Beteiligung", "Der Begriff der Beteiligung"),  # a function word after it: two words
    ("Ein Stoff und ein Treff in der Stadt", "Ein Stoff und ein Treff in der Stadt"),
    ("Die Zahl 2ff ist kein Wort", "Die Zahl 2ff ist kein Wort"),
    ("Seite Öff entliches Gestalten", "Seite Öffentliches Gestalten"),
    ("OFF ENTLICH", "OFF ENTLICH"),  # capitals: no gap the rule can tell from two words
    ("", ""),
])
def test_gaps_are_closed(text, expected):
    assert close_gaps(text) == expected


@pytest.mark.parametrize("pages", [
    # few pairs ("Zugriff erfolgt" counts too: the threshold, not the pair, tells them apart)
    ["Das Treff en findet statt. Der Stoff eingewebt.", None, "Ein Zugriff erfolgt."],
    # many real pairs in a long document ("Kick-off starten"), but not dense
    ["Das Projekt soll mit einem Kick-off starten. " + "Die Projektleitung plant die Arbeit im Team. " * 60] * 12,
])
def test_a_document_with_few_or_sparse_such_pairs_does_not_split_ligatures(pages):
    assert 0 < gap_count(pages) and not splits_ligatures(pages)


def test_a_document_full_of_gaps_splits_ligatures():
    assert splits_ligatures([BROKEN] * 3 + [None])


class _Chunk:
    def __init__(self, text: str) -> None:
        self.text = text


class _Catalog:
    """The catalog call SplitDocuments makes (the caller hands it the records), counting passage reads."""

    def __init__(self) -> None:
        self.texts = {"handbuch": [BROKEN] * 3, "satzung": [JOINED] * 3, "notiz": [BROKEN] * 3}
        self.reads = 0

    def iter_chunks(self, doc_id):
        self.reads += 1
        return [_Chunk(t) for t in self.texts[doc_id]]


def _rec(doc_id: str, fmt: str = "pdf", sha: str = "v1") -> DocumentRecord:
    return DocumentRecord(doc_id=doc_id, source=f"{doc_id}.{fmt}", path="", collection="c", status="indexed",
                          format=fmt, sha256=sha)


def test_the_catalog_decision_is_made_once_per_document_version_and_only_for_pdfs():
    cat = _Catalog()
    split = SplitDocuments(cat)
    assert set(split.gaps([_rec("handbuch"), _rec("satzung"), _rec("notiz", "md")])) == {"handbuch"}
    assert set(split.gaps([_rec("handbuch"), _rec("satzung")])) == {"handbuch"} and cat.reads == 2
    cat.texts["handbuch"] = [JOINED] * 3  # re-indexed from a better file
    assert split.gaps([_rec("handbuch", sha="v2")]) == {} and cat.reads == 3


@pytest.mark.parametrize(("text", "expected"), [
    ("Die Betroff enen treff en sich.", "Die Betroffenen treffen sich."),
    ("Sie haben Zugriff erhalten.", "Sie haben Zugriff erhalten."),  # another source's words: not its gap
    ("Die treff enden Worte", "Die treff enden Worte"),  # only whole pieces as they stand in the document
    ("", ""),
])
def test_only_the_gaps_a_document_has_are_joined_in_mixed_text(text, expected):
    pairs = gap_pairs([BROKEN, None, "Die Betroff enen treff en sich."])
    assert pairs["Betroff enen"] == "Betroffenen" and "Zugriff erhalten" not in pairs
    assert join_known_gaps(text, pairs) == expected
    assert join_known_gaps(text, {}) == text


def test_the_gaps_of_a_split_document_are_kept_with_the_decision():
    split = SplitDocuments(_Catalog())
    gaps = split.gaps([_rec("handbuch"), _rec("satzung"), _rec("notiz", "md")])
    assert set(gaps) == {"handbuch"} and gaps["handbuch"]["fi nden"] == "finden"
