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
from corpus.text import split_sentences

_MONTHS = {
    "januar": 1, "jan": 1, "jänner": 1, "februar": 2, "feb": 2, "märz": 3, "mär": 3, "maerz": 3, "april": 4, "apr": 4,
    "mai": 5, "juni": 6, "jun": 6, "juli": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9,
    "oktober": 10, "okt": 10, "november": 11, "nov": 11, "dezember": 12, "dez": 12,
}
_DATE_NUM = re.compile(r"(?<!\d)(\d{1,2})\.\s?(\d{1,2})\.(?:\s?(\d{2,4}))?(?!\d)|(?<!\d)(\d{1,2})/(\d{4})(?!\d)")
_DATE_WORD = re.compile(r"(?<!\w)(?:(\d{1,2})\.\s*)?(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b\.?",
                        re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_][\w-]*", re.UNICODE)
# An opening bracket starts a phrase ("(Stand 2024)"); a quotation mark does not: a model puts the
# names it makes up in quotes ("mit dem Online-Tool „Digital-Matrix“" where the slide says GroupMap).
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+|\n\s*|[\[(]\s*)$")
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
    from corpus.text import stopwords

    asked = _asked(question)
    out: set[str] = set()
    for m in _WORD.finditer(text):
        w = m.group(0).strip("-")
        if len(w) < 3 or not w[0].isupper() or w.lower() in stopwords() or w.lower() in NEGATIONS \
                or w.lower().rstrip(".") in _MONTHS:  # dates are checked as dates
            continue
        if _SENTENCE_START.search(text[: m.start()]):
            continue
        if _known(w, asked):  # "Digital-Matrix" is not the question's "digital"
            continue
        out.add(w)
    return out


def _asked(question: str) -> set[str]:
    """The question's words and the parts of its compounds, cut to six letters (case endings)."""
    return {_fold(p)[:6] for w in _WORD.findall(question) for p in (w, *w.split("-")) if p}


def _known(name: str, asked: set[str], folded_quotes: str = "") -> bool:
    """The name stands in the quotes, or every part of it was asked or stands there: "Online-Matrix"
    with "online" asked and "Matrix" quoted is known, "Digital-Matrix" with only "digital" asked is not."""
    if folded_quotes and _name_in(name, folded_quotes):
        return True
    return all(_fold(p)[:6] in asked or (folded_quotes and _name_in(p, folded_quotes))
               for p in name.split("-") if p)


def negated(text: str) -> bool:
    low = f" {text.lower()} "
    return any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", low) for n in NEGATIONS)


def claims(answer: str, question: str = "") -> Claims:
    body = re.sub(r"\[[\d,; ]+\]", " ", answer)
    body = re.sub(r"^\s*Laut den Dokumenten:\s*", "", body)  # the chain's own framing of an extractive answer
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
    asked = _asked(question)
    missing += sorted(n for n in c.names if not _known(n, asked, folded))
    if c.negated and not negated(quote_text):
        missing.append("Verneinung")
    return missing


def supported(answer: str, quotes: Sequence[str], question: str = "") -> bool:
    return bool(quotes) and not unsupported_claims(answer, quotes, question)


# ---------------------------------------------------------------- checks of the model's answer
# a run of source numbers, with the commas between them: "[1], [2], [3]" is one mark, so removing it
# leaves no ",,," behind
CITATION_MARKS = re.compile(r"\s*\[[\d,; ]+\](?:\s*[,;]\s*\[[\d,; ]+\])*")
_YEAR = re.compile(r"^(19|20)\d\d$")
# "Die Telefonnummer des Personalrats ist [2]." – in the answer's first sentence a citation stands
# where the content should be (later sentences such as "Die Quelle ist [2]." are fine)
_DANGLING = re.compile(r"(?:\b(?:ist|sind|lautet|lauten|beträgt|betragen|heißt|heißen|war|waren)|:)\s*\[\d+\]",
                       re.IGNORECASE)

NOTICE_NO_ANSWER = "Das Modell fand keine Antwort; hier die passendste Textstelle."
NOTICE_DANGLING = "Die Antwort des Modells nannte statt eines Inhalts nur eine Quellennummer und wurde verworfen."
NOTICE_SOURCE_BLOCK = "Das Modell gab einen Quellenblock wieder statt zu antworten; die Antwort wurde verworfen."
NOTICE_UNSOURCED = "Die Antwort des Modells war nicht durch Quellen belegt und wurde verworfen."


@dataclass(frozen=True)
class Source:
    """One numbered source as the model saw it: its number, its label and its (condensed) text."""

    n: int
    text: str
    label: str = ""


@dataclass(frozen=True)
class Verdict:
    """What to do with the model's answer.

    ``action``: ``"answer"`` (show ``answer``, citing ``cited``), ``"fallback"`` (the model gave
    nothing usable: answer from the evidence if retrieval is confident, else refuse) or
    ``"refuse"`` (refuse with the closest passages, no fallback). ``notices`` go under the answer.
    """

    action: str
    answer: str = ""
    cited: tuple[int, ...] = ()
    notices: tuple[str, ...] = ()


def dangling(answer: str) -> bool:
    """The first sentence puts a citation where its content should be ("… ist [2].")."""
    first = next(iter(split_sentences(answer.strip().split("\n", 1)[0])), "")
    return bool(_DANGLING.search(first))


def cited_text(sources: Sequence[Source], cited: Iterable[int]) -> str:
    cited = set(cited)
    return " ".join(s.text for s in sources if s.n in cited)


_YES_NO_ANSWER = re.compile(r"^(ja|nein)\b[\s.,;:!–-]*$", re.IGNORECASE)


def substantive(answer: str, cited_source_text: str, yes_no: bool = False) -> bool:
    """An answer says something: three words or more, a short answer ("41 % [1]") whose numbers
    all stand in the cited source, or – to a yes/no question – a cited "Ja" or "Nein" (the chain
    then lets the quote that decides it answer in its place, :func:`assistant.quotes.restates_question`). A bare "[2] [3]" says nothing."""
    words = [w for w in CITATION_MARKS.sub(" ", answer).split() if re.search(r"\w", w)]  # "Nein , , ." is one word
    if len(words) >= 3:
        return True
    if yes_no and CITATION_MARKS.search(answer) and _YES_NO_ANSWER.match(" ".join(words)):
        return True
    found = numbers(" ".join(words))
    return bool(words) and bool(found) and found <= numbers(cited_source_text)


def unusable(answer: str, sources: Sequence[Source], cited: Sequence[int], yes_no: bool = False) -> str | None:
    """Why the model's answer says nothing usable (the German notice), or None when it does."""
    from assistant.citations import is_refusal

    if not substantive(answer, cited_text(sources, cited), yes_no) or (is_refusal(answer) and not cited):
        return NOTICE_NO_ANSWER
    if CITATION_MARKS.sub("", answer).strip().endswith("?"):  # the model repeated the question, or asked one
        return NOTICE_NO_ANSWER
    if dangling(answer):
        return NOTICE_DANGLING
    if "<<<" in answer or ">>>" in answer:  # the model copied a source block of the prompt
        return NOTICE_SOURCE_BLOCK
    return None


def invented_numbers(answer: str, sources: Sequence[Source], cited: Sequence[int], questions: Sequence[str]) -> set[str]:
    """Numbers in the answer that stand neither in its cited sources nor in the question. A year
    may also come from another source given to the model ("am 6. Mai 2025": the slide says
    "6. Mai", the programme says 2025): a date's year is context, not a claim of its own."""
    all_text = " ".join(f"{s.label} {s.text}" for s in sources)
    missing = numbers(answer) - numbers(cited_text(sources, cited) + " " + " ".join(questions))
    return {n for n in missing if not (_YEAR.match(n) and n in numbers(all_text))}


#: Share of the question's content words a source must hold before an answer is re-cited to it (the
#: model wrote the right words but the wrong source number). Without it, re-citing turned near misses
#: into answers (both eval sets; docs/results.md, "Re-citation").
RECITE_COVERAGE = 0.5


def number_holder(answer: str, sources: Sequence[Source], questions: Sequence[str], q_stems: Sequence[str]) -> int | None:
    """The one given source that holds every number of the answer, when the model cited another.

    A small model often copies the right figure but the wrong source number ("7.00 bis 19.00 Uhr [3]"
    when [1] says so). Re-citing is safe only when exactly one source holds all the numbers and that
    source also covers at least half the question's content words; measured on both eval sets, a
    looser rule (no coverage condition) turned near misses into answers."""
    from assistant.evidence import coverage

    wanted = numbers(answer) - numbers(" ".join(questions))
    if not wanted:
        return None
    holders = [s for s in sources if wanted <= numbers(s.text)]
    if len(holders) != 1 or coverage(q_stems, holders[0].text) < RECITE_COVERAGE:
        return None
    return holders[0].n


def too_doubtful(refusal_probability: float | None, limit: float) -> bool:
    """The model itself was at least ``limit`` likely to refuse (0 = rule off; unknown = keep)."""
    return bool(limit) and refusal_probability is not None and refusal_probability >= limit


def check_answer(raw: str, sources: Sequence[Source], questions: Sequence[str], q_stems: Sequence[str], *,
                 refusal_probability: float | None = None, refusal_limit: float = 0.0, yes_no: bool = False) -> Verdict:
    """The model's raw answer → a :class:`Verdict`: valid citations, no refusal, numbers that stand
    in the cited sources (or re-cited to the one source that holds them), not too doubtful.
    ``yes_no``: the question is a yes/no question, so a cited "Nein [2]." is an answer."""
    from assistant.citations import attribute, parse_citations, strip_invalid_citations, strip_refusal_tail
    from corpus.text import content_stems

    valid = {s.n for s in sources}
    answer = strip_invalid_citations(raw, valid)
    answer = strip_refusal_tail(answer)  # "Die Frist ist … [1]. Dazu finde ich … keine Informationen."
    cited = [n for n in parse_citations(answer) if n in valid]
    notice = unusable(answer, sources, cited, yes_no)
    if notice:
        return Verdict("fallback", notices=(notice,))
    if not cited:
        n, share = attribute(answer, [s.text for s in sources], content_stems)
        if n is None or share < 0.5:
            return Verdict("fallback", notices=(NOTICE_UNSOURCED,))
        n = sorted(valid)[n - 1]
        answer, cited = f"{answer} [{n}]", [n]
    notices: list[str] = []
    invented = sorted(invented_numbers(answer, sources, cited, questions))
    holder = number_holder(answer, sources, questions, q_stems) if invented else None
    if holder is not None:
        answer, cited, invented = CITATION_MARKS.sub(f" [{holder}]", answer), [holder], []
        notices.append(f"Die Quellenangabe wurde auf Quelle [{holder}] berichtigt: nur dort stehen die Zahlen der Antwort.")
    if invented:
        return Verdict("fallback", notices=(f"Die Antwort des Modells enthielt Zahlen, die in den Quellen nicht stehen "
                                            f"({', '.join(invented)}), und wurde verworfen.",))
    if too_doubtful(refusal_probability, refusal_limit):
        # the model nearly refused: a near miss, not a case for the extractive fallback
        return Verdict("refuse", notices=(f"Das Modell war unsicher (Ablehnung zu {round(refusal_probability * 100)} % "
                                          "wahrscheinlich); die Antwort wurde nicht übernommen.",))
    return Verdict("answer", answer, tuple(cited), tuple(notices))


def retrieval_confident(evidence, q_stems: Sequence[str]) -> bool:
    """Retrieval is confident when a passage contains every content word of the question
    (numbers and names included, which is what near-miss questions lack), or when both
    retrievers agree on a top passage that covers most of it. ``evidence``: ``Evidence`` items."""
    if len(set(q_stems)) < 2 or not evidence:
        return False
    if any(ev.coverage >= 0.999 and (ev.hit.bm25_rank or 99) <= 5 for ev in evidence):
        return True
    top = evidence[0]
    agree = (top.hit.bm25_rank or 99) <= 3 and (top.hit.dense_rank or 99) <= 3
    return agree and top.coverage >= 0.75


def shows_answer(evidence, q_stems: Sequence[str]) -> bool:
    """A passage shown to the reader holds every content word of the question (at least two): a
    refusal above such a passage ("Dazu finde ich … keine Informationen", the figure right below)
    is no refusal, the passage is the answer. A passage is shown under its document's title and
    its section ("Programm der Regionalkonferenz …, Seite 1"), so their words count as shown.
    ``evidence``: ``Evidence`` items."""
    from assistant.evidence import coverage

    if len(set(q_stems)) < 2:
        return False
    return any(ev.coverage >= 0.999
               or coverage(q_stems, f"{ev.hit.chunk.title}\n{ev.hit.chunk.section or ''}\n{ev.text}") >= 0.999
               for ev in evidence)
