"""The evaluation harness: run a dataset against an App and turn the results into metrics.

Only orchestration lives here; every formula is in :mod:`evals.metrics` (pure, tested on
its own), so a number in a report can always be traced to one documented definition.

Document-level metrics work on the ranked list of *distinct* documents: the passages a
search returns are mapped to their source basename and repeats are dropped (first
occurrence wins). Otherwise one long document holding the top five passages would push
a second relevant document out of "hit@5" although a reader sees only two documents.
Page metrics, by contrast, look at the passages themselves (``(basename, page)`` of the
top-k passages), because a page-exact citation is what the answer shows.
"""
from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from assistant.access import FULL, Scope
from evals import metrics as m
from evals.datasets import EvalQuestion, basename, is_pii_dataset, load_dataset

log = logging.getLogger(__name__)

MODES = ("bm25", "dense", "hybrid")
ANSWER_PREVIEW_CHARS = 300


# ---------------------------------------------------------------- shared helpers
def prompt_hash(prompt: str) -> str:
    """A short fingerprint of the exact prompt, kept per answer row (a replay sees whether it changed)."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


def distinct(items: Iterable[str]) -> list[str]:
    """Items in first-seen order without repeats (passages → documents)."""
    seen: set[str] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def doc_scores(ranked_docs: Sequence[str], relevant: set[str] | frozenset[str], *, ndcg: bool = True) -> dict[str, float]:
    """hit@1, hit@5, MRR@10 (and nDCG@10) of one ranked document list."""
    rel = set(relevant)
    out = {
        "hit@1": m.hit_at_k(ranked_docs, rel, 1),
        "hit@5": m.hit_at_k(ranked_docs, rel, 5),
        "mrr@10": m.reciprocal_rank(ranked_docs, rel, 10),
    }
    if ndcg:
        out["ndcg@10"] = m.ndcg_at_k(ranked_docs, rel, 10)
    return out


def latency_summary(values_ms: Sequence[float], prefix: str = "latency") -> dict[str, float]:
    vals = [v for v in values_ms if v is not None]
    return {
        f"{prefix}_p50_ms": _r(m.linear_percentile(vals, 50)),
        f"{prefix}_p95_ms": _r(m.linear_percentile(vals, 95)),
        f"{prefix}_mean_ms": _r(m.mean(vals)),
    }


def _r(x: float | None, nd: int = 4) -> float | None:
    """Rounded for reports; nan/None become None so JSON stays valid."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return round(float(x), nd)


def _mean_keys(rows: Sequence[dict], keys: Sequence[str]) -> dict[str, float | None]:
    agg = m.aggregate([{k: r.get(k) for k in keys} for r in rows])
    return {k: _r(agg.get(k)) for k in keys}


# ---------------------------------------------------------------- retrieval
def retrieval_eval(
    retriever,
    questions: Sequence[EvalQuestion],
    *,
    k: int = 10,
    modes: Sequence[str] = MODES,
    collections: Sequence[str] | None = None,
    rerank_candidates: int = 0,
) -> dict[str, Any]:
    """Search every answerable question in every mode; metrics per mode plus per-question rows.

    With ``rerank_candidates`` a mode ``rerank`` is added: the hybrid search's first
    ``rerank_candidates`` passages re-ranked as the answer chain does (:mod:`assistant.rerank`),
    which is the order the chain takes its evidence from. When the retriever has late interaction, a
    mode ``late`` is added: the hybrid search as the answer chain runs it before a model answers
    (:mod:`assistant.late_interaction`).

    Unanswerable questions are left out: there is no right document to find, their
    quality is measured by the refusal metrics of :func:`answer_eval`.
    """
    qs = [q for q in questions if q.answerable and q.relevant_sources]
    if rerank_candidates:
        modes = (*modes, "rerank")
    if getattr(retriever, "late", None) is not None and "late" not in modes:
        modes = (*modes, "late")
    rows: list[dict] = []
    per_mode: dict[str, list[dict]] = {mode: [] for mode in modes}
    latencies: dict[str, list[float]] = {mode: [] for mode in modes}
    for q in qs:
        row: dict[str, Any] = {"id": q.id, "question": q.question, "kind": q.kind,
                               "expected_source": q.expected_source, "expected_page": q.expected_page}
        relevant = set(q.relevant_sources)
        expectations = _expectations(q)
        for mode in modes:
            if mode == "rerank":
                from assistant.rerank import rerank

                res = retriever.search(q.question, k=max(k, rerank_candidates), collections=collections, mode="hybrid")
                res.hits = rerank(q.question, res.hits)[:k]
            elif mode == "late":
                res = retriever.search(q.question, k=k, collections=collections, mode="hybrid", late=True)
            else:
                res = retriever.search(q.question, k=k, collections=collections, mode=mode)
            passages = [(basename(h.chunk.source), h.chunk.page) for h in res.hits]
            docs = distinct(src for src, _ in passages)
            scores = doc_scores(docs, relevant)
            scores["page_hit@1"] = max(m.page_hit_at_k(passages, e, 1) for e in expectations)
            scores["page_hit@5"] = max(m.page_hit_at_k(passages, e, 5) for e in expectations)
            per_mode[mode].append(scores)
            latencies[mode].append(res.ms)
            rank = next((i for i, d in enumerate(docs, start=1) if d in relevant), None)
            row[mode] = {"rank": rank, **scores, "ms": round(res.ms, 2),
                         "top": [f"{s}#{p}" if p is not None else s for s, p in passages[:3]]}
        rows.append(row)
    summary = {}
    by_kind_summary: dict[str, dict] = {}
    keys = ("hit@1", "hit@5", "mrr@10", "ndcg@10", "page_hit@1", "page_hit@5")
    with_page = [i for i, q in enumerate(qs) if q.expected_page is not None]
    for mode in modes:
        summary[mode] = {**_mean_keys(per_mode[mode], keys), **latency_summary(latencies[mode])}
        # page_hit counts a question without a page as hit when its document is found; issue 14's
        # "gold page in the top 5" is over the questions that have one
        summary[mode]["gold_page@5"] = _r(m.mean(per_mode[mode][i]["page_hit@5"] for i in with_page))
        # per kind of page (slides are the hard case): page hit@5 and how many questions it rests on
        by_kind: dict[str, list[float]] = {}
        for q, scores in zip(qs, per_mode[mode]):
            by_kind.setdefault(q.kind or "-", []).append(scores["page_hit@5"])
        by_kind_summary[mode] = {kind: {"n": len(v), "page_hit@5": _r(m.mean(v))}
                                               for kind, v in sorted(by_kind.items())}
    return {"n": len(qs), "n_with_page": len(with_page), "skipped_unanswerable": len(questions) - len(qs), "k": k,
            "modes": summary, "page_hit@5_by_kind": by_kind_summary,
            "latencies_ms": {mode: [round(v, 2) for v in latencies[mode]] for mode in modes}, "rows": rows}


def _expectations(q: EvalQuestion) -> list[tuple[str, int | None]]:
    """(source, page) pairs that count as correct: the expected page, or any page of an alternative
    source (its twin in another format has other page numbers, or none)."""
    out: list[tuple[str, int | None]] = []
    if q.expected_source:
        out.append((basename(q.expected_source), q.expected_page))
    out.extend((basename(a), None) for a in q.alt_sources)
    return out


# ---------------------------------------------------------------- answers
def cited_pairs(result) -> list[tuple[str, int | None]]:
    """(basename, page) of the sources the answer text actually cites with [n]."""
    from assistant.citations import parse_citations

    by_n = {c.n: c for c in result.citations}
    return [(basename(by_n[n].source), by_n[n].page) for n in parse_citations(result.answer) if n in by_n]


_SOURCE_BLOCK = re.compile(r"^\[(\d+)\] [^\n]*\n<<<\n(.*?)\n>>>", re.MULTILINE | re.DOTALL)


def prompt_sources(prompt: str) -> dict[int, str]:
    """The numbered source texts the model was given, read from the rendered prompt (its last
    message: the system prompt's worked examples are not evidence)."""
    human = prompt.rsplit("[human]\n", 1)[-1] if "[human]\n" in prompt else ""
    return {int(n): text for n, text in _SOURCE_BLOCK.findall(human)}


def answer_quotes(result) -> list[str]:
    """What the answer rests on: its selected quotes, or (chains without quotes) the cited sources."""
    quotes = [q.text for q in getattr(result, "quotes", None) or []]
    if quotes:
        return quotes
    from assistant.citations import parse_citations

    given = prompt_sources(result.prompt or "")
    return [given[n] for n in parse_citations(result.answer) if n in given]


def quote_support_of(result, question: str) -> float | None:
    """1.0 when every number, date, name and negation of a given answer stands in its quotes."""
    from assistant.answer_checks import supported

    if result.refused:
        return None
    return 1.0 if supported(result.answer, answer_quotes(result), question) else 0.0


def answer_eval(
    assistant,
    questions: Sequence[EvalQuestion],
    *,
    model: str | None = None,
    limit: int | None = None,
    time_budget_s: float | None = None,
    min_questions: int = 1,
    progress: Callable[[int, int, str], None] | None = None,
    scope: Scope = FULL,
) -> dict[str, Any]:
    """Answer every question with ``model``; score key terms, citations, refusals and speed.

    ``time_budget_s`` stops early (after the current question, but never before
    ``min_questions`` are answered: one answer is no measurement) so a benchmark on a slow
    machine still finishes; how many questions were answered is reported, never hidden.
    """
    qs = list(questions)[:limit] if limit else list(questions)
    rows: list[dict] = []
    t_start = time.perf_counter()
    stopped_early = False
    for i, q in enumerate(qs, start=1):
        if time_budget_s is not None and len(rows) >= max(min_questions, 1) and time.perf_counter() - t_start > time_budget_s:
            stopped_early = True
            log.warning("answer eval: time budget of %.0f s used up after %d of %d questions", time_budget_s, len(rows), len(qs))
            break
        late = getattr(assistant.retriever, "late", None)
        if late is not None:
            # timed as a new question on a fresh process: no token vectors kept from the retrieval phase
            # or from earlier questions (in the portal, passages that recur are kept, which is faster)
            late.forget()
        res = assistant.answer(q.question, model=model, scope=scope)
        cited = cited_pairs(res)
        evidence = "\n".join(prompt_sources(res.prompt or "").values())
        key_share = m.contains_key_terms(res.answer, q.key_terms) if q.answerable else None
        row: dict[str, Any] = {
            "id": q.id, "question": q.question, "kind": q.kind, "answerable": q.answerable,
            "refused": bool(res.refused), "answer": res.answer[:ANSWER_PREVIEW_CHARS],
            # whole: a replay (evals.replay) gives it to the checks again; cut, a list or a second part was lost
            "raw_answer": res.raw_answer or "", "notices": list(res.notices),
            "mode": res.mode, "fallback": res.fallback,
            "citations": [{"n": c.n, "source": basename(c.source), "page": c.page} for c in res.citations],
            "cited": [{"source": s, "page": p} for s, p in cited],
            "key_terms": key_share,
            "evidence_recall": m.evidence_recall(evidence, q.key_terms) if q.answerable and q.key_terms else None,
            "confidently_wrong": m.confidently_wrong(q.answerable, bool(res.refused), key_share),
            "quote_supported": quote_support_of(res, q.question),
            "evidence_chars": len(evidence),
            "citation_precision": _citation_precision(cited, q) if q.answerable else None,
            "total_ms": res.timings.get("total_ms"),
            "retrieve_ms": res.timings.get("retrieve_ms"),
            "first_token_ms": res.timings.get("first_token_ms"),
            "prompt_eval_ms": res.timings.get("prompt_eval_ms"),
            "generate_ms": res.timings.get("generate_ms"),
            "prompt_tokens": res.prompt_tokens or None,
            "completion_tokens": res.completion_tokens or None,
            "refusal_probability": res.refusal_probability,
            "unmentioned_terms": list(res.unmentioned_terms),
            "prompt_sha": prompt_hash(res.prompt) if res.prompt else None,  # a replay sees whether the prompt changed
        }
        rows.append(row)
        if progress:
            progress(i, len(qs), q.id)
    return {"n": len(rows), "planned": len(qs), "stopped_early": stopped_early, "model": model,
            "seconds": round(time.perf_counter() - t_start, 2), "metrics": answer_metrics(rows), "rows": rows}


def _citation_precision(cited: Sequence[tuple[str, int | None]], q: EvalQuestion) -> float | None:
    """Share of cited (source, page) pairs that match any expectation (page tolerance 0)."""
    if not cited:
        return None
    exps = _expectations(q)
    good = sum(1 for c in cited if any(m.citation_precision([c], e) == 1.0 for e in exps))
    return good / len(cited)


def answer_metrics(rows: Sequence[dict]) -> dict[str, float | None]:
    """Aggregate answer rows. Speeds are pooled (Σ tokens / Σ time), not means of per-question rates,
    so a one-token answer with a tiny denominator cannot dominate.

    ``generate_ms`` runs from the request to the last token and so includes prompt evaluation;
    the generation rate therefore divides by ``generate_ms - prompt_eval_ms`` (decoding only).
    ``completion_tokens_per_s_incl_prompt`` is the plain ``completion_tokens / generate_ms``.
    """
    answerable = [r for r in rows if r["answerable"]]
    refusal = m.refusal_scores([(r["answerable"], r["refused"]) for r in rows])
    out: dict[str, float | None] = {
        "questions": len(rows),
        "answerable": len(answerable),
        "key_terms": _r(m.mean(r["key_terms"] for r in answerable)),
        "citation_precision": _r(m.mean(r["citation_precision"] for r in answerable)),
        "cited_share": _r(m.mean(1.0 if r["cited"] else 0.0 for r in answerable)),
        # no answer is better than its evidence: all key facts in the text given to the model
        "evidence_recall": _r(m.mean(r.get("evidence_recall") for r in answerable)),
        # of the answers given (refusals left out): lacking a key fact, or answering a near miss
        "confidently_wrong": _r(m.mean(r.get("confidently_wrong") for r in rows)),
        "answers_given": sum(1 for r in rows if not r["refused"]),
        # every number, date, name and negation of a given answer stands in its quotes
        "quote_support": _r(m.mean(r.get("quote_supported") for r in rows)),
        "refusal_precision": _r(refusal["precision"]),
        "refusal_recall": _r(refusal["recall"]),
        "refusal_f1": _r(refusal["f1"]),
        "false_refusal_rate": _r(refusal["false_refusal_rate"]),
    }
    # the "not in the cited document" warning: wanted on answered near misses, not on answers
    for key, group in (("warned_answers", answerable), ("warned_near_misses", [r for r in rows if not r["answerable"]])):
        out[key] = _r(m.mean(1.0 if r.get("unmentioned_terms") else 0.0 for r in group if not r["refused"]))
    out.update(latency_summary([r["total_ms"] for r in rows], "total"))
    out.update(latency_summary([r["first_token_ms"] for r in rows], "first_token"))
    llm_rows = [r for r in rows if r.get("prompt_tokens") and r.get("prompt_eval_ms")]
    out["prompt_tokens_mean"] = _r(m.mean(r["prompt_tokens"] for r in llm_rows), 1)
    p_tok = sum(r["prompt_tokens"] for r in llm_rows)
    p_ms = sum(r["prompt_eval_ms"] for r in llm_rows)
    out["prompt_tokens_per_s"] = _r(p_tok / p_ms * 1000, 2) if p_ms > 0 else None
    gen_rows = [r for r in llm_rows if r.get("completion_tokens") and r.get("generate_ms")]
    c_tok = sum(r["completion_tokens"] for r in gen_rows)
    decode_ms = sum(max(r["generate_ms"] - r["prompt_eval_ms"], 0.0) for r in gen_rows)
    all_ms = sum(r["generate_ms"] for r in gen_rows)
    out["completion_tokens_mean"] = _r(m.mean(r["completion_tokens"] for r in gen_rows), 1)
    out["generation_tokens_per_s"] = _r(c_tok / decode_ms * 1000, 2) if decode_ms > 0 else None
    out["completion_tokens_per_s_incl_prompt"] = _r(c_tok / all_ms * 1000, 2) if all_ms > 0 else None
    return out


def replay_eval(app, questions: Sequence[EvalQuestion], recording: str | Path, *, model: str | None = None,
                scope: Scope = FULL) -> dict:
    """:func:`answer_eval` with the model answers recorded in a saved report (:mod:`evals.replay`):
    what changed in retrieval, prompts and checks shows without running the model."""
    from evals.replay import Replay

    replay = Replay(app, questions, recording, model=model)
    return replay.annotate(answer_eval(replay.assistant, questions, model=replay.model, scope=scope))


# ---------------------------------------------------------------- PII
def pii_eval(path: str | Path) -> dict[str, Any]:
    """The PII detector's own evaluation (owned by :mod:`evals.pii_eval`)."""
    from evals.pii_eval import evaluate_pii

    return evaluate_pii(path)


# ---------------------------------------------------------------- one dataset against an App
def run_eval(app, dataset_path: str | Path, *, answers: bool = True, model: str | None = None,
             corpus: Path | None = None, k: int = 10, scope: Scope = FULL, as_user: str | None = None,
             time_budget_s: float | None = None, replay: str | Path | None = None) -> dict[str, Any]:
    """Evaluate ``dataset_path`` on ``app``; with ``corpus`` that folder is ingested first
    (incrementally: unchanged files cost nothing, so this is safe to repeat). ``scope``: search and
    answer only in those collections (``kiportal eval --as USER``: what that user would get).
    ``replay``: a saved report whose model answers are used instead of the model (:mod:`evals.replay`)."""
    dataset_path = Path(dataset_path)
    report: dict[str, Any] = {"dataset": str(dataset_path), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                              "data_dir": str(app.settings.home)}
    from evals.tools_eval import is_tools_dataset

    if is_tools_dataset(dataset_path):
        from evals.tools_eval import run_tools_eval

        return report | run_tools_eval(app, dataset_path, model=model)
    if is_pii_dataset(dataset_path):
        report["kind"] = "pii"
        report["pii"] = pii_eval(dataset_path)
        return report
    report["kind"] = "questions"
    if corpus is not None:
        summary = app.ingestor.ingest([Path(corpus)])
        report["ingest"] = summary.as_dict()
    questions = load_dataset(dataset_path)
    report["questions"] = len(questions)
    if as_user:
        report["as_user"] = as_user
    report["retrieval"] = retrieval_eval(app.retriever, questions, k=k, collections=scope.restrict(None),
                                         rerank_candidates=app.settings.retrieval.rerank_candidates)
    if answers and replay is not None:
        report["answers"] = replay_eval(app, questions, replay, model=model, scope=scope)
    elif answers:
        report["answers"] = answer_eval(app.assistant, questions, model=model, scope=scope,
                                        time_budget_s=time_budget_s)
    return report
