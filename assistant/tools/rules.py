"""The plain-language rule check: which sentence breaks which rule, in code, no model.

Why in code: a small model writes a plausible draft but does not count words; the check
lists every violation so the revision pass can name it, and so staff see what is left.

Rules (DIN 8581-1 / ISO 24495-1 for Einfache Sprache; Netzwerk Leichte Sprache and
DIN SPEC 33429 for Leichte Sprache), each a pure predicate on one sentence:

* ``sentence_length`` – more words than the level allows (Leichte Sprache 15, Einfache 20);
* ``long_word`` – a word of more letters than the limit written without a hyphen
  (Leichte Sprache asks for "Bürger-Büro"; hyphenated parts are measured one by one);
* ``passive`` – a form of *werden* with a past participle ("wird geprüft");
* ``genitive`` – "des", "eines", "dessen", "deren" or a genitive preposition ("wegen des");
* ``subjunctive`` – Konjunktiv forms ("würde", "hätte", "könnte", "sei");
* ``large_number`` – numbers of 1,000 and more (years excepted) and percentages;
* ``several_statements`` – a subordinate or relative clause after a comma (one statement per sentence).

Which rules apply, and their limits, is a table per level (:data:`LEVELS`); the settings
may override the limits.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Iterable

from assistant.tools.text import split_sentences, words

RULE_LABELS_DE = {
    "sentence_length": "Satz zu lang",
    "long_word": "Langes Wort ohne Binde-Strich",
    "passive": "Passiv",
    "genitive": "Genitiv",
    "subjunctive": "Konjunktiv",
    "large_number": "Große Zahl oder Prozent",
    "several_statements": "Mehr als eine Aussage",
}
RULE_HINTS_DE = {
    "sentence_length": "Teilen Sie den Satz in kurze Sätze.",
    "long_word": "Trennen Sie das Wort mit Binde-Strich oder nehmen Sie ein kürzeres Wort.",
    "passive": "Schreiben Sie aktiv: Wer macht was?",
    "genitive": "Schreiben Sie „von dem“ statt Genitiv.",
    "subjunctive": "Schreiben Sie ohne Möglichkeits-Form (nicht „würde“, „könnte“).",
    "large_number": "Schreiben Sie „viele“ oder eine runde Zahl statt großer Zahlen und Prozent.",
    "several_statements": "Schreiben Sie nur eine Aussage in einen Satz.",
}


@dataclass(frozen=True)
class Level:
    """The rules of one language level and their limits."""

    key: str
    label_de: str
    max_words: int
    max_word_letters: int
    rules: tuple[str, ...]


LEVELS: dict[str, Level] = {
    "einfach": Level("einfach", "Einfache Sprache", 20, 20,
                     ("sentence_length", "long_word", "passive", "subjunctive")),
    "leicht": Level("leicht", "Leichte Sprache", 15, 14,
                    ("sentence_length", "long_word", "passive", "genitive", "subjunctive", "large_number",
                     "several_statements")),
}


@dataclass(frozen=True)
class Violation:
    sentence: int  # 0-based index into the checked sentences
    rule: str
    detail: str

    @property
    def label_de(self) -> str:
        return RULE_LABELS_DE[self.rule]


@dataclass
class RuleReport:
    level: str
    sentences: list[str]
    violations: list[Violation] = field(default_factory=list)

    @property
    def per_100_sentences(self) -> float:
        return round(100.0 * len(self.violations) / len(self.sentences), 1) if self.sentences else 0.0

    def offending(self) -> list[int]:
        """Indexes of sentences with at least one violation, in order."""
        return sorted({v.sentence for v in self.violations})

    def by_sentence(self) -> dict[int, list[Violation]]:
        out: dict[int, list[Violation]] = {}
        for v in self.violations:
            out.setdefault(v.sentence, []).append(v)
        return out

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.violations:
            out[v.rule] = out.get(v.rule, 0) + 1
        return out

    def as_dict(self) -> dict:
        return {"level": self.level, "sentences": len(self.sentences), "violations": [
            asdict(v) | {"label": v.label_de, "text": self.sentences[v.sentence]} for v in self.violations],
            "per_100_sentences": self.per_100_sentences, "counts": self.counts()}


# -- the predicates ----------------------------------------------------------------------
_WERDEN = re.compile(r"\b(wird|werden|wurde|wurden|worden|werdet|wirst)\b", re.IGNORECASE)
# past participles: ge…t/ge…en, …iert, and the inseparable prefixes (be-, ver-, er-, ent-, zer-, über-)
_PARTICIPLE = re.compile(
    r"^(?:(?:ab|an|auf|aus|bei|ein|fest|mit|nach|vor|weg|zu|zurück|zusammen|her|hin|frei|bereit)?ge[a-zäöüß]{2,}(?:t|en)"
    r"|[a-zäöüß]{3,}iert"
    r"|(?:be|ver|er|ent|zer|über|unter|hinter|miss)[a-zäöüß]{3,}(?:t|en))$"
)
_NOT_PARTICIPLE = {"gegen", "genau", "gerne", "gestern", "gelten", "geben", "gehen", "getan", "gesamten", "gemeinsam",
                   "genügend", "berechtigt", "bereit", "bekannt", "besonders", "bereits", "etwas", "erst", "vertraut",
                   "verantwortlich", "verschiedenen", "entsprechend", "weiter", "unter", "über", "hinter", "bitten",
                   "beiden", "ersten", "unten", "erhalten", "bekommen", "bestehen", "verstehen", "entscheiden", "gewinnen"}
_GENITIVE = re.compile(
    r"\b(des|eines|meines|deines|seines|ihres|unseres|eures|dessen|deren)\b"
    r"|\b(wegen|trotz|während|anhand|aufgrund|mittels|bezüglich|hinsichtlich|zwecks|infolge|statt|anstatt)\s+(des|der|eines|einer)\b",
    re.IGNORECASE,
)
_SUBJUNCTIVE = re.compile(
    r"\b(würden?|würdest|würdet|wären?|wärst|wäret|hätten?|hättest|hättet|könnten?|könntest|müssten?|müsstest|"
    r"dürften?|sollten?|solltest|möge|mögen(?=\s+sie\b)|sei|seien|seiest)\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:[.\u202f ]\d{3})+|\d{4,})(?:,\d+)?(?![\w])")
_PERCENT = re.compile(r"\d(?:[\d.,]*)\s*(?:%|Prozent\b)|\bProzent\b", re.IGNORECASE)
_YEAR = re.compile(r"^(1[89]|20)\d\d$")
_CLAUSE = re.compile(
    r",\s*(dass|weil|wenn|ob|obwohl|damit|sodass|falls|nachdem|bevor|als|während|wobei|sofern|soweit|"
    r"der|die|das|den|dem|welche[rsmn]?|wo|wie|was)\b", re.IGNORECASE)


def _sentence_violations(sentence: str, level: Level) -> Iterable[tuple[str, str]]:
    ws = words(sentence)
    if "sentence_length" in level.rules and len(ws) > level.max_words:
        yield "sentence_length", f"{len(ws)} Wörter (höchstens {level.max_words})"
    if "long_word" in level.rules:
        for w in ws:
            if "-" not in w and len(w) > level.max_word_letters:
                yield "long_word", w
    if "passive" in level.rules and _WERDEN.search(sentence):
        participles = [w for w in ws if w.islower() and w not in _NOT_PARTICIPLE and _PARTICIPLE.match(w)]
        if participles:
            yield "passive", f"{_WERDEN.search(sentence).group(0)} … {participles[-1]}"
    if "genitive" in level.rules:
        m = _GENITIVE.search(sentence)
        if m:
            yield "genitive", m.group(0)
    if "subjunctive" in level.rules:
        m = _SUBJUNCTIVE.search(sentence)
        if m:
            yield "subjunctive", m.group(0)
    if "large_number" in level.rules:
        for m in _NUMBER.finditer(sentence):
            if not _YEAR.match(m.group(1)):
                yield "large_number", m.group(0)
        m = _PERCENT.search(sentence)
        if m:
            yield "large_number", m.group(0).strip()
    if "several_statements" in level.rules:
        m = _CLAUSE.search(sentence)
        if m:
            yield "several_statements", m.group(0).lstrip(", ")


def level_for(key: str, max_words: int | None = None, max_word_letters: int | None = None) -> Level:
    """The level ``einfach`` or ``leicht``, with the limits optionally overridden (settings)."""
    try:
        base = LEVELS[key]
    except KeyError:
        raise ValueError(f"Unbekannte Sprachstufe / unknown level: {key!r} (einfach, leicht)") from None
    return Level(base.key, base.label_de, max_words or base.max_words, max_word_letters or base.max_word_letters,
                 base.rules)


def check_sentences(sentences: list[str], level: Level) -> RuleReport:
    report = RuleReport(level.key, list(sentences))
    for i, sentence in enumerate(sentences):
        for rule, detail in _sentence_violations(sentence, level):
            report.violations.append(Violation(i, rule, detail))
    return report


def check_text(text: str, level: Level | str) -> RuleReport:
    """Every violation of the level's rules in ``text`` (sentence by sentence)."""
    lvl = level_for(level) if isinstance(level, str) else level
    return check_sentences(split_sentences(text), lvl)
