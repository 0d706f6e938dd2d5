"""Map-reduce over a whole document with the fake model: every passage read, points cited and checked."""
from __future__ import annotations

import re

import pytest

from assistant.llm.fake import FakeChatModel
from assistant.tools.summarize import (
    Passage, Point, batches, check_points, citations_valid, extractive_summary, parse_points, passages_of,
    preselect, render_points, summarize, table_row,
)
from corpus.models import Chunk


def count(text: str) -> int:
    return max(1, len(text) // 4)


PASSAGES = [
    Passage(1, "Die Friedhofsgebühr für ein Reihengrab beträgt 900 Euro. Sie wird bei der Zuteilung fällig."),
    Passage(2, "Die Ruhezeit für Erdbestattungen beträgt 20 Jahre. Danach kann das Grab neu belegt werden."),
    Passage(3, "Grabmale müssen standsicher sein. Die Friedhofsverwaltung prüft die Standsicherheit jährlich."),
    Passage(4, "Die Friedhofsordnung tritt am 1. Januar 2025 in Kraft. Die alte Satzung tritt außer Kraft."),
]


def test_batches_keep_order_and_budget():
    groups = batches(PASSAGES, max_tokens=60, count=count)
    assert [p.loc for g in groups for p in g] == [1, 2, 3, 4]
    assert len(groups) == 2
    assert batches(PASSAGES[:1], max_tokens=1, count=count) == [PASSAGES[:1]]


def test_parse_points_reads_locations():
    text = "Stichpunkte:\n- Ein Reihengrab kostet 900 Euro (S. 1)\n- Die Ruhezeit beträgt 20 Jahre (S. 2–3)\n- zu kurz\nSonstiges"
    points = parse_points(text)
    assert [(p.text, p.locs) for p in points] == [("Ein Reihengrab kostet 900 Euro", [1]),
                                                  ("Die Ruhezeit beträgt 20 Jahre", [2, 3])]


def test_check_points_recites_to_the_supporting_page():
    points = [Point("Die Ruhezeit für Erdbestattungen beträgt 20 Jahre", [3]),  # wrong page
              Point("Ein Reihengrab kostet 900 Euro Gebühr", []),  # no page
              Point("Der Mond ist aus grünem Käse", [1])]  # nowhere
    checked = check_points(points, PASSAGES)
    assert [(p.locs, p.checked) for p in checked] == [([2], True), ([1], True), ([1], False)]
    assert citations_valid(checked, PASSAGES) == (2, 3)
    assert "[Stelle nicht belegt]" in render_points(checked, "S.")


def test_map_reduce_reads_every_passage_and_cites_pages():
    def respond(prompt: str) -> str:
        if "Ausschnitt:" in prompt:  # map: one point per passage marker in the batch
            return "\n".join(f"- {text.split('.')[0]} ({label} {loc})"
                             for label, loc, text in re.findall(r"\[(S\.) (\d+)\] ([^\[]+)", prompt))
        return "- Ein Reihengrab kostet 900 Euro Friedhofsgebühr (S. 1)\n- Die Ruhezeit für Erdbestattungen beträgt 20 Jahre (S. 2)"

    llm = FakeChatModel(respond=respond)
    events = list(summarize("Friedhofssatzung", PASSAGES, "S.", llm, length="kurz", batch_tokens=60, map_tokens=100,
                            output_tokens=200, count=count))
    maps = [c for c in llm.calls if "Ausschnitt:" in c]
    assert len(maps) == 2  # every passage read, two batches
    assert all(f"[S. {n}]" in "".join(maps) for n in (1, 2, 3, 4))
    progress = [e for e in events if e["type"] == "progress"]
    assert progress[0]["total"] == 3 and "Abschnitt 1 von 2" in progress[0]["label"]
    done = events[-1]
    assert done["type"] == "done"
    # 4 map points > 3? no: kurz keeps up to 5 points, so no reduce call is needed here
    assert done["details"]["reduce_calls"] == 0
    assert done["details"]["citations_valid"] == 4 and done["details"]["batches"] == 2
    assert "(S. 3)" in done["output"]


def test_reduce_runs_when_there_are_more_points_than_the_length_allows():
    many = [Passage(i, f"Regel {i}: Die Gebühr Nummer {i} beträgt {i}0 Euro für Leistung {i}.") for i in range(1, 13)]

    def respond(prompt: str) -> str:
        if "Ausschnitt:" in prompt:
            return "\n".join(f"- Die Gebühr Nummer {loc} beträgt {loc}0 Euro (S. {loc})"
                             for loc in re.findall(r"\[S\. (\d+)\]", prompt))
        return "\n".join(f"- Die Gebühr Nummer {n} beträgt {n}0 Euro (S. {n})" for n in (1, 5, 9))

    llm = FakeChatModel(respond=respond)
    events = list(summarize("Gebühren", many, "S.", llm, length="kurz", batch_tokens=200, map_tokens=100,
                            output_tokens=200, count=count))
    done = events[-1]
    assert done["details"]["reduce_calls"] == 1
    assert [p["locs"] for p in done["details"]["points"]] == [[1], [5], [9]]
    tokens = "".join(e["text"] for e in events if e["type"] == "token")
    assert "Nummer 5" in tokens  # the final reduce is streamed


def test_preselect_keeps_central_sentences_in_order():
    p = Passage(1, "Die Gebühr beträgt 900 Euro. Das Wetter war schön. Die Gebühr wird jährlich fällig. Vögel singen.")
    other = Passage(2, "Die Gebühr ist zu zahlen. Die Gebühr richtet sich nach der Satzung.")
    (short, _) = preselect([p, other], 0.5)
    assert short.text == "Die Gebühr beträgt 900 Euro. Die Gebühr wird jährlich fällig."


def test_passages_of_uses_pages_or_passage_numbers():
    def chunk(i, page):
        return Chunk(f"c{i}", "d", i, f"Text {i}", "s.pdf", "T", page, None, "c")

    paged, has = passages_of([chunk(1, 3), chunk(0, 2), chunk(2, 5)], pages=(3, 5))
    assert has and [p.loc for p in paged] == [3, 5]
    plain, has = passages_of([chunk(0, None), chunk(1, None)])
    assert not has and [p.loc for p in plain] == [1, 2]


def test_extractive_summary_cites_every_point():
    events = list(extractive_summary(PASSAGES, "S.", "kurz"))
    done = events[-1]
    assert done["details"]["citations_valid"] == done["details"]["citations_total"] == 5  # 5 asked, of 8 sentences


def test_extractive_summary_gives_whole_sentences_as_many_as_asked_in_document_order():
    """Found by a browser review: one point per passage (3 of 10 asked for a short document), and a
    passage's first sentence was the tail of one cut off above it, headings glued to sentences."""
    passages = [
        Passage(1, "Merkblatt Datenschutz\nKI-Werkzeuge erleichtern viele Aufgaben. Was in das Portal des Rathauses "
                   "eingegeben wird, bleibt auf dem städtischen Server. Personenbezogene Daten gehören nur in Zone "
                   "Grün. Gesundheitsdaten und Angaben religiöser"),
        Passage(1, "des Rathauses eingegeben wurde, lässt sich nicht zurückholen. Im Zweifel fragen Sie die "
                   "Datenschutzbeauftragte. Chatverläufe werden nach 90 Tagen gelöscht. Wer darf das Portal nutzen?"),
    ]
    done = list(extractive_summary(passages, "S.", "mittel"))[-1]
    texts = [p["text"] for p in done["details"]["points"]]
    assert texts == [  # every whole sentence, in order; the cut ones, the short heading and the question left out
        "KI-Werkzeuge erleichtern viele Aufgaben.",
        "Was in das Portal des Rathauses eingegeben wird, bleibt auf dem städtischen Server.",
        "Personenbezogene Daten gehören nur in Zone Grün.",
        "Im Zweifel fragen Sie die Datenschutzbeauftragte.",
        "Chatverläufe werden nach 90 Tagen gelöscht.",
    ]
    slides = [Passage(3, "Nächste Schritte im Reallabor\nPilot im Herbst mit drei Ämtern\nRollout 2026 für alle Ämter")]
    bullets = [p["text"] for p in list(extractive_summary(slides, "Folie", "kurz"))[-1]["details"]["points"]]
    assert bullets == ["Nächste Schritte im Reallabor", "Pilot im Herbst mit drei Ämtern", "Rollout 2026 für alle Ämter"]
    assert done["details"]["asked_points"] == 10 and done["details"]["extractive"]


def test_an_extractive_summary_without_whole_sentences_says_so():
    done = list(extractive_summary([Passage(1, "Agenda\nKaffee\nPause")], "Folie", "kurz"))[-1]
    assert done["details"]["points"] == [] and "nicht zusammenfassen" in done["output"]


def test_an_extractive_summary_lists_a_tables_rows_by_their_header_and_leaves_the_title_out():
    """A browser review: the summary of a fee list left out the Reisepass row (rows end as no sentence
    ends, so they came only where sentences ran out) and gave the document's title as a point."""
    passages = [
        Passage(1, "Gebühren im Bürgerbüro der Stadt Kempenrath\nDas Bürgerbüro erhebt für seine Leistungen "
                   "Gebühren nach der Verwaltungsgebührensatzung. Die Gebühr ist bei Antragstellung zu zahlen.\n"
                   "Leistung | Gebühr\nPersonalausweis | 37,00 Euro\nReisepass | 70,00 Euro\n"
                   "Meldebescheinigung | 10,00 Euro"),
        Passage(2, "Ermäßigungen gibt es für Empfänger von Sozialleistungen auf Antrag. Bezahlt werden kann bar "
                   "oder mit Karte."),
    ]
    done = list(extractive_summary(passages, "S.", "mittel",
                                   ("Gebühren im Bürgerbüro der Stadt Kempenrath", "")))[-1]
    texts = [p["text"] for p in done["details"]["points"]]
    assert "Leistung: Reisepass; Gebühr: 70,00 Euro" in texts
    assert "Leistung: Personalausweis; Gebühr: 37,00 Euro" in texts
    assert "Gebühren im Bürgerbüro der Stadt Kempenrath" not in texts
    assert texts.index("Leistung: Personalausweis; Gebühr: 37,00 Euro") < texts.index("Leistung: Reisepass; Gebühr: 70,00 Euro")
    assert done["details"]["citations_valid"] == done["details"]["citations_total"] == len(texts)


@pytest.mark.parametrize("header, row, expected", [
    ("Leistung | Gebühr", "Reisepass | 70,00 Euro", "Leistung: Reisepass; Gebühr: 70,00 Euro"),
    (None, "Reisepass | 70,00 Euro", "Reisepass; 70,00 Euro"),
    ("Leistung | Gebühr | Frist", "Reisepass | 70,00 Euro", "Reisepass; 70,00 Euro"),  # cells do not match
    ("Leistung | Gebühr", "Reisepass | kostenlos", None),  # no figure: no fact of a table to list
    ("Leistung | Gebühr", "Ein Satz mit 3 Wörtern.", None),
])
def test_table_row(header, row, expected):
    assert table_row(header, row) == expected


def test_a_long_fee_list_leaves_room_for_the_rules_and_a_second_tables_rows_keep_their_own_names():
    """A review: with 15 rows named by the same header every row outscored the rules (the header's
    words counted in each), and a second table whose header holds a year took the first one's names."""
    rows = "\n".join(f"Leistung Nummer {i} | {i + 10},00 Euro" for i in range(15))
    passages = [
        Passage(1, "Die Gebühr ist bei Antragstellung zu zahlen. Ermäßigungen gibt es auf Antrag für Empfänger "
                   "von Sozialleistungen.\nLeistung | Gebühr\n" + rows),
        Passage(2, "Bezahlt werden kann bar oder mit Karte. Quittungen stellt die Kasse des Bürgerbüros aus.\n"
                   "Produkt | Ansatz 2025\nPersonal | 5.000 Euro\nSachkosten | 1.200 Euro\n"
                   "Seite 2 von 2"),
    ]
    texts = [p["text"] for p in list(extractive_summary(passages, "S.", "kurz"))[-1]["details"]["points"]]
    assert len(texts) == 5 and sum(1 for t in texts if "|" in t or ";" in t) <= 2, texts
    assert "Die Gebühr ist bei Antragstellung zu zahlen." in texts
    every = [p["text"] for p in list(extractive_summary(passages, "S.", "ausfuehrlich"))[-1]["details"]["points"]]
    assert "Personal; 5.000 Euro" in every and not any("Leistung: Personal" in t for t in every), every
    assert not any("Seite 2 von 2" in t for t in every)
