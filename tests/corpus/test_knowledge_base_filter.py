"""The knowledge base's filtered dense search: the fast way (readable passages among the nearest
few) and the index's own filter give the same top k, and the filter never returns fewer than k.
Each test runs with ingest's chunk ids (``doc:version:n``, collections looked up per document in
memory) and with ids of another form (asked of the catalog)."""
from __future__ import annotations

import numpy as np
import pytest

from corpus.catalog import Catalog, DocumentRecord
from corpus.knowledge_base import KnowledgeBase
from corpus.models import Chunk, chunk_id_for, doc_id_of_chunk
from corpus.vector_store import MemoryVectorIndex


class VectorEmbedder:
    """Unit-test embedder: the query text names a row of a fixed random matrix."""

    def __init__(self, queries: np.ndarray) -> None:
        self.queries = queries

    def embed_query_vector(self, text: str) -> np.ndarray:
        return self.queries[int(text)]


def cid(i: int, form: str) -> str:
    return chunk_id_for(f"d{i}", "v1abcdef", 0) if form == "versioned" else f"c{i:03d}"


@pytest.fixture(params=["versioned", "plain"])
def form(request):
    return request.param


@pytest.fixture
def kb(any_db_url, form):
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
        chunk = Chunk(chunk_id=cid(i, form), doc_id=f"d{i}", ordinal=0, text="", source=f"{i}.txt", title="",
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


def test_the_catalog_decides_the_collection(kb, form):
    """A passage moved in the catalog but not yet in the index's metadata counts where the catalog
    says, also right after the move (the in-memory map follows the catalog's generation)."""
    moved = cid(7, form)
    kb.dense_search("0", 10, {"collections": ["b"]})  # the map is built before the move
    kb.catalog.move_document("d7", "klein")  # the index still says "b"
    before = kb.vectors.query  # (the retriever checks the catalog again after a fallback to the index)
    for q in range(20):
        nearest = [c for c, _ in before(kb.embedder.embed_query_vector(str(q)), 100)]
        got = [c for c, _ in kb.dense_search(str(q), 10, {"collections": ["b"]})]
        assert moved not in got and len(got) == 10
        if moved in nearest[:12]:
            return
    pytest.fail(f"{moved} was never among the nearest passages: the test shows nothing")


def test_the_in_memory_map_agrees_with_the_catalog(kb, form):
    ids = [cid(i, form) for i in range(300)] + ["unbekannt:v1:00000", "c999"]
    gen = kb.catalog.generation()
    assert kb._collections_of(ids, gen) == kb.catalog.collections_of(ids)
    kb.catalog.delete_document("d3")  # its passage leaves the map with the next generation
    gen = kb.catalog.generation()
    assert kb._collections_of(ids, gen) == kb.catalog.collections_of(ids)


@pytest.mark.parametrize("chunk_id, doc_id", [
    (chunk_id_for("abc123", "0123456789abcdef", 7), "abc123"),
    (chunk_id_for("storage:a:b", "v", 0), "storage:a:b"),  # a colon inside the document id
    ("c001", "c001"),                                       # another form: itself
    ("a:b", "a:b"),
])
def test_doc_id_of_chunk(chunk_id, doc_id):
    assert doc_id_of_chunk(chunk_id) == doc_id
