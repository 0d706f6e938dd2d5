"""Personal-data detector: each kind with positives and hard negatives, checksums, masking,
per-zone decisions, and a quality floor on the held-out split of the example corpus."""
from __future__ import annotations

import json
import logging
import re
import time

import pytest

from assistant.policy.ampel import ZONES
from assistant.policy.pii import (
    KINDS,
    ZONE_ACTIONS,
    Detection,
    assess,
    detect_pii,
    iban_is_valid,
    tax_id_is_valid,
)
from evals.pii_eval import DEFAULT_PATH, evaluate_pii, format_markdown, load_examples


def kinds(text: str) -> set[str]:
    return {d.kind for d in detect_pii(text)}


def found(text: str, kind: str) -> list[str]:
    return [d.text for d in detect_pii(text) if d.kind == kind]


# --------------------------------------------------------------------------- e-mail


@pytest.mark.parametrize("text, value", [
    ("Bitte an max.mustermann@stadt.de schicken.", "max.mustermann@stadt.de"),
    ("Mail: a.oezdemir@nettetal-online.de.", "a.oezdemir@nettetal-online.de"),
    ("poststelle@kreis-viersen.de", "poststelle@kreis-viersen.de"),
])
def test_email_positive(text, value):
    assert found(text, "email") == [value]


@pytest.mark.parametrize("text", ["Die Stadt @ Social Media", "Antwort an: info(at)stadt.de", "user@localhost"])
def test_email_negative(text):
    assert "email" not in kinds(text)


# --------------------------------------------------------------------------- phone


@pytest.mark.parametrize("text, value", [
    ("Telefon: +49 2162 817-0", "+49 2162 817-0"),
    ("Tel. 0049 2162 123456", "0049 2162 123456"),
    ("erreichbar unter 02162 123456.", "02162 123456"),
    ("Rückruf an 0171/1234567 erbeten", "0171/1234567"),
    ("Durchwahl (02162) 12 34-5", "(02162) 12 34-5"),
    ("Tel.: +49 (0) 2162 817-214", "+49 (0) 2162 817-214"),
    ("Handy 01521234567", "01521234567"),
    ("Ruf 0351 4880", "0351 4880"),  # short number, but announced as a phone number
    ("Büro in Wien: +43 1 4000 8040", "+43 1 4000 8040"),  # another country, its own lengths
])
def test_phone_positive(text, value):
    assert found(text, "phone") == [value]


@pytest.mark.parametrize("text", [
    "Im Jahr 2024 wurden 1.234 Anträge bearbeitet.",
    "Die Sitzung findet am 01.03.2025 um 17:00 Uhr statt.",
    "Der Ansatz beträgt 1.250.000 Euro.",
    "Das Bürgerbüro in 01067 Dresden ist geschlossen.",
    "Gemäß § 12 Abs. 3 BauGB",
    "Siehe Seite 12 und S. 0134.",
    "Rechnungsnummer 0815-4711-2024",
    "Kundennummer 01234567890",
    "Tel. +49 2162 817214 1234567",  # longer than any German number (libphonenumber)
    "Stand +49 216",  # too short after the country code
    "Az. 0123 4567 8901",
    "Drucksache 0456/2024",
    "ISBN 978-3-16-148410-0",
])
def test_phone_negative(text):
    assert "phone" not in kinds(text)


# --------------------------------------------------------------------------- IBAN


VALID_IBANS = [
    "DE89 3704 0044 0532 0130 00",
    "DE89370400440532013000",
    "GB82 WEST 1234 5698 7654 32",
    "AT61 1904 3002 3457 3201",
    "NL91 ABNA 0417 1643 00",
    "FR14 2004 1010 0505 0001 3M02 606",
    "CH93 0076 2011 6238 5295 7",
]
INVALID_IBANS = [
    "DE89 3704 0044 0532 0130 01",  # one digit off: mod 97 != 1
    "DE88 3704 0044 0532 0130 00",  # wrong check digits
    "DE89 3704 0044 0532 0130 0",  # too short for DE
    "XX89 3704 0044 0532 0130 00",  # unknown country
]


@pytest.mark.parametrize("iban", VALID_IBANS)
def test_iban_checksum_valid(iban):
    assert iban_is_valid(iban)
    assert found(f"Bitte überweisen Sie auf {iban} bis Monatsende.", "iban") == [iban]


@pytest.mark.parametrize("iban", INVALID_IBANS)
def test_iban_checksum_invalid_not_detected(iban):
    assert not iban_is_valid(iban)
    # Nor are its digits re-reported as a phone number or tax ID.
    assert kinds(f"Die IBAN {iban} ist falsch.") == set()


def test_iban_stops_at_registry_length():
    text = "IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX"
    assert found(text, "iban") == ["DE89 3704 0044 0532 0130 00"]


# --------------------------------------------------------------------------- tax ID


@pytest.mark.parametrize("value", ["86095742719", "47036892816", "65929970489", "57549285017", "25768131411"])
def test_tax_id_known_valid(value):
    assert tax_id_is_valid(value)
    spaced = f"{value[:2]} {value[2:5]} {value[5:8]} {value[8:]}"
    assert found(f"Steuer-ID: {spaced}", "tax_id") == [spaced]
    assert found(f"Identifikationsnummer {value}.", "tax_id") == [value]


@pytest.mark.parametrize("value, why", [
    ("86095742718", "wrong check digit"),
    ("12345678901", "no repeated digit in the first ten"),
    ("11234567891", "fails the check digit"),
    ("11123456780", "a digit three times in a row"),
    ("11123456786", "three in a row although frequency rule and check digit pass (BZSt since 2016)"),
    ("11223456789", "two different digits repeated"),
    ("06095742719", "leading zero"),
    ("8609574271", "ten digits"),
])
def test_tax_id_invalid_not_detected(value, why):
    assert not tax_id_is_valid(value), why
    assert "tax_id" not in kinds(f"Steuer-ID {value}")


def test_tax_id_not_taken_from_a_longer_number():
    assert "tax_id" not in kinds("Vorgang 860957427191 vom Mai")


# --------------------------------------------------------------------------- birth date


@pytest.mark.parametrize("text, value", [
    ("Das Kind, geb. 14.02.2016, besucht die Kita.", "14.02.2016"),
    ("geboren am 3. Mai 1970 in Krefeld", "3. Mai 1970"),
    ("Geburtsdatum: 01.02.1990", "01.02.1990"),
    ("Geb.-Datum 05.06.88", "05.06.88"),
    ("Herr Klaus Weber (* 21.08.1947) beantragt", "21.08.1947"),
    ("Die Tochter ist am 14.12.2012 geboren.", "14.12.2012"),
    ("Geburtsdatum des Kindes: 2017-09-23", "2017-09-23"),
])
def test_birth_date_positive(text, value):
    assert found(text, "birth_date") == [value]


@pytest.mark.parametrize("text", [
    "Die nächste Sitzung findet am 12.03.2025 statt.",
    "Die Verordnung vom 15. März 2023 tritt am 1. Januar 2024 in Kraft.",
    "* 12.03.2025 Ratssitzung",  # a bullet point, not "born"
    "Geboren wurde die Idee 2019.",
    "Die Geburtenzahl stieg 2023 auf 412.",
])
def test_birth_date_negative(text):
    assert "birth_date" not in kinds(text)


# --------------------------------------------------------------------------- address


@pytest.mark.parametrize("text, value", [
    ("Er wohnt in der Hauptstraße 12.", "Hauptstraße 12"),
    ("Ortstermin Am Markt 5a.", "Am Markt 5a"),
    ("Grundstück Lindenweg 3, 41334 Nettetal", "Lindenweg 3, 41334 Nettetal"),
    ("Lieferung: Kölner Str. 145", "Kölner Str. 145"),
    ("Kaiser-Wilhelm-Allee 3", "Kaiser-Wilhelm-Allee 3"),
    ("Das Haus Ostring 12 b", "Ostring 12 b"),
    ("Objekt Kaiserstraße 44-46", "Kaiserstraße 44-46"),
    ("Bürgerbüro, Doerkesplatz 11, 41334 Nettetal.", "Doerkesplatz 11, 41334 Nettetal"),
    ("Mühlengasse 7", "Mühlengasse 7"),
    ("Rheinufer 4", "Rheinufer 4"),
    ("Eichendamm 9", "Eichendamm 9"),
    ("Berliner Chaussee 101", "Berliner Chaussee 101"),
    ("Herrn\nJürgen Becker\nLindenstraße 14\n41334 Nettetal", "Lindenstraße 14\n41334 Nettetal"),
])
def test_address_positive(text, value):
    assert found(text, "address") == [value]


@pytest.mark.parametrize("text", [
    "Die Hauptstraße wird saniert.",
    "Die Bundesstraße 221 ist gesperrt.",
    "Im Jahr 2024 gab es 12 Anträge.",
    "Am Montag 12 neue Anträge.",
    "Der Bebauungsplan „Am Markt“ wurde beschlossen.",
    "Parkplatz 12 ist reserviert.",
    "Im Handlungsfeld 3 geht es um Mobilität.",
    "Die Sanierung der Hauptstraße 2. Bauabschnitt beginnt.",
    "Der Marktplatz 12 Meter weiter",
    "Postleitzahlen 41334 und 41335",
])
def test_address_negative(text):
    assert "address" not in kinds(text)


# --------------------------------------------------------------------------- person name


@pytest.mark.parametrize("text, value", [
    ("Frau Müller-Lüdenscheidt hat angerufen.", "Müller-Lüdenscheidt"),
    ("an Herrn Dr. Hans Meier", "Hans Meier"),
    ("Die Stellungnahme von Hr. Krämer liegt vor.", "Krämer"),
    ("Kontakt: Fr. Özdemir, Zimmer 3", "Özdemir"),
    ("Dr. Yıldız übernimmt.", "Yıldız"),
    ("Maria Kaiser geb. Schneider", "Schneider"),
    ("Name: Katharina Hoffmann", "Katharina Hoffmann"),
    ("Frau Anna von der Heide beantragt", "Anna von der Heide"),
    ("Frau Bürgermeisterin Schmitz begrüßte", "Schmitz"),
    ("Sehr geehrter Herr Oberbürgermeister Dr. Frank Meyer,", "Frank Meyer"),
    ("Beschwerde von Herrn O. Hansen", "O. Hansen"),
])
def test_person_name_positive(text, value):
    assert found(text, "person_name") == [value]


@pytest.mark.parametrize("text", [
    "Frau Bürgermeisterin eröffnete die Sitzung.",  # a role word alone names an office, not a person
    "Herr Vorsitzender, ich bitte um das Wort.",
    "Die Frau am Empfang hilft weiter.",
    "Eine Frau Mitte 40 fragte nach dem Weg.",
    "Sehr geehrte Damen und Herren,",
    "Der Herr der Ringe läuft im Kino.",
    "Öffnungszeiten Mo.–Fr. 8–12 Uhr",
    "Frau und Mann sind gleichberechtigt.",
    "Frau-Holle-Weg",
])
def test_person_name_negative(text):
    assert "person_name" not in kinds(text)


def test_name_without_marker_is_out_of_scope():
    """Documented limitation: no NER model, so an unmarked name is not found."""
    assert "person_name" not in kinds("Jürgen Becker hat den Antrag gestellt.")


# --------------------------------------------------------------------------- combined text, masking


def test_municipal_sentence_finds_every_kind():
    text = (
        "Antragsteller: Herr Jürgen Becker, geb. 04.09.1982, Lindenstraße 14, 41334 Nettetal, "
        "Tel. 0157 12345678, juergen.becker@web.de, IBAN DE89 3704 0044 0532 0130 00, "
        "Steuer-ID 86 095 742 719"
    )
    detections = detect_pii(text)
    assert {d.kind for d in detections} == set(KINDS)
    assert [d.start for d in detections] == sorted(d.start for d in detections)
    for d in detections:
        assert text[d.start:d.end] == d.text


RAW_VALUES = [
    ("email", "max.mustermann@stadt-nettetal.de"),
    ("phone", "+49 2162 817-214"),
    ("iban", "DE89 3704 0044 0532 0130 00"),
    ("tax_id", "86 095 742 719"),
    ("birth_date", "12.03.1985"),
    ("address", "Lindenstraße 14, 41334 Nettetal"),
    ("person_name", "Jürgen Müller-Lüdenscheidt"),
]


@pytest.mark.parametrize("kind, raw", RAW_VALUES)
def test_masking_never_leaks_the_raw_value(kind, raw):
    d = Detection(kind, 0, len(raw), raw)
    masked = d.masked
    assert raw not in masked and masked != raw
    for token in re.findall(r"[^\W_]{3,}", raw):
        assert token not in masked, (kind, token, masked)
    assert raw not in repr(d) and raw not in str(d)


def test_masked_email_keeps_shape():
    assert Detection("email", 0, 0, "max.mustermann@stadt.de").masked == "m***@s***.de"


@pytest.mark.parametrize("zone", ZONES)
def test_messages_and_logs_never_contain_raw_values(zone, caplog):
    text = " ".join(f"{raw}," for _, raw in RAW_VALUES)
    with caplog.at_level(logging.DEBUG):
        decision = assess(f"Frage zu {text} bitte", zone)
    assert decision.kinds and decision.message_de
    blob = decision.message_de + repr(decision) + caplog.text
    for _, raw in RAW_VALUES:
        assert raw not in blob


# --------------------------------------------------------------------------- zone decisions


QUESTION_WITH_PII = "Wie ist der Stand beim Antrag von Frau Petra Lange, Tel. 02162 817-214?"
QUESTION_WITHOUT_PII = "Wann tagt der Bauausschuss im März 2025?"


def test_zone_actions_cover_exactly_the_ampel_zones():
    assert set(ZONE_ACTIONS) == set(ZONES)


def test_green_allows_but_lists_detections():
    d = assess(QUESTION_WITH_PII, "green")
    assert d.action == "allow"
    assert d.kinds == ["phone", "person_name"]
    assert "Grün" in d.message_de


def test_yellow_warns_and_asks_for_confirmation():
    d = assess(QUESTION_WITH_PII, "yellow")
    assert d.action == "warn"
    assert "bestätigen" in d.message_de and "Gelb" in d.message_de


def test_red_blocks_naming_the_kinds_with_masked_values():
    d = assess(QUESTION_WITH_PII, "red")
    assert d.action == "block"
    assert "nicht gesendet" in d.message_de
    assert "Telefonnummer" in d.message_de and "Personenname" in d.message_de
    for det in d.detections:
        assert det.masked in d.message_de and det.text not in d.message_de


@pytest.mark.parametrize("zone", ZONES)
def test_no_pii_is_allowed_everywhere(zone):
    d = assess(QUESTION_WITHOUT_PII, zone)
    assert (d.action, d.detections, d.message_de) == ("allow", [], "")


def test_unknown_zone_is_an_error():
    with pytest.raises(ValueError):
        assess(QUESTION_WITH_PII, "blue")


def test_empty_text():
    assert detect_pii("") == []


def test_long_document_is_fast_enough():
    """Overlap checks are logarithmic; a quadratic regression would take seconds here."""
    text = " ".join(ex["text"] for ex in load_examples()) * 10
    t0 = time.perf_counter()
    detect_pii(text)
    assert time.perf_counter() - t0 < 2.0


# --------------------------------------------------------------------------- corpus and eval


def test_corpus_is_well_formed():
    examples = load_examples()
    assert len(examples) >= 120
    heldout = [ex for ex in examples if ex["split"] == "heldout"]
    assert 0.25 <= len(heldout) / len(examples) <= 0.45
    for kind in KINDS:
        assert sum(kind in ex["kinds"] for ex in heldout) >= 4, kind
    assert sum(not ex["kinds"] for ex in heldout) >= 15  # hard negatives


def test_eval_report_shape_and_markdown():
    report = evaluate_pii(DEFAULT_PATH, split="dev")
    assert report["split"] == "dev"
    assert set(report["per_kind"]) == set(KINDS)
    md = format_markdown(report)
    assert "| **gesamt** |" in md and "| email |" in md
    with pytest.raises(ValueError):
        evaluate_pii(DEFAULT_PATH, split="train")


def test_eval_rejects_malformed_corpus(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "text": "t", "kinds": ["ssn"], "split": "dev"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError):
        load_examples(bad)


def test_heldout_quality_floor():
    """Measured when written: precision 1.000, recall 0.980 (48/49); the miss is
    an unmarked name ("Mein Name ist Klaus Berger"). Rules were tuned on dev only."""
    report = evaluate_pii(DEFAULT_PATH, split="heldout")
    overall = report["overall"]
    assert overall["precision"] >= 0.95, format_markdown(report)
    assert overall["recall"] >= 0.90, format_markdown(report)
