"""The answer prompt: one system prompt for every question, the kind of question said before the answer."""
from __future__ import annotations

import pytest

from assistant.evidence import Evidence
from assistant.prompting import TWO_PARTS_INSTRUCTION, YES_NO_INSTRUCTION, answer_messages
from corpus.models import Chunk, Hit


def _evidence() -> list[Evidence]:
    c = Chunk(chunk_id="p:1", doc_id="p", ordinal=0, text="Grillen ist verboten, außer auf den Grillplätzen.",
              source="/d/park.pdf", title="Parkordnung", page=2, section=None, collection="demo")
    return [Evidence(1, Hit(chunk=c, score=0.03), c.text, 12, 1.0)]


@pytest.mark.parametrize("question, yes_no, two_parts", [
    ("Darf man im Stadtpark grillen?", True, False),
    ("Wo darf man im Stadtpark grillen?", False, False),
    ("Wo darf man im Stadtpark grillen, und was kostet ein Grillplatz?", False, True),
    ("Darf man ein Holzkreuz aufstellen, und wie groß darf die Tafel sein?", True, True),
])
def test_the_kind_of_question_is_said_before_the_answer_and_the_system_prompt_stays_the_same(question, yes_no, two_parts):
    system, human = answer_messages(question, _evidence())
    reference_system, _ = answer_messages("Was kostet ein Anwohnerparkausweis?", _evidence())
    assert system.content == reference_system.content  # llama.cpp keeps it cached across questions
    assert "Ja oder Nein" not in system.content
    assert (YES_NO_INSTRUCTION in human.content) is yes_no
    assert (TWO_PARTS_INSTRUCTION in human.content) is two_parts
    assert human.content.endswith("Antwort mit Quellennummer:")
    assert human.content.index("Grillplätzen") < human.content.rindex(f"Frage: {question}")
