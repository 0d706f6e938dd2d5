"""The answer checks as tables: each row is a case found in real answers (docs/results.md)."""
from __future__ import annotations

import pytest

from assistant import answer_checks as ac
from assistant.answer_checks import Source
from corpus.text import content_stems

SOURCES = [
    Source(1, "Die Ruhezeit für Urnengräber beträgt 20 Jahre. Für Erdgräber gilt eine Ruhezeit von 25 Jahren.", "Friedhofssatzung, Seite 3"),
    Source(2, "Die Regionalkonferenz findet am 6. Mai in Mönchengladbach statt.", "Programm, Seite 1"),
    Source(3, "Programm der Smart-City-Woche 2025. Anmeldung bis 30. April.", "Programm 2025, Seite 2"),
]
Q = ["Wie lange ist die Ruhezeit für Urnengräber?"]


@pytest.mark.parametrize("answer, expected", [
    ("Die Telefonnummer des Personalrats ist [2].", True),
    ("Die Kontaktperson lautet: [1]", True),
    ("Die Ruhezeit beträgt 20 Jahre [1]. Die Quelle ist [1].", False),  # a later sentence may name the source
    ("20 Jahre [1]", False),
])
def test_dangling(answer, expected):
    assert ac.dangling(answer) is expected


@pytest.mark.parametrize("answer, cited_text, yes_no, expected", [
    ("41 % [1]", "Der Anteil liegt bei 41 %.", False, True),   # short, but its number stands in the source
    ("41 % [1]", "Der Anteil liegt bei 38 %.", False, False),
    ("[2] [3]", "irgendein Text", False, False),               # bare citations say nothing
    ("[2] [3]", "irgendein Text", True, False),
    ("Ja [1]", "Ja, das ist erlaubt.", False, False),          # "Ja" to a "Wer …?" question says nothing
    ("Nein [1].", "Grillen ist verboten.", False, False),
    ("Ja [1]", "Ja, das ist erlaubt.", True, True),            # to a yes/no question it is the answer
    ("Nein [1].", "Grillen ist verboten.", True, True),
    ("nein, [2]", "Grillen ist verboten.", True, True),
    ("Nein.", "Grillen ist verboten.", True, False),           # uncited: nothing to show it rests on
    ("Vielleicht [1]", "Grillen ist verboten.", True, False),
    ("Nein [1], [2], [3], [4].", "Grillen ist verboten.", False, False),  # to an open question: no answer …
    ("Nein [1] , [2] – [3].", "Grillen ist verboten.", False, False),     # … whatever stands between the marks
    ("Die Ruhezeit beträgt zwanzig Jahre.", "", False, True),  # three words or more
])
def test_substantive(answer, cited_text, yes_no, expected):
    assert ac.substantive(answer, cited_text, yes_no) is expected


@pytest.mark.parametrize("answer, cited, expected", [
    ("Die Ruhezeit für Urnengräber beträgt 20 Jahre [1].", [1], None),
    ("Dazu finde ich in den Dokumenten keine Informationen.", [], ac.NOTICE_NO_ANSWER),
    ("[1]", [1], ac.NOTICE_NO_ANSWER),
    ("Die Ruhezeit ist [1].", [1], ac.NOTICE_DANGLING),
    ("<<< Die Ruhezeit für Urnengräber >>> [1]", [1], ac.NOTICE_SOURCE_BLOCK),
    ("Wie lange ist die Ruhezeit für Urnengräber? [1]", [1], ac.NOTICE_NO_ANSWER),  # the question, repeated
    ("Meinen Sie die Ruhezeit für Urnengräber? [1]", [1], ac.NOTICE_NO_ANSWER),     # a question back
])
def test_unusable(answer, cited, expected):
    assert ac.unusable(answer, SOURCES, cited) == expected


@pytest.mark.parametrize("answer, cited, expected", [
    ("Die Ruhezeit beträgt 20 Jahre [1].", [1], set()),
    ("Die Ruhezeit beträgt 30 Jahre [1].", [1], {"30"}),
    ("Die Konferenz ist am 6. Mai 2025 [2].", [2], set()),   # the year stands in another given source
    ("Die Konferenz ist am 6. Mai 2031 [2].", [2], {"2031"}),
    ("Die Ruhezeit beträgt 25 Jahre [2].", [2], {"25"}),     # stands in [1], not in the cited [2]
    ("Die Ruhezeit beträgt zwanzig Jahre [1].", [1], set()),  # "zwanzig" is the 20 of the source
    ("Die Ruhezeit beträgt dreißig Jahre [1].", [1], {"30"}),
])
def test_invented_numbers(answer, cited, expected):
    assert ac.invented_numbers(answer, SOURCES, cited, Q) == expected


@pytest.mark.parametrize("answer, expected", [
    ("Die Ruhezeit für Urnengräber beträgt 20 Jahre [2].", 1),  # only [1] holds 20, and it covers the question
    ("Anmeldung bis 30. April [1].", None),                     # [3] holds it but does not cover the question
    ("Die Ruhezeit beträgt 99 Jahre [1].", None),               # no source holds it
    ("Die Ruhezeit ist lang [1].", None),                       # no number at all
])
def test_number_holder(answer, expected):
    assert ac.number_holder(answer, SOURCES, Q, content_stems(Q[0])) == expected


@pytest.mark.parametrize("p, limit, expected", [
    (0.26, 0.25, True), (0.25, 0.25, True), (0.22, 0.25, False), (None, 0.25, False), (0.9, 0.0, False),
])
def test_too_doubtful(p, limit, expected):
    assert ac.too_doubtful(p, limit) is expected


@pytest.mark.parametrize("raw, p, action, answer_has", [
    ("Die Ruhezeit für Urnengräber beträgt 20 Jahre [1].", None, "answer", "20 Jahre [1]"),
    ("Die Ruhezeit für Urnengräber beträgt 20 Jahre [1][9].", None, "answer", "20 Jahre [1]"),  # [9] dropped
    ("Die Ruhezeit für Urnengräber beträgt 20 Jahre.", None, "answer", "20 Jahre. [1]"),        # attributed
    ("Die Ruhezeit für Urnengräber beträgt 20 Jahre [2].", None, "answer", "[1]"),              # re-cited
    ("Die Ruhezeit beträgt 30 Jahre [1].", None, "fallback", ""),                               # invented
    ("Der Hund des Bürgermeisters heißt Bello.", None, "fallback", ""),                         # unsourced
    ("Dazu finde ich in den Dokumenten keine Informationen.", None, "fallback", ""),
    ("Die Ruhezeit für Urnengräber beträgt 20 Jahre [1].", 0.3, "refuse", ""),                  # doubtful
])
def test_check_answer(raw, p, action, answer_has):
    verdict = ac.check_answer(raw, SOURCES, Q, content_stems(Q[0]), refusal_probability=p, refusal_limit=0.25)
    assert verdict.action == action
    assert answer_has in verdict.answer
    if action == "answer":
        assert verdict.cited and all(f"[{n}]" in verdict.answer for n in verdict.cited)
    else:
        assert verdict.notices


@pytest.mark.parametrize("answer, quotes, question, missing", [
    ("Die Ruhezeit beträgt 20 Jahre [1].", ["Die Ruhezeit für Urnengräber beträgt 20 Jahre."], "", []),
    ("Die Ruhezeit beträgt 25 Jahre.", ["Die Ruhezeit für Urnengräber beträgt 20 Jahre."], "", ["25"]),
    ("Die Konferenz ist am 6. Mai.", ["Die Konferenz findet am 06.05.2025 statt."], "", []),          # same date, other spelling
    ("Die Konferenz ist am 7. Mai.", ["Die Konferenz findet am 6. Mai statt."], "", ["7.5"]),
    ("Sie fand im Mai statt.", ["Sie findet am 6. Mai statt."], "", []),                    # the month of a given date
    ("Die Exkursion führt nach Kopenhagen.", ["Die Exkursion führt nach Amsterdam."], "", ["Kopenhagen"]),
    ("Die Exkursion führt nach Amsterdam.", ["Exkursion nach Amsterdam"], "", []),
    ("Die Stadt Ulm plant das.", ["Das wird geplant."], "Was plant die Stadt Ulm?", []),     # names from the question
    ("Nein, Grillen ist nicht erlaubt.", ["Grillen ist erlaubt."], "", ["Verneinung"]),
    ('Mit dem Online-Tool "Digital-Matrix" lässt sich das anlegen [4].', ["Digital anlegen mit GroupMap."],
     "Mit welchem Online-Tool lässt sich das digital anlegen?", ["Digital-Matrix"]),  # a name in quotes is a name
    ("Dafür gibt es „GroupMap“ [1].", ["Digital anlegen mit GroupMap."], "", []),
    ("Dafür gibt es „GroupMatrix“ [1].", ["Digital anlegen mit GroupMap."], "", ["GroupMatrix"]),
    ("Die Frist gilt (Stand 2024) [1].", ["Die Frist gilt seit 2024."], "", []),   # a bracket opens a phrase
    ("Dafür gibt es die Online-Matrix.", ["Matrix"], "Gibt es das online?", []),         # every part asked or quoted
    ("Nein, Grillen ist verboten.", ["Grillen ist verboten, außer auf Grillplätzen."], "", []),
])
def test_unsupported_claims(answer, quotes, question, missing):
    assert ac.unsupported_claims(answer, quotes, question) == missing


def _ev(n, text, coverage, bm25=None, dense=None, title="Titel", section=None):
    from assistant.evidence import Evidence
    from corpus.models import Chunk, Hit

    chunk = Chunk(f"c{n}", "d", n, text, "/d.pdf", title, 1, section, "demo")
    return Evidence(n, Hit(chunk, 0.03, bm25_rank=bm25, dense_rank=dense), text, 10, coverage)


@pytest.mark.parametrize("coverages, stems, expected", [
    ([1.0, 0.2], ["ruhezeit", "urnengrab"], True),    # a shown passage holds the whole question
    ([0.99, 0.5], ["ruhezeit", "urnengrab"], False),
    ([1.0], ["ruhezeit"], False),                      # one content word says too little
    ([], ["ruhezeit", "urnengrab"], False),
])
def test_shows_answer(coverages, stems, expected):
    assert ac.shows_answer([_ev(i + 1, "x", c) for i, c in enumerate(coverages)], stems) is expected


@pytest.mark.parametrize("title, section, text, expected", [
    ("Friedhofssatzung", "§ 12 Ruhezeit", "Für Urnengräber gilt eine Frist von 20 Jahren.", True),  # the rest in title/section
    ("Friedhofssatzung", None, "Für Urnengräber gilt eine Frist von 20 Jahren.", False),           # "Ruhezeit" nowhere shown
    ("Ruhezeit", None, "Die Gebühren für Erdgräber.", False),                                     # "Urnengrab" nowhere shown
])
def test_shows_answer_counts_the_title_and_section_it_is_shown_under(title, section, text, expected):
    from corpus.text import content_stems

    ev = _ev(1, text, 0.5, title=title, section=section)
    assert ac.shows_answer([ev], content_stems("Welche Ruhezeit gilt für Urnengräber?")) is expected


@pytest.mark.parametrize("bm25, dense, coverage, expected", [
    (3, None, 1.0, True),     # full coverage, found by words
    (9, None, 1.0, False),    # full coverage, but ranked low by BM25 and not by meaning
    (2, 2, 0.8, True),        # both retrievers agree on a top passage covering most of the question
    (2, 7, 0.8, False),
])
def test_retrieval_confident(bm25, dense, coverage, expected):
    assert ac.retrieval_confident([_ev(1, "x", coverage, bm25, dense)], ["a", "b", "c"]) is expected


def test_the_extractive_framing_is_no_claim():
    assert ac.unsupported_claims("Laut den Dokumenten: „Die Ruhezeit beträgt 20 Jahre.“ [1]",
                                 ["Die Ruhezeit beträgt 20 Jahre."]) == []
