"""Retrieval and answer metrics for the evaluation harness.

Every function here is pure: no I/O, no global state, deterministic. Document
identifiers are plain strings (typically a source file name or a chunk id);
page-aware metrics work on ``(source, page)`` pairs where ``page`` is 1-based
as a PDF viewer shows it, or ``None`` for pageless formats.

Conventions
-----------
* ``k`` cuts the ranked list to its first ``k`` entries; ``k`` larger than the
  list simply uses the whole list. ``k <= 0`` yields 0.0.
* Relevance sets that are empty make every retrieval metric 0.0 (there is
  nothing to find, so nothing can be found); callers should route
  unanswerable questions to :func:`refusal_scores` instead.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

from assistant.answer_checks import CITATION_MARKS
from corpus.text import number_words_as_digits

__all__ = [
    "hit_at_k",
    "reciprocal_rank",
    "ndcg_at_k",
    "page_hit_at_k",
    "mean",
    "linear_percentile",
    "normalize_text",
    "contains_key_terms",
    "citation_precision",
    "refusal_scores",
    "aggregate",
    "evidence_recall",
    "confidently_wrong",
]

SourcePage = tuple[str, int | None]


def _as_set(relevant: set[str] | frozenset[str] | str | Iterable[str]) -> set[str]:
    """Accept a single id or any iterable of ids and return a set."""
    if isinstance(relevant, str):
        return {relevant}
    return set(relevant)


def _cut(ranked: Sequence[str], k: int | None) -> Sequence[str]:
    if k is None:
        return ranked
    if k <= 0:
        return ranked[:0]
    return ranked[:k]


# --------------------------------------------------------------------------
# Retrieval metrics
# --------------------------------------------------------------------------


def hit_at_k(ranked: Sequence[str], relevant: set[str] | str, k: int) -> float:
    """Hit rate at ``k`` for one query.

    ``hit@k = 1.0 if any(d in R for d in ranked[:k]) else 0.0``
    where ``R`` is the set of relevant ids.
    """
    rel = _as_set(relevant)
    return 1.0 if any(d in rel for d in _cut(ranked, k)) else 0.0


def reciprocal_rank(
    ranked: Sequence[str], relevant: set[str] | str, k: int | None = None
) -> float:
    """Reciprocal rank of the first relevant id (optionally cut at ``k``).

    ``RR = 1 / r`` where ``r`` is the 1-based rank of the first ``d`` in
    ``ranked[:k]`` with ``d in R``; ``RR = 0.0`` when there is none. The mean
    of RR over queries is MRR.
    """
    rel = _as_set(relevant)
    for i, d in enumerate(_cut(ranked, k), start=1):
        if d in rel:
            return 1.0 / i
    return 0.0


def ndcg_at_k(
    ranked: Sequence[str],
    relevant: set[str] | frozenset[str] | str | Mapping[str, float],
    k: int = 10,
) -> float:
    """Normalised discounted cumulative gain at ``k``.

    ``DCG@k  = sum_{i=1..k} g(d_i) / log2(i + 1)``
    ``IDCG@k = DCG@k of the ideal ordering`` (all gains sorted descending)
    ``nDCG@k = DCG@k / IDCG@k`` (0.0 when ``IDCG@k == 0``).

    Gains ``g`` are binary (1 for ids in a set, 0 otherwise) or graded when
    ``relevant`` is a mapping ``id -> gain``. Each id is credited at most
    once: a duplicate later in ``ranked`` gains 0, so nDCG never exceeds 1.
    """
    if k <= 0:
        return 0.0
    if isinstance(relevant, Mapping):
        gains: dict[str, float] = {d: float(g) for d, g in relevant.items()}
    else:
        gains = {d: 1.0 for d in _as_set(relevant)}

    seen: set[str] = set()
    dcg = 0.0
    for i, d in enumerate(_cut(ranked, k), start=1):
        if d in seen:
            continue
        seen.add(d)
        g = gains.get(d, 0.0)
        if g:
            dcg += g / math.log2(i + 1)

    ideal = sorted((g for g in gains.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 1) for i, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def _page_match(got: SourcePage, expected: SourcePage, page_tolerance: int) -> bool:
    """Same source, and page within tolerance unless the expected page is None.

    An expected page of ``None`` means "any page of that source". A retrieved
    page of ``None`` against a concrete expected page is not a match.
    """
    src, page = got
    exp_src, exp_page = expected
    if src != exp_src:
        return False
    if exp_page is None:
        return True
    if page is None:
        return False
    return abs(page - exp_page) <= page_tolerance


def page_hit_at_k(
    ranked: Sequence[SourcePage],
    expected: SourcePage,
    k: int,
    page_tolerance: int = 0,
) -> float:
    """Page-exact hit at ``k`` on ``(source, page)`` pairs.

    ``1.0 if exists (s, p) in ranked[:k] with s == s* and
    (p* is None or |p - p*| <= page_tolerance) else 0.0``
    where ``(s*, p*)`` is ``expected``.
    """
    if k <= 0:
        return 0.0
    return 1.0 if any(_page_match(sp, expected, page_tolerance) for sp in ranked[:k]) else 0.0


# --------------------------------------------------------------------------
# Statistics helpers
# --------------------------------------------------------------------------


def mean(values: Iterable[float | None]) -> float:
    """Arithmetic mean ``sum(x) / n`` over the non-None values; nan if none."""
    xs = [float(v) for v in values if v is not None]
    return math.fsum(xs) / len(xs) if xs else math.nan


def linear_percentile(values: Iterable[float], p: float) -> float:
    """Percentile with linear interpolation (numpy's default ``"linear"``).

    With the values sorted ascending as ``x_0..x_{n-1}``:
    ``h = (n - 1) * p / 100``, ``lo = floor(h)``,
    ``P = x_lo + (h - lo) * (x_{lo+1} - x_lo)``.
    ``p`` must lie in ``[0, 100]``; an empty input gives nan.
    """
    if not 0 <= p <= 100:
        raise ValueError(f"percentile p must be in [0, 100], got {p!r}")
    xs = sorted(float(v) for v in values)
    if not xs:
        return math.nan
    h = (len(xs) - 1) * p / 100.0
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


# --------------------------------------------------------------------------
# Answer metrics
# --------------------------------------------------------------------------

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ẞ": "ss"})
# A dot, thin space, narrow no-break space or no-break space between digit
# groups of exactly three: "1.200", "1\u202f200", "1.200.000". Commas are left
# alone (German decimal comma), as are plain spaces ("3 100 Euro" is ambiguous).
_THOUSANDS = re.compile(r"(?<=\d)[.\u2009\u202f\u00a0](?=\d{3}(?!\d))")
_WS = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Fold text for tolerant matching.

    NFC-normalise, write number words as digits (``zwanzig → 20``, from two up),
    casefold, spell umlauts out (``ä→ae, ö→oe, ü→ue, ß→ss``), drop thousands
    separators between digit groups (``1.200 → 1200``) and collapse whitespace.
    Applied to both answer and key term, so ``"Gebühr"`` matches ``"gebuehr"``,
    ``"1200 €"`` matches ``"1.200 €"`` and ``"zehn Jahre"`` matches ``"10 Jahre"``.
    """
    t = number_words_as_digits(unicodedata.normalize("NFC", text))
    t = t.casefold().translate(_UMLAUTS)
    # casefold turns "ß" into "ss" already; translate catches leftovers.
    t = _THOUSANDS.sub("", t)
    return _WS.sub(" ", t).strip()


def contains_key_terms(answer: str, key_terms: Iterable[str]) -> float:
    """Share of key terms found in the answer.

    ``score = |{t in T : norm(t) is a substring of norm(answer)}| / |T|``
    with ``norm`` = :func:`normalize_text`, except that a term beginning or ending
    with a digit must not continue into another digit there ("30" is not in "300",
    "4" not in "2024"), and source numbers ("[4]") are no figures of the answer.
    Empty or blank terms are ignored; with no terms left the score is 1.0
    (nothing was required).
    """
    terms = [normalize_text(t) for t in key_terms]
    terms = [t for t in terms if t]
    if not terms:
        return 1.0
    hay = normalize_text(CITATION_MARKS.sub(" ", answer))
    return sum(1 for t in terms if _term_pattern(t).search(hay)) / len(terms)


def _term_pattern(term: str) -> re.Pattern:
    """``term`` as a pattern that a figure at its edge cannot continue ("30" does not match "300")."""
    return re.compile(("(?<!\\d)" if term[0].isdigit() else "") + re.escape(term)
                      + ("(?!\\d)" if term[-1].isdigit() else ""))


def evidence_recall(evidence: str, key_terms: Iterable[str]) -> float:
    """1.0 when the text given to the model holds *all* key facts, else 0.0.

    ``recall = 1 if all(norm(t) in norm(evidence) for t in T) else 0``: no answer can be
    better than its evidence, so this bounds what any model could answer.
    """
    return 1.0 if contains_key_terms(evidence, key_terms) == 1.0 else 0.0


def confidently_wrong(answerable: bool, refused: bool, key_terms_share: float | None) -> float | None:
    """1.0 for an answer *given* that lacks a key fact (or answers a near miss), 0.0 for a given
    answer holding all key facts, None for a refusal (its share is taken of answers given).

    ``wrong = not refused and (not answerable or share < 1)``.
    """
    if refused:
        return None
    if not answerable:
        return 1.0
    return 0.0 if (key_terms_share or 0.0) >= 1.0 else 1.0


def citation_precision(
    cited: Sequence[SourcePage],
    expected: SourcePage,
    page_tolerance: int = 0,
) -> float | None:
    """Share of cited ``(source, page)`` pairs that match the expected one.

    ``precision = |{c in C : match(c, expected)}| / |C|`` with the same
    matching rule as :func:`page_hit_at_k`; ``None`` when nothing was cited
    (precision is undefined, and ``aggregate`` skips it).
    """
    if not cited:
        return None
    return sum(1 for c in cited if _page_match(c, expected, page_tolerance)) / len(cited)


def refusal_scores(records: Sequence[tuple[bool, bool]]) -> dict[str, float]:
    """Refusal quality over ``(answerable, refused)`` pairs.

    A *positive* is an unanswerable question; a refusal is the prediction.

    ``TP = #(not answerable and refused)``,
    ``FP = #(answerable and refused)``,
    ``FN = #(not answerable and not refused)``

    ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``,
    ``f1 = 2 * P * R / (P + R)``,
    ``false_refusal_rate = FP / #answerable``.

    Undefined ratios (zero denominators) are nan, except f1 which is 0.0 when
    precision and recall are both defined and both 0.
    """
    tp = fp = fn = 0
    n_answerable = 0
    for answerable, refused in records:
        if answerable:
            n_answerable += 1
            if refused:
                fp += 1
        elif refused:
            tp += 1
        else:
            fn += 1
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    if math.isnan(precision) or math.isnan(recall):
        f1 = math.nan
    elif precision + recall == 0:
        f1 = 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall)
    frr = fp / n_answerable if n_answerable else math.nan
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "false_refusal_rate": frr,
    }


def aggregate(per_query: list[dict]) -> dict[str, float]:
    """Mean of each numeric key across per-query result dicts.

    ``out[key] = mean(row[key] for row in per_query if row[key] is numeric)``.
    ``None`` values and missing keys are skipped; booleans count as 0/1;
    non-numeric values (ids, strings) are ignored. Keys keep first-seen order.
    A key whose values are all None is left out.
    """
    sums: dict[str, list[float]] = {}
    for row in per_query:
        for key, value in row.items():
            if value is None or isinstance(value, str):
                continue
            if isinstance(value, (bool, int, float)):
                sums.setdefault(key, []).append(float(value))
    return {key: mean(vals) for key, vals in sums.items() if vals}
