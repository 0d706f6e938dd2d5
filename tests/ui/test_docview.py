"""The document routes' pure decisions (ui.docview); the routes themselves are attacked over HTTP in
tests/security (test_attack_swapped_original.py serves these ranges from a real portal)."""
from __future__ import annotations

import pytest

from corpus.catalog import DocumentRecord
from corpus.models import Chunk
from ui.docview import byte_range, parse_marks, quoted_units, render_text_page, text_units


@pytest.mark.parametrize("header, size, expected", [
    (None, 100, None), ("", 100, None), ("bytes=0-9", 100, (0, 9)), ("bytes=90-", 100, (90, 99)),
    ("bytes=-10", 100, (90, 99)), ("bytes=-500", 100, (0, 99)), ("bytes=0-500", 100, (0, 99)),
    ("bytes=100-", 100, False), ("bytes=9-3", 100, False), ("bytes=0-1,5-6", 100, None),  # several: the whole file
    ("items=0-9", 100, None), ("bytes=-", 100, None), ("bytes=abc-", 100, None), ("bytes=0-0", 0, False),
    # thousands of digits: int() raised (a 500 and a traceback per request); now no range, the whole file
    ("bytes=" + "9" * 5000 + "-", 100, None), ("bytes=-" + "9" * 5000, 100, None),
    ("bytes=" + "9" * 18 + "-", 100, False),  # a long but readable number: cannot be satisfied
])
def test_byte_range(header, size, expected):
    assert byte_range(header, size) == expected


# -- the quoted pieces of a passage, marked in the text view --------------------------------------
TABLE = ("Gebühren des Bürgerbüros\nLeistung | Gebühr\nPersonalausweis | 37,00 Euro\nReisepass | 70,00 Euro\n"
         "Die Gebühr ist bei Antragstellung zu zahlen. Ermäßigungen gibt es nicht.")


@pytest.mark.parametrize("quote, expected", [
    # a table row under its header line, as the chain quotes it, and joined by a space as stored before
    ("Leistung | Gebühr\nReisepass | 70,00 Euro", ["Leistung | Gebühr", "Reisepass | 70,00 Euro"]),
    ("Leistung | Gebühr Reisepass | 70,00 Euro", ["Leistung | Gebühr", "Reisepass | 70,00 Euro"]),
    # one sentence of a line with two
    ("Die Gebühr ist bei Antragstellung zu zahlen.", ["Die Gebühr ist bei Antragstellung zu zahlen."]),
    # pieces joined by "…", the last one cut short
    ("Personalausweis | 37,00 Euro … Die Gebühr ist bei Antragstel…",
     ["Personalausweis | 37,00 Euro", "Die Gebühr ist bei Antragstellung zu zahlen."]),
    # whitespace as the quote was condensed
    ("Ermäßigungen   gibt\nes nicht.", ["Ermäßigungen gibt es nicht."]),
    # not in the passage: nothing marked
    ("Der Führerschein kostet 43 Euro.", []),
    ("", []),
])
def test_quoted_units_name_the_pieces_the_quote_is_made_of(quote, expected):
    units = text_units(TABLE)
    assert [TABLE[a:b] for a, b in (units[i] for i in quoted_units(TABLE, quote))] == expected


def test_a_lone_word_of_the_quote_is_not_marked_on_its_own():
    text = "Euro\nDer Reisepass kostet 70,00 Euro."
    assert quoted_units(text, "Der Reisepass kostet 70,00 Euro.") == [1]


@pytest.mark.parametrize("value, expected", [
    ("0,3,4", [0, 3, 4]), ("4,4,1", [1, 4]), ("7", [7]),
    (None, []), ("", []), ("a", []), ("1,,2", []), ("-1", []), ("12345", []), (" 1", []),
    (",".join(["1"] * 21), []), ("9" * 5000, []),
])
def test_parse_marks_accepts_only_short_lists_of_numbers(value, expected):
    assert parse_marks(value) == expected


def _rec(fmt="docx"):
    return DocumentRecord(doc_id="d1", source="/x/gebuehren.docx", path="/x/gebuehren.docx", collection="c",
                          status="indexed", format=fmt, title="Gebühren")


def _chunk(ordinal: int, text: str) -> Chunk:
    return Chunk(chunk_id=f"d1:{ordinal}", doc_id="d1", ordinal=ordinal, text=text, source="/x/gebuehren.docx",
                 title="Gebühren", page=1, section=None, collection="c")


def test_text_view_marks_the_quoted_pieces_escaped_inside_the_passage():
    text = TABLE.replace("Reisepass", "<b>Reisepass</b>")
    quote = "Leistung | Gebühr <b>Reisepass</b> | 70,00 Euro"
    chunks = [_chunk(0, text)]
    page = render_text_page(_rec(), chunks, mark=0, marks=quoted_units(text, quote))
    assert '<mark class="zitat">Leistung | Gebühr</mark>' in page
    assert '<mark class="zitat">&lt;b&gt;Reisepass&lt;/b&gt; | 70,00 Euro</mark>' in page
    assert page.count('<mark class="zitat">') == 2 and "<b>" not in page
    assert '<mark id="treffer">Gebühren des Bürgerbüros\n<mark class="zitat">Leistung' in page
    assert "kräftig markiert" in page
    # marks name only the cited passage; a number past its pieces marks nothing
    other = render_text_page(_rec(), chunks, mark=0, marks=[99])
    assert "zitat" not in other.split("</style>")[1]
    assert "zitat" not in render_text_page(_rec(), chunks, mark=None, marks=[1]).split("</style>")[1]


def test_a_mark_in_the_line_the_text_view_leaves_out_as_a_repeat_brings_it_back():
    """Passages overlap: the view leaves out a passage's first line when the one before ends with it.
    When the quote stands in that line, it is shown again, marked (a review: the quote was unmarked)."""
    first = _chunk(0, "Einleitung.\nDer Rat tagt monatlich.")
    second = _chunk(1, "Der Rat tagt monatlich.\nDie Sitzungen sind öffentlich.")
    body = render_text_page(_rec(), [first, second], mark=1, marks=[0]).split("</style>")[1]
    assert '<mark id="treffer"><mark class="zitat">Der Rat tagt monatlich.</mark>\nDie Sitzungen' in body
    unmarked = render_text_page(_rec(), [first, second], mark=1, marks=[1]).split("</style>")[1]
    assert unmarked.count("Der Rat tagt monatlich.") == 1  # the repeat stays out when the quote is elsewhere
    assert '<mark id="treffer"><mark class="zitat">Die Sitzungen sind öffentlich.</mark></mark>' in unmarked
    assert "kräftig markiert" in unmarked
    # the hint says "kräftig markiert" only when a sentence was marked
    assert "kräftig" not in render_text_page(_rec(), [first, second], mark=1, marks=[7])
    assert "kräftig" not in render_text_page(_rec(), [first, second], mark=None, marks=[1])


def test_marks_are_whole_pieces_word_for_word():
    text = "Frist 2 Jahre\nAufbewahrung 12 Jahre"
    assert quoted_units(text, "Aufbewahrung 12 Jahre") == [1]  # "Frist 2 Jahre" is not in it
    assert quoted_units(text, "Frist 2 Jahre") == [0]


def test_direction_controls_in_document_text_are_not_shown():
    chunks = [_chunk(0, "Rechnung\u202efdp.exe liegt bei.\nDie Frist endet am 3. März.")]
    page = render_text_page(_rec(), chunks, mark=0, marks=[0])
    assert "\u202e" not in page and "Rechnungfdp.exe liegt bei." in page
