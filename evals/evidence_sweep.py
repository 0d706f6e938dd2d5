"""Choose the evidence settings by measurement, without the language model.

Why: evidence recall (all key facts in the text given to the model) bounds what any model can
answer, and it needs no model to measure: one hybrid search per question (the wide candidate
set), then every variant of re-ranking, passage count and token budget is replayed offline. Run
it on a tuning set only (``evals/datasets/blind_dev.jsonl``); the test split and the blind set
are for reporting.

``python -m evals.evidence_sweep DATA_DIR DATASET`` prints one line per variant: first the
condensation in the model's own tokens (passages × budget × weight of the sentence's meaning,
:func:`sentence_sweep`), then re-ranking variants (evidence recall, the best quote holding all key
facts, the gold page among the first five passages). Tune on ``blind_dev.jsonl`` (written blind;
``shared_dev.jsonl`` copies its pages' wording).
"""
from __future__ import annotations

import itertools
import json
import logging
import sys
from pathlib import Path

from evals import metrics as m
from evals.datasets import basename, load_dataset

log = logging.getLogger(__name__)


def variants():
    from assistant.rerank import DEFAULT, RerankWeights

    yield "rrf (no re-ranking)", None
    yield "rerank default", DEFAULT
    for agree, cov, num in itertools.product((0.0, 0.3), (0.5, 1.0, 2.0), (0.0, 0.3)):
        yield f"rerank agree={agree} cov={cov} num={num}", RerankWeights(agree=agree, coverage=cov, number=num)


def sentence_sweep(app, questions, *, passages=(3, 4, 6), budgets=(600, 800), weights=(0.0, 2.0, 4.0, 8.0)) -> list[dict]:
    """Evidence recall of the chain's condensation per passage count, budget and weight of the
    sentence's meaning (``llm.sentence_similarity``), in the model's own tokens, fused order."""
    from assistant.evidence import embedding_similarity, select_evidence
    from assistant.llm.backends import token_counter

    count = token_counter(app.chat_model(app.settings.llm.default))  # the chain's own count
    embedder = app.kb.embedder
    qs = [q for q in questions if q.answerable and q.key_terms]
    pools = {q.id: app.retriever.search(q.question, k=40).hits for q in qs}
    rows = []
    for k in (1, 2, 4, 6, 10, 20, 40):  # the bound: all key facts in the first k whole passages
        got = [m.evidence_recall("\n".join(h.chunk.text for h in pools[q.id][:k]), q.key_terms) for q in qs]
        rows.append({"variant": f"whole passages, top {k}", "evidence_recall": round(m.mean(got), 3), "n": len(qs)})
    caches: dict[str, dict[str, float]] = {q.id: {} for q in qs}  # each sentence embedded once per question
    for n_pass, budget, weight in itertools.product(passages, budgets, weights):
        got = []
        for q in qs:
            evidence, _ = select_evidence(q.question, pools[q.id][: n_pass + 2], budget_tokens=budget, count=count,
                                          max_passages=n_pass, similarity_weight=weight,
                                          similarity=embedding_similarity(embedder, q.question, caches[q.id]) if weight else None)
            got.append(m.evidence_recall("\n".join(ev.text for ev in evidence), q.key_terms))
        rows.append({"variant": "sentence meaning", "passages": n_pass, "budget": budget, "weight": weight,
                     "evidence_recall": round(m.mean(got), 3), "n": len(qs)})
    return rows


def sweep(app, questions, *, candidates=(10, 20, 30, 40), passages=(4, 5, 6), budgets=(500, 600)) -> list[dict]:
    from assistant.evidence import select_evidence
    from assistant.quotes import best_quote
    from assistant.rerank import rerank
    from corpus.text import estimate_tokens

    qs = [q for q in questions if q.answerable and q.key_terms]
    pools = {q.id: app.retriever.search(q.question, k=max(candidates)).hits for q in qs}
    rows = []
    for (name, weights), n_cand, n_pass, budget in itertools.product(list(variants()), candidates, passages, budgets):
        if weights is None and n_cand != candidates[0]:
            continue  # without re-ranking the candidate count does not matter
        ev_hits, quote_hits, page_hits = [], [], []
        for q in qs:
            hits = pools[q.id][:n_cand]
            if weights is not None:
                hits = rerank(q.question, hits, weights)
            evidence, _ = select_evidence(q.question, hits[: n_pass + 2], budget_tokens=budget, count=estimate_tokens,
                                          max_passages=n_pass)
            text = "\n".join(ev.text for ev in evidence)
            ev_hits.append(m.evidence_recall(text, q.key_terms))
            quote = best_quote(q.question, evidence)
            quote_hits.append(m.evidence_recall(quote.text if quote else "", q.key_terms))
            top5 = [(basename(h.chunk.source), h.chunk.page) for h in hits[:5]]
            page_hits.append(m.page_hit_at_k(top5, (q.expected_source, q.expected_page), 5))
        rows.append({"variant": name, "candidates": n_cand if weights else None, "passages": n_pass, "budget": budget,
                     "evidence_recall": round(m.mean(ev_hits), 3), "quote_recall": round(m.mean(quote_hits), 3),
                     "page_hit@5": round(m.mean(page_hits), 3), "n": len(qs)})
    return rows


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING)
    if len(argv) != 2:
        sys.stderr.write("usage: python -m evals.evidence_sweep DATA_DIR DATASET\n")
        return 2
    from assistant.settings import load_settings
    from assistant.wiring import App

    app = App(load_settings(Path(argv[0])))
    questions = load_dataset(argv[1])
    for r in sentence_sweep(app, questions):
        sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
    rows = sweep(app, questions)
    rows.sort(key=lambda r: (-r["evidence_recall"], -r["page_hit@5"], -r["quote_recall"], r["budget"], r["passages"]))
    for r in rows:
        sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
