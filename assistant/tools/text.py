"""Sentences and words of German administrative text (shared by the rule check and revisions).

A sentence ends at ``.``, ``!`` or ``?`` followed by white space and a capital letter, a digit
or a quote – except after common abbreviations ("z. B.", "Nr.", "Abs.") and ordinal numbers
("am 1. März"). A line break always ends a sentence, so list items count one by one, which
is how Leichte Sprache is written (one statement per line).
"""
from __future__ import annotations

import re

ABBREVIATIONS = {
    "abs", "art", "bzw", "ca", "d", "dr", "etc", "evtl", "ggf", "gem", "hr", "inkl", "nr", "prof", "s", "sog",
    "str", "u", "usw", "vgl", "z", "zb", "zzgl", "bspw", "geb", "tel", "az", "kap", "lit", "ziff", "b", "a",
    "o", "v", "i", "e", "h", "mio", "mrd", "jan", "feb", "aug", "sept", "okt", "nov", "dez", "st", "buchst",
}
_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ0-9„\"(])")
_WORD = re.compile(r"[A-Za-zÄÖÜäöüß]+(?:-[A-Za-zÄÖÜäöüß]+)*")
_ORDINAL_NEXT = re.compile(
    r"(Januar|Jänner|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember|Jahrhundert|"
    r"Klasse|Stock|Obergeschoss|Platz|Mal|Tag|Woche|Monat|Quartal|Abschnitt|Kapitel|Änderung|Sitzung|Lesung)\b")
_BULLET = re.compile(r"^\s*(?:[-*•–]|\d+[.)])\s+")


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` in order (bullets stripped, empty lines dropped)."""
    out: list[str] = []
    for line in (text or "").splitlines():
        line = _BULLET.sub("", line).strip()
        if not line or re.fullmatch(r"#+.*", line) and len(line.split()) <= 1:
            continue
        line = line.lstrip("#").strip()
        pieces = _BOUNDARY.split(line)
        current = ""
        for piece in pieces:
            if current and not _ends_sentence(current, piece):
                current = f"{current} {piece}"
            else:
                if current:
                    out.append(current)
                current = piece
        if current:
            out.append(current)
    return [s for s in out if words(s)]


def _ends_sentence(text: str, following: str) -> bool:
    """False when the final period belongs to an abbreviation or an ordinal number."""
    if not text.endswith("."):
        return True
    last = text.rstrip(".").split()[-1] if text.rstrip(".").split() else ""
    token = last.lower().strip("(„\"")
    if re.fullmatch(r"\d{1,2}", token):  # "am 1. März", "der 3. Abschnitt" – but "auf Seite 12. Danach …"
        return not _ORDINAL_NEXT.match(following)
    return token.replace(".", "") not in ABBREVIATIONS


def words(sentence: str) -> list[str]:
    """Words (hyphenated compounds count once: "Bürger-Büro" is one word)."""
    return _WORD.findall(sentence or "")
