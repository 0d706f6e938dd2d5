"""Einfache/Leichte Sprache with the fake model: draft, rule check, revision of offending sentences only."""
from __future__ import annotations

from assistant.llm.fake import FakeChatModel
from assistant.tools.rules import check_text, level_for
from assistant.tools.simplify import apply_revisions, parse_numbered, simplify, split_parts

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
