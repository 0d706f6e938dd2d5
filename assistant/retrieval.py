"""Hybrid retrieval: BM25 and dense rankings fused by reciprocal rank fusion (RRF).

RRF needs no score calibration between the two retrievers, which is why it beats
weighted score sums on mixed corpora (statutes favour exact terms, slides favour
meaning). Each hit keeps both ranks so trainers can show why a passage was found. Before
the model reads them, the first candidates can be re-ranked by late interaction
(:mod:`assistant.late_interaction`, ``search(late=True)``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, Sequence

from corpus.knowledge_base import KnowledgeBase, index_text
from corpus.models import Hit

if TYPE_CHECKING:
    from assistant.late_interaction import LateInteraction

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "bm25", "dense"]


def rrf_fuse(
    rankings: Sequence[Sequence[str]], *, k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: score(d) = Σ_i w_i / (k + rank_i(d)), ranks 1-based."""
    weights = weights or [1.0] * len(rankings)
    scores: dict[str, float] = {}
    first_rank: list[dict[str, int]] = []
    for ranking, w in zip(rankings, weights):
        ranks = {}
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + w / (k + rank)
            ranks.setdefault(item, rank)
        first_rank.append(ranks)
    # equal fused scores are common (rank r in one list only); break ties by the rankings in
    # their given order, never by id, so results don't depend on where files happen to live
    big = 1 << 30
    return sorted(scores.items(), key=lambda kv: (-kv[1], *[r.get(kv[0], big) for r in first_rank], kv[0]))


@dataclass
class SearchResult:
    query: str
    hits: list[Hit]
    ms: float


class HybridRetriever:
    def __init__(self, kb: KnowledgeBase, *, k: int = 5, candidates: int = 40, rrf_k: int = 60,
                 dense_weight: float = 1.0, bm25_weight: float = 1.0, late: LateInteraction | None = None) -> None:
        self.kb = kb
        self.late = late  # re-ranks the fused top candidates of a hybrid search (None = the fused order)
        self.k = k
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.dense_weight = dense_weight
        self.bm25_weight = bm25_weight

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        collections: Sequence[str] | None = None,
        doc_ids: Sequence[str] | None = None,
        mode: Mode = "hybrid",
        wait_for_index: bool = True,
        late: bool = False,
    ) -> SearchResult:
        """The top ``k`` passages. ``collections``: ``None`` searches all, a list only those (an empty
        list finds nothing); the list goes into both index queries, so the k hits all come from
        readable collections and unreadable passages take no rank. ``late``: a hybrid search's first
        candidates re-ranked by late interaction (when the retriever has it): 0.4-0.8 s on 2 cores,
        worth it before a model reads the passages for seconds, not for a search list that should
        appear at once (a search stays within milliseconds)."""
        t0 = time.perf_counter()
        k = k or self.k
        flt = {}
        if collections is not None:
            flt["collections"] = sorted(set(collections))
        if doc_ids:
            flt["doc_ids"] = list(doc_ids)
        n = max(self.candidates, k)
        bm25 = self.kb.keyword_search(query, n, flt or None, wait=wait_for_index) if mode in ("hybrid", "bm25") else []
        dense = self.kb.dense_search(query, n, flt or None) if mode in ("hybrid", "dense") else []
        bm25_rank = {cid: r for r, (cid, _) in enumerate(bm25, start=1)}
        dense_rank = {cid: r for r, (cid, _) in enumerate(dense, start=1)}
        dense_score = dict(dense)
        if mode == "hybrid":
            fused = rrf_fuse([[c for c, _ in bm25], [c for c, _ in dense]], k=self.rrf_k,
                             weights=[self.bm25_weight, self.dense_weight])
        else:
            fused = bm25 or dense
        late_ranker = self.late if late and mode == "hybrid" else None
        # resolve through the catalog: orphans and superseded versions vanish here
        top = fused[: max(k, late_ranker.candidates if late_ranker else 0) * 3]
        chunks = self.kb.catalog.chunks_by_ids([cid for cid, _ in top])
        allowed = set(flt["collections"]) if "collections" in flt else None
        hits = [
            Hit(chunk=chunks[cid], score=score, bm25_rank=bm25_rank.get(cid), dense_rank=dense_rank.get(cid),
                dense_score=dense_score.get(cid))
            for cid, score in top
            # the catalog's collection decides (an index's copy can lag behind a move for a moment)
            if cid in chunks and (allowed is None or chunks[cid].collection in allowed)
        ]
        if late_ranker is not None:
            hits = self._late(late_ranker, query, hits)
        return SearchResult(query, hits[:k], (time.perf_counter() - t0) * 1000)

    @staticmethod
    def _late(late: LateInteraction, query: str, hits: list[Hit]) -> list[Hit]:
        """The first ``late.candidates`` hits in late interaction's order, the rest behind them; the
        fused order when the encoder fails (an optional step never costs the answer)."""
        head = hits[: late.candidates]
        try:
            order, ranks = late.order(query, [index_text(h.chunk) for h in head])
        except Exception:  # noqa: BLE001 - e.g. a damaged token graph; Stopped (a BaseException) goes on
            log.warning("late interaction failed; the fused order stands", exc_info=True)
            return hits
        if not ranks:
            return hits
        return [replace(head[i], late_rank=ranks[i]) for i in order] + hits[late.candidates:]
