"""Einfache/Leichte Sprache with the fake model: draft, rule check, revision of offending sentences only."""
from __future__ import annotations

import pytest

from assistant.llm.fake import FakeChatModel
from assistant.tools.rules import check_text, level_for
from assistant.tools.simplify import apply_revisions, clean_output, parse_numbered, simplify, split_parts, strip_model_chatter

SOURCE = ("Der Antrag auf Erteilung einer Sondernutzungserlaubnis ist bis zum 31.03.2025 schriftlich beim Ordnungsamt "
          "einzureichen. Die Gebühr beträgt 120 Euro.")


def count(text: str) -> int:
    return max(1, len(text) // 4)


def run(llm, **kw):
    events = list(simplify(SOURCE, level_for("leicht"), llm, max_revisions=kw.get("max_revisions", 2),
                           part_tokens=600, output_tokens=300, count=count))
    return events, events[-1]


def test_revision_fixes_only_the_flagged_sentence():
    llm = FakeChatModel(responses=[
        "Der Antrag wird vom Amt geprüft.\nSie schicken den Antrag bis zum 31.03.2025.\nSie zahlen 120 Euro.",
        "1. Das Amt prüft den Antrag.",
    ])
    events, done = run(llm)
    assert done["output"] == "Das Amt prüft den Antrag.\nSie schicken den Antrag bis zum 31.03.2025.\nSie zahlen 120 Euro."
    assert done["details"]["revisions"] == 1
    assert done["details"]["violations_before_revision"] == 1
    assert done["details"]["rule_check"]["violations"] == []
    assert done["details"]["facts_changed"] == []
    assert "<<<Der Antrag wird vom Amt geprüft.>>>" in llm.calls[1] and "Passiv" in llm.calls[1]
    assert "31.03.2025" not in llm.calls[1]  # a clean sentence is not sent again
    assert [e["type"] for e in events].count("reset") == 2
    before, after = done["details"]["readability_before"], done["details"]["readability_after"]
    assert after["flesch_amstad"] > before["flesch_amstad"]


def test_a_revision_that_makes_it_worse_is_dropped_and_passes_are_capped():
    llm = FakeChatModel(responses=["Der Antrag wird geprüft. Sie zahlen 120 Euro bis 31.03.2025.",
                                   "1. Der Antrag wird sorgfältig geprüft, wenn er des Amtes würdig wäre."])
    _, done = run(llm)
    assert done["output"] == "Der Antrag wird geprüft. Sie zahlen 120 Euro bis 31.03.2025."
    assert len(llm.calls) == 2  # one failed pass stops the loop

    llm = FakeChatModel(responses=["Der Antrag wird geprüft. Die Akte wird gelesen."])
    _, done = run(llm, max_revisions=0)
    assert len(llm.calls) == 1 and done["details"]["revisions"] == 0
    assert len(done["details"]["rule_check"]["violations"]) == 2


def test_facts_check_reports_a_changed_deadline():
    llm = FakeChatModel(responses=["Sie schicken den Antrag bis zum 30.03.2025. Sie zahlen 120 Euro."])
    _, done = run(llm)
    assert done["details"]["facts_changed"] == [
        {"kind": "date", "expected": "31.03.2025", "found": "30.03.2025", "status": "changed", "label": "Datum"}]


def test_parse_and_apply_revisions():
    assert parse_numbered("1. Eins.\n2) Zwei.\n7. Sieben.\nFoo", 2) == {1: "Eins.", 2: "Zwei."}
    text = "Der Antrag wird geprüft.\nSie zahlen."
    report = check_text(text, "leicht")
    assert apply_revisions(text, report, {1: "Das Amt prüft."}, [0]) == "Das Amt prüft.\nSie zahlen."


def test_long_text_is_simplified_part_by_part():
    text = "\n\n".join(f"Absatz {i}. " + "Wort " * 60 for i in range(4))
    parts = split_parts(text, 100, count)
    assert len(parts) == 4 and all("Absatz" in p for p in parts)


BODY = "Sie zahlen 120 Euro.\nDas Amt prüft den Antrag."
LIST = "Sie brauchen drei Dinge:\n- den Ausweis\n- das Formular\n- 120 Euro"


@pytest.mark.parametrize("raw, expected", [
    # lead-ins the model puts before its answer
    ("Hier ist der Text in Einfacher Sprache:\n" + BODY, BODY),
    ("Hier ist der Text in Einfacher Sprache:\n\n" + BODY, BODY),
    ("Hier ist die vereinfachte Fassung:\n" + BODY, BODY),
    ("Hier ist der vereinfachte Text für Sie:\n" + BODY, BODY),
    ("Gerne, hier ist der Text in Leichter Sprache:\n" + BODY, BODY),
    ("Gerne! Hier ist meine Version:\n" + BODY, BODY),
    ("Gerne, hier:\n" + BODY, BODY),
    ("Text in Einfacher Sprache:\n" + BODY, BODY),
    ("**Vereinfachte Fassung:**\n" + BODY, BODY),
    ("## Text in Leichter Sprache\n" + BODY, BODY),
    ("Ich habe den Text in Einfache Sprache übertragen:\n" + BODY, BODY),
    ("Hier ist der Text in Einfacher Sprache: Sie zahlen 120 Euro.", "Sie zahlen 120 Euro."),
    # quotation marks around the whole answer
    ("„Sie zahlen 120 Euro.\nDas Amt prüft den Antrag.“", BODY),
    ('"Sie zahlen 120 Euro.\nDas Amt prüft den Antrag."', BODY),
    ("»Sie zahlen 120 Euro.\nDas Amt prüft den Antrag.«", BODY),
    ("“Sie zahlen 120 Euro.\nDas Amt prüft den Antrag.”", BODY),
    ("Hier ist die vereinfachte Fassung:\n\n„Sie zahlen 120 Euro.\nDas Amt prüft den Antrag.“", BODY),
    ("„Hier ist die vereinfachte Fassung:\nSie zahlen 120 Euro.\nDas Amt prüft den Antrag.“", BODY),
    # closing remarks
    (BODY + "\n\nIch hoffe, das hilft.", BODY),
    (BODY + "\nIch hoffe, dieser Text ist leichter zu verstehen!", BODY),
    (BODY + " Ich hoffe, das hilft.", BODY),
    (BODY + "\n---\nLassen Sie mich wissen, wenn Sie Änderungen wünschen.", BODY),
    ("Hier ist der Text in Einfacher Sprache:\n„" + BODY + "“\nIch hoffe, das hilft.", BODY),
    # text that belongs to the answer stays
    (BODY, BODY),
    (LIST, LIST),
    ("Hier sind die Öffnungszeiten:\nMontag 8 bis 12 Uhr.", "Hier sind die Öffnungszeiten:\nMontag 8 bis 12 Uhr."),
    ("Hier ist die neue Fassung der Satzung:\nSie gilt ab Mai.", "Hier ist die neue Fassung der Satzung:\nSie gilt ab Mai."),
    ("Das ist wichtig: Sie zahlen 120 Euro.", "Das ist wichtig: Sie zahlen 120 Euro."),
    ("Gerne helfen wir Ihnen:\nRufen Sie uns an.", "Gerne helfen wir Ihnen:\nRufen Sie uns an."),
    ("„Ja“ heißt: Sie stimmen zu. Dann gilt „Nein“", "„Ja“ heißt: Sie stimmen zu. Dann gilt „Nein“"),
    ("„Ja“ oder „Nein“", "„Ja“ oder „Nein“"),
    ('"Ja" oder "Nein"', '"Ja" oder "Nein"'),
    (BODY + "\nWenn Sie Fragen haben, rufen Sie uns an.", BODY + "\nWenn Sie Fragen haben, rufen Sie uns an."),
    (BODY + "\nIch hoffe, wir sehen uns beim Fest.", BODY + "\nIch hoffe, wir sehen uns beim Fest."),
    ("", ""),
])
def test_strip_model_chatter(raw, expected):
    assert strip_model_chatter(raw) == expected


def test_clean_output_keeps_dropping_the_prompt_markers():
    assert clean_output("<<<Text: Sie zahlen 120 Euro.>>>") == "Sie zahlen 120 Euro."


def test_the_lead_in_is_not_counted_as_a_sentence():
    llm = FakeChatModel(responses=["Hier ist der Text in Leichter Sprache:\n\n„Sie schicken den Antrag bis zum 31.03.2025.\n"
                                   "Sie zahlen 120 Euro.“\n\nIch hoffe, das hilft."])
    events, done = run(llm)
    assert done["output"] == "Sie schicken den Antrag bis zum 31.03.2025.\nSie zahlen 120 Euro."
    assert done["details"]["rule_check"]["sentences"] == 2
    assert events[[e["type"] for e in events].index("reset")]["text"] == done["output"]  # what staff see
