"""The chat tab's pure pieces."""
from __future__ import annotations

import pytest

from ui.chat_tab import chat_examples, example_text


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
