"""German text basics: sentences, stems, stopwords, token estimate (one home: corpus.text)."""
from __future__ import annotations

import re

import pytest

from corpus.text import (bare_heading, content_stems, estimate_tokens, number_word_values, number_words_as_digits, page_furniture, page_number_alone,
                         split_sentences,
                         stemmer, stopwords)


def test_sentence_split_respects_german_abbreviations():
    text = "Das gilt z. B. für Urnen. Die Frist endet am 3. Oktober 2025. Danach gilt § 5 Abs. 2 der Satzung! Fertig?"
    assert split_sentences(text) == [
        "Das gilt z. B. für Urnen.", "Die Frist endet am 3. Oktober 2025.",
        "Danach gilt § 5 Abs. 2 der Satzung!", "Fertig?",
    ]


@pytest.mark.parametrize("line, alone", [
    ("12", True), (" Seite 3 ", True), ("Seite 3 von 8", True), ("3 / 8", True), ("Page 2 of 5", True), ("S. 4", True),
    ("12 Jahre", False), ("Seite 3 von 8 Seiten", False), ("Bericht – Seite 1 von 3", False), ("12345", False), ("", False),
])
def test_a_page_number_alone(line, alone):
    assert page_number_alone(line) is alone


@pytest.mark.parametrize("line, heading", [
    ("Zukunftsbilder", True), ("Technische Aspekte Offener Daten", True), ("B 3.1.1 Frequenzbereich", True),
    ("2.3 Ziele des Projekts", True), ("USE CASES", True), ("LESSONS LEARNED", True),
    ("Die Ulmer Vision einer cleveren digitalen Stadt", False),  # seven words: a statement's length
    ("Die Ruhezeit beträgt 20 Jahre.", False), ("Kontakt:", False), ("Wie hoch ist die Gebühr?", False),
    ("Gebühr 70 Euro", False), ("Reisepass | 70,00 Euro", False),  # a figure, a table row: may answer
    ("● Open Definition", False), ("- Reaktionszeit der Polizei", False),  # a list's item
    ("12", False), ("", False), ("ab", False),
    # a statement: a lower-case word, a label with its value, a leading figure (a review)
    ("Nutzung kostenlos und ohne Anmeldung", False), ("Hunde sind anzuleinen", False), ("Nicht erlaubt", False),
    ("Datenschutz: Tobias Wendling", False), ("24 Monate Gewährleistung", False), ("Free of charge", False),
    ("Bürgertelefon in Gebärdensprache", True), ("3. Kosten und Finanzierung", True),
])
def test_a_bare_heading_names_what_follows_and_states_nothing(line, heading):
    assert bare_heading(line) is heading


@pytest.mark.parametrize("text, sentences", [
    ("Die Gebühr beträgt 120 Euro. Sie ist jährlich fällig.", ["Die Gebühr beträgt 120 Euro.", "Sie ist jährlich fällig."]),
    ("Siehe Nr. 4. Dann folgt mehr.", ["Siehe Nr. 4. Dann folgt mehr."]),  # one or two digits + period: an ordinal
    ("Ende am 1. Mai. Weiter im Juni.", ["Ende am 1. Mai.", "Weiter im Juni."]),
    ("kleiner anfang. noch klein", ["kleiner anfang. noch klein"]),  # a sentence starts upper case
    ("Erfunden von H. Lipmanowicz & K. McCandless. Danach mehr.",  # initials end no sentence
     ["Erfunden von H. Lipmanowicz & K. McCandless.", "Danach mehr."]),
    ("Es gilt Plan B. Danach mehr.", ["Es gilt Plan B. Danach mehr."]),  # the price: a letter ending a sentence
    ("", []),
])
def test_sentence_split_table(text, sentences):
    assert split_sentences(text) == sentences


def test_content_stems_drop_stopwords_and_stem():
    assert content_stems("Wie hoch ist die Hundesteuer für zwei Hunde?") == stemmer().stemWords(["hoch", "hundesteuer", "zwei", "hunde"])
    assert "wie" in stopwords() and "hundesteuer" not in stopwords()


def test_token_estimate_grows_with_words_and_punctuation():
    assert estimate_tokens("") == 0
    assert estimate_tokens("eins zwei drei vier") == 5  # 4 words × 1.3
    assert estimate_tokens("eins, zwei. drei; vier!") > estimate_tokens("eins zwei drei vier")


@pytest.mark.parametrize("question_word, document_word", [
    ("aufzubauen", "Aufbau"),
    ("einzureichen", "einreichen"),
    ("anzumelden", "Anmeldung"),
    ("zurückzuzahlen", "zurückzahlen"),
    ("mitzubringen", "mitbringen"),
])
def test_a_zu_infinitive_meets_its_verb_or_noun(question_word, document_word):
    assert content_stems(question_word)[0] == content_stems(document_word)[0][: len(content_stems(question_word)[0])]


@pytest.mark.parametrize("word", ["Einzugsgebieten", "Anzug", "zuzahlen", "Bezugsberechtigten", "Aufzug"])
def test_words_that_only_look_like_a_zu_infinitive_stay(word):
    assert content_stems(word) == stemmer().stemWords([word.lower()])


@pytest.mark.parametrize("text, smallest, expected", [
    ("um zwanzig LoRa-Nodes erweitert", 10, "um 20 LoRa-Nodes erweitert"),
    ("Zwanzig Nodes", 10, "20 Nodes"),                        # capitalised at a sentence start
    ("sechsundzwanzig und einundneunzig", 10, "26 und 91"),
    ("dreißig oder dreissig Euro", 10, "30 oder 30 Euro"),
    ("hundert Meter, zweihundertfünfzig Euro, tausend", 10, "100 Meter, 250 Euro, 1000"),
    ("zehn Jahre, elf Punkte, zwölf Monate", 10, "10 Jahre, 11 Punkte, 12 Monate"),
    ("drei bis sechs Wochen", 10, "drei bis sechs Wochen"),   # below the smallest: unchanged
    ("drei bis sechs Wochen", 2, "3 bis 6 Wochen"),
    ("ein Jahr, eine Woche", 2, "ein Jahr, eine Woche"),      # articles, not figures
    ("im Jahrzehnt, Achtung, elfte Sitzung", 2, "im Jahrzehnt, Achtung, elfte Sitzung"),  # parts of words, ordinals
    ("vierzig-jährig, Zwanzig-Euro-Schein", 10, "vierzig-jährig, Zwanzig-Euro-Schein"),   # parts of compounds
    ("fuenf und zwoelf, dreissig", 2, "5 und 12, 30"),         # spelt without umlauts
    ("Die Elf gewann, elf Tore; in Acht nehmen", 2, "Die Elf gewann, 11 Tore; in Acht nehmen"),  # nouns
])
def test_number_words_become_digits_only_as_whole_cardinals(text, smallest, expected):
    assert number_words_as_digits(text, smallest=smallest) == expected
    assert number_word_values(text, smallest) == {int(w) for w in re.findall(r"\d+", expected)} - {
        int(w) for w in re.findall(r"\d+", text)}


@pytest.mark.parametrize("line, furniture", [
    ("Bericht: Exkursion zum Reallabor für Sensorik im Nordpark Mönchengladbach - Seite 1 von 3", True),
    ("Seite 2 von 12", True), ("  Seite 4  ", True), ("Page 3 of 7", True), ("Haushaltssatzung 2025 | S. 3/40", True),
    ("Satzung – Seite 10 / 11", True),
    ("Die Gebühren stehen auf Seite 3 von 12.", False),  # a sentence that names a page ends with its period
    ("Weitere Hinweise siehe Seite 3", False), ("Seitenzahl 3 von 4", False), ("Teilnehmende 46 von 50", False),
    ("Reisepass | 70,00 Euro", False), ("", False),
    # a sentence run into the footer (a PDF page flattened into one line) is text: split first
    ("Die Bestätigung kommt per E-Mail. Programm der Regionalkonferenz - Seite 1 von 3", False),
])
def test_page_furniture_is_a_running_header_or_footer_with_the_page_number(line, furniture):
    assert page_furniture(line) is furniture


@pytest.mark.parametrize("text, sentences", [
    # the word before a period is read from a window at its end (it was searched in the whole text
    # since the last sentence end: quadratic, 50 s for a 150 KB line, an attacker's probe)
    ("Das gilt z. B. für Anträge. Neuer Satz.", ["Das gilt z. B. für Anträge.", "Neuer Satz."]),
    ("Ein Wort " + "x" * 70 + ". Neuer Satz.", ["Ein Wort " + "x" * 70 + ".", "Neuer Satz."]),  # longer than the window
    ("Sehr lang " + "y" * 63 + " K. McCandless schrieb.", ["Sehr lang " + "y" * 63 + " K. McCandless schrieb."]),
    (" ".join(["a" * 5000 + " z. B. Text"] * 3), [" ".join(["a" * 5000 + " z. B. Text"] * 3)]),
])
def test_the_word_before_a_period_is_read_at_its_end(text, sentences):
    assert split_sentences(text) == sentences
