"""The chat tab's pure pieces."""
from __future__ import annotations

import pytest

from ui.chat_tab import FEEDBACK, chat_examples, example_text, notice_on_refusal, thumbs_off
from ui.handlers import model_detail
from ui.handlers import UserError
from ui.security import PermissionDenied


@pytest.mark.parametrize("questions, examples", [
    ([], None),                                   # none configured: no example buttons
    (["  ", ""], None),
    (["Was kostet ein Anwohnerparkausweis?"], ["Was kostet ein Anwohnerparkausweis?"]),
    (["A?", "B?", "C?", "D?"], ["A?", "B?", "C?"]),  # at most three
    # an admin's text: one line, no direction controls (gradio shows it as plain text, so markup stays text)
    (["Wo steht\n die <b>Satzung</b>?\u202e"], ["Wo steht die <b>Satzung</b>?"]),
])
def test_the_empty_chat_offers_the_configured_examples(questions, examples):
    got = chat_examples(questions)
    assert (None if got is None else [e["text"] for e in got]) == examples


@pytest.mark.parametrize("index, text", [
    (0, "A?"), (1, "B?"), (2, ""), (-1, ""), (True, ""), ("0", ""), (None, ""),  # only a configured one's place counts
])
def test_a_click_gives_the_configured_question_by_its_place(index, text):
    assert example_text(chat_examples(["A?", "B?"]), index) == text
    assert example_text(None, 0) == ""


def test_an_answer_on_its_way_offers_no_thumbs_and_the_complete_one_is_the_plain_chat():
    """The thumbs stood under "Suche in den Dokumenten …" before any answer existed (a browser review):
    right after the question is shown an update takes them away (the page's ``rateable`` brings them
    back); the answer's own updates, the last one too (what a caller of /ask reads), stay as they are."""
    pending = ([{"role": "user", "content": "Frage"}], "c1", "box")
    done = ([{"role": "user", "content": "Frage"}, {"role": "assistant", "content": "Antwort"}], "c1", "")
    frames = list(thumbs_off(iter([pending, done])))
    assert frames[0] == pending and frames[-1] == done and len(frames) == 3
    off = frames[1]
    assert off[0] == {"__type__": "update", "feedback_options": []}  # the chat's messages untouched
    assert off[1:] == ({"__type__": "update"}, {"__type__": "update"})
    assert list(thumbs_off(iter([]))) == []  # a refused question: no answer, the thumbs stay
    assert FEEDBACK == ["Like", "Dislike"]


def test_a_refusal_is_said_in_the_status_line_and_changes_nothing_else():
    """A comment sent before a rating marked the comment box "Fehler" and piled up error boxes (a browser
    review): a refusal is now one notice in the status line, the comment stays in its box."""
    comment, status = object(), object()

    def refuse(mid, text, request=None):
        raise UserError("Bitte bewerten Sie zuerst eine Antwort (Daumen hoch oder runter).")

    out = notice_on_refusal(refuse, [comment, status], status)(None, "Quelle fehlt")
    assert out[0] == {"__type__": "update"}  # the typed comment stays
    assert out[1] == r"**Hinweis:** Bitte bewerten Sie zuerst eine Antwort \(Daumen hoch oder runter\).", out[1]
    assert notice_on_refusal(lambda request=None: ("", "gespeichert"), [comment, status], status)() == ("", "gespeichert")

    def denied(request=None):
        raise PermissionDenied("Keine Berechtigung.")

    with pytest.raises(PermissionDenied):  # no or another user: the call still fails
        notice_on_refusal(denied, [comment, status], status)()
    # a name typed by the user is escaped in the notice (the status line renders Markdown)
    def unknown(request=None):
        raise UserError("Unbekannte Sammlung: <b>x</b>")

    assert "<b>" not in notice_on_refusal(unknown, [status], status)()[0]


def _settings(**zone_access):
    from assistant.settings import LLMSettings, ModelProfile, PolicySettings, Settings

    eu = dict(operator="Rechenzentrum Nord GmbH", location="Frankfurt am Main")
    models = {"lokal": ModelProfile(mode="fake", label="Lokales Modell"),
              "extraktiv": ModelProfile(mode="extractive", label="Nur Textstellen (ohne KI-Modell)"),
              "gelb": ModelProfile(mode="fake", label="EU-Modell", zone="yellow", **eu),
              "rot": ModelProfile(mode="fake", label="Großes Modell", zone="red", operator="Anbieter Inc.",
                                  location="USA")}
    policy = PolicySettings(zone_access=zone_access) if zone_access else PolicySettings()
    return Settings(llm=LLMSettings(default="lokal", models=models), policy=policy)


@pytest.mark.parametrize("key, says", [
    ("lokal", "Dokumente jeder Einstufung; personenbezogene Angaben in der Frage."),
    ("extraktiv", "Dokumente jeder Einstufung; personenbezogene Angaben in der Frage."),
    ("gelb", "nur Dokumente der Einstufung „öffentlich“ oder „intern“; personenbezogene Angaben in der Frage "
             "nur nach Ihrer Bestätigung."),
    ("rot", "nur Dokumente der Einstufung „öffentlich“; keine personenbezogenen Angaben in der Frage"),
])
def test_the_model_detail_says_what_its_option_does_not(key, says):
    """The line under the chat's model options repeated the chosen option (zone, name, operator and
    location; a browser review): it now says which documents the model may read and what becomes of
    personal data in a question, and nothing of the option's text."""
    from assistant.model_choice import model_label
    from assistant.policy.zones import zone_label

    settings = _settings()
    profile = settings.llm.models[key]
    detail = model_detail(settings, key)
    assert says in detail, detail
    assert model_label(key, profile) not in detail and profile.label not in detail, detail
    for said in (zone_label(profile.zone), profile.operator, profile.location):
        assert said not in detail, (said, detail)
    assert model_detail(settings, "unbekannt") == model_detail(settings, None) == ""


def test_the_model_detail_follows_the_configured_zone_access():
    settings = _settings(green=["oeffentlich", "intern", "vertraulich"], yellow=["oeffentlich"], red=[])
    assert "nur Dokumente der Einstufung „öffentlich“, „intern“ oder „vertraulich“;" in model_detail(settings, "lokal")
    assert "nur Dokumente der Einstufung „öffentlich“;" in model_detail(settings, "gelb")
    assert "Freigegeben: keine Dokumente;" in model_detail(settings, "rot")


