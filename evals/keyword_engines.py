"""Which keyword search for cluster mode: PostgreSQL full-text search or the per-replica BM25?

Issue 16 asks to choose by measurement: on XQuAD-de, hybrid hit@1 may drop at most 0.5 points
against the BM25 the portal uses today. This puts the same ingested paragraphs (the real
ingest pipeline, the configured embedding model) into a PostgreSQL table with a ``tsvector``
column (``german`` configuration: PostgreSQL's Snowball stemmer and stopword list, GIN index)
and ranks every question there with ``ts_rank_cd`` over an OR query of its words (an AND query
finds nothing for most questions), alone and fused with the dense ranking exactly as
:class:`assistant.retrieval.HybridRetriever` fuses BM25 (RRF, same candidate count). The BM25
side is the product's own retriever. Run::

    python -m evals.keyword_engines --shared ../shared [--pg-url postgresql+psycopg://…] [--limit N]

Without ``--pg-url`` a throwaway PostgreSQL is started (evals.servers, Debian's package).
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from evals.runner import distinct, doc_scores, latency_summary, _mean_keys
from evals.xquad import METRIC_KEYS, context_of, load_xquad, write_context_docs

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w\w+", re.UNICODE)


def or_query(text: str) -> str:
    """A tsquery text that matches any word of ``text`` (``a | b | c``); words only, so no
    tsquery syntax from the question reaches PostgreSQL."""
    return " | ".join(dict.fromkeys(w.lower() for w in _WORD.findall(text)))


class PgFullText:
    """The catalog's passages in a PostgreSQL ``tsvector`` table, ranked by ``ts_rank_cd``."""

    def __init__(self, url: str, table: str = "kw_fts") -> None:
        from sqlalchemy import create_engine

        self.engine = create_engine(url)
        self.table = table

    def build(self, chunks) -> float:
        """Fill the table from ``(chunk_id, text)`` pairs; returns seconds (insert + GIN index)."""
        from sqlalchemy import text

        t0 = time.perf_counter()
        with self.engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {self.table}"))
            conn.execute(text(f"CREATE TABLE {self.table} (chunk_id TEXT PRIMARY KEY, tsv TSVECTOR NOT NULL)"))
            conn.execute(text(f"INSERT INTO {self.table}(chunk_id, tsv) VALUES (:i, to_tsvector('german', :t))"),
                         [{"i": cid, "t": body.replace("\x00", "")} for cid, body in chunks])
            conn.execute(text(f"CREATE INDEX {self.table}_gin ON {self.table} USING GIN (tsv)"))
            conn.execute(text(f"ANALYZE {self.table}"))
        return time.perf_counter() - t0

    def query(self, question: str, k: int) -> list[tuple[str, float]]:
        from sqlalchemy import text

        q = or_query(question)
        if not q:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(text(
                f"SELECT chunk_id, ts_rank_cd(tsv, query) AS score FROM {self.table}, "
                "to_tsquery('german', :q) AS query WHERE tsv @@ query ORDER BY score DESC, chunk_id LIMIT :k"),
                {"q": q, "k": k}).fetchall()
        return [(r[0], float(r[1])) for r in rows]


def compare(app, pg_url: str, questions: list[dict], *, k: int = 10) -> dict[str, Any]:
    """hit@1/hit@5/MRR@10 and latency of bm25 vs PostgreSQL FTS, alone and fused with dense."""
    from assistant.retrieval import rrf_fuse
    from corpus.knowledge_base import index_text

    retriever = app.retriever
    chunks = list(app.catalog.iter_chunks())
    source = {c.chunk_id: context_of(c.source) for c in chunks}
    fts = PgFullText(pg_url)
    build_s = fts.build([(c.chunk_id, index_text(c)) for c in chunks])
    n = max(retriever.candidates, k)
    rows: dict[str, list] = {m: [] for m in ("bm25", "pg_fts", "hybrid_bm25", "hybrid_pg_fts")}
    lat: dict[str, list] = {"bm25": [], "pg_fts": []}
    for q in questions:
        want = {q["context_id"]}
        t0 = time.perf_counter()
        bm25 = app.kb.keyword_search(q["question"], n)
        lat["bm25"].append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        pg = fts.query(q["question"], n)
        lat["pg_fts"].append((time.perf_counter() - t0) * 1000)
        dense = app.kb.dense_search(q["question"], n)
        for name, kw in (("bm25", bm25), ("pg_fts", pg)):
            rows[name].append(doc_scores(distinct([source[c] for c, _ in kw[:k]]), want, ndcg=False))
            fused = rrf_fuse([[c for c, _ in kw], [c for c, _ in dense]], k=retriever.rrf_k,
                             weights=[retriever.bm25_weight, retriever.dense_weight])
            rows[f"hybrid_{name}"].append(doc_scores(distinct([source[c] for c, _ in fused[:k]]), want, ndcg=False))
    out: dict[str, Any] = {"questions": len(questions), "chunks": len(chunks), "pg_fts_build_s": round(build_s, 2)}
    for name, r in rows.items():
        out[name] = _mean_keys(r, METRIC_KEYS)
    for name, values in lat.items():
        out[name].update({f"keyword_{key}": v for key, v in latency_summary(values).items()})
    out["hybrid_hit@1_drop_points"] = round(100 * (out["hybrid_bm25"]["hit@1"] - out["hybrid_pg_fts"]["hit@1"]), 2)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from assistant.settings import load_settings
    from assistant.wiring import App
    from evals.workdirs import link_models

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--pg-url", default="")
    ap.add_argument("--models", type=Path, default=None, help="prepared models folder (default: the settings')")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the result as JSON here too")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = None
    work = Path(tempfile.mkdtemp(prefix="kiportal-kw-"))
    try:
        pg_url = args.pg_url
        if not pg_url:
            from evals.servers import start_postgres

            server = start_postgres()
            pg_url = server.new_database("kw")
        base = load_settings()
        home = work / "data"
        link_models(home, args.models or base.models_dir)
        app = App(base.model_copy(update={"home": home, "app_db_url": "",
                                          "vector": base.vector.model_copy(update={"mode": "chroma"})}))
        contexts, questions = load_xquad(args.shared, limit=args.limit)
        app.ingestor.ingest(write_context_docs(contexts, work / "docs"))
        app.retriever.search("Aufwärmen")
        result = {"embedding": app.settings.embedding.mode, **compare(app, pg_url, questions)}
        text = json.dumps(result, ensure_ascii=False, indent=2)
        log.info("%s", text)
        if args.out:
            args.out.write_text(text + "\n", encoding="utf-8")
        return result
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
