"""The one rule for what the portal takes as a question: the chat, the trainer's views (Blick unter
die Haube, Vergleich, Übungen), the Ampel preview and the command line.

Why here and not in each door: the chat capped questions at 2,000 characters, the trainer's views
did not, and an attacker's probe kept the shared answer queue busy with 1.9 MB questions (a staff
answer went from 0.3 s to 36 s) that were also shown on every participant's projector view.
"""
from __future__ import annotations

MAX_QUESTION_CHARS = 2000


def checked_question(question: str | None) -> str:
    """The question without surrounding space; ValueError (German first) if empty or too long."""
    text = (question or "").strip()
    if not text:
        raise ValueError("Leere Frage / empty question")
    if len(text) > MAX_QUESTION_CHARS:
        raise ValueError(f"Die Frage ist zu lang (höchstens {MAX_QUESTION_CHARS} Zeichen). / question too long")
    return text
