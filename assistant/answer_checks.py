"""Answer checks: pure functions over (answer, evidence, question) that decide what staff see.

Why a module of its own: every rule here was found by reading real answers, and each one is a
decision with cases (a short answer with a figure, a year from another source, a citation in
place of content) that is best kept as a table of examples in a test, not buried in the chain.
Nothing here does I/O or keeps state; the chain applies the verdicts.

Claims are what a reader takes from an answer and what a wrong answer gets wrong: numbers,
dates, names and negations. An answer is *supported* by its quotes when every claim of it
stands in them (:func:`unsupported_claims`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from assistant.citations import numbers

_MONTHS = {
    "januar": 1, "jan": 1, "jänner": 1, "februar": 2, "feb": 2, "märz": 3, "mär": 3, "maerz": 3, "april": 4, "apr": 4,
    "mai": 5, "juni": 6, "jun": 6, "juli": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9,
    "oktober": 10, "okt": 10, "november": 11, "nov": 11, "dezember": 12, "dez": 12,
}
_DATE_NUM = re.compile(r"(?<!\d)(\d{1,2})\.\s?(\d{1,2})\.(?:\s?(\d{2,4}))?(?!\d)|(?<!\d)(\d{1,2})/(\d{4})(?!\d)")
_DATE_WORD = re.compile(r"(?<!\w)(?:(\d{1,2})\.\s*)?(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b\.?",
                        re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_][\w-]*", re.UNICODE)
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+|\n\s*|[\[(„\"]\s*)$")
NEGATIONS = frozenset({
    "nicht", "kein", "keine", "keinen", "keinem", "keiner", "keines", "nie", "niemals", "nein", "ohne",
    "verboten", "untersagt", "unzulässig", "ausgeschlossen", "weder", "noch nicht",
})
#: words that bring an exception or condition into a rule; a yes/no quote must keep them
EXCEPTIONS = ("ausgenommen", "es sei denn", "außer", "gilt nicht", "gelten nicht", "mit ausnahme", "sofern",
              "soweit", "nur wenn", "nur dann", "abweichend", "befreit")
_FOLD = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "ß": "ss", "-": "", "\u00ad": ""})


@dataclass(frozen=True)
class Claims:
    """What an answer asserts beyond its wording."""

    numbers: frozenset[str]
    dates: frozenset[str]
    names: frozenset[str]
    negated: bool


def dates(text: str) -> set[str]:
    """Dates as ``"d.m"`` / ``"m"`` / ``"m/yyyy"`` keys: "6. Mai", "06.05." and "6.5.2025" are all "6.5"."""
    out: set[str] = set()
    for m in _DATE_NUM.finditer(text):
        if m.group(1):
            day, month = int(m.group(1)), int(m.group(2))
            if 1 <= day <= 31 and 1 <= month <= 12:
                out.add(f"{day}.{month}")
        else:
            month = int(m.group(4))
            if 1 <= month <= 12:
                out.add(f"{month}/{m.group(5)}")
    for m in _DATE_WORD.finditer(text):
        month = _MONTHS[m.group(2).lower()]
        out.add(f"{int(m.group(1))}.{month}" if m.group(1) else f"m{month}")
    return out


def _fold(text: str) -> str:
    return text.lower().translate(_FOLD)


def names(text: str, question: str = "") -> set[str]:
    """Capitalised words that are not the first of a sentence and not in the question: names and the
    nouns a model adds. German capitalises every noun, so this is strict on purpose: an answer written
    from a quote repeats the quote's nouns, and a noun from nowhere is a claim from nowhere."""
    from assistant.evidence import stopwords

    asked = {_fold(w)[:6] for w in _WORD.findall(question)}
    out: set[str] = set()
    for m in _WORD.finditer(text):
        w = m.group(0).strip("-")
        if len(w) < 3 or not w[0].isupper() or w.lower() in stopwords() or w.lower() in NEGATIONS:
            continue
        if _SENTENCE_START.search(text[: m.start()]):
            continue
        if _fold(w)[:6] in asked:
            continue
        out.add(w)
    return out


def negated(text: str) -> bool:
    low = f" {text.lower()} "
    return any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", low) for n in NEGATIONS)


def claims(answer: str, question: str = "") -> Claims:
    body = re.sub(r"\[[\d,; ]+\]", " ", answer)
    return Claims(frozenset(numbers(body)), frozenset(dates(body)), frozenset(names(body, question)), negated(body))


def _name_in(name: str, folded_quotes: str) -> bool:
    """A name stands in the quotes as a word or inside a compound; a plural or case ending
    ("Schulen" for "Schule") is allowed by comparing at most the first six letters beyond four."""
    f = _fold(name)
    return f in folded_quotes or (len(f) >= 6 and f[: max(5, len(f) - 2)] in folded_quotes)


def unsupported_claims(answer: str, quotes: Iterable[str], question: str = "") -> list[str]:
    """The answer's numbers, dates, names and negation that stand in none of its quotes.

    Empty list = the answer is supported. A negation in the answer ("nicht", "kein", "Nein")
    needs a negation in the quotes: a "Nein" built on a quote that says nothing negative is the
    "rule restated as its opposite" error."""
    quote_text = " ".join(quotes)
    c = claims(answer, question)
    missing = sorted(c.numbers - numbers(quote_text))
    have_dates = dates(quote_text)
    months_in_quote = {d.split(".")[-1].split("/")[0].lstrip("m") for d in have_dates}
    for d in sorted(c.dates - have_dates):
        if d.startswith("m") and d[1:] in months_in_quote:  # "im Mai" from "6. Mai"
            continue
        missing.append(d)
    folded = _fold(quote_text)
    missing += sorted(n for n in c.names if not _name_in(n, folded))
    if c.negated and not negated(quote_text):
        missing.append("Verneinung")
    return missing


def supported(answer: str, quotes: Sequence[str], question: str = "") -> bool:
    return bool(quotes) and not unsupported_claims(answer, quotes, question)
