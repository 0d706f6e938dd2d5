"""Training sessions: join codes, anonymous quiz results, the session log and the handout."""
from __future__ import annotations

import json

import pytest

from assistant.appdb import AppDB
from assistant.training.plans import BUNDLED_DIR, load_plan
from assistant.training.sessions import CODE_ALPHABET, SessionError, TrainingStore, may_run_session

NAMES = ["erika.mustermann", "max.muster", "dana.beispiel"]


@pytest.fixture
def store(tmp_path):
    return TrainingStore(AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}"), secret="geheim")


@pytest.fixture
def plan():
    return load_plan(BUNDLED_DIR / "ki-kompass-starter.yaml")


@pytest.mark.parametrize("role, name, trainer, expected", [
    ("trainer", "tina", "tina", True),    # her own session
    ("trainer", "theo", "tina", False),   # another trainer's, whatever id he learnt
    ("trainer", "Tina", "tina", False),   # names are compared exactly
    ("trainer", "", "", False),           # no name owns nothing
    ("admin", "adam", "tina", True),      # an admin may end a session a colleague left running
    ("admin", "adam", "adam", True),
    ("staff", "tina", "tina", False),     # demoted: the session stays hers, running it does not
    ("staff", "anna", "tina", False),
    ("gast", "tina", "tina", False),      # an unknown role is no role
])
def test_who_may_run_a_session(role, name, trainer, expected):
    assert may_run_session(role, name, trainer) is expected


def test_session_gets_a_short_readable_code_and_is_found_by_it(store, plan):
    s = store.start(plan, "trainerin")
    assert len(s.code) == 6 and set(s.code) <= set(CODE_ALPHABET)
    assert store.by_code(s.code.lower()).id == s.id
    assert store.by_code(f" {s.code[:3]}-{s.code[3:]} ").id == s.id  # as read off a projector
    with pytest.raises(SessionError, match="Unbekannter Teilnahmecode"):
        store.by_code("ZZZZZZ")
    assert [x.id for x in store.active_sessions("trainerin")] == [s.id]


def test_participants_answer_the_open_item_and_results_are_anonymous(store, plan):
    s = store.start(plan, "trainerin")
    with pytest.raises(SessionError, match="nicht freigegeben"):
        store.answer(s.code, "m1-q1", NAMES[0], [1])
    store.open_item(s.id, "m1-q1")
    _, item = store.current_item(s.code)
    assert item.id == "m1-q1"
    assert store.answer(s.code, "m1-q1", NAMES[0], [1]) is True
    assert store.answer(s.code, "m1-q1", NAMES[1], [0]) is False
    assert store.answer(s.code, "m1-q1", NAMES[2], [1]) is True
    # changing one's mind replaces the answer, it does not add a second one
    assert store.answer(s.code, "m1-q1", NAMES[1], [1]) is True
    assert store.my_choice(s.code, "m1-q1", NAMES[1]) == [1]

    (r,) = store.results(s.id, "m1-q1")
    assert r.counts == [0, 3, 0] and r.answers == 3 and r.correct_answers == 3 and r.share_correct == 1.0
    assert store.participants(s.id) == 3

    # no name and no pseudonym anywhere in the results
    dumped = json.dumps([x.as_dict() for x in store.results(s.id)], ensure_ascii=False)
    rows = store.db.query("SELECT participant FROM training_answers")
    for secret_value in NAMES + [row["participant"] for row in rows]:
        assert secret_value not in dumped
    # the stored pseudonym is not the name, nor a plain hash of it
    import hashlib
    for row in rows:
        assert row["participant"] not in NAMES
        assert row["participant"] not in {hashlib.sha256(n.encode()).hexdigest()[:32] for n in NAMES}


def test_multiple_choice_and_invalid_choices(store, plan):
    s = store.start(plan, "trainerin")
    store.open_item(s.id, "m2-q2")  # correct: [0, 1, 3]
    assert store.answer(s.code, "m2-q2", NAMES[0], [3, 1, 0]) is True
    assert store.answer(s.code, "m2-q2", NAMES[1], [0, 1]) is False
    (r,) = store.results(s.id, "m2-q2")
    assert r.counts == [2, 2, 0, 1] and r.share_correct == 0.5
    with pytest.raises(SessionError, match="Ungültige Antwort"):
        store.answer(s.code, "m2-q2", NAMES[2], [7])
    store.open_item(s.id, "m1-q1")
    with pytest.raises(SessionError, match="genau eine"):
        store.answer(s.code, "m1-q1", NAMES[2], [0, 1])
    with pytest.raises(SessionError, match="gehört nicht"):
        store.open_item(s.id, "gibt-es-nicht")


def test_ended_session_takes_no_answers_and_forgets_the_salt(store, plan):
    s = store.start(plan, "trainerin")
    store.open_item(s.id, "m1-q1")
    store.answer(s.code, "m1-q1", NAMES[0], [1])
    store.end(s.id)
    with pytest.raises(SessionError, match="beendet"):
        store.answer(s.code, "m1-q1", NAMES[0], [0])
    assert store.db.one("SELECT salt FROM training_sessions WHERE id=:i", {"i": s.id})["salt"] == ""
    assert store.results(s.id, "m1-q1")[0].answers == 1  # results stay
    assert store.active_sessions() == []


def test_pseudonyms_differ_between_sessions(store, plan):
    a, b = store.start(plan, "t"), store.start(plan, "t")
    for s in (a, b):
        store.open_item(s.id, "m1-q1")
        store.answer(s.code, "m1-q1", NAMES[0], [1])
    rows = store.db.query("SELECT participant FROM training_answers")
    assert len({r["participant"] for r in rows}) == 2


def test_handout_contains_questions_answers_sources_and_results(store, plan):
    s = store.start(plan, "trainerin")
    store.log(s.id, "exercise", "Wie lange werden meine Chats gespeichert?", "Nach 90 Tagen [1].",
              exercise_id="m1-e1-chats", detail={"model": "lokal", "zone": "green",
                                                 "sources": [{"n": 1, "title": "FAQ", "source": "faq-ki-portal.html", "page": None}]})
    store.log(s.id, "comparison", "Wie heißt der Server?", "", detail={"sides": [
        {"label": "Mit Dokumenten", "answer": "KRN-KI-01 [1]", "model": "lokal", "zone": "green",
         "sources": [{"n": 1, "title": "KI-Kompass", "source": "ki-kompass-kempenrath.docx", "page": 2}]},
        {"label": "Ohne Dokumente", "answer": "<script>alert(1)</script> Server-3000", "model": "lokal", "zone": "green", "sources": []}]})
    store.open_item(s.id, "m4-q1")
    store.answer(s.code, "m4-q1", NAMES[0], [0])
    store.answer(s.code, "m4-q1", NAMES[1], [2])
    store.end(s.id)
    md, html = store.handout(s.id)
    for text in (md, html):
        assert "Wie lange werden meine Chats gespeichert?" in text
        assert "Nach 90 Tagen" in text and "faq-ki-portal.html" in text
        assert "Mit Dokumenten" in text and "Ohne Dokumente" in text and "ki-kompass-kempenrath.docx" in text
        assert "Eine Beschwerde einer Bürgerin mit Name und Anschrift" in text  # quiz question
        assert "davon richtig: 50 %" in text
        assert "Personenbezogene Daten dürfen nur in Zone Grün" in text  # the explanation
        for name in NAMES:
            assert name not in text
        assert "<script>" not in text
    assert "Seite 2" in md
    assert html.startswith("<!DOCTYPE html>") and "&lt;script&gt;" in html
    assert "| Grün | 1 | ✓ |" in md
    # unanswered items are left out of the results section
    assert "Was tut der Assistent, wenn die Antwort nicht" not in md


@pytest.mark.parametrize("answers, expected", [(1, "1 Antwort, davon richtig"), (2, "2 Antworten, davon richtig")])
def test_handout_counts_answers_in_singular_and_plural(store, plan, answers, expected):
    s = store.start(plan, "trainerin")
    store.open_item(s.id, "m4-q1")
    for name in NAMES[:answers]:
        store.answer(s.code, "m4-q1", name, [0])
    store.end(s.id)
    for text in store.handout(s.id):
        assert expected in text
        assert "1 Antworten" not in text
