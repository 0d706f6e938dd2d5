"""Question terms against whole documents: the near-miss warning."""
from __future__ import annotations

import pytest

from assistant.grounding import is_warning, question_terms, unmentioned_terms, warning

STATUTE = ("Friedhofssatzung der Gemeinde Bad Boll\n§ 12 Ruhezeit: Die Ruhezeit für Urnengrabstätten beträgt "
           "20 Jahre.\n§ 13 Gräber sind nach der Beisetzung herzurichten.")


def test_question_terms_are_the_capitalised_content_words_after_the_first():
    assert question_terms("Wie lange ist die Ruhezeit für Urnengräber in Göppingen?") == ["Ruhezeit", "Urnengräber", "Göppingen"]
    # words naming the kind of answer, stopwords and very short words are left out; duplicates once
    assert question_terms("Welche Frist gilt? Nenne die Frist und den Betrag in Prozent für Sie, KI und EU-Staaten.") == ["EU-Staaten"]
    assert question_terms("Hundesteuer") == []  # the first word may be a question word: never a term


@pytest.mark.parametrize("question, missing", [
    ("Wie lange ist die Ruhezeit für Urnengräber in Göppingen?", ["Göppingen"]),  # compound: Urnengrab·stätten
    ("Wie hoch ist die Gebühr für einen Reisepass in Bad Boll?", ["Gebühr", "Reisepass"]),
    ("Welche Ruhezeit gilt nach der Beisetzung?", []),                                   # inflected: Beisetzung
    ("Wie viele E-Ladesäulen hat die Gemeinde?", ["E-Ladesäulen"]),                       # "E" alone says nothing
    ("Was regelt die Friedhofssatzung-Bad-Boll?", []),                                    # every hyphen part stands
])
def test_unmentioned_terms_of_a_statute(question, missing):
    assert unmentioned_terms(question, [STATUTE]) == missing


def test_spelling_variants_compare_equal():
    # the file name spells "ö" as "oe", the text writes capitals; plural umlauts stem to the singular
    assert unmentioned_terms("Welche Gebühr nimmt das Landratsamt Göppingen?", ["LANDRATSAMT", "lkr-goeppingen_Gebuehren.md"]) == []
    assert unmentioned_terms("Wie lange ruhen Gräber in Friedhöfen?", ["Das Grab im Friedhof"]) == []


def test_no_documents_means_every_term_is_unmentioned_and_no_terms_means_nothing_to_warn():
    assert unmentioned_terms("Wie hoch ist die Hundesteuer?", []) == ["Hundesteuer"]
    assert unmentioned_terms("wie hoch ist sie?", [STATUTE]) == []


def test_the_warning_names_the_terms_in_german():
    assert warning(["Göppingen"]).startswith("„Göppingen“ kommt im zitierten Dokument nicht vor: bitte prüfen")
    assert "„Reisepass“, „Gebühr“ kommen" in warning(["Reisepass", "Gebühr"])
    assert is_warning(warning(["Reisepass"])) and not is_warning("Das Modell fand keine Antwort.")
