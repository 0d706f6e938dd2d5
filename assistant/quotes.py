"""Quotes: the verbatim sentences an answer rests on, chosen by a scorer, with their context kept.

Why: a small model picks the wrong figure from a table or drops the exception of a rule. The
chain therefore shows, under every answer, the exact sentence(s) of the source it rests on, and
the model's own sentence is kept only when each of its numbers, dates, names and negations
stands in that quote (:func:`assistant.answer_checks.unsupported_claims`); otherwise the quote
alone is the answer.

Which sentence: the one covering most of the question's content words (stemmed, also inside
compounds), with the passage's title and section as context, preferring a sentence with a figure
when the question asks for one. Its neighbours ride along where they change its meaning: the
header of a table row, and a following sentence that brings an exception ("außer", "es sei denn",
"gilt nicht", …). Pure functions over the evidence the model was given.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from assistant.answer_checks import CITATION_MARKS, EXCEPTIONS, claims, unsupported_claims
from assistant.evidence import Evidence, mentioned
from corpus.text import bare_heading, content_stems, page_furniture, split_sentences

_GAP = re.compile(r"\s*…\s*")
# what a question asks for: an amount (a count, a price, a duration) or a point in time
_ASKS_AMOUNT = re.compile(r"\b(wie viele?|wieviel|wie hoch|wie lange?|wie schwer|wie groß|was kostet|kosten|gebühr|"
                          r"betrag|frist|anteil|prozent|anzahl|zahl)\b", re.IGNORECASE)
# a date, not any "Wann …?": "am Nachmittag" or "sobald der Rat zustimmt" answer that too
_ASKS_TIME = re.compile(r"\b(bis wann|seit wann|ab wann|datum|an welchem tag|in welchem jahr|in welchem monat)\b", re.IGNORECASE)
_YES_NO = re.compile(r"^(darf|dürfen|muss|müssen|kann|können|ist|sind|gibt|gilt|gelten|zählt|zählen|zeigt|zeigen|wird|"
                     r"werden|hat|haben|soll|sollen|nimmt|lehnt|braucht|brauchen|bekommt|bekommen|besteht|steht|"
                     r"stehen|darf man|fällt|fallen)\b", re.IGNORECASE)
_TABLE_ROW = re.compile(r"\|")
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Quote:
    """Verbatim text of one source (``n`` as numbered in the prompt) with where it stands."""

    n: int
    text: str
    source: str
    title: str
    page: int | None
    score: float
    recited: bool = False  # backs a claim the model had cited to another source


_AFTER_COLON = re.compile(r"(?<=:)\s+")


def question_proper(question: str) -> str:
    """Staff often say first what they are doing ("Wir richten einen Wettbewerb aus: Darf die Jury
    …?"), so the question proper is the last sentence, or its part after a colon."""
    last = (split_sentences(question.strip()) or [""])[-1]
    return _AFTER_COLON.split(last)[-1]


def is_yes_no(question: str) -> bool:
    """A German yes/no question starts with its verb ("Darf man …", "Muss der Rat …")."""
    return bool(_YES_NO.match(question_proper(question)))


_VERDICT = re.compile(r"^\s*(?:ja|nein|doch)\b[\s,.:;!–-]*", re.IGNORECASE)


def restates_question(sentence: str, question: str) -> bool:
    """A yes/no verdict that adds nothing but the question's own words: "Ja, die Jury darf überwiegend
    aus unseren eigenen Leuten bestehen [4]." or a bare "Nein [1].".

    Why: the small model's verdict is a guess that its quote often contradicts. On the frozen blind
    set (session 39, replayed once after the rule was chosen on the tuning sets) 5 of 9 such verdicts
    were wrong, each above a quote that said otherwise: "Ja" for "Gibt bei einem Patt … die Stimme
    des Bürgermeisters den Ausschlag?" (docs/results.md).
    The claim check cannot catch that, since a restated question holds no figure or name to test,
    so the chain lets the deciding quote answer alone. A verdict that brings words of its own
    ("Nein, nur auf den ausgewiesenen Grillplätzen.") is a claim and is checked as one."""
    m = _VERDICT.match(sentence)
    if not m:
        return False
    rest = CITATION_MARKS.sub(" ", sentence[m.end():])
    return set(content_stems(rest)) <= set(content_stems(question))


# a second question joined on ("…, und wie viele …", "… und wann ist Schluss?")
_SECOND_ASK = re.compile(
    r"\b(?:und|sowie)\s+(?:(?:ab|bis|seit|unter|auf|in|mit|an|für|von|bei|um|aus|zu|nach)\s+)?"
    r"(?:wie|was|wer|wen|wem|wessen|wann|wo|woher|wohin|wozu|wofür|womit|worauf|woran|wodurch|warum|weshalb|"
    r"welche[rsmn]?)\b", re.IGNORECASE)


def asked_parts(question: str) -> int:
    """How many things a question asks. "Was kostet der Tracker, und wie viele Knoten hat die Box?"
    asks two, which one sentence rarely answers, so each part gets a sentence of its own; "Wann und
    wo findet … statt?" is one ask (the second question word follows the first directly)."""
    m = _SECOND_ASK.search(question)
    return 2 if m and len(question[: m.start()].split()) >= 3 else 1


# "Welche Schritte …?", "Was sind die Aufgaben …?", "Nennen Sie …": the answer is a list, which a
# small model often writes as one sentence per item (a table's rows)
_LIST = re.compile(r"^(?:welche|was sind|wer sind|was gehört|was zählt|nenne|nennen sie)\b", re.IGNORECASE)
#: Most sentences kept for a list question: the first and three more items.
LIST_SENTENCES = 4


def asks_list(question: str) -> bool:
    """A question whose answer may be several items ("Welche Prozessschritte fallen … an?")."""
    proper = question_proper(question)
    return bool(_LIST.match(proper)) and not _YES_NO.match(proper)


# paragraph and list marks ("(1)", "§ 12", "3.4 " at a line's start, "a)") are no figures
_MARKER = re.compile(r"(?:^|(?<=\s))(?:\(\d+\w?\)|§+\s*\d+\w*|\d+\w?\))|^\s*\d+(?:\.\d+)*\.?\s", re.MULTILINE)
_NUMBER_WORD = (r"zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn|elf|zwölf|zwanzig|dreißig|vierzig|fünfzig|hundert|"
                r"tausend|halbe[nrs]?|doppelte[nr]?|einmal|zweimal|dreimal|jährlich|monatlich|wöchentlich|täglich")
_AMOUNT = re.compile(rf"(?<![\w.])\d|\b({_NUMBER_WORD})\b", re.IGNORECASE)
_YEAR = re.compile(r"(?<![\w.])(?:19|20)\d\d(?![\w.])")
_TIME = re.compile(rf"\d|\b(januar|februar|märz|april|mai|juni|juli|august|september|oktober|november|dezember|"
                   rf"montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|frühjahr|sommer|herbst|winter|"
                   rf"{_NUMBER_WORD})\b", re.IGNORECASE)
# a span of time without a figure ("innerhalb einer Woche", "einen Monat vorher", "wenige Tage") or a
# deadline without one ("unverzüglich"): answers "Bis wann …?" and "Wie lange …?" as well as a date
_DURATION = re.compile(r"\b(?:ein|eine|einer|einem|einen|eines|halbe[nrs]?|wenige[nr]?|mehrere[nr]?|einige[nr]?)\s+"
                       r"(?:tag|tage|tagen|tages|woche|wochen|monat|monate|monaten|monats|jahr|jahre|jahren|jahres|"
                       r"quartal|quartals|halbjahr|halbjahres|stunde|stunden)\b|\b(?:unverzüglich|umgehend|sofort)\b",
                       re.IGNORECASE)
_ASKS_DURATION = re.compile(r"\b(wie lange?|frist)\b", re.IGNORECASE)
_WHEN = re.compile(r"\bwann\b", re.IGNORECASE)
#: what each kind of question needs, as a notice says it
ASKED_KINDS = {"amount": "eine Zahl", "time": "eine Zeitangabe"}


def asked_kind(question: str) -> str | None:
    """"amount" ("Wie viele …?", "Was kostet …?", "Wie lange …?"), "time" ("Seit wann …?", "An welchem
    Tag …?") or None."""
    if _ASKS_AMOUNT.search(question):
        return "amount"
    if _ASKS_TIME.search(question):
        return "time"
    return None


def asks_figure(question: str) -> bool:
    """A figure would likely answer it (quote ranking prefers a sentence with a digit): an amount, a
    date, or any "Wann …?"."""
    return asked_kind(question) is not None or bool(_WHEN.search(question))


def holds_asked_kind(question: str, text: str) -> bool:
    """Whether ``text`` holds the kind of thing the question asks for: an amount needs a figure or a
    number word that is not a paragraph mark ("(1)", "§ 3") or a year; a date a figure, a month, a
    weekday, a season or a span of time ("innerhalb einer Woche", "unverzüglich"), which also answers
    "Wie lange …?" and a "Frist". Other questions: any text. A quote without it cannot be the answer, however
    many of the question's words it shares ("Wie viele Stellen …?" over "(1) Bund und Länder stellen
    … bereit")."""
    kind = asked_kind(question)
    body = _MARKER.sub(" ", text)
    if kind == "amount":
        return bool(_AMOUNT.search(_YEAR.sub(" ", body))) or bool(_ASKS_DURATION.search(question) and _DURATION.search(body))
    if kind == "time":
        return bool(_TIME.search(body) or _DURATION.search(body))
    return True


def units(text: str) -> list[str]:
    """Sentences of an evidence text: lines, gaps ("…") and sentence ends split it; a page's running
    footer is none (:func:`corpus.text.page_furniture`)."""
    out: list[str] = []
    for line in text.split("\n"):
        for part in _GAP.split(line):
            part = part.strip()
            if part:
                out.extend(s.strip() for s in split_sentences(part) if s.strip() and not page_furniture(s))
    return out


def _with_context(parts: list[str], i: int) -> str:
    """The sentence with the neighbours that change its meaning: a table row's header, an exception.
    The header stays a line of its own, as in the table: joined by a space, "Leistung | Gebühr
    Reisepass | 70,00 Euro" read as one row of four cells (a browser review)."""
    picked = parts[i]
    if _TABLE_ROW.search(parts[i]):
        # the nearest header above the row (a passage may hold two tables), within the rows of its table
        header = None
        for p in reversed(parts[:i]):
            if not _TABLE_ROW.search(p):
                break
            if not _DIGIT.search(p):
                header = p
                break
        if header and header != parts[i]:
            picked = f"{header}\n{picked}"
    if i + 1 < len(parts) and any(marker in parts[i + 1].lower() for marker in EXCEPTIONS):
        picked = f"{picked} {parts[i + 1]}"
    return picked


def rank_sentences(question: str, evidence: Sequence[Evidence], focus: Sequence[str] = ()) -> list[Quote]:
    """Every sentence of the evidence as a candidate quote, best first. A question the document asks
    itself (an FAQ) is no candidate; the sentence after it matches as well as it did. ``focus``: the
    words a follow-up asks anew; a sentence that has them goes before one that only shares the topic
    (the previous answer's sentence was quoted again)."""
    q_stems = set(content_stems(question))
    focus_stems = set(focus)
    figure = asks_figure(question)
    out: list[Quote] = []
    for ev in evidence:
        c = ev.hit.chunk
        context = mentioned(q_stems, f"{c.title} {c.section or ''}")
        parts = units(ev.text)
        asked = 0.0  # a question in the document (an FAQ's heading) is answered by what follows it
        titled: str | None = None  # a bare heading just above
        heads = _headings(ev.text, parts)
        for i, sent in enumerate(parts):
            if sent.rstrip("\"'“”»«").endswith("?"):  # never the quote: it asks, and echoes the question's words
                asked, titled = mentioned(q_stems, sent), None
                continue
            if not _has_text(sent):  # a rule under a heading ("====="): neither text nor a break
                continue
            if heads[i]:  # never the quote: it names the line right under it (quoted with it), else nothing shown
                under = _next_to(ev.text, sent, next((p for p in parts[i + 1:] if _has_text(p)), ""))
                asked, titled = (HEADING_WEIGHT * mentioned(q_stems, sent), sent) if under else (0.0, None)
                continue
            heading, asked = asked, 0.0
            above, titled = titled, None
            if len(sent) < 12:
                continue
            own = mentioned(q_stems, sent)
            cov = max(own, heading)
            if cov == 0:
                continue
            s = (cov + 0.25 * context + (0.2 if figure and _DIGIT.search(sent) else 0.0) - 0.03 * (ev.n - 1)
                 + mentioned(focus_stems, sent))
            text = _with_context(parts, i)
            if above and heading > own:
                text = f"{above}\n{text}"  # the heading made the match: it stays a line above the sentence
            out.append(Quote(ev.n, text, c.source, c.title, c.page, round(s, 4)))
    out.sort(key=lambda q: -q.score)
    return out


HEADING_WEIGHT = 0.75  # a heading's words count less than a sentence's own: every line under a title shares them


def _headings(text: str, parts: list[str]) -> list[bool]:
    """Which units of an evidence text are headings: a whole line that is a
    :func:`corpus.text.bare_heading`, but not one of three or more such lines in a row (a slide's
    points or a list without bullets: content)."""
    flags = [bare_heading(p) and _whole_line(text, p) for p in parts]
    i = 0
    while i < len(flags):
        j = i
        while j < len(flags) and flags[j]:
            j += 1
        if j - i >= 3:
            flags[i:j] = [False] * (j - i)
        i = j + 1
    return flags


def _has_text(unit: str) -> bool:
    return any(ch.isalnum() for ch in unit)


def _whole_line(text: str, unit: str) -> bool:
    """Whether ``unit`` is a line of ``text`` by itself (or a piece between gaps "…"), not the tail of
    a sentence ("… . Ausnahmen regelt die Hundesatzung", a review)."""
    return re.search(r"(?m)(?:^|…)[ \t]*" + re.escape(unit) + r"[ \t]*(?:$|…)", text) is not None


def _next_to(text: str, first: str, second: str) -> bool:
    """Whether ``second`` follows ``first`` in ``text`` with only white space (or a rule line such as
    "=====") between: no "…" of condensed evidence, a quote joins only what stands together."""
    return bool(second) and re.search(re.escape(first) + r"\s+(?:[^\w\s…]+\s+)?" + re.escape(second), text) is not None


def _pairs(evidence: Sequence[Evidence]) -> list[Quote]:
    """Two adjacent sentences of one source as one quote: an answer may join a rule and its
    neighbour ("20 Jahre für Urnengräber, 25 für Erdgräber")."""
    out = []
    for ev in evidence:
        c = ev.hit.chunk
        parts = units(ev.text)
        out.extend(Quote(ev.n, f"{a} {b}", c.source, c.title, c.page, 0.0) for a, b in zip(parts, parts[1:]))
    return out


def best_quote(question: str, evidence: Sequence[Evidence], focus: Sequence[str] = ()) -> Quote | None:
    ranked = rank_sentences(question, evidence, focus)
    return ranked[0] if ranked else None


def supporting_quote(sentence: str, question: str, evidence: Sequence[Evidence], cited: Sequence[int]) -> Quote | None:
    """The sentence of the cited sources that backs the model's sentence: most of its claims and
    content words, question words breaking ties."""
    pool = [ev for ev in evidence if ev.n in set(cited)] or list(evidence)
    a_stems = set(content_stems(sentence))
    best: tuple[float, Quote] | None = None
    for q in rank_sentences(question, pool) + rank_sentences(sentence, pool) + _pairs(pool):
        missing = len(unsupported_claims(sentence, [q.text], question))
        s = -missing + mentioned(a_stems, q.text) + 0.1 * q.score
        if best is None or s > best[0]:
            best = (s, q)
    return best[1] if best else None


def quote_line(quote: Quote, cite: bool = True) -> str:
    """The quote as shown in an answer: verbatim, in German quotation marks, with its source number."""
    return f"„{quote.text}“ [{quote.n}]" if cite else f"„{quote.text}“"


def cited_sentence(sentence: str, quote: Quote, show_quote: bool = True) -> str:
    """The model's sentence citing its quote's source once ("… 20 Jahre [1]."), then the quote itself,
    unless the sentence already is the quote (or ``show_quote`` is off: the quote is shown already)."""
    body = CITATION_MARKS.sub("", sentence).strip()
    end = body[-1] if body and body[-1] in ".!?" else "."
    body = body.rstrip(".!? ")
    line = f"{body} [{quote.n}]{end}"
    b, q = _squash(body), _squash(quote.text)
    if not show_quote or b in q and len(b) >= 0.8 * len(q):  # the sentence is the quote: show it once
        return line
    return f"{line}\n\n{quote_line(quote, cite=False)}"


def _squash(text: str) -> str:
    return re.sub(r"\W+", "", text.lower())


def _answer_sentences(answer: str) -> list[str]:
    return split_sentences(answer.strip().replace("\n", " "))


def first_sentence(answer: str) -> str:
    """The model writes at most one short sentence: the first one (citations kept)."""
    parts = _answer_sentences(answer)
    return parts[0].strip() if parts else answer.strip()


def later_sentences(answer: str, most: int) -> list[str]:
    """Up to ``most`` of the model's sentences after its first, for a question that asks two things
    or a list; sentences that are only citations do not count."""
    parts = _answer_sentences(answer)[1:]
    return [p.strip() for p in parts if re.search(r"\w{2}", CITATION_MARKS.sub("", p))][:most]


def covers(sentence: str, quote: Quote, share: float = 0.5) -> bool:
    """At least ``share`` of the sentence's content words stand in the quote (a list item with no
    figure or name still has to come from it)."""
    stems = set(content_stems(CITATION_MARKS.sub("", sentence)))
    return not stems or mentioned(stems, quote.text) >= share


_CLAUSE_JOIN = re.compile(r",\s+(?:und|sowie)\s+")


def two_clauses(sentence: str) -> tuple[str, str] | None:
    """A sentence that answers both parts of a question in clauses joined by ", und " ("Der Tracker
    kostet 30 €, und die Stiftung hat 20 Knoten angeschafft [3].") → the two clauses as sentences,
    so that each can rest on a quote of its own; None unless there is exactly one such join."""
    pieces = _CLAUSE_JOIN.split(sentence)
    if len(pieces) != 2 or not all(re.search(r"\w{2}", p) for p in pieces):
        return None
    first, second = pieces[0].strip(), pieces[1].strip()
    return f"{first}.", second[:1].upper() + second[1:]


def claims_in_quote(sentence: str, quote: Quote, question: str) -> bool:
    """Every number, date, name and negation of the sentence stands in the quote."""
    return not unsupported_claims(sentence, [quote.text], question)


def has_claims(sentence: str, question: str) -> bool:
    c = claims(sentence, question)
    return bool(c.numbers or c.dates or c.names or c.negated)
