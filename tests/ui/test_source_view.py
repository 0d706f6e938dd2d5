"""The sources under an answer: one entry per page, its quote, the longer excerpt only when it adds."""
from __future__ import annotations

import pytest

from ui.source_view import adds_to_quote, merge_sources, shown_in, sources_html

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


def test_a_quoted_table_row_shows_under_its_header_line():
    """Joined in one line, "Leistung | Gebühr Reisepass | 70,00 Euro" read as a row of four cells."""
    items = merge_sources([{"n": 1, "doc_id": "d", "title": "Gebühren", "page": 1, "snippet": "x",
                            "quote": "Leistung  | Gebühr\n\nReisepass |  70,00 <b>Euro</b>"}])
    assert items[0].quote == "Leistung | Gebühr\nReisepass | 70,00 <b>Euro</b>"
    html = sources_html(items, heading="Quellen", where=lambda i: "", link=lambda i: None)
    assert "„Leistung | Gebühr<br>Reisepass | 70,00 &lt;b&gt;Euro&lt;/b&gt;“" in html
    # a passage that is just the header and the row offers no "Längerer Auszug" repeating it
    only = merge_sources([{"n": 1, "doc_id": "d", "title": "Gebühren", "page": 1,
                           "snippet": "Leistung | Gebühr Reisepass | 70,00 Euro", "quote": "Leistung | Gebühr\nReisepass | 70,00 Euro"}])
    assert "<details>" not in sources_html(only, heading="Quellen", where=lambda i: "", link=lambda i: None)


def test_a_second_link_opens_the_text_view_where_the_title_opens_the_original():
    items = merge_sources([{"n": 1, "doc_id": "d", "title": "Satzung", "page": 3, "snippet": "Text", "quote": "Text"}])
    html = sources_html(items, heading="Quellen", where=lambda i: "Seite 3", link=lambda i: "doc/d?t=1#page=3",
                        text_link=lambda i: 'doc/d/text?chunk=2&s=0,1&t=1"><script>#treffer')
    assert ('<a href="doc/d/text?chunk=2&amp;s=0,1&amp;t=1&quot;&gt;&lt;script&gt;#treffer" target="_blank" '
            'rel="noopener noreferrer" class="kp-src-text">Stelle im Text markiert</a>') in html
    assert "kp-src-text" not in sources_html(items, heading="Quellen", where=lambda i: "", link=lambda i: "doc/d")


def test_direction_controls_in_a_quote_are_not_shown():
    """An attacker's probe: a right-to-left override in a table row survived in the sources' quote
    lines (the answer text drops it)."""
    items = merge_sources([{"n": 1, "doc_id": "d", "title": "Rechnung\u202efdp.exe", "page": 1, "snippet": "x",
                            "quote": "Leistung | Gebühr\nRechnung\u202efdp.exe | 70,00 Euro"}])
    html = sources_html(items, heading="Quellen", where=lambda i: "", link=lambda i: None)
    assert "\u202e" not in html and "Rechnungfdp.exe | 70,00 Euro" in html


@pytest.mark.parametrize("quote, answer, shown", [
    ("Die Schulung dauert 90 Minuten.", "Laut den Dokumenten: „Die Schulung dauert 90 Minuten.“ [1]", True),
    ("Die Schulung dauert\n90 Minuten.", "Sie dauert 90 Minuten [1].\n\n„Die Schulung  dauert 90 Minuten.“", True),
    ("Leistung | Gebühr\nReisepass | 70,00 Euro", "„Leistung | Gebühr\nReisepass | 70,00 Euro“ [2]", True),
    ("Die Schulung dauert 90 Minuten und ist …", "„Die Schulung dauert 90 Minuten und ist auf 16 Personen begrenzt.“", True),
    ("Die Schulung dauert 90 Minuten.", "Die Schulung dauert 90 Minuten [1].", True),   # the sentence is the quote
    ("Die Schulung dauert 90 Minuten.", "Sie dauert anderthalb Stunden [1].", False),  # the model's own words
    ("Die Schulung dauert 90 Minuten.", "", False),
    ("", "Irgendeine Antwort", False),
])
def test_shown_in(quote, answer, shown):
    assert shown_in(quote, answer) is shown


def test_a_quote_the_answer_shows_is_not_repeated_under_its_source():
    """A browser review read every quote twice: in the answer and again under "Quellen"."""
    citations = [{"n": 1, "doc_id": "a", "title": "Kurs", "page": 2, "snippet": LONG, "quote": "Die Schulung dauert 90 Minuten."},
                 {"n": 2, "doc_id": "b", "title": "FAQ", "page": 1, "snippet": "Text B", "quote": "Anmeldung per E-Mail."}]
    html = sources_html(merge_sources(citations), heading="Quellen", where=lambda i: "", link=lambda i: None,
                        answer="Laut den Dokumenten: „Die Schulung dauert 90 Minuten.“ [1]")
    assert "„Die Schulung dauert 90 Minuten.“</blockquote>" not in html and "[1] Kurs" in html
    assert "Längerer Auszug" in html  # the page's longer excerpt stays on demand
    assert "„Anmeldung per E-Mail.“</blockquote>" in html  # a quote the answer does not show stays
