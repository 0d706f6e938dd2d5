"""Ampel policy: the default zone table, passage filtering (fail closed), and the request gate –
including proof with a recording fake model that blocked or filtered data is never sent."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from assistant.policy.ampel import (
    CLASSIFICATIONS,
    DEFAULT_ZONE_ACCESS,
    ZONES,
    PolicyCheck,
    allowed_classifications,
    check_request,
    filter_passages,
    metadata_classification,
)

EXPECTED_DEFAULT = {
    # (classification, zone): visible?
    ("oeffentlich", "green"): True, ("oeffentlich", "yellow"): True, ("oeffentlich", "red"): True,
    ("intern", "green"): True, ("intern", "yellow"): True, ("intern", "red"): False,
    ("vertraulich", "green"): True, ("vertraulich", "yellow"): False, ("vertraulich", "red"): False,
    ("personenbezogen", "green"): True, ("personenbezogen", "yellow"): False, ("personenbezogen", "red"): False,
}


@dataclass(frozen=True)
class Passage:
    text: str
    classification: str | None


def by_attr(p: Passage) -> str | None:
    return p.classification


@pytest.mark.parametrize("classification", CLASSIFICATIONS)
@pytest.mark.parametrize("zone", ZONES)
def test_default_table_every_pair(classification, zone):
    visible = classification in allowed_classifications(zone)
    assert visible is EXPECTED_DEFAULT[(classification, zone)]
    outcome = filter_passages([Passage("x", classification)], zone, by_attr)
    assert (len(outcome.allowed), len(outcome.removed)) == ((1, 0) if visible else (0, 1))


def test_default_table_literal():
    assert DEFAULT_ZONE_ACCESS == {
        "green": ("oeffentlich", "intern", "vertraulich", "personenbezogen"),
        "yellow": ("oeffentlich", "intern"),
        "red": ("oeffentlich",),
    }


@pytest.mark.parametrize("zone", ["blue", "", "GREEN", None])
def test_unknown_zone_raises(zone):
    with pytest.raises(ValueError):
        allowed_classifications(zone)
    with pytest.raises(ValueError):
        filter_passages([], zone, by_attr)
    with pytest.raises(ValueError):
        check_request("Frage", zone)


MIXED = [
    Passage("P1 öffentlich", "oeffentlich"),
    Passage("P2 vertraulich", "vertraulich"),
    Passage("P3 intern", "intern"),
    Passage("P4 personenbezogen", "personenbezogen"),
    Passage("P5 öffentlich", "oeffentlich"),
    Passage("P6 vertraulich", "vertraulich"),
    Passage("P7 intern", "intern"),
]


def test_removed_and_counted_by_class_order_kept():
    out = filter_passages(MIXED, "yellow", by_attr)
    assert [p.text for p in out.allowed] == ["P1 öffentlich", "P3 intern", "P5 öffentlich", "P7 intern"]
    assert [p.text for p in out.removed] == ["P2 vertraulich", "P4 personenbezogen", "P6 vertraulich"]
    assert out.removed_by_class == {"vertraulich": 2, "personenbezogen": 1}
    assert out.message_de.startswith("3 Passagen wurden entfernt, weil das Modell in der Zone Gelb keine als")
    assert "„vertraulich“" in out.message_de and "„personenbezogen“" in out.message_de
    assert out.suggest_green is False


def test_message_for_a_single_class_matches_the_wording():
    out = filter_passages([Passage("a", "intern"), *[Passage(str(i), "vertraulich") for i in range(3)]], "yellow", by_attr)
    assert out.message_de == (
        "3 Passagen wurden entfernt, weil das Modell in der Zone Gelb keine als „vertraulich“ "
        "eingestuften Dokumente sehen darf."
    )


def test_one_passage_singular():
    out = filter_passages([Passage("a", "oeffentlich"), Passage("b", "intern")], "red", by_attr)
    assert out.message_de.startswith("1 Passage wurde entfernt, weil das Modell in der Zone Rot")


def test_nothing_removed_means_no_message():
    out = filter_passages(MIXED, "green", by_attr)
    assert out.allowed == MIXED and out.removed == [] and out.removed_by_class == {}
    assert out.message_de is None and out.suggest_green is False


def test_no_passages_is_not_a_policy_problem():
    out = filter_passages([], "red", by_attr)
    assert (out.allowed, out.removed, out.message_de, out.suggest_green) == ([], [], None, False)
    assert check_request("Wann tagt der Rat?", "red", [], by_attr).action == "allow"


@pytest.mark.parametrize("label", [None, "", "geheim", "VS-NfD", 42])
def test_unknown_or_missing_classification_fails_closed(label):
    passages = [Passage("ok", "oeffentlich"), Passage("unklar", label)]
    for zone in ("yellow", "red"):
        out = filter_passages(passages, zone, by_attr)
        assert [p.text for p in out.allowed] == ["ok"]
        assert out.removed_by_class == {"personenbezogen": 1}
        assert "keine gültige Einstufung" in out.message_de
    # green may see personenbezogen, so the strictest class is still visible there
    assert len(filter_passages(passages, "green", by_attr).allowed) == 2


def test_classification_spelling_is_normalised():
    passages = [Passage("a", " Öffentlich "), Passage("b", "INTERN")]
    assert len(filter_passages(passages, "yellow", by_attr).allowed) == 2


def test_custom_access_table():
    access = {"green": CLASSIFICATIONS, "yellow": ("oeffentlich", "intern", "vertraulich"), "red": ()}
    assert allowed_classifications("yellow", access) == {"oeffentlich", "intern", "vertraulich"}
    out = filter_passages(MIXED, "yellow", by_attr, access)
    assert out.removed_by_class == {"personenbezogen": 1}
    out = filter_passages(MIXED, "red", by_attr, access)
    assert out.allowed == [] and len(out.removed) == len(MIXED)


def test_unknown_label_in_access_table_does_not_widen_access():
    access = {"green": CLASSIFICATIONS, "yellow": ("oeffentlich", "geheim"), "red": ("oeffentlich",)}
    assert allowed_classifications("yellow", access) == {"oeffentlich"}


def test_zone_missing_from_custom_table_raises():
    with pytest.raises(ValueError):
        allowed_classifications("yellow", {"green": CLASSIFICATIONS})


def test_empty_result_suggests_green():
    out = filter_passages([Passage("a", "vertraulich"), Passage("b", "intern")], "red", by_attr)
    assert out.allowed == [] and out.suggest_green is True
    assert "Zone Grün" in out.message_de and "lokale" in out.message_de


def test_no_green_suggestion_when_green_may_not_see_it_either():
    access = {"green": ("oeffentlich", "intern"), "yellow": ("oeffentlich",), "red": ("oeffentlich",)}
    out = filter_passages([Passage("a", "vertraulich")], "yellow", by_attr, access)
    assert out.allowed == [] and out.suggest_green is False
    out = filter_passages([Passage("a", "vertraulich")], "green", by_attr, access)
    assert out.suggest_green is False


def test_default_classify_reads_metadata():
    class Doc:
        def __init__(self, metadata):
            self.metadata = metadata

    assert metadata_classification(Doc({"classification": "intern"})) == "intern"
    assert metadata_classification({"classification": "vertraulich"}) == "vertraulich"
    assert metadata_classification(Doc({})) is None
    assert metadata_classification("plain text") is None
    out = filter_passages([Doc({"classification": "oeffentlich"}), Doc({})], "red")
    assert len(out.allowed) == 1 and out.removed_by_class == {"personenbezogen": 1}


# --------------------------------------------------------------------------- check_request


def test_check_request_allow_without_pii_or_passages():
    check = check_request("Wann tagt der Bauausschuss?", "red")
    assert isinstance(check, PolicyCheck)
    assert (check.action, check.outcome, check.messages_de) == ("allow", None, [])


def test_check_request_combines_pii_and_filtering():
    question = "Was gilt für Herrn Jürgen Becker?"
    assert check_request(question, "green", MIXED, by_attr).action == "allow"
    warn = check_request(question, "yellow", MIXED, by_attr)
    assert warn.action == "warn" and len(warn.messages_de) == 2  # PII warning + removal notice
    block = check_request(question, "red", MIXED, by_attr)
    assert block.action == "block" and block.pii.kinds == ["person_name"]


def test_check_request_blocks_when_nothing_allowed_remains():
    check = check_request("Wie hoch ist das Budget?", "red", [Passage("a", "intern")], by_attr)
    assert check.action == "block"
    assert check.pii.action == "allow" and check.outcome.suggest_green
    assert check.messages_de == [check.outcome.message_de]


def test_check_request_filtering_alone_does_not_block():
    check = check_request("Wie hoch ist das Budget?", "red", MIXED, by_attr)
    assert check.action == "allow" and len(check.outcome.allowed) == 2


# --------------------------------------------------------------------------- nothing leaks to the model


class RecordingFakeModel:
    """Stands in for any LLM: records every prompt string it receives."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def invoke(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return "Antwort"


def answer(question: str, zone: str, passages: list[Passage], model: RecordingFakeModel) -> PolicyCheck:
    """The minimal chain: gate first, then build the prompt from the allowed passages only."""
    check = check_request(question, zone, passages, by_attr)
    if check.action == "block":
        return check
    context = "\n\n".join(p.text for p in check.outcome.allowed)
    model.invoke(f"Quellen:\n{context}\n\nFrage: {question}")
    return check


SECRET = "Vertrauliche Personalakte: Abmahnung wegen Zuspätkommens"


def test_block_on_pii_sends_nothing():
    model = RecordingFakeModel()
    check = answer("Steht Frau Petra Lange, Tel. 0171 2345678, auf der Liste?", "red",
                   [Passage("Öffentliche Liste", "oeffentlich")], model)
    assert check.action == "block"
    assert model.prompts == []


def test_block_on_empty_result_sends_nothing():
    model = RecordingFakeModel()
    check = answer("Was steht in der Akte?", "yellow", [Passage(SECRET, "vertraulich")], model)
    assert check.action == "block" and check.outcome.suggest_green
    assert model.prompts == []


@pytest.mark.parametrize("zone", ["yellow", "red"])
def test_filtered_passage_text_never_reaches_the_model(zone):
    model = RecordingFakeModel()
    passages = [
        Passage("Die Kantine öffnet um 11:30 Uhr.", "oeffentlich"),
        Passage(SECRET, "vertraulich"),
        Passage("Unklare Herkunft: Gesundheitsdaten eines Bürgers", None),
    ]
    check = answer("Wann öffnet die Kantine?", zone, passages, model)
    assert check.action == "allow"
    assert len(model.prompts) == 1
    sent = model.prompts[0]
    assert "Die Kantine öffnet um 11:30 Uhr." in sent
    assert SECRET not in sent and "Gesundheitsdaten" not in sent


def test_green_sends_everything():
    model = RecordingFakeModel()
    answer("Was steht in der Akte?", "green", [Passage(SECRET, "vertraulich")], model)
    assert len(model.prompts) == 1 and SECRET in model.prompts[0]
