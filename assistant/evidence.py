"""Evidence selection: give a small model the sentences that matter, not whole passages.

On 2 CPU cores the prompt is the cost (about 87 prompt tokens/s), and a 1.5B model
answers better from a few relevant sentences than from long passages. For every passage
we keep its best-matching sentences with their neighbours, in document order, with " … "
marking gaps, until the token budget is spent. Passages that no longer fit are listed as
dropped (never cut silently).

"Best-matching" is the question's content words in the sentence *plus*, when a ``similarity``
is given, the sentence's meaning: staff rarely ask with the page's own words, so word overlap
alone kept the wrong sentences of the right passage. On the blind tuning set
(``evals/datasets/blind_dev.jsonl``, the chain's own token count, 600 tokens) all key facts
reached the model for 0.36 of the questions with 6 passages, 0.52 with 4, and 0.61 with 4
and the similarity weighted 8 (``python -m evals.evidence_sweep``, docs/results.md).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from corpus.models import Hit
from corpus.text import content_stems, page_furniture, split_sentences

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evidence:
    n: int
    hit: Hit
    text: str
    tokens: int
    coverage: float  # share of the question's content stems found in this evidence


def _pieces(text: str) -> list[tuple[str, bool]]:
    """The units a passage is condensed by, each with whether it begins a line: its lines (a long
    one in sentences)."""
    out: list[tuple[str, bool]] = []
    for line in text.split("\n"):
        line = line.strip()
        if line:
            parts = split_sentences(line) if len(line) > 200 else [line]
            out.extend((part, k == 0) for k, part in enumerate(parts))
    return out


def _units(text: str) -> list[str]:
    return [u for u, _ in _pieces(text)]


def without_furniture(text: str) -> str:
    """``text`` without its pages' running headers and footers (:func:`corpus.text.page_furniture`):
    a line that is one, and the last sentence of a line that a flattened page ran into one."""
    lines = []
    for line in text.split("\n"):
        if page_furniture(line):
            continue
        sentences = split_sentences(line)
        if len(sentences) > 1 and page_furniture(sentences[-1]):
            line = line[: line.rfind(sentences[-1])].rstrip()
        lines.append(line)
    return "\n".join(lines)


def coverage(question_stems: Sequence[str], text: str) -> float:
    if not question_stems:
        return 0.0
    have = set(content_stems(text))
    return sum(1 for s in set(question_stems) if s in have) / len(set(question_stems))


def mentioned(stems: set[str], text: str) -> float:
    """Share of ``stems`` the text mentions: as a content word, or (stems of 4+ letters) inside a
    compound ("Batterie" in "Batteriewechsel", "Sensor" in "Bodensensor")."""
    if not stems:
        return 0.0
    low = text.lower()
    have = set(content_stems(text))
    return sum(1 for s in stems if s in have or (len(s) >= 4 and s in low)) / len(stems)


#: Similarity of each sentence to the question (cosine, any scale: normalised per passage).
Similarity = Callable[[Sequence[str]], Sequence[float]]


def embedding_similarity(embedder, question: str, cache: dict[str, float] | None = None) -> Similarity:
    """Sentences → their cosine to ``question`` by ``embedder`` (the knowledge base's e5 model:
    query and passage prefixes as in retrieval). ``cache`` keeps each sentence's score across calls
    for the same question (the evidence sweep replays one question many times)."""
    cache = {} if cache is None else cache
    q_vec = None

    def similarity(sentences: Sequence[str]) -> list[float]:
        nonlocal q_vec
        new = [s for s in dict.fromkeys(sentences) if s not in cache]
        if new:
            if q_vec is None:
                q_vec = embedder.embed_query_vector(question)
            # One sentence per run: with 32 to a run, one long sentence padded all, a run used one core,
            # and the int8 graph's per-run quantisation moved each score with its neighbours. Alone,
            # blind_dev's evidence step took 103 ms (p95 139) instead of 360 (p95 908), same recall; the
            # torch e5 mode takes as long as in runs of 32 at the median and less at p95 (684 vs 1,271 ms).
            cache.update(zip(new, (embedder.embed_passages(new, batch_size=1) @ q_vec).tolist()))
        return [cache[s] for s in sentences]

    return similarity


def select_evidence(
    question: str,
    hits: Sequence[Hit],
    *,
    budget_tokens: int,
    count: Callable[[str], int],
    max_passages: int = 4,
    whole_passage_tokens: int = 120,
    similarity: Similarity | None = None,
    similarity_weight: float = 0.0,
    focus: Sequence[str] = (),
) -> tuple[list[Evidence], list[Hit]]:
    """Return (evidence in rank order, hits dropped for lack of budget).

    ``similarity`` (one call for all sentences that may be condensed) adds up to
    ``similarity_weight`` to a sentence's word-overlap score. ``focus``: the words a follow-up asks
    anew (:func:`assistant.chain.follow_up_focus`); a sentence that has them is kept first."""
    q = content_stems(question)
    qset = set(q)
    chosen: list[Evidence] = []
    dropped: list[Hit] = []
    remaining = budget_tokens
    per_passage = max(60, budget_tokens // max(1, min(max_passages, len(hits))))
    # a page's running footer is no evidence: it shares the title's words with every question on the
    # document and took a passage's share of the budget (corpus.text.page_furniture)
    texts = {h.chunk.chunk_id: without_furniture(h.chunk.text) for h in hits[:max_passages]}
    sizes = {cid: count(text) for cid, text in texts.items()}  # counted once (a tokenizer)
    sims: Mapping[str, float] = {}
    if similarity is not None and similarity_weight > 0:
        long = [texts[h.chunk.chunk_id] for h in hits[:max_passages]
                if sizes[h.chunk.chunk_id] > min(whole_passage_tokens, per_passage)]
        todo = list(dict.fromkeys(u for text in long for u in _units(text)))
        try:
            sims = dict(zip(todo, similarity(todo))) if todo else {}
        except Exception:  # noqa: BLE001 - the words alone still choose; an answer never fails for this
            log.warning("sentence similarity failed; condensing by shared words only", exc_info=True)
    for hit in hits:
        if len(chosen) >= max_passages:
            dropped.append(hit)
            continue
        text = texts.get(hit.chunk.chunk_id)
        if text is None:
            text = without_furniture(hit.chunk.text)
        n_tokens = sizes.get(hit.chunk.chunk_id) or count(text)
        if n_tokens > min(whole_passage_tokens, per_passage, remaining):
            text = _condense(text, qset, min(per_passage, remaining), count, sims, similarity_weight, set(focus))
            n_tokens = count(text)
        if not text or n_tokens > remaining or remaining < 20:
            dropped.append(hit)
            continue
        remaining -= n_tokens
        chosen.append(Evidence(len(chosen) + 1, hit, text, n_tokens, coverage(q, text)))
    return chosen, dropped


def sentence_scores(units: Sequence[str], qset: set[str], sims: Mapping[str, float] | None = None,
                    weight: float = 0.0, focus: set[str] = frozenset()) -> list[float]:
    """Per sentence: the question's content words in it (+0.5 with a figure), plus ``weight`` times
    its similarity to the question, scaled within the passage (best sentence 1, worst 0). A
    follow-up's ``focus`` words outweigh all others: "Und wie viele davon sind Parkplatzsensoren?"
    after a question about the sensors kept the sensors' sentence and cut the table row asked for."""
    scores = []
    for u in units:
        stems = set(content_stems(u))
        scores.append(len(stems & qset) + (0.5 if any(ch.isdigit() for ch in u) and stems & qset else 0)
                      + (len(qset) + 1.5) * mentioned(focus, u))
    known = [sims[u] for u in units if sims and u in sims]
    if weight > 0 and len(known) >= 2 and max(known) > min(known):
        lo, hi = min(known), max(known)
        scores = [s + (weight * (sims[u] - lo) / (hi - lo) if u in sims else 0.0) for s, u in zip(scores, units)]
    return scores


def _condense(text: str, qset: set[str], budget: int, count: Callable[[str], int],
              sims: Mapping[str, float] | None = None, weight: float = 0.0, focus: set[str] = frozenset()) -> str:
    pieces = _pieces(text)
    units = [u for u, _ in pieces]
    if not units:
        return ""
    scores = sentence_scores(units, qset, sims, weight, focus)
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
    # kept neighbours from separate lines stay separate lines: a table row under its header line, a
    # list's items (joined by a space, "Leistung | Gebühr Reisepass | 70,00 Euro" read as one row)
    parts: list[str] = []
    last = -2
    for i in sorted(keep):
        if last >= 0:
            parts.append(" … " if i != last + 1 else ("\n" if pieces[i][1] else " "))
        parts.append(units[i])
        last = i
    return "".join(parts)
