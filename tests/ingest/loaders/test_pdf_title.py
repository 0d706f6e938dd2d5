"""A PDF is shown by the headline in its largest type, not its first line (ingest.loaders.pdf_title);
the first line stays the title indexed with its passages."""
from __future__ import annotations

import pytest

from ingest.loaders import load_document
from ingest.loaders.pdf_title import body_size, headline, shown_headline

BODY = [(11.0, "Die Gebühren werden mit der Bekanntgabe fällig und sind binnen eines Monats zu zahlen.")]


@pytest.mark.parametrize(
    ("first_page", "expected"),
    [
        # a label above the headline: the label was the title before
        ([(11.0, "Herausgeber:"), (24.0, "Technische Richtlinie"), (11.0, "\n"), (18.0, "Digitale Alarmierung")],
         "Technische Richtlinie – Digitale Alarmierung"),
        # a funding note in small type above the headline
        ([(7.0, "Gefördert von der Senatsverwaltung"), (20.0, "Smart City Amsterdam")], "Smart City Amsterdam"),
        # a headline over two lines: one run, the line break a space
        ([(30.0, "Öffentliches \n"), (30.0, "Gestalten")], "Öffentliches Gestalten"),
        # the line break as a fragment of its own, in another size, still separates the words
        ([(30.0, "Offene Daten"), (1.0, "\n"), (30.0, "für die Jugendarbeit")], "Offene Daten für die Jugendarbeit"),
        # no type clearly larger than the body: no headline (the loader falls back to the first line)
        ([(12.0, "Satzung über die Abfallgebühren"), (11.0, "§ 1 Geltungsbereich")], ""),
        # letter-spaced type is no title
        ([(16.0, "Bek ann tma chu ng")], ""),
        # a cover set large all over is body text, not a headline
        ([(30.0, "Wort " * 50)], ""),
        # a big page number is skipped, the headline after it is not reached as a subtitle of nothing
        ([(40.0, "12"), (20.0, "Haushaltsplan 2025")], "Haushaltsplan 2025"),
        # only the next run *after* the headline is its subtitle
        ([(18.0, "Stadt Musterhausen"), (28.0, "Jahresbericht")], "Jahresbericht"),
        ([], ""),
    ],
)
def test_headline(first_page, expected):
    assert headline(first_page, body_size(first_page + BODY * 3)) == expected


def test_body_size_is_the_size_with_most_characters():
    assert body_size([(30.0, "Titel"), (11.0, "ein langer Absatz Text"), (9.0, "Fußnote")]) == 11.0
    assert body_size([(11.0, "\n"), (8.0, "  ")]) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Open Open Data Data Ranking Ranking", "Open Data Ranking"),  # type printed twice for a bold look
        ("Data Data Literacy", "Data Data Literacy"),  # an odd number of words: not doubled type
        ("Digitale  Alarmierung", "Digitale Alarmierung"),
        ("Rede\ufb01ning the Smart City", "Redefining the Smart City"),  # a ligature character spelled out
        ("Satzung\x1b]0;gekapert\x07 der Stadt", "Satzung ]0;gekapert der Stadt"),  # no terminal escapes
        ("Best Practice Beispiele für Smart City Anwendungen in Europa – Niederlande: Amsterdam Hintergrund und "
         "Kurzbeschreibung", "Best Practice Beispiele für Smart City Anwendungen in Europa – Niederlande: Amsterdam…"),
    ],
)
def test_shown_headline(text, expected):
    assert shown_headline(text, limit=90) == expected


def test_a_pdf_is_shown_by_its_headline_and_indexed_by_its_first_line(tmp_path, make_pdf, sized_page):
    cover = sized_page([(10, "Herausgeber:"), (10, "Landesamt für Brandschutz"), (26, "Digitale Alarmierung"),
                        (16, "Geräte für Feuerwehr und Rettungsdienst")])
    body = "\n".join(["Meldeempfänger müssen mindestens 200 Stunden empfangsbereit bleiben."] * 20)
    doc = load_document(make_pdf(tmp_path / "richtlinie.pdf", [cover, body, body]))
    assert doc.display_title == "Digitale Alarmierung – Geräte für Feuerwehr und Rettungsdienst"
    assert doc.title == "Herausgeber:"


def test_a_pdf_without_a_larger_headline_is_shown_by_its_title(tmp_path, make_pdf, sized_page):
    body = "\n".join(["Meldeempfänger müssen mindestens 200 Stunden empfangsbereit bleiben."] * 20)
    doc = load_document(make_pdf(tmp_path / "richtlinie.pdf", [sized_page([(11, "Richtlinie Alarmierung")]), body]))
    assert doc.title == "Richtlinie Alarmierung" and doc.display_title == ""


def test_pdf_metadata_title_still_comes_first(tmp_path, make_pdf, sized_page):
    cover = sized_page([(10, "Herausgeber:"), (26, "Digitale Alarmierung")])
    path = make_pdf(tmp_path / "richtlinie.pdf", [cover, "Text " * 50], title="TR BOS Digitale Alarmierung")
    doc = load_document(path)
    assert doc.title == "TR BOS Digitale Alarmierung" and doc.display_title == ""
