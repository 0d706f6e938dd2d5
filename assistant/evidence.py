"""Evidence selection: give a small model the sentences that matter, not whole passages.

On 2 CPU cores the prompt is the cost (about 87 prompt tokens/s), and a 1.5B model
answers better from a few relevant sentences than from long passages. For every passage
we keep its best-matching sentences with their neighbours, in document order, with " … "
marking gaps, until the token budget is spent. Passages that no longer fit are listed as
dropped (never cut silently).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from corpus.models import Hit
from corpus.text import content_stems, split_sentences

@dataclass(frozen=True)
class Evidence:
    n: int
    hit: Hit
    text: str
    tokens: int
    coverage: float  # share of the question's content stems found in this evidence


def _units(text: str) -> list[str]:
    out: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if line:
            out.extend(split_sentences(line) if len(line) > 200 else [line])
    return out


def coverage(question_stems: Sequence[str], text: str) -> float:
    if not question_stems:
        return 0.0
    have = set(content_stems(text))
    return sum(1 for s in set(question_stems) if s in have) / len(set(question_stems))


def select_evidence(
    question: str,
    hits: Sequence[Hit],
    *,
    budget_tokens: int,
    count: Callable[[str], int],
    max_passages: int = 4,
    whole_passage_tokens: int = 120,
) -> tuple[list[Evidence], list[Hit]]:
    """Return (evidence in rank order, hits dropped for lack of budget)."""
    q = content_stems(question)
    qset = set(q)
    chosen: list[Evidence] = []
    dropped: list[Hit] = []
    remaining = budget_tokens
    per_passage = max(60, budget_tokens // max(1, min(max_passages, len(hits))))
    for hit in hits:
        if len(chosen) >= max_passages:
            dropped.append(hit)
            continue
        text = hit.chunk.text
        n_tokens = count(text)
        if n_tokens > min(whole_passage_tokens, per_passage, remaining):
            text = _condense(text, qset, min(per_passage, remaining), count)
            n_tokens = count(text)
        if not text or n_tokens > remaining or remaining < 20:
            dropped.append(hit)
            continue
        remaining -= n_tokens
        chosen.append(Evidence(len(chosen) + 1, hit, text, n_tokens, coverage(q, text)))
    return chosen, dropped


def _condense(text: str, qset: set[str], budget: int, count: Callable[[str], int]) -> str:
    units = _units(text)
    if not units:
        return ""
    scores = []
    for u in units:
        stems = set(content_stems(u))
        scores.append(len(stems & qset) + (0.5 if any(ch.isdigit() for ch in u) and stems & qset else 0))
    order = sorted(range(len(units)), key=lambda i: (-scores[i], i))
    keep: set[int] = set()
    used = 0
    for i in order:
        for j in (i, i - 1, i + 1) if scores[i] > 0 else (i,):
            if 0 <= j < len(units) and j not in keep:
                c = count(units[j])
                if used + c <= budget:
                    keep.add(j)
                    used += c
        if used >= budget * 0.9:
            break
    if not keep:
        # nothing matched: the passage's beginning, cut at a word boundary within the budget
        words = units[0].split()
        return " ".join(words[: max(1, int(budget / 1.5))]) + " …"
    parts: list[str] = []
    last = -2
    for i in sorted(keep):
        if last >= 0 and i != last + 1:
            parts.append("…")
        parts.append(units[i])
        last = i
    return " ".join(parts)
