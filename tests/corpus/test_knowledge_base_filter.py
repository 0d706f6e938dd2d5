"""The knowledge base's filtered dense search: the fast way (readable passages among the nearest
100) and the index's own filter give the same top k, and the filter never returns fewer than k."""
from __future__ import annotations

import numpy as np
import pytest

from corpus.catalog import Catalog, DocumentRecord
from corpus.knowledge_base import KnowledgeBase
from corpus.models import Chunk
from corpus.vector_store import MemoryVectorIndex


class VectorEmbedder:
    """Unit-test embedder: the query text names a row of a fixed random matrix."""

    def __init__(self, queries: np.ndarray) -> None:
        self.queries = queries

    def embed_query_vector(self, text: str) -> np.ndarray:
        return self.queries[int(text)]


@pytest.fixture
def kb(any_db_url):
    rng = np.random.default_rng(15)
    vecs = rng.normal(size=(300, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = rng.normal(size=(20, 16)).astype(np.float32)
    catalog = Catalog(any_db_url)
    index = MemoryVectorIndex()
    kb = KnowledgeBase(catalog, index, lambda: VectorEmbedder(queries))
    # "klein" holds 6 passages, "a" and "b" the rest
    for i in range(300):
        coll = "klein" if i < 6 else "ab"[i % 2]
        chunk = Chunk(chunk_id=f"c{i:03d}", doc_id=f"d{i}", ordinal=0, text="", source=f"{i}.txt", title="",
                      page=None, section=None, collection=coll)
        kb.store_version(DocumentRecord(doc_id=f"d{i}", source=f"{i}.txt", path=f"/x/{i}.txt", collection=coll,
                                        status="indexed"), [chunk], vecs[i:i + 1])
    return kb


@pytest.mark.parametrize("allowed", [["a"], ["a", "b"], ["klein"], ["a", "klein"], ["a", "b", "klein"]])
def test_both_ways_give_the_index_filters_top_k(kb, allowed):
    calls = []
    query = kb.vectors.query

    def counting(vector, k, flt=None):
        calls.append(flt)
        return query(vector, k, flt)

    kb.vectors.query = counting
    for q in range(20):
        got = kb.dense_search(str(q), 10, {"collections": allowed})
        assert got == query(kb.embedder.embed_query_vector(str(q)), 10, {"collections": allowed})
        assert len(got) == min(10, sum(1 for i in range(300) if ("klein" if i < 6 else "ab"[i % 2]) in allowed))
    fell_back = sum(1 for f in calls if f is not None)
    if allowed == ["klein"]:
        assert fell_back == 20  # six passages: never ten among the nearest hundred
    if allowed == ["a", "b"]:
        assert fell_back == 0   # nearly everything readable: the fast way always suffices


def test_the_catalog_decides_the_collection(kb):
    """A passage moved in the catalog but not yet in the index's metadata counts where the catalog says."""
    kb.catalog.move_document("d7", "klein")  # the index still says "b"
    before = kb.vectors.query  # (the retriever checks the catalog again after a fallback to the index)
    for q in range(20):
        nearest = [cid for cid, _ in before(kb.embedder.embed_query_vector(str(q)), 100)]
        got = [cid for cid, _ in kb.dense_search(str(q), 10, {"collections": ["b"]})]
        assert "c007" not in got and len(got) == 10
        if "c007" in nearest[:12]:
            return
    pytest.fail("c007 was never among the nearest passages: the test shows nothing")
