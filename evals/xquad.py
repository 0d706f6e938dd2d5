"""XQuAD-de as a retrieval benchmark: question → the Wikipedia paragraph it was written on.

It is public and nobody here wrote it, so it checks that our retrieval is not tuned to
our own test questions. Each paragraph becomes one small text file and goes through
the real ingest pipeline (loader, chunking, embedding, both indexes) in a fresh data
directory, so the figures describe the product, not a lab setup. The expected
document of a question is the file of its paragraph.
"""
from __future__ import annotations

import json
import logging
import random
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from evals.runner import MODES, distinct, doc_scores, latency_summary, _mean_keys

log = logging.getLogger(__name__)

XQUAD_SUBDIR = Path("benchmarks") / "xquad_de"
CONTEXTS_FILE = "xquad_de_contexts.jsonl"
QUESTIONS_FILE = "xquad_de_all_questions.jsonl"
METRIC_KEYS = ("hit@1", "hit@5", "mrr@10")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def xquad_dir(shared_dir: Path) -> Path:
    return Path(shared_dir) / XQUAD_SUBDIR


def load_xquad(shared_dir: Path, *, limit: int | None = None, seed: int = 20240601) -> tuple[list[dict], list[dict]]:
    """Contexts ``{id, title, text}`` and questions ``{id, question, answers, context_id}``.

    ``limit`` draws a seeded sample (in original order), so quick runs are comparable run to run.
    """
    base = xquad_dir(shared_dir)
    contexts = _jsonl(base / CONTEXTS_FILE)
    questions = _jsonl(base / QUESTIONS_FILE)
    known = {c["id"] for c in contexts}
    missing = {q["context_id"] for q in questions} - known
    if missing:
        raise ValueError(f"XQuAD: {len(missing)} questions refer to unknown contexts, e.g. {sorted(missing)[:3]}")
    if limit and limit < len(questions):
        keep = set(random.Random(seed).sample(range(len(questions)), limit))
        questions = [q for i, q in enumerate(questions) if i in keep]
    return contexts, questions


def write_context_docs(contexts: Sequence[dict], docs_dir: Path) -> list[Path]:
    """One ``<context_id>.txt`` per paragraph, text only (the title would leak the article name)."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for c in contexts:
        p = docs_dir / f"{c['id']}.txt"
        if not p.exists() or p.read_text(encoding="utf-8") != c["text"]:
            p.write_text(c["text"], encoding="utf-8")
        paths.append(p)
    return paths


def context_of(source: str) -> str:
    """The context id of an ingested paragraph file (its stem)."""
    return Path(source).stem


def score_questions(search: Callable[[str], tuple[list[str], float]], questions: Sequence[dict]) -> dict[str, Any]:
    """Run ``search(question) -> (ranked context ids, ms)`` over all questions; mean metrics and latency."""
    rows, lat = [], []
    for q in questions:
        ranked, ms = search(q["question"])
        rows.append(doc_scores(distinct(ranked), {q["context_id"]}, ndcg=False))
        lat.append(ms)
    return {**_mean_keys(rows, METRIC_KEYS), **latency_summary(lat)}


def xquad_eval(
    app_factory: Callable[[Path], Any],
    shared_dir: Path,
    work_dir: Path,
    *,
    limit: int | None = None,
    modes: Sequence[str] = MODES,
    k: int = 10,
    home: Path | None = None,
) -> dict[str, Any]:
    """Ingest the 240 paragraphs with the App that ``app_factory(home)`` builds, then score every
    question in every mode.

    ``home`` defaults to ``work_dir/xquad_data``, which is always emptied first. A given
    ``home`` is used as it is: pass a copy of an existing index to measure XQuAD with that
    index's documents as distractors (the 240 paragraphs alone are a tiny, easy corpus).
    """
    work_dir = Path(work_dir)
    contexts, questions = load_xquad(shared_dir, limit=limit)
    docs_dir = work_dir / "xquad_docs"
    write_context_docs(contexts, docs_dir)
    if home is None:
        home = work_dir / "xquad_data"
        if home.exists():
            shutil.rmtree(home)
    app = app_factory(Path(home))
    t0 = time.perf_counter()
    summary = app.ingestor.ingest([docs_dir])
    if summary.failed:
        log.warning("XQuAD ingest: %d failures, e.g. %s", len(summary.failed), summary.failed[0])
    ingest_s = time.perf_counter() - t0
    retriever = app.retriever
    retriever.search("Aufwärmen", k=k)  # loads the model and BM25 index outside the timings

    stats = app.catalog.stats()
    result: dict[str, Any] = {
        "n_contexts": len(contexts), "n_questions": len(questions), "k": k,
        "chunks": summary.chunks, "index_documents": stats.documents, "index_chunks": stats.chunks,
        "ingest_seconds": round(ingest_s, 2), "modes": {},
    }
    for mode in modes:
        def search(q: str, mode=mode) -> tuple[list[str], float]:
            res = retriever.search(q, k=k, mode=mode)
            return [context_of(h.chunk.source) for h in res.hits], res.ms

        t = time.perf_counter()
        result["modes"][mode] = score_questions(search, questions)
        log.info("XQuAD %s: %s (%.1f s)", mode, result["modes"][mode], time.perf_counter() - t)
    return result
