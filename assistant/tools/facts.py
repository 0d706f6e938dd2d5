"""The facts check: which numbers, dates, amounts, deadlines and names of the input the output
dropped or changed – so nobody sends a citizen a wrong deadline.

Each fact is extracted with its kind and a normalised key, so different spellings of the
same fact match: "01.03.2025", "1.3.2025" and "1. März 2025" are one date; "1.575,00 €" and
"1575 Euro" one amount; "vier Wochen", "4 Wochen" one duration; "Frau Dr. Müller" and
"Frau Müller" one name. Names come from the Ampel's personal-data detector
(:func:`assistant.policy.pii.detect_pii`: names next to Herr/Frau, e-mail, phone, IBAN),
so there is one definition of a name in the code base. Numbers reuse
:func:`assistant.citations.numbers` (the chain's definition of a number that carries a claim).

Pure functions, no model.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from assistant.citations import numbers as claim_numbers
from assistant.policy.pii import detect_pii

MONTHS = {
    "januar": 1, "jänner": 1, "februar": 2, "märz": 3, "april": 4, "mai": 5, "juni": 6, "juli": 7, "august": 8,
    "september": 9, "oktober": 10, "november": 11, "dezember": 12,
}
NUMBER_WORDS = {
    "ein": 1, "eine": 1, "einem": 1, "einen": 1, "einer": 1, "eines": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5,
    "sechs": 6, "sieben": 7, "acht": 8, "neun": 9, "zehn": 10, "elf": 11, "zwölf": 12, "vierzehn": 14,
    "fünfzehn": 15, "zwanzig": 20, "dreißig": 30, "sechzig": 60, "neunzig": 90,
}
UNITS = {
    "tag": "Tag", "tage": "Tag", "tagen": "Tag", "tages": "Tag", "werktag": "Werktag", "werktage": "Werktag",
    "werktagen": "Werktag", "woche": "Woche", "wochen": "Woche", "monat": "Monat", "monate": "Monat",
    "monaten": "Monat", "monats": "Monat", "jahr": "Jahr", "jahre": "Jahr", "jahren": "Jahr", "jahres": "Jahr",
    "stunde": "Stunde", "stunden": "Stunde",
}
KIND_LABELS_DE = {
    "date": "Datum", "time": "Uhrzeit", "amount": "Betrag", "percent": "Prozent", "deadline": "Frist/Dauer",
    "paragraph": "Paragraf", "file_number": "Aktenzeichen", "name": "Name", "email": "E-Mail-Adresse",
    "phone": "Telefonnummer", "iban": "IBAN", "number": "Zahl",
}
_MONTH_RE = "|".join(MONTHS)
_NUM_WORD_RE = "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))
_UNIT_RE = "|".join(sorted(UNITS, key=len, reverse=True))

_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("file_number", re.compile(r"\b(?:Az\.?|Aktenzeichen|Geschäftszeichen|Gz\.?)\s*:?\s*([A-Za-z0-9][\w./-]*\d[\w./-]*)")),
    ("date", re.compile(rf"\b(\d{{1,2}})\.\s*({_MONTH_RE})(?:\s+(\d{{4}}))?\b", re.IGNORECASE)),
    ("date", re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})?(?![\d])")),
    ("time", re.compile(r"\b(\d{1,2})(?:[:.](\d{2}))?\s*Uhr\b")),
    ("amount", re.compile(r"(\d{1,3}(?:[.\u202f ]\d{3})+(?:,\d{1,2})?|\d+(?:,\d{1,2})?)\s*(?:€|Euro\b|EUR\b)"
                          r"|(?:€|EUR)\s*(\d{1,3}(?:[.\u202f ]\d{3})+(?:,\d{1,2})?|\d+(?:,\d{1,2})?)")),
    ("percent", re.compile(r"(\d+(?:,\d+)?)\s*(?:%|Prozent\b)")),
    ("deadline", re.compile(rf"\b(\d+|{_NUM_WORD_RE})\s+({_UNIT_RE})\b", re.IGNORECASE)),
    ("paragraph", re.compile(r"§§?\s*(\d+[a-z]?)")),
]


@dataclass(frozen=True)
class Fact:
    kind: str
    text: str  # as written
    key: str  # normalised for matching
    start: int = 0

    @property
    def label_de(self) -> str:
        return KIND_LABELS_DE.get(self.kind, self.kind)


@dataclass(frozen=True)
class FactChange:
    """A fact of the input that the output dropped (``found`` None) or changed (``found`` = what it says)."""

    kind: str
    expected: str
    found: str | None

    @property
    def status(self) -> str:
        return "dropped" if self.found is None else "changed"

    def as_dict(self) -> dict:
        return asdict(self) | {"status": self.status, "label": KIND_LABELS_DE.get(self.kind, self.kind)}


def _num(raw: str) -> str:
    """'1.575,00' → '1575'; '12,5' → '12,5'; 'vier' → '4'."""
    raw = raw.strip().lower()
    if raw in NUMBER_WORDS:
        return str(NUMBER_WORDS[raw])
    value = re.sub(r"[.\u202f ]", "", raw)
    value = re.sub(r",0+$", "", value)
    return value


def _key(kind: str, m: re.Match) -> str | None:
    g = m.groups()
    if kind == "email":
        return m.group(0).lower()
    if kind == "file_number":
        return re.sub(r"\s+", "", g[0]).rstrip(".").lower()
    if kind == "date":
        day = int(g[0])
        month = MONTHS[g[1].lower()] if not g[1].isdigit() else int(g[1])
        if not (1 <= day <= 31 and 1 <= month <= 12):
            return None
        year = g[2]
        if year and len(year) == 2:
            year = f"20{year}"
        return f"{year or '????'}-{month:02d}-{day:02d}"
    if kind == "time":
        return f"{int(g[0]):02d}:{g[1] or '00'}"
    if kind == "amount":
        return _num(g[0] or g[1])
    if kind == "percent":
        return _num(g[0])
    if kind == "deadline":
        return f"{_num(g[0])} {UNITS[g[1].lower()]}"
    if kind == "paragraph":
        return g[0].lower()
    return None


def _name_key(value: str) -> str:
    """The surname: the last word without titles ("Frau Dr. Anna Müller" → "müller")."""
    parts = [p for p in re.split(r"\s+", value.strip()) if p and p.rstrip(".").lower() not in
             {"herr", "herrn", "frau", "dr", "prof", "von", "van", "de"}]
    return parts[-1].strip(".,;:").lower() if parts else value.lower()


def extract_facts(text: str) -> list[Fact]:
    """Every fact of ``text`` once per key, in order of appearance. A span taken by a more specific
    kind (an amount, a date) is not counted again as a bare number."""
    text = text or ""
    taken: list[tuple[int, int]] = []
    facts: list[Fact] = []
    seen: set[tuple[str, str]] = set()

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in taken)

    def add(kind: str, raw: str, key: str | None, start: int, end: int) -> None:
        taken.append((start, end))
        if key is None or (kind, key) in seen:
            return
        seen.add((kind, key))
        facts.append(Fact(kind, raw.strip(), key, start))

    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            if free(m.start(), m.end()):
                add(kind, m.group(0), _key(kind, m), m.start(), m.end())
    for det in detect_pii(text):
        if det.kind in ("person_name", "phone", "iban") and free(det.start, det.end):
            raw = text[det.start:det.end]
            kind = "name" if det.kind == "person_name" else det.kind
            key = _name_key(raw) if kind == "name" else re.sub(r"\D", "", raw)
            add(kind, raw, key, det.start, det.end)
    for m in re.finditer(r"\S+", text):  # bare numbers that carry a claim, outside the spans above
        for value in claim_numbers(m.group(0)):
            if free(m.start(), m.end()):
                add("number", m.group(0).strip(".,;:()"), value, m.start(), m.end())
    return sorted(facts, key=lambda f: f.start)


def _matches(fact: Fact, out: dict[str, set[str]], out_text: str) -> bool:
    keys = out.get(fact.kind, set())
    if fact.key in keys:
        return True
    if fact.kind == "date" and fact.key.startswith("????"):  # "1. März" is kept by "1. März 2025"
        return any(k.endswith(fact.key[4:]) for k in keys)
    if fact.kind == "name":
        return fact.key in out_text.lower()
    if fact.kind == "number":  # a number may come back as an amount, a percentage, a date's year
        return any(fact.key == k or fact.key in k.split(" ") for ks in out.values() for k in ks) or \
            fact.key in claim_numbers(out_text)
    if fact.kind == "amount":  # "1.575 €" written as a bare "1.575" next to "Euro" in another sentence
        return fact.key in out.get("number", set())
    return False


def compare_facts(source: str, output: str) -> list[FactChange]:
    """Facts of ``source`` that ``output`` dropped or changed. A changed fact is paired with an
    output fact of the same kind that the source does not have ("31. März" became "30. März")."""
    src = extract_facts(source)
    dst = extract_facts(output)
    out_keys: dict[str, set[str]] = {}
    for f in dst:
        out_keys.setdefault(f.kind, set()).add(f.key)
    src_keys = {(f.kind, f.key) for f in src}
    new_by_kind: dict[str, list[Fact]] = {}
    for f in dst:
        if (f.kind, f.key) not in src_keys:
            new_by_kind.setdefault(f.kind, []).append(f)
    changes: list[FactChange] = []
    for f in src:
        if _matches(f, out_keys, output):
            continue
        candidates = new_by_kind.get(f.kind) or []
        found = candidates.pop(0).text if candidates else None
        changes.append(FactChange(f.kind, f.text, found))
    return changes


def added_facts(sources: str, output: str, kinds: tuple[str, ...] | None = None) -> list[Fact]:
    """Facts of ``output`` that stand nowhere in ``sources`` (invented names, numbers, dates)."""
    src = extract_facts(sources)
    keys: dict[str, set[str]] = {}
    for f in src:
        keys.setdefault(f.kind, set()).add(f.key)
    out = []
    for f in extract_facts(output):
        if kinds is not None and f.kind not in kinds:
            continue
        if not _matches(f, keys, sources):
            out.append(f)
    return out


def kept_share(source: str, output: str) -> tuple[int, int]:
    """(facts kept, facts in the source) – the eval's "facts kept"."""
    total = len(extract_facts(source))
    return total - len(compare_facts(source, output)), total
