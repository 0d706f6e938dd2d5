"""The sources under an answer: one entry per page, its quote, the longer excerpt only when it adds."""
from __future__ import annotations

import pytest

from ui.source_view import adds_to_quote, merge_sources, sources_html

LONG = "Die Schulung dauert 90 Minuten und ist auf 16 Personen je Termin begrenzt. " * 3


@pytest.mark.parametrize("excerpt, quote, shown", [
    ("", "Die Schulung dauert 90 Minuten.", False),
    ("Die Schulung dauert 90 Minuten.", "Die Schulung dauert 90 Minuten.", False),          # the same text
    ("Die Schulung dauert 90 Minuten. Sie ist kostenlos.", "Die Schulung dauert 90 Minuten.", False),  # a few words
    (LONG, "Die Schulung dauert 90 Minuten und ist auf 16 Personen je Termin begrenzt.", True),
    (LONG, LONG[:60].rstrip() + "…", True),                                                   # a cut quote
    ("Ganz andere Stelle der Seite, die mehr sagt.", "Die Schulung dauert 90 Minuten.", True),  # not the quote's text
    ("Etwas.", "", True),
])
def test_adds_to_quote(excerpt, quote, shown):
    assert adds_to_quote(excerpt, quote) is shown


def test_each_entry_is_numbered_once_by_its_citation_marks():
    citations = [{"n": 2, "doc_id": "a", "title": "Steckbrief", "page": 3, "snippet": "Text A"},
                 {"n": 1, "doc_id": "b", "title": "FAQ", "page": None, "snippet": "Text B"}]
    html = sources_html(merge_sources(citations), heading="Quellen", where=lambda item: "", link=lambda item: None)
    assert "<ol" not in html and '<ul class="kp-sources-list">' in html  # an <ol> read "1. [2] …"
    assert html.index("[2] Steckbrief") < html.index("[1] FAQ")
    assert "Längerer Auszug" not in html  # a short passage is its quote, not shown twice
