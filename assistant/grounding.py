"""Question terms that the cited documents never mention: a warning sign of a near miss.

A small model answers a near miss with the figure of a similar item: the Ruhezeit of "the
Stadt Göppingen" from Bad Boll's Friedhofssatzung, the fee for a Reisepass from a fee table
that lists other papers. What such answers share is that a name or noun of the
question occurs nowhere in the document they cite. Checking the *whole* document (not the
passage, which often names its subject only on another page) keeps
most correct answers clear of the warning; measured on both eval sets (docs/results.md) it marks
5 of 8 answered near misses but also 6 of 50 correct answers: enough to tell the reader what to
check, not to refuse.

German capitalises nouns, so capitalised words after the first one are the terms; words that
name the *kind* of answer asked for ("Frist", "Prozent", "Behörde") are not about the subject
and are left out. A term counts as mentioned when its stem stands anywhere in the document,
also inside a compound ("Urnengräber" in "Urnengrabstätten").
"""
from __future__ import annotations

import re
from typing import Iterable

from corpus.text import stemmer, stopwords

_TERM = re.compile(r"[^\W\d_][\w-]*", re.UNICODE)
_FOLD = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "ß": "ss", "-": None, "\u00ad": None})
_TRANSLIT = re.compile(r"(?<=[aou])e")  # "Goeppingen" in a file name is "Göppingen"

#: nouns that ask for the kind of answer, not for what it is about
ANSWER_TYPE_NOUNS = frozenset({
    "adresse", "anzahl", "behörde", "betrag", "datum", "dauer", "euro", "frist", "gemeinde", "höhe", "jahr",
    "kosten", "leute", "menschen", "name", "nenne", "personen", "prozent", "stadt", "summe", "tag",
    "telefonnummer", "termin", "uhrzeit", "zahl", "zeit",
})


def _fold(text: str) -> str:
    """Lower case without umlauts, hyphens or the "oe" spelling of "ö", so that "Göppingen",
    "goeppingen" and "GÖPPINGEN" compare equal. Applied to text and term alike, it can only make
    a term count as mentioned, never flag one that stands in the text."""
    return _TRANSLIT.sub("", text.lower()).translate(_FOLD)


def question_terms(question: str) -> list[str]:
    """The capitalised content words of a German question, in order, without duplicates."""
    words = _TERM.findall(question)
    out: list[str] = []
    for i, w in enumerate(words):
        w, low = w.strip("-"), w.strip("-").lower()
        if i == 0 or not w[0].isupper() or len(w) < 3:
            continue
        if low in stopwords() or low in ANSWER_TYPE_NOUNS or w in out:
            continue
        out.append(w)
    return out


def _mentioned(term: str, folded_text: str) -> bool:
    """Every part of a hyphenated term ("Abwasser-Datensatz") must stand in the text, as a word
    or inside a compound; parts shorter than three letters ("E-Ladesäulen") say nothing alone."""
    parts = [p for p in term.split("-") if len(p) >= 3] or [term.replace("-", "")]
    stems = stemmer().stemWords([p.lower() for p in parts])
    return all(_fold(stem) in folded_text or _fold(part) in folded_text for part, stem in zip(parts, stems))


def unmentioned_terms(question: str, documents: Iterable[str]) -> list[str]:
    """The question's terms that none of ``documents`` (whole texts, titles, file names) mentions."""
    terms = question_terms(question)
    if not terms:
        return []
    folded = "\n".join(_fold(d) for d in documents)
    return [t for t in terms if not _mentioned(t, folded)]


_WARNING_TAIL = " im zitierten Dokument nicht vor: bitte prüfen, ob die Antwort wirklich zur Frage passt."


def warning(terms: Iterable[str]) -> str:
    """The German notice shown under the answer."""
    terms = list(terms)
    quoted = ", ".join(f"„{t}“" for t in terms)
    verb = "kommt" if len(terms) == 1 else "kommen"
    return f"{quoted} {verb}{_WARNING_TAIL}"


def is_warning(notice: str) -> bool:
    """Whether a stored notice is this warning (chats keep notices as plain text), so the portal
    can mark it as something to check rather than as information."""
    return notice.endswith(_WARNING_TAIL)
