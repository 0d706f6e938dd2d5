"""Citation parsing and checking, refusal detection, and post-hoc attribution."""
from __future__ import annotations

import re
from typing import Sequence

from corpus.text import number_word_values, split_sentences

REFUSAL = "Dazu finde ich in den Dokumenten keine Informationen."

_CITE = re.compile(r"\[\s*(\d{1,2}(?:\s*[,;]\s*\d{1,2})*)\s*\]")
_REFUSAL_PATTERNS = re.compile(
    r"(keine (?:weiteren |konkreten |genauen )?(?:informationen|angaben|hinweise)|"
    r"nicht in den (?:quellen|dokumenten|unterlagen)|"
    r"(?:quellen|dokumente|unterlagen) (?:enthalten|nennen|geben) (?:dazu |hierzu )?(?:keine|nichts)|"
    r"kann ich (?:leider )?nicht beantworten|lässt sich (?:aus den quellen )?nicht beantworten|"
    r"ist (?:in den quellen )?nicht (?:angegeben|erwähnt|genannt|enthalten))",
    re.IGNORECASE,
)


def parse_citations(text: str) -> list[int]:
    """Source numbers in order of first appearance: "[1]", "[2, 3]", "[1][4]"."""
    seen: list[int] = []
    for m in _CITE.finditer(text):
        for part in re.split(r"[,;]", m.group(1)):
            n = int(part)
            if n not in seen:
                seen.append(n)
    return seen


def strip_invalid_citations(text: str, valid: set[int]) -> str:
    """Remove citation numbers that refer to no given source (a model may invent "[7]")."""

    def repl(m: re.Match) -> str:
        nums = [p.strip() for p in re.split(r"[,;]", m.group(1)) if int(p) in valid]
        return f"[{', '.join(nums)}]" if nums else ""

    return re.sub(r"\s+([.,;:!?])", r"\1", _CITE.sub(repl, text)).strip()


def is_refusal(text: str) -> bool:
    t = text.strip()
    return not t or bool(_REFUSAL_PATTERNS.search(t[:300]))


def attribute(answer: str, sources: Sequence[str], stems) -> tuple[int | None, float]:
    """The source (1-based) whose content words best cover the answer's, with that share."""
    a = set(stems(answer))
    if not a:
        return None, 0.0
    best, best_share = None, 0.0
    for n, text in enumerate(sources, start=1):
        share = len(a & set(stems(text))) / len(a)
        if share > best_share:
            best, best_share = n, share
    return best, best_share


_NUMBER = re.compile(r"(?<![\w.,])\d{1,3}(?:[.\u202f ]\d{3})+(?:,\d+)?(?![\w])|(?<![\w.,])\d{2,}(?:,\d+)?(?![\w])"
                     r"|(?<![\w.,])\d(?:,\d{1,2}|\.\d)(?![\w]|[.,]\d)")


def numbers(text: str) -> set[str]:
    """Numbers that can carry a claim, normalised: two or more digits ("6.710" and "6710" are the
    same, so are "25,00" and "25") and small decimals ("1,5", also written "1.5"). Single digits,
    dates ("1.2.2020"), times ("7.30") and section numbers ("18.1.2") do not count on their own.
    Number words from ten up count as their digits ("zwanzig" is "20")."""
    out = {str(n) for n in number_word_values(text, smallest=10)}
    for m in _NUMBER.finditer(text):
        raw = m.group(0)
        if re.fullmatch(r"\d[.,]\d{1,2}", raw):  # "1,5 Millionen"; "1.5 Millionen" (English style) is the same
            value = raw.replace(".", ",")
            if not value.endswith((",0", ",00")):
                out.add(value)
            continue
        value = re.sub(r"[.\u202f ]", "", raw)
        value = re.sub(r",0+$", "", value)  # "1.575,00 €" and "1.575 Euro" are the same amount
        if len(value.split(",")[0]) >= 2:
            out.add(value)
    return out


def strip_refusal_tail(text: str) -> str:
    """Drop a refusal sentence that a small model appends to (or puts before) a real answer."""
    parts = split_sentences(text.strip())
    kept = [p for p in parts if not is_refusal(p)]
    if kept and len(kept) < len(parts):
        return " ".join(kept)
    return text.strip()
