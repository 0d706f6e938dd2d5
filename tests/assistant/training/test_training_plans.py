"""Training plans: the shipped starter plan is valid, broken plans fail with German messages."""
from __future__ import annotations

import pytest

from assistant.training.plans import BUNDLED_DIR, PlanError, discover, load_plan, parse_plan, unknown_models

STARTER = BUNDLED_DIR / "ki-kompass-starter.yaml"

MINIMAL = """
title: "Kurzschulung"
audience: "Team Bürgerbüro"
duration_minutes: 30
modules:
  - id: m1
    title: "Quellen"
    goal: "Antworten prüfen"
    exercises:
      - id: e1
        question: "Wie lange werden Chats gespeichert?"
        observe: "Quelle [1]"
    quiz:
      - id: q1
        question: "Was tun?"
        options: ["Übernehmen", "Prüfen"]
        correct: 1
"""


def test_starter_plan_is_valid_and_covers_the_topics():
    plan = load_plan(STARTER)
    assert plan.id == "ki-kompass-starter"
    assert plan.duration_minutes == 105
    ids = [m.id for m in plan.modules]
    assert ids == ["m1-koennen", "m2-quellen", "m3-erfunden", "m4-ampel", "m5-fragen", "m6-werkzeuge"]
    kinds = {e.compare.kind for _, e in plan.exercises() if e.compare}
    assert kinds == {"documents", "models", "k", "budget"}
    assert {e.zone for _, e in plan.exercises() if e.zone} == {"red", "yellow"}
    assert any("rote Modell" in e.question for _, e in plan.exercises())
    assert any(q.multiple for q in plan.quiz_items())
    for q in plan.quiz_items():
        assert q.explanation, q.id
    # only the models of the default installation are used
    assert unknown_models(plan, {"lokal", "extraktiv"}) == []


def test_discover_finds_the_starter_plan_and_lists_broken_ones(tmp_path):
    (tmp_path / "kaputt.yaml").write_text("title: [", encoding="utf-8")
    (tmp_path / "eigener.yaml").write_text(MINIMAL, encoding="utf-8")
    plans, errors = discover([BUNDLED_DIR, tmp_path])
    assert {"ki-kompass-starter", "eigener"} <= set(plans)
    assert len(errors) == 1 and errors[0].source == "kaputt.yaml"


def test_minimal_plan_gets_its_id_from_the_file_name(tmp_path):
    path = tmp_path / "Mein Plan.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    plan = load_plan(path)
    assert plan.id == "mein-plan"
    q = plan.quiz_item("q1")
    assert q.is_correct([1]) and not q.is_correct([0]) and not q.multiple


@pytest.mark.parametrize("mutation, expected", [
    (("duration_minutes: 30", "duration_minutes: neunzig"), "Dauer in Minuten (duration_minutes) muss eine ganze Zahl sein"),
    (("correct: 1", "correct: 2"), "Modul 1 › Quizfrage 1: Die richtige Antwort (correct) muss eine Nummer zwischen 0 und 1 sein"),
    (('        observe: "Quelle [1]"\n', '        observe: "Quelle [1]"\n        discusion: ["x"]\n'),
     "Modul 1 › Übung 1 › discusion ist kein bekanntes Feld (Tippfehler?)"),
    (('audience: "Team Bürgerbüro"\n', ""), "Zielgruppe (audience) fehlt."),
    (("id: q1", "id: e1"), "Die Kennung „e1“ kommt mehrfach vor"),
    (("id: m1", "id: Modul 1"), "Modul 1 › Kennung (id): nur Kleinbuchstaben"),
    (('options: ["Übernehmen", "Prüfen"]', 'options: ["Prüfen"]'), "Antwortmöglichkeiten (options) braucht mindestens 2 Einträge"),
    (('        observe: "Quelle [1]"\n', '        observe: "Quelle [1]"\n        compare: {kind: k, left: 2, right: 99}\n'),
     "zwischen 1 und 20"),
    (('        observe: "Quelle [1]"\n', '        observe: "Quelle [1]"\n        zone: lila\n'), "Zone (zone) muss einer dieser Werte sein"),
])
def test_broken_plans_fail_with_german_messages(mutation, expected):
    old, new = mutation
    assert old in MINIMAL
    with pytest.raises(PlanError) as exc:
        parse_plan(MINIMAL.replace(old, new, 1), "kaputt.yaml")
    text = str(exc.value)
    assert text.startswith("Schulungsplan kaputt.yaml ist ungültig:")
    assert expected in text, text
    assert "validation error" not in text.lower() and "Field required" not in text


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(PlanError) as exc:
        parse_plan('title: "x\n  audience: [', "kaputt.yaml")
    assert "kein gültiges YAML in Zeile" in str(exc.value)


def test_not_a_mapping_and_unreadable_files(tmp_path):
    with pytest.raises(PlanError, match="title, audience, duration_minutes und modules"):
        parse_plan("- nur\n- eine Liste\n", "liste.yaml")
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: Schulung für Ämter\n".encode("latin-1"))
    with pytest.raises(PlanError, match="UTF-8"):
        load_plan(path)
    with pytest.raises(PlanError, match="kann nicht gelesen werden"):
        load_plan(tmp_path / "fehlt.yaml")


def test_multiple_choice_is_scored_as_a_set():
    text = MINIMAL.replace("correct: 1", "correct: [0, 1]")
    q = parse_plan(text, "x.yaml", default_id="x").quiz_item("q1")
    assert q.multiple and q.is_correct([1, 0]) and not q.is_correct([0])


def test_unknown_models_are_reported_not_fatal():
    text = MINIMAL.replace('        observe: "Quelle [1]"\n',
                           '        observe: "Quelle [1]"\n        compare: {kind: models, left: lokal, right: eu-assistent}\n')
    plan = parse_plan(text, "x.yaml", default_id="x")
    assert unknown_models(plan, {"lokal", "extraktiv"}) == ["eu-assistent"]
