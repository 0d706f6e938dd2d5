"""Words a PDF's ligatures broke apart are joined again, only in a document full of such gaps
(ingest.loaders.ligature_gaps)."""
from __future__ import annotations

import pytest

from ingest.loaders import load_document
from ingest.loaders.ligature_gaps import close_ligature_gaps, gap_count, splits_ligatures

BROKEN = "Die Betroff enen treff en sich, um Konfl ikte zu defi nieren und Lösungen zu fi nden; das ist häufi g so."
JOINED = "Die Betroffenen treffen sich, um Konflikte zu definieren und Lösungen zu finden; das ist häufig so."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BROKEN, JOINED),
        ("Die öff entliche Verwaltung", "Die öffentliche Verwaltung"),
        ("Der Begriff der Beteiligung", "Der Begriff der Beteiligung"),  # a function word after it: two words
        ("Ein Stoff und ein Treff in der Stadt", "Ein Stoff und ein Treff in der Stadt"),
        ("Die Zahl 2ff ist kein Wort", "Die Zahl 2ff ist kein Wort"),
        ("Seite Öff entliches Gestalten", "Seite Öffentliches Gestalten"),
        ("OFF ENTLICH", "OFF ENTLICH"),  # capitals: no gap the rule can tell from two words
    ],
)
def test_gaps_are_closed_in_a_document_full_of_them(text, expected):
    pages = [BROKEN] * 2 + [text, None]
    assert splits_ligatures(pages[:2])
    assert close_ligature_gaps(pages) == [JOINED, JOINED, expected, None]


@pytest.mark.parametrize(
    "pages",
    [
        # few pairs ("Zugriff erfolgt" counts too: the threshold, not the pair, tells them apart)
        ["Das Treff en findet statt. Der Stoff eingewebt.", None, "Ein Zugriff erfolgt."],
        # many real pairs in a long document ("Kick-off starten"), but not dense
        ["Das Projekt soll mit einem Kick-off starten. " + "Die Projektleitung plant die Arbeit im Team. " * 60] * 12,
    ],
)
def test_a_document_with_few_or_sparse_such_pairs_is_left_as_it_is(pages):
    assert 0 < gap_count(pages) and not splits_ligatures(pages)
    assert close_ligature_gaps(pages) == pages


def test_a_pdf_with_broken_ligatures_is_indexed_with_whole_words(tmp_path, make_pdf):
    page = "\n".join([BROKEN] * 3)
    doc = load_document(make_pdf(tmp_path / "handbuch.pdf", [page, page]))
    assert "Betroffenen treffen sich" in doc.text and "fi nden" not in doc.text
