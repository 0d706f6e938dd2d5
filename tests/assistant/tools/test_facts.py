"""The facts check: what the output dropped or changed, across spellings (table-driven)."""
from __future__ import annotations

import pytest

from assistant.tools.facts import added_facts, compare_facts, extract_facts, kept_share


@pytest.mark.parametrize("text, kind, key", [
    ("bis zum 31.03.2025", "date", "2025-03-31"),
    ("bis zum 31.3.25", "date", "2025-03-31"),
    ("am 1. März 2025", "date", "2025-03-01"),
    ("am 1. März", "date", "????-03-01"),
    ("um 10:00 Uhr", "time", "10:00"),
    ("um 10 Uhr", "time", "10:00"),
    ("Gebühr 1.575,00 €", "amount", "1575"),
    ("Gebühr 1575 Euro", "amount", "1575"),
    ("EUR 30", "amount", "30"),
    ("12,5 %", "percent", "12,5"),
    ("innerhalb von vier Wochen", "deadline", "4 Woche"),
    ("binnen eines Monats", "deadline", "1 Monat"),
    ("nach 14 Tagen", "deadline", "14 Tag"),
    ("nach § 12 Abs. 2", "paragraph", "12"),
    ("Az. 32-1234/2025", "file_number", "32-1234/2025"),
    ("Sehr geehrte Frau Dr. Müller,", "name", "müller"),
    ("Mail an info@stadt-nettetal.de", "email", "info@stadt-nettetal.de"),
    ("Es gibt 230 Plätze.", "number", "230"),
])
def test_extract(text, kind, key):
    facts = extract_facts(text)
    assert (kind, key) in {(f.kind, f.key) for f in facts}, facts


def test_a_date_is_not_also_counted_as_numbers():
    assert [(f.kind, f.key) for f in extract_facts("Frist: 31.03.2025.")] == [("date", "2025-03-31")]


SOURCE = ("Sehr geehrte Frau Dr. Müller, Ihr Antrag (Az. 32-1234/2025) muss bis zum 31.03.2025 vorliegen. "
          "Die Gebühr beträgt 1.575,00 € und ist innerhalb von vier Wochen zu zahlen. Es gibt 230 Plätze.")


@pytest.mark.parametrize("output, changed", [
    # everything kept, in other spellings
    ("Frau Müller: Az. 32-1234/2025. Bis 31. März 2025 abgeben. 1575 Euro in 4 Wochen zahlen. 230 Plätze.", []),
    # a changed deadline is reported with what the output says
    ("Frau Müller: Az. 32-1234/2025. Bis 30. März 2025 abgeben. 1575 Euro in 4 Wochen zahlen. 230 Plätze.",
     [("date", "31.03.2025", "30. März 2025")]),
    # dropped amount and duration
    ("Frau Müller: Az. 32-1234/2025. Bis 31.03.2025 abgeben. 230 Plätze.",
     [("amount", "1.575,00 €", None), ("deadline", "vier Wochen", None)]),
    # a name dropped
    ("Az. 32-1234/2025. Bis 31.03.2025. 1.575,00 € in vier Wochen. 230 Plätze.", [("name", "Müller", None)]),
])
def test_compare(output, changed):
    got = [(c.kind, c.expected, c.found) for c in compare_facts(SOURCE, output)]
    assert got == changed


def test_a_date_without_year_in_the_source_is_kept_by_the_full_date():
    assert compare_facts("Abgabe am 1. März.", "Abgabe am 1. März 2026.") == []


def test_change_status_and_dict():
    (c,) = compare_facts("Frist: 31.03.2025.", "Frist: 30.03.2025.")
    assert c.status == "changed" and c.as_dict()["label"] == "Datum"
    (d,) = compare_facts("Frist: 31.03.2025.", "Bald.")
    assert d.status == "dropped" and d.found is None


def test_added_facts_finds_invented_values():
    invented = added_facts("Einladung zur Bürgerversammlung im Rathaus.",
                           "Die Versammlung ist am 12.05.2025 um 18 Uhr, Az. 11-22/2025, Frau Schulz leitet.")
    assert {f.kind for f in invented} == {"date", "time", "file_number", "name"}
    assert added_facts("Am 12.05.2025 um 18 Uhr.", "Am 12. Mai 2025 um 18:00 Uhr.") == []


def test_kept_share():
    assert kept_share(SOURCE, "nichts") == (0, 6)
    assert kept_share("", "x") == (0, 0)
