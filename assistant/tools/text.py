"""Sentences and words of plain-language text (shared by the rule check and the revisions).

Sentences come from the one German splitter, :func:`corpus.text.split_sentences`
(abbreviations such as "z. B." and ordinals such as "1. März" do not end a sentence). On top,
a line break always ends a sentence and list bullets are dropped, because Leichte Sprache is
written one statement per line and each line must count on its own.
"""
from __future__ import annotations

import re

from corpus.text import split_sentences as split_german

_WORD = re.compile(r"[A-Za-zÄÖÜäöüß]+(?:-[A-Za-zÄÖÜäöüß]+)*")
_BULLET = re.compile(r"^\s*(?:[-*•–]|\d+[.)])\s+")


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` in order, line by line (bullets and Markdown heading marks stripped)."""
    out: list[str] = []
    for line in (text or "").splitlines():
        line = _BULLET.sub("", line).lstrip("#").strip()
        if line:
            out.extend(split_german(line))
    return [s for s in out if words(s)]


def words(sentence: str) -> list[str]:
    """Words (hyphenated compounds count once: "Bürger-Büro" is one word)."""
    return _WORD.findall(sentence or "")
