"""Words a PDF font's ligatures broke apart are joined for reading, only in a document full of such
gaps (corpus.ligatures); the catalog's decision is kept per document version."""
from __future__ import annotations

import pytest

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


class _Rec:
    def __init__(self, fmt: str, sha: str) -> None:
        self.format, self.sha256 = fmt, sha


class _Chunk:
    def __init__(self, text: str) -> None:
        self.text = text


class _Catalog:
    """The two catalog calls SplitDocuments makes, counting the passage reads."""

    def __init__(self) -> None:
        self.docs = {"handbuch": (_Rec("pdf", "a"), [BROKEN] * 3), "satzung": (_Rec("pdf", "b"), [JOINED] * 3),
                     "notiz": (_Rec("md", "c"), [BROKEN] * 3)}
        self.reads = 0

    def get(self, doc_id):
        return self.docs[doc_id][0] if doc_id in self.docs else None

    def iter_chunks(self, doc_id):
        self.reads += 1
        return [_Chunk(t) for t in self.docs[doc_id][1]]


def test_the_catalog_decision_is_made_once_per_document_version_and_only_for_pdfs():
    cat = _Catalog()
    split = SplitDocuments(cat)
    assert split.among(["handbuch", "satzung", "notiz", "weg"]) == {"handbuch"}
    assert split.among(["handbuch", "satzung"]) == {"handbuch"} and cat.reads == 2
    cat.docs["handbuch"] = (_Rec("pdf", "neu"), [JOINED] * 3)  # re-indexed from a better file
    assert split.among(["handbuch"]) == set() and cat.reads == 3


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
    gaps = split.gaps(["handbuch", "satzung", "notiz"])
    assert set(gaps) == {"handbuch"} and gaps["handbuch"]["fi nden"] == "finden"
