"""The trainer tab's handlers as plain methods (hash embedder, extractive model): roles first, then work."""
from __future__ import annotations

import gradio as gr
import pytest

from ui.security import PermissionDenied
from ui.trainer_tab import TrainerUI

QUESTION = "Welche Zonen hat das Ampelsystem?"


def req(name: str | None) -> gr.Request:
    return gr.Request(username=name)


@pytest.fixture
def trainer(portal_ctx):
    return TrainerUI(portal_ctx)


@pytest.mark.parametrize("user", ["anna", None, "mallory"])
def test_only_trainers_reach_the_handlers(trainer, user):
    with pytest.raises(PermissionDenied):
        trainer.ask(QUESTION, "extraktiv", [], 3, 800, True, None, False, req(user))
    with pytest.raises(PermissionDenied):
        trainer.policy(QUESTION, "red", None, [], None, req(user))
    with pytest.raises(PermissionDenied):
        trainer.load_plans(None, req(user))


def test_the_page_load_fills_trainers_quietly_and_leaves_staff_empty_without_a_false_alarm(trainer, caplog):
    """Every staff page load ran it and logged "denied trainer-only action" (a browser review: 18 false
    alarms in the server log for ordinary use); a crafted trainer call by staff still warns."""
    with caplog.at_level("WARNING"):
        assert trainer.collection_choices(req("anna"))["choices"] == []
        assert trainer.collection_choices(req(None))["choices"] == []
    assert not [r for r in caplog.records if "denied" in r.getMessage()]
    assert trainer.collection_choices(req("tina"))["choices"]
    with caplog.at_level("WARNING"), pytest.raises(PermissionDenied):
        trainer.load_plans(None, req("anna"))
    assert [r for r in caplog.records if "denied trainer-only action to anna" in r.getMessage()]


def test_inspect_shows_answer_and_passages_escaped(trainer):
    answer_html, inspect_html, slide = trainer.ask(QUESTION, "extraktiv", [], 3, 800, True, None, False, req("tina"))
    assert "Blick unter die Haube" in inspect_html and "Zone" in inspect_html
    assert "<script" not in answer_html + inspect_html
    assert slide  # the projector slide is rendered even without a session


def test_a_model_outside_the_role_is_refused(trainer):
    with pytest.raises(gr.Error, match="nicht zur Verfügung"):
        trainer.ask(QUESTION, "chef", [], 3, 800, True, None, False, req("tina"))  # admins only


def test_policy_preview_calls_no_model(trainer):
    html, _ = trainer.policy("Darf der Bescheid von Herrn Klaus Meier, geboren am 03.04.1961, ins rote Modell?",
                             "red", None, [], None, req("tina"))
    assert "Ampel-Vorschau" in html and "kein Modell aufgerufen" in html and "blockiert" in html


def test_plans_and_quiz_questions_are_offered_by_their_words_and_told_apart_when_they_match(tmp_path):
    """The lists showed internal ids ("(ki-kompass-starter)", "m1-q1:"); the ids stay the values. Two plans
    of one title are told apart by their files, a question two modules share by its module."""
    from assistant.training.plans import BUNDLED_DIR, load_plan
    from ui.trainer_tab import _plan_choices, _quiz_choices

    starter = load_plan(BUNDLED_DIR / "ki-kompass-starter.yaml")
    copy = starter.model_copy(update={"id": "eigener-plan"})
    plans = {"ki-kompass-starter": (BUNDLED_DIR / "ki-kompass-starter.yaml", starter),
             "eigener-plan": (tmp_path / "eigener-plan.yaml", copy)}
    assert _plan_choices({"ki-kompass-starter": plans["ki-kompass-starter"]}) == [
        ("KI-Kompass: sicher arbeiten mit dem KI-Portal", "ki-kompass-starter")]
    assert _plan_choices(plans) == [
        ("KI-Kompass: sicher arbeiten mit dem KI-Portal (ki-kompass-starter.yaml)", "ki-kompass-starter"),
        ("KI-Kompass: sicher arbeiten mit dem KI-Portal (eigener-plan.yaml)", "eigener-plan")]

    choices = _quiz_choices(starter)
    assert choices[0] == ("Was tut der Assistent, wenn die Antwort nicht in den Dokumenten steht?", "m1-q1")
    assert [v for _, v in choices] == [q.id for q in starter.quiz_items()]
    first, second = starter.modules[:2]
    same = second.quiz[0].model_copy(update={"question": first.quiz[0].question})
    twice = starter.model_copy(update={"modules": [first, second.model_copy(update={"quiz": [same]})]})
    labels = dict((v, label) for label, v in _quiz_choices(twice))
    assert labels[first.quiz[0].id] == f"{first.title}: {first.quiz[0].question}"
    assert labels[same.id] == f"{second.title}: {first.quiz[0].question}"
    assert labels[first.quiz[1].id] == first.quiz[1].question  # the others stay as they are
