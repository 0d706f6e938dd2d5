"""The chat tab's pure pieces."""
from __future__ import annotations

import pytest

from ui.chat_tab import empty_chat_text


@pytest.mark.parametrize("examples, shown", [
    ([], None),                                   # none configured: the invitation alone
    (["  "], None),
    (["Was kostet ein Anwohnerparkausweis?"], "*Was kostet ein Anwohnerparkausweis?*"),
    (["A?", "B?", "C?", "D?"], "*A?* · *B?* · *C?*"),  # at most three
    # an admin's text is shown as Markdown to everyone: no HTML, no link, one line
    (["<img src=x onerror=alert(1)> [klick](https://evil.example)\nzweite Zeile"],
     r"*&lt;img src=x onerror=alert\(1\)&gt; \[klick\]\(https\://evil.example\) zweite Zeile*"),
])
def test_the_empty_chat_shows_the_configured_examples(examples, shown):
    text = empty_chat_text(examples)
    assert text.startswith("**Stellen Sie eine Frage zu den Dokumenten der Verwaltung.**")
    if shown is None:
        assert "Zum Beispiel" not in text
    else:
        assert text.endswith("<br>Zum Beispiel: " + shown)
