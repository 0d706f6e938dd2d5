"""Re-ranking and quote selection: pure functions over passages, as tables of cases."""
from __future__ import annotations

import pytest

from assistant.evidence import Evidence
from assistant.quotes import (asked_kind, asked_parts, asks_figure, asks_list, best_quote, cited_sentence, first_sentence,
                              holds_asked_kind, is_yes_no, later_sentences, restates_question, supporting_quote, two_clauses, units)
from assistant.rerank import RerankWeights, rerank, stem_coverage
from corpus.models import Chunk, Hit


def _hit(i: int, text: str, score: float = 0.03, bm25: int | None = None, dense: int | None = None,
         title: str = "Satzung", section: str | None = None) -> Hit:
    return Hit(Chunk(f"c{i}", f"d{i}", i, text, f"/docs/d{i}.pdf", title, i, section, "demo"), score,
               bm25_rank=bm25, dense_rank=dense)


def _ev(n: int, text: str, title: str = "Satzung") -> Evidence:
    return Evidence(n, _hit(n, text, title=title), text, 20, 0.0)


def test_rerank_lifts_the_passage_that_covers_the_question_above_a_higher_fused_one():
    hits = [_hit(1, "Allgemeine Bestimmungen über den Friedhof.", 0.033, 1, 1),
            _hit(2, "Die Ruhezeit für Urnengräber beträgt 20 Jahre.", 0.030, 4, 6)]
    assert [h.chunk.chunk_id for h in rerank("Wie lange ist die Ruhezeit für Urnengräber?", hits)] == ["c2", "c1"]


@pytest.mark.parametrize("weights, first", [
    (RerankWeights(coverage=0.0, agree=0.0, number=0.0), "c1"),  # fused order only
    (RerankWeights(coverage=0.0, agree=0.0, number=1.0), "c2"),  # the question's number decides
])
def test_rerank_weights(weights, first):
    hits = [_hit(1, "Gebühren für das Jahr 2023 und davor.", 0.033, 1, 1), _hit(2, "Gebühren 2024: 30 €.", 0.031, 2, 2)]
    assert rerank("Welche Gebühren gelten 2024?", hits, weights)[0].chunk.chunk_id == first


@pytest.mark.parametrize("text, section, expected", [
    ("Die Ruhezeit für Urnengrabstätten beträgt 20 Jahre.", None, 1.0),   # "urnengrab" inside a compound
    ("Die Ruhezeit beträgt 20 Jahre.", "Urnengräber", 1.0),                 # the section gives context
    ("Gebühren für Bestattungen.", None, 0.0),
    ("Gebühren für Bestattungen.", "Ruhezeit", 0.5),
])
def test_stem_coverage(text, section, expected):
    from corpus.text import content_stems

    assert stem_coverage(content_stems("Ruhezeit Urnengräber?"), _hit(1, text, section=section)) == expected


@pytest.mark.parametrize("question, yes_no, figure", [
    ("Darf man im Stadtpark grillen?", True, False),
    ("Muss der Rechnungshof seine Berichte herausgeben?", True, False),
    ("Was kostet ein Bewohnerparkausweis?", False, True),
    ("Wie viele Labs gibt es?", False, True),
    ("Wer unterschreibt das Protokoll?", False, False),
    ("Wir richten einen Wettbewerb aus: Darf die Jury aus eigenen Leuten bestehen?", True, False),  # context first
    ("Wir planen ein Fest. Muss das angemeldet werden?", True, False),
    ("Darf ich fragen: Wer unterschreibt das Protokoll?", False, False),  # the question proper is the last one
    ("Darf ich am 3. Mai grillen?", True, False),                          # no sentence ends at a date …
    ("Muss ich nach § 5 Abs. 2 einen Antrag stellen?", True, False),       # … or an abbreviation
    ("Darf man z. B. Kohle verwenden?", True, False),
    ("Kann ich ca. 20 Gäste einladen?", True, False),
])
def test_question_kinds(question, yes_no, figure):
    assert is_yes_no(question) is yes_no and asks_figure(question) is figure


@pytest.mark.parametrize("question, kind", [
    ("Wie viele Labs gibt es?", "amount"),
    ("Was kostet ein Bewohnerparkausweis?", "amount"),
    ("Für wie lange darf ein Recht höchstens gewährt werden?", "amount"),
    ("Innerhalb welcher Frist muss der Bürgermeister antworten?", "amount"),  # a period: "zwei Wochen"
    ("Seit wann läuft die Plattform?", "time"),
    ("Bis wann kann man sich anmelden?", "time"),
    ("An welchem Tag wurde OParl 1.0 veröffentlicht?", "time"),
    ("Wann beginnt die Sitzung?", None),
    ("Wer unterschreibt das Protokoll?", None),
    ("Darf man im Stadtpark grillen?", None),
])
def test_what_kind_of_thing_a_question_asks_for(question, kind):
    assert asked_kind(question) == kind
    assert asks_figure(question) is (kind is not None or "Wann" in question)  # a figure is still likely


@pytest.mark.parametrize("question, text, holds", [
    ("Wie lange muss der Akku halten?", "Der Akku muss mindestens 200 Stunden Empfangsbereitschaft gestatten.", True),
    ("Wie viele Urlaubstage rechnet man?", "Dabei kann man pauschal 2,5 Urlaubstage ansetzen.", True),
    ("Innerhalb welcher Frist muss er antworten?", "Anfragen sind binnen zwei Wochen zu beantworten.", True),  # a number word
    ("Was kostet der Ausweis?", "Bewohnerparken | Anwohnerparkausweis | 30,00 € / Jahr", True),
    # paragraph and list marks are no figures …
    ("Wie viele Stellen bieten die Beratung an?", "(1) Bund und Länder stellen eine allgemeine Beratung bereit.", False),
    ("Wie viele Stellen bieten die Beratung an?", "3.4 Beratung im Portalverbund", False),
    ("Wie viele Stellen bieten die Beratung an?", "Die Beratung regelt § 3a OZG.", False),
    # … nor is a year, or a digit inside a word, an amount
    ("Wie viele Einrichtungen nutzen den Rechner?", "Der CO2-Rechner wurde 2024 ausgezeichnet.", False),
    # but a year or a month answers "Wann …?"
    ("Seit wann läuft die Plattform?", "Die Plattform läuft seit 2018.", True),
    ("Ab wann gilt die Satzung?", "Die Satzung gilt ab dem Herbst.", True),
    ("Bis wann kann man sich anmelden?", "Anmeldungen nimmt das Bürgerbüro entgegen.", False),
    # a span of time or a deadline without a figure answers "Bis wann …?" and "Wie lange …?"
    ("Bis wann muss der Bericht vorliegen?", "Der Bericht ist innerhalb einer Woche vorzulegen.", True),
    ("Bis wann ist der Schaden zu melden?", "Schäden sind unverzüglich zu melden.", True),
    ("Wie lange dauert die Prüfung?", "Die Prüfung dauert wenige Wochen.", True),
    ("Welche Frist gilt für den Widerspruch?", "Der Widerspruch ist binnen eines Monats einzulegen.", True),
    ("Wie viele Personen arbeiten im Team?", "Das Team arbeitet seit einigen Wochen zusammen.", False),
    ("Bis wann gilt die Regel?", "Die Regel gilt für eine Tagesordnung des Rates.", False),
    # a plain "Wann …?" asks for no date: a time of day or a condition answers it too
    ("Wann führt die Exkursion zum Labor?", "Die Exkursion führt am Nachmittag zum Labor.", True),
    ("Wann beginnt der Pilot?", "Der Pilot beginnt, sobald der Rat zustimmt.", True),
    # other questions ask for no particular kind
    ("Wer unterschreibt das Protokoll?", "Das Protokoll unterschreibt die Schriftführerin.", True),
])
def test_whether_a_quote_holds_the_kind_of_thing_asked(question, text, holds):
    assert holds_asked_kind(question, text) is holds


@pytest.mark.parametrize("question, parts", [
    ("Wie viele Menschen leben in Ulm, und wie viele Zukunftsaufgaben hat die Stadtentwicklung?", 2),
    ("Was kostet ein GPS-Tracker, und wie viele LoRa-Knoten hat die Stiftung angeschafft?", 2),
    ("Wann fangen die Sitzungen normalerweise an und wann ist spätestens Schluss?", 2),
    ("Unter welcher Lizenz steht der Code, und wie viel Prozent werden höchstens bezuschusst?", 2),
    ("Was wird im Workshop gemessen, und womit?", 2),
    ("Darf man ein Holzkreuz aufstellen, und wie groß darf die Tafel sein?", 2),
    ("Wann und wo findet die nächste Regionalkonferenz statt?", 1),  # one ask with two question words
    ("Wie lange ist die Ruhezeit für Urnengräber?", 1),
    ("Welche Rollen gibt es, wenn man Interviews probt und wiederholt?", 1),  # "und wiederholt" asks nothing
])
def test_asked_parts(question, parts):
    assert asked_parts(question) == parts


@pytest.mark.parametrize("sentence, clauses", [
    ("Der Tracker kostet 30 €, und die Stiftung hat 20 Knoten angeschafft [3].",
     ("Der Tracker kostet 30 €.", "Die Stiftung hat 20 Knoten angeschafft [3].")),
    ("Die Sitzung beginnt um 17 Uhr, sowie endet um 21 Uhr.", ("Die Sitzung beginnt um 17 Uhr.", "Endet um 21 Uhr.")),
    ("Urnen und Särge sind erlaubt [1].", None),              # "und" between words joins no clauses
    ("A kostet 1 €, und B 2 €, und C 3 €.", None),            # more than two: not split
])
def test_two_clauses(sentence, clauses):
    assert two_clauses(sentence) == clauses


@pytest.mark.parametrize("answer, most, later", [
    ("Der Tracker kostet 30 € [2]. Die Stiftung hat 20 Knoten angeschafft [3].", 1, ["Die Stiftung hat 20 Knoten angeschafft [3]."]),
    ("Der Tracker kostet 30 € [2]. [1], [3]", 1, []),  # only citations
    ("Der Tracker kostet 30 € [2].", 1, []),
    ("PPS 39 | Abnehmen. PPS 40 | Evaluieren. PPS 41 | Budget abschließen. [2]", 3,
     ["PPS 40 | Evaluieren.", "PPS 41 | Budget abschließen. [2]"]),  # the citation run stays with the last item
    ("A ist eins. B ist zwei. C ist drei. D ist vier. E ist fünf.", 3, ["B ist zwei.", "C ist drei.", "D ist vier."]),
])
def test_later_sentences(answer, most, later):
    assert later_sentences(answer, most) == later


@pytest.mark.parametrize("question, listing", [
    ("Welche zusätzlichen Prozessschritte fallen in der Abschlussphase an?", True),
    ("Was sind die Aufgaben des Lenkungsausschusses?", True),
    ("Wer sind die Ansprechpartner im Projekt?", True),
    ("Nennen Sie die Phasen des Design Thinking.", True),
    ("Wir planen einen Workshop: Welche Methoden eignen sich für den Einstieg?", True),  # after a sentence of context
    ("Wie lange ist die Ruhezeit für Urnengräber?", False),
    ("Was kostet der Bewohnerparkausweis?", False),
    ("Sind Grabsteine aus Kunststoff erlaubt?", False),  # yes/no
    ("Welcher Ausschuss ist zuständig?", False),  # one thing asked ("welcher")
])
def test_asks_list(question, listing):
    assert asks_list(question) is listing


def test_a_table_row_keeps_its_header_and_picks_the_asked_row_not_its_neighbour():
    table = ("Lfd. Nr. | Produktbezeichnung | Festgebühr\n1. | Bewohnerparkausweis halbes Jahr | 15 €\n"
             "2. | Bewohnerparkausweis ganzes Jahr | 30 €")
    q = best_quote("Was kostet der Bewohnerparkausweis für ein ganzes Jahr?", [_ev(1, table)])
    # the header stays a line of its own: joined by a space it read as one row of six cells
    assert q.text == "Lfd. Nr. | Produktbezeichnung | Festgebühr\n2. | Bewohnerparkausweis ganzes Jahr | 30 €"


def test_an_faqs_own_question_is_never_the_quote_its_answer_is():
    """Found in a browser review: "Nur Textstellen" answered „Wie lange werden meine Chats gespeichert?“,
    the FAQ's heading, since it shares every word with the question."""
    faq = ("Daten und Speicherung\nWie lange werden meine Chats gespeichert?\nChatverläufe werden nach 90 Tagen "
           "automatisch gelöscht. Wichtige Ergebnisse legen Sie bitte rechtzeitig in der E-Akte ab.\n"
           "Welche Dateien kann ich hochladen?\nPDF-, Word- und Textdateien bis 50 MB.")
    q = best_quote("Wie lange werden meine Chats im KI-Portal gespeichert?", [_ev(1, faq, "Häufige Fragen")])
    assert q.text == "Chatverläufe werden nach 90 Tagen automatisch gelöscht."
    quoted = "„Wie lange werden meine Chats gespeichert?“ Chatverläufe werden nach 90 Tagen automatisch gelöscht."
    q = best_quote("Wie lange werden meine Chats im KI-Portal gespeichert?", [_ev(1, quoted, "Häufige Fragen")])
    assert q.text == "Chatverläufe werden nach 90 Tagen automatisch gelöscht."  # a question in quotation marks too


def test_a_bare_heading_is_never_the_quote_the_sentence_under_it_is():
    """blind_dev: a heading matched the question's words better than any sentence and became the
    whole answer („B 3.1.1 Frequenzbereich“). It stays a line above the sentence it made match,
    where the two stand together; a sentence that matches by itself needs no heading."""
    spec = "Technische Anforderungen\nB 3.1.1 Frequenzbereich\nEinstellbar von 165 bis 174 MHz ohne Öffnen des Gehäuses."
    q = best_quote("Welcher Frequenzbereich gilt?", [_ev(1, spec, "Pflichtenheft")])
    assert q.text == "B 3.1.1 Frequenzbereich\nEinstellbar von 165 bis 174 MHz ohne Öffnen des Gehäuses."
    own = "Frequenzbereich\nDer Frequenzbereich reicht von 165 bis 174 MHz."
    assert best_quote("Welcher Frequenzbereich gilt?", [_ev(1, own)]).text == "Der Frequenzbereich reicht von 165 bis 174 MHz."
    # condensed evidence: after a gap "…" the heading names nothing that is shown (a review: "Hundesteuer …
    # Die Zweitwohnungsteuer beträgt 12 Prozent." answered the dog tax with the second-home tax)
    apart = "Hundesteuer … Die Zweitwohnungsteuer beträgt 12 Prozent."
    assert best_quote("Wie hoch ist die Hundesteuer?", [_ev(1, apart)]) is None
    assert best_quote("Welcher Frequenzbereich gilt?", [_ev(1, "Anhang\nFrequenzbereich")]) is None  # nothing but headings
    # a rule under the heading is no sentence to quote (it was: „Kranichzählung Termine<br>=====“, an attacker's probe)
    assert best_quote("Wann ist die Kranichzählung?", [_ev(1, "Kranichzählung Termine\n=================")]) is None
    ruled = "Kranichzählung Termine\n=================\nGezählt wird am 12. Oktober ab 7 Uhr am Deich."
    assert best_quote("Wann ist die Kranichzählung?", [_ev(1, ruled)]).text == \
        "Kranichzählung Termine\nGezählt wird am 12. Oktober ab 7 Uhr am Deich."  # the rule line is decoration


@pytest.mark.parametrize("text, question, quote", [
    # a short line that states something is no heading: it stays the quote (a review)
    ("Ansprechpersonen\nDatenschutz: Tobias Wendling, Datenschutzbeauftragter\nIT: Kerstin Albers",
     "Wer ist für den Datenschutz zuständig?", "Datenschutz: Tobias Wendling, Datenschutzbeauftragter"),
    ("Datenportal\nNutzung kostenlos und ohne Anmeldung", "Ist die Nutzung des Datenportals kostenlos?",
     "Nutzung kostenlos und ohne Anmeldung"),
    ("Gewährleistung\n24 Monate Gewährleistung", "Wie lange gilt die Gewährleistung?", "24 Monate Gewährleistung"),
    # a slide's points are content, not three headings
    ("LEGO-Modell\nTransport Aufbau Abbau\nZwei Personen Kleintransporter\nAufbau in 45 Minuten",
     "Wie lange dauert der Aufbau des LEGO-Modells?", "Aufbau in 45 Minuten"),
    # a sentence's tail without its period is no heading over the next line
    ("Die Leinenpflicht gilt im Stadtpark. Ausnahmen regelt die Hundesatzung\nDer Hundekot ist zu entfernen.",
     "Wer regelt die Ausnahmen für Hunde?", "Ausnahmen regelt die Hundesatzung"),
])
def test_a_short_line_that_states_something_stays_the_quote(text, question, quote):
    assert best_quote(question, [_ev(1, text)]).text == quote


def test_a_rule_keeps_its_exception():
    text = "Grillen ist in den Grünanlagen verboten. Dies gilt nicht für die ausgewiesenen Grillplätze. Hunde sind anzuleinen."
    q = best_quote("Darf man in den Grünanlagen grillen?", [_ev(1, text)])
    assert "verboten" in q.text and "gilt nicht" in q.text and "Hunde" not in q.text


@pytest.mark.parametrize("sentence, restates", [
    ("Ja, die Jury darf überwiegend aus eigenen Leuten bestehen [4].", True),   # the question's words only
    ("Nein [1].", True),                                                        # a bare verdict
    ("Ja [1], [2].", True),
    ("Nein, die Jury darf nicht überwiegend aus eigenen Leuten bestehen.", True),  # a negation is no new fact
    ("Nein, die Mehrheit muss unabhängig vom Ausrichter sein [1].", False),    # words of its own: a claim
    ("Ja, für höchstens zehn Jahre [2].", False),
    ("Die Jury darf überwiegend aus eigenen Leuten bestehen [4].", False),      # no verdict: a claim to check
    ("Janine Meier leitet die Jury.", False),                                   # "Ja" only as a word's start
])
def test_restates_question(sentence, restates):
    assert restates_question(sentence, "Darf die Jury überwiegend aus eigenen Leuten bestehen?") is restates


def test_supporting_quote_backs_the_models_sentence_from_the_cited_source():
    evidence = [_ev(1, "Die Ruhezeit für Urnengräber beträgt 20 Jahre. Für Erdgräber gilt eine Ruhezeit von 25 Jahren."),
                _ev(2, "Urnengräber werden auf 25 Jahre verliehen.")]
    q = supporting_quote("Erdgräber haben eine Ruhezeit von 25 Jahren [1].", "Ruhezeit Erdgräber?", evidence, [1])
    assert q.n == 1 and "Erdgräber" in q.text and "25" in q.text


@pytest.mark.parametrize("answer, first", [
    ("Die Ruhezeit beträgt 20 Jahre [1]. Außerdem gilt …", "Die Ruhezeit beträgt 20 Jahre [1]."),
    ("Nein, z. B. nicht am Sonntag [2]. Weitere Sätze.", "Nein, z. B. nicht am Sonntag [2]."),
    ("Von H. Lipmanowicz & K. McCandless [1]. Mehr.", "Von H. Lipmanowicz & K. McCandless [1]."),
])
def test_first_sentence(answer, first):
    assert first_sentence(answer) == first


def test_cited_sentence_cites_once_and_shows_the_quote_unless_it_is_the_quote():
    from assistant.quotes import Quote

    q = Quote(2, "Die Ruhezeit für Urnengräber beträgt 20 Jahre.", "/d.pdf", "Satzung", 3, 1.0)
    assert cited_sentence("20 Jahre [1][2].", q) == "20 Jahre [2].\n\n„Die Ruhezeit für Urnengräber beträgt 20 Jahre.“"
    assert cited_sentence("Die Ruhezeit für Urnengräber beträgt 20 Jahre [2].", q) == \
        "Die Ruhezeit für Urnengräber beträgt 20 Jahre [2]."
    # a list of every source is one mark: no ",,," is left behind
    assert cited_sentence("Ja, die Ruhezeit für Urnengräber beträgt 20 Jahre. [1], [2], [3], [4]", q) == \
        "Ja, die Ruhezeit für Urnengräber beträgt 20 Jahre [2].\n\n„Die Ruhezeit für Urnengräber beträgt 20 Jahre.“"


def test_units_split_lines_gaps_and_sentences():
    assert units("Erster Satz. Zweiter Satz.\nZeile drei … Zeile vier") == ["Erster Satz.", "Zweiter Satz.", "Zeile drei",
                                                                           "Zeile vier"]


def test_a_pages_running_footer_is_never_the_quote():
    """The footer shares the title's words with every question on the document, and with its page
    numbers passed for the answer to "Wie viele …?" (a demo question's quote, a review)."""
    page = ("Bericht: Exkursion zum Reallabor im Nordpark - Seite 2 von 3\nSensorik im Reallabor\n"
            "Im Reallabor sind derzeit 304 Sensoren verbaut.")
    q = best_quote("Wie viele Sensoren stecken im Nordpark-Reallabor?", [_ev(1, page)])
    assert q.text == "Im Reallabor sind derzeit 304 Sensoren verbaut."


def test_a_quoted_row_takes_the_header_of_its_own_table():
    """Two tables in one passage: the row got the passage's first header (a review)."""
    text = ("Leistung | Gebühr\nReisepass | 70,00 Euro\nParkhäuser der Stadt\nParkhaus | Preis je Stunde\n"
            "Innenstadt Parkhaus | 2,50 Euro")
    q = best_quote("Was kostet eine Stunde im Parkhaus Innenstadt?", [_ev(1, text)])
    assert q.text == "Parkhaus | Preis je Stunde\nInnenstadt Parkhaus | 2,50 Euro"
