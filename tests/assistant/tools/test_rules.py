"""The plain-language rule check and the sentence splitter, table-driven."""
from __future__ import annotations

import pytest

from assistant.tools.rules import LEVELS, check_text, level_for
from assistant.tools.text import split_sentences


@pytest.mark.parametrize("text, expected", [
    ("Die Frist endet am 1. März 2025. Danach gilt nichts.", ["Die Frist endet am 1. März 2025.", "Danach gilt nichts."]),
    ("Das steht z. B. in § 3 Abs. 2 der Satzung. Sonst nicht.", ["Das steht z. B. in § 3 Abs. 2 der Satzung.", "Sonst nicht."]),
    ("Die Frist endet am 3. Oktober. Danach nicht.", ["Die Frist endet am 3. Oktober.", "Danach nicht."]),
    ("- Punkt eins\n- Punkt zwei\n\n1. Punkt drei", ["Punkt eins", "Punkt zwei", "Punkt drei"]),
    ("Kommen Sie? Ja! Gut.", ["Kommen Sie?", "Ja!", "Gut."]),
    ("", []),
])
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


@pytest.mark.parametrize("sentence, level, rules", [
    ("Der Antrag wird von der Behörde geprüft.", "leicht", {"passive"}),
    ("Der Antrag wurde gestern bearbeitet.", "einfach", {"passive"}),
    ("Die Gebühren wurden im Jahr 2024 erhöht.", "leicht", {"passive"}),
    ("Die Satzung wird aktualisiert.", "leicht", {"passive"}),
    ("Es wird kälter.", "leicht", set()),  # werden + adjective is no passive
    ("Sie bekommen Geld.", "leicht", set()),
    ("Wegen des Regens fällt das Fest aus.", "leicht", {"genitive"}),
    ("Das Haus des Bürgermeisters ist alt.", "leicht", {"genitive"}),
    ("Das Haus des Bürgermeisters ist alt.", "einfach", set()),  # genitive is a Leichte-Sprache rule
    ("Sie könnten einen Antrag stellen.", "leicht", {"subjunctive"}),
    ("Es wäre gut, wenn Sie kommen.", "einfach", {"subjunctive"}),
    ("Die Sanierung kostet 12.500 Euro.", "leicht", {"large_number"}),
    ("Das Gesetz gilt seit 2024.", "leicht", set()),  # a year is no large number
    ("Die Hälfte sind 50 Prozent.", "leicht", {"large_number"}),
    ("Wir helfen Ihnen, wenn Sie Fragen haben.", "leicht", {"several_statements"}),
    ("Wir helfen Ihnen, wenn Sie Fragen haben.", "einfach", set()),
    ("Die Bürgerbeteiligungsveranstaltung beginnt.", "leicht", {"long_word"}),
    ("Die Bürger-Beteiligungs-Veranstaltung beginnt.", "leicht", set()),  # parts with hyphen are fine
    ("Die Bürgerbeteiligungsveranstaltung beginnt.", "einfach", {"long_word"}),  # 31 letters > 20
    ("Das Rathaus ist offen.", "leicht", set()),
    (" ".join(["Wort"] * 16) + ".", "leicht", {"sentence_length"}),
    (" ".join(["Wort"] * 16) + ".", "einfach", set()),
    (" ".join(["Wort"] * 21) + ".", "einfach", {"sentence_length"}),
])
def test_rules_per_sentence(sentence, level, rules):
    report = check_text(sentence, level)
    assert {v.rule for v in report.violations} == rules


def test_report_counts_offending_sentences_and_rate():
    text = "Der Antrag wird geprüft. Sie bekommen Post. Sie könnten anrufen. Das ist gut."
    report = check_text(text, "leicht")
    assert report.offending() == [0, 2]
    assert report.per_100_sentences == 50.0
    assert report.counts() == {"passive": 1, "subjunctive": 1}
    d = report.as_dict()
    assert d["violations"][0]["text"] == "Der Antrag wird geprüft."
    assert d["violations"][0]["label"] == "Passiv"


def test_level_limits_can_be_overridden():
    lvl = level_for("einfach", max_words=5)
    assert lvl.max_words == 5 and lvl.rules == LEVELS["einfach"].rules
    assert check_text("Eins zwei drei vier fünf sechs.", lvl).counts() == {"sentence_length": 1}
    with pytest.raises(ValueError):
        level_for("schwer")
